"""selfattention.multihead: equality with torch.nn.MultiheadAttention (float32, 1e-5), split/merge, errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from selfattention.attention import causal_mask
from selfattention.multihead import MultiHeadAttention, merge_heads, split_heads

D_MODEL, HEADS = 16, 4


def _pair(bias: bool = True, seed: int = 0):
    torch.manual_seed(seed)
    ref = nn.MultiheadAttention(D_MODEL, HEADS, bias=bias)  # batch_first=False: (L, B, d)
    with torch.no_grad():  # torch zeroes its biases at init: randomise them so they are checked too
        for p in ref.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return MultiHeadAttention(D_MODEL, HEADS, bias=bias).load_torch(ref).eval(), ref.eval()


def _torch(ref, query, key, value, **kwargs):
    """Call torch's module on batch-first tensors: it wants (L, B, d) and returns (L, B, d)."""
    out, w = ref(query.transpose(0, 1), key.transpose(0, 1), value.transpose(0, 1),
                 average_attn_weights=False, **kwargs)
    return out.transpose(0, 1), w


def _inputs(b=2, lq=5, lk=5, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, lq, D_MODEL, generator=g), torch.randn(b, lk, D_MODEL, generator=g)


@pytest.mark.parametrize("bias", [True, False])
def test_self_attention_equals_torch(bias):
    ours, ref = _pair(bias)
    x, _ = _inputs()
    out, w = ours(x)
    ref_out, ref_w = _torch(ref, x, x, x)
    torch.testing.assert_close(out, ref_out, rtol=0, atol=1e-5)
    torch.testing.assert_close(w, ref_w, rtol=0, atol=1e-5)
    assert w.shape == (2, HEADS, 5, 5)


def test_cross_attention_equals_torch():
    ours, ref = _pair()
    x, memory = _inputs(lq=3, lk=7)
    out, w = ours(x, memory)
    ref_out, ref_w = _torch(ref, x, memory, memory)
    torch.testing.assert_close(out, ref_out, rtol=0, atol=1e-5)
    torch.testing.assert_close(w, ref_w, rtol=0, atol=1e-5)
    value = torch.randn_like(memory)
    torch.testing.assert_close(ours(x, memory, value)[0], _torch(ref, x, memory, value)[0], rtol=0, atol=1e-5)


def test_masks_equal_torch_with_opposite_polarity():
    ours, ref = _pair()
    x, memory = _inputs(lq=4, lk=6)
    allowed = torch.rand(4, 6, generator=torch.Generator().manual_seed(2)) > 0.4
    allowed[:, 0] = True
    out, w = ours(x, memory, mask=allowed)
    ref_out, ref_w = _torch(ref, x, memory, memory, attn_mask=~allowed)  # torch: True = masked out
    torch.testing.assert_close(out, ref_out, rtol=0, atol=1e-5)
    torch.testing.assert_close(w, ref_w, rtol=0, atol=1e-5)
    additive = torch.randn(4, 6)
    torch.testing.assert_close(ours(x, memory, mask=additive)[0],
                               _torch(ref, x, memory, memory, attn_mask=additive)[0], rtol=0, atol=1e-5)


def test_key_padding_and_causal_equal_torch():
    ours, ref = _pair()
    x, _ = _inputs(lq=6, lk=6)
    real = torch.tensor([[True] * 6, [True] * 4 + [False] * 2])
    out, w = ours(x, key_padding_mask=real, is_causal=True)
    ref_out, ref_w = _torch(ref, x, x, x, key_padding_mask=~real, attn_mask=~causal_mask(6))
    torch.testing.assert_close(out, ref_out, rtol=0, atol=1e-5)
    torch.testing.assert_close(w, ref_w, rtol=0, atol=1e-5)
    assert (w[1, :, :, 4:] == 0).all()
    # key padding combined with a boolean and with a float mask
    out2, _ = ours(x, mask=causal_mask(6), key_padding_mask=real)
    torch.testing.assert_close(out2, ref_out, rtol=0, atol=1e-5)
    bias = torch.zeros(6, 6).masked_fill(~causal_mask(6), float("-inf"))
    out3, _ = ours(x, mask=bias, key_padding_mask=real)
    torch.testing.assert_close(out3, ref_out, rtol=0, atol=1e-5)


def test_unbatched_input_and_gradients_flow():
    ours, _ = _pair()
    x = torch.randn(5, D_MODEL, requires_grad=True)
    out, w = ours(x)
    assert out.shape == (5, D_MODEL) and w.shape == (HEADS, 5, 5)
    out.sum().backward()
    assert x.grad is not None and all(p.grad is not None for p in ours.parameters())


def test_dropout_only_in_training():
    mha = MultiHeadAttention(D_MODEL, HEADS, dropout=0.5)
    x, _ = _inputs()
    mha.eval()
    torch.testing.assert_close(mha(x)[0], mha(x)[0], rtol=0, atol=0)
    mha.train()
    torch.manual_seed(0)
    assert not torch.allclose(mha(x)[0], mha.eval()(x)[0])


def test_split_and_merge_are_inverse_and_slice_features():
    x = torch.arange(2 * 3 * 8.0).reshape(2, 3, 8)
    heads = split_heads(x, 4)
    assert heads.shape == (2, 4, 3, 2)
    torch.testing.assert_close(heads[:, 1], x[..., 2:4])  # head 1 owns features 2 and 3
    torch.testing.assert_close(merge_heads(heads), x)


@pytest.mark.parametrize("args,match", [
    ((10, 3), r"d_model=10 is not divisible by n_heads=3"),
    ((0, 2), r"d_model and n_heads must be positive ints, got d_model=0, n_heads=2"),
    ((8, 2.0), r"got d_model=8, n_heads=2.0"),
])
def test_bad_sizes(args, match):
    with pytest.raises(ValueError, match=match):
        MultiHeadAttention(*args)


def test_bad_inputs_raise_with_shapes():
    mha = MultiHeadAttention(D_MODEL, HEADS)
    x = torch.randn(2, 5, D_MODEL)
    with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\), got 1.5"):
        MultiHeadAttention(8, 2, dropout=1.5)
    with pytest.raises(ValueError, match=r"query must have shape \(\.\.\., length, 16\), got \(2, 5, 12\)"):
        mha(torch.randn(2, 5, 12))
    with pytest.raises(ValueError, match=r"key and value lengths differ: \(2, 5, 16\) vs \(2, 4, 16\)"):
        mha(x, x, torch.randn(2, 4, D_MODEL))
    with pytest.raises(ValueError, match=r"key_padding_mask must be bool of shape \(\.\.\., Lk=5\), "
                                         r"got torch.bool \(2, 4\)"):
        mha(x, key_padding_mask=torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(TypeError, match=r"key_padding_mask must be a torch.Tensor, got list"):
        mha(x, key_padding_mask=[[True] * 5] * 2)
    with pytest.raises(ValueError, match=r"last dimension 10 is not divisible by n_heads=4"):
        split_heads(torch.randn(3, 10), 4)


def test_load_torch_rejects_mismatches():
    mha = MultiHeadAttention(D_MODEL, HEADS)
    with pytest.raises(TypeError, match=r"expects torch.nn.MultiheadAttention, got Linear"):
        mha.load_torch(nn.Linear(2, 2))
    with pytest.raises(ValueError, match=r"torch has embed_dim=16, num_heads=2; this module has d_model=16, n_heads=4"):
        mha.load_torch(nn.MultiheadAttention(D_MODEL, 2))
    with pytest.raises(ValueError, match=r"bias mismatch: torch bias=False, this module bias=True"):
        mha.load_torch(nn.MultiheadAttention(D_MODEL, HEADS, bias=False))
    with pytest.raises(ValueError, match=r"kdim/vdim different from embed_dim"):
        mha.load_torch(nn.MultiheadAttention(D_MODEL, HEADS, kdim=8))


# ---------------------------------------------------------------- chapter 04's task (selfattention.data)


def test_twin_letters_task_answers_its_two_questions():
    from selfattention.data import twin_letters_task, twin_letters_vocabulary

    tokens, targets = twin_letters_task(50, 6, generator=torch.Generator().manual_seed(0))
    assert tokens.shape == (50, 12) and targets.shape == (50, 12, 2) and tokens.dtype == targets.dtype == torch.int64
    assert twin_letters_vocabulary(3) == ["A", "B", "C", "a", "b", "c"]
    for seq, tgt in zip(tokens.tolist(), targets.tolist()):
        assert sorted(seq) == list(range(12))  # every letter once in each case
        assert tgt[0][0] == -100 and all(tgt[i][0] == seq[i - 1] for i in range(1, 12))
        for i, t in enumerate(seq):
            if t < 6:
                assert tgt[i][1] == -100
            else:  # a lower-case letter points back at its upper-case twin
                assert tgt[i][1] < i and seq[tgt[i][1]] == t - 6
    again, _ = twin_letters_task(50, 6, generator=torch.Generator().manual_seed(0))
    assert torch.equal(tokens, again)


def test_twin_letters_task_rejects_bad_sizes():
    from selfattention.data import twin_letters_task, twin_letters_vocabulary

    with pytest.raises(ValueError, match=r"batch_size must be a positive int, got 0"):
        twin_letters_task(0)
    with pytest.raises(ValueError, match=r"n_symbols must be an int in \[1, 26\], got 27"):
        twin_letters_task(2, 27)
    with pytest.raises(ValueError, match=r"n_symbols must be an int in \[1, 26\], got 0"):
        twin_letters_vocabulary(0)


def test_integer_mask_with_key_padding_is_a_clear_error():
    mha = MultiHeadAttention(8, 2)
    x = torch.randn(2, 3, 8)
    with pytest.raises(ValueError, match="combine_masks: masks must be bool or floating tensors, got torch.int64"):
        mha(x, mask=torch.ones(3, 3, dtype=torch.long), key_padding_mask=torch.ones(2, 3, dtype=torch.bool))


def test_split_heads_rejects_a_non_positive_head_count():
    with pytest.raises(ValueError, match="split_heads: n_heads must be a positive int, got 0"):
        split_heads(torch.randn(2, 3, 8), 0)

"""Tests of selfattention.blocks (chapter 06): the block by hand, causality, caches, positions, errors."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from selfattention.attention import causal_mask, combine_masks
from selfattention.blocks import BlockConfig, FeedForward, KVCache, SelfAttention, TransformerBlock, TransformerStack
from selfattention.data import lag_copy_task, text_windows
from selfattention.positions import alibi_bias, apply_rope


def _block(**kwargs) -> TransformerBlock:
    torch.manual_seed(0)
    config = dict(d_model=16, n_heads=4)
    config.update(kwargs)
    return TransformerBlock(BlockConfig(**config)).double().eval()


def _attention_by_hand(attn: SelfAttention, x, mask=None, rope=False):
    h, d_h = attn.n_heads, attn.d_head
    B, L, _ = x.shape
    q, k, v = (proj(x).view(B, L, h, d_h).transpose(1, 2) for proj in (attn.q_proj, attn.k_proj, attn.v_proj))
    if rope:
        q, k = apply_rope(q), apply_rope(k)
    scores = q @ k.transpose(-2, -1) / d_h**0.5
    if mask is not None:
        scores = scores + mask
    out = torch.softmax(scores, dim=-1) @ v
    return attn.out_proj(out.transpose(1, 2).reshape(B, L, h * d_h))


@pytest.mark.parametrize("norm", ["pre", "post"])
def test_block_equals_the_formula(norm):
    block = _block(norm=norm, activation="gelu")
    x = torch.randn(2, 7, 16, dtype=torch.float64)
    ffn = lambda t: block.ffn.down(nn.functional.gelu(block.ffn.up(t)))  # noqa: E731
    if norm == "pre":
        h = x + _attention_by_hand(block.attn, block.ln_1(x))
        expected = h + ffn(block.ln_2(h))
    else:
        h = block.ln_1(x + _attention_by_hand(block.attn, x))
        expected = block.ln_2(h + ffn(h))
    torch.testing.assert_close(block(x), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("norm", ["pre", "post"])
@pytest.mark.parametrize("positions", ["none", "rope", "alibi"])
def test_block_keeps_shapes(norm, positions):
    block = _block(norm=norm, positions=positions, causal=True)
    x = torch.randn(3, 9, 16, dtype=torch.float64)
    out, weights = block(x, return_weights=True)
    assert out.shape == x.shape and weights.shape == (3, 4, 9, 9)
    torch.testing.assert_close(weights.sum(-1), torch.ones(3, 4, 9, dtype=torch.float64), rtol=0, atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(norm=st.sampled_from(["pre", "post"]), positions=st.sampled_from(["none", "rope", "alibi"]),
       cut=st.integers(1, 9), seed=st.integers(0, 2**31 - 1))
def test_causal_block_ignores_the_future_exactly(norm, positions, cut, seed):
    block = _block(norm=norm, positions=positions, causal=True)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 10, 16, dtype=torch.float64, generator=gen)
    changed = x.clone()
    changed[:, cut:] = torch.randn(2, 10 - cut, 16, dtype=torch.float64, generator=gen)
    assert torch.equal(block(x)[:, :cut], block(changed)[:, :cut])


def test_bidirectional_block_sees_the_future():
    block = _block(causal=False)
    x = torch.randn(1, 6, 16, dtype=torch.float64)
    changed = x.clone()
    changed[:, -1] = torch.randn(16, dtype=torch.float64)  # not a constant shift: LayerNorm would remove it
    assert (block(x)[:, 0] - block(changed)[:, 0]).abs().max() > 1e-6


def test_rope_block_equals_attention_by_hand():
    block = _block(positions="rope", norm="pre")
    x = torch.randn(2, 8, 16, dtype=torch.float64)
    attn_out, _ = block.attn(x)
    torch.testing.assert_close(attn_out, _attention_by_hand(block.attn, x, rope=True), rtol=0, atol=1e-12)


def test_alibi_block_equals_attention_with_the_bias_as_mask():
    block = _block(positions="alibi", causal=True)
    x = torch.randn(2, 8, 16, dtype=torch.float64)
    bias = alibi_bias(4, 8, dtype=torch.float64).masked_fill(~causal_mask(8), float("-inf"))
    torch.testing.assert_close(block.attn(x)[0], _attention_by_hand(block.attn, x, mask=bias), rtol=0, atol=1e-12)


@pytest.mark.parametrize("positions", ["none", "rope", "alibi"])
def test_kv_cache_gives_the_same_outputs(positions):
    block = _block(positions=positions, causal=True)
    x = torch.randn(2, 11, 16, dtype=torch.float64)
    full = block(x)
    cache = KVCache()
    pieces = [block(x[:, :6], cache=cache)] + [block(x[:, t:t + 1], cache=cache) for t in range(6, 11)]
    assert cache.length == 11
    torch.testing.assert_close(torch.cat(pieces, dim=1), full, rtol=0, atol=1e-12)


def test_additive_mask_is_added_to_the_scores():
    # A large negative bias on one key removes it, exactly like a boolean mask does.
    block = _block()
    x = torch.randn(1, 5, 16, dtype=torch.float64)
    allowed = torch.ones(5, 5, dtype=torch.bool)
    allowed[:, 2] = False
    additive = torch.zeros(4, 5, 5, dtype=torch.float64).masked_fill(~allowed, float("-inf"))
    torch.testing.assert_close(block(x, additive), block(x, allowed), rtol=0, atol=1e-12)
    assert (block(x, allowed) - block(x)).abs().max() > 1e-6


def test_padding_mask_hides_padded_keys():
    block = _block()
    x = torch.randn(1, 6, 16, dtype=torch.float64)
    padded = x.clone()
    padded[:, 4:] = 99.0
    key_ok = torch.tensor([True] * 4 + [False] * 2)[None, None, None, :]  # (B, h, Lq, Lk)
    torch.testing.assert_close(block(padded, key_ok)[:, :4], block(x[:, :4]), rtol=0, atol=1e-12)


def test_cross_attention_block_uses_the_memory():
    block = _block(cross_attention=True, causal=True)
    x = torch.randn(2, 5, 16, dtype=torch.float64)
    memory = torch.randn(2, 7, 16, dtype=torch.float64)
    out = block(x, memory=memory)
    assert out.shape == x.shape
    assert (out - block(x, memory=torch.randn_like(memory))).abs().max() > 1e-6


def test_dropout_is_active_only_in_training():
    block = _block(dropout=0.5)
    x = torch.randn(2, 6, 16, dtype=torch.float64)
    assert torch.equal(block(x), block(x))
    block.train()
    assert not torch.equal(block(x), block(x))


@pytest.mark.parametrize("activation,expected", [
    ("gelu", lambda f, x: f.down(nn.functional.gelu(f.up(x)))),
    ("gelu_tanh", lambda f, x: f.down(nn.functional.gelu(f.up(x), approximate="tanh"))),
    ("relu", lambda f, x: f.down(torch.relu(f.up(x)))),
    ("swiglu", lambda f, x: f.down(nn.functional.silu(f.gate(x)) * f.up(x))),
])
def test_feed_forward_activations(activation, expected):
    ffn = FeedForward(8, 12, activation=activation).double()
    x = torch.randn(3, 8, dtype=torch.float64)
    torch.testing.assert_close(ffn(x), expected(ffn, x), rtol=0, atol=1e-12)


def test_parameter_count_of_a_block():
    d = 32
    block = TransformerBlock(BlockConfig(d_model=d, n_heads=4))
    attention = 4 * (d * d + d)
    ffn = (d * 4 * d + 4 * d) + (4 * d * d + d)
    norms = 2 * 2 * d
    assert sum(p.numel() for p in block.parameters()) == attention + ffn + norms == 12 * d * d + 13 * d


def test_rms_norm_and_no_bias():
    block = TransformerBlock(BlockConfig(d_model=16, n_heads=2, norm_type="rms", bias=False, activation="swiglu"))
    assert isinstance(block.ln_1, nn.RMSNorm)
    assert all(m.bias is None for m in block.modules() if isinstance(m, nn.Linear))


def test_combine_masks():
    allowed = torch.tensor([[True, False], [True, True]])
    bias = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    combined = combine_masks(None, bias, allowed)
    torch.testing.assert_close(combined, torch.tensor([[1.0, float("-inf")], [3.0, 4.0]]))
    assert torch.equal(combine_masks(allowed, ~allowed), torch.zeros(2, 2, dtype=torch.bool))
    torch.testing.assert_close(combine_masks(bias, bias), 2 * bias)
    assert combine_masks(None, None) is None
    with pytest.raises(ValueError, match="masks must be bool or floating tensors, got torch.int64"):
        combine_masks(torch.ones(2, 2, dtype=torch.long))


def test_config_and_input_errors():
    with pytest.raises(ValueError, match="d_model=10 is not divisible by n_heads=4"):
        BlockConfig(d_model=10, n_heads=4)
    with pytest.raises(ValueError, match=r"norm must be one of \('pre', 'post'\), got 'middle'"):
        BlockConfig(d_model=8, n_heads=2, norm="middle")
    with pytest.raises(ValueError, match="positions must be one of .*got 'sinusoidal'"):
        BlockConfig(d_model=8, n_heads=2, positions="sinusoidal")
    with pytest.raises(ValueError, match="dropout must be in \\[0, 1\\), got 1.5"):
        BlockConfig(d_model=8, n_heads=2, dropout=1.5)
    with pytest.raises(ValueError, match="RoPE needs an even head size, got d_model/n_heads = 9/3 = 3"):
        BlockConfig(d_model=9, n_heads=3, positions="rope")
    with pytest.raises(TypeError, match="expects a BlockConfig, got dict"):
        TransformerBlock({"d_model": 8, "n_heads": 2})
    block = TransformerBlock(BlockConfig(d_model=8, n_heads=2))
    with pytest.raises(ValueError, match=r"x must have shape \(B, L, d_model=8\), got \(2, 5, 6\)"):
        block(torch.zeros(2, 5, 6))
    with pytest.raises(ValueError, match="memory must be given exactly when cross_attention=True"):
        block(torch.zeros(1, 3, 8), memory=torch.zeros(1, 2, 8))
    with pytest.raises(ValueError, match=r"does not broadcast to the scores"):
        block(torch.zeros(1, 3, 8), torch.ones(5, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match="activation must be one of .*got 'tanh'"):
        FeedForward(8, activation="tanh")
    with pytest.raises(ValueError, match=r"x must have shape \(\.\.\., 8\), got \(2, 4\)"):
        FeedForward(8)(torch.zeros(2, 4))


# --------------------------------------------------------------------------- TransformerStack and the chapter 05/06 data


@pytest.mark.parametrize("position", ["none", "sinusoidal", "learned", "rope", "alibi"])
def test_stack_shapes_and_causality(position):
    torch.manual_seed(0)
    stack = TransformerStack(11, 2, BlockConfig(d_model=16, n_heads=4, causal=True), position=position,
                             max_len=12, out_size=5).double().eval()
    idx = torch.randint(0, 11, (2, 12))
    changed = idx.clone()
    changed[:, 7:] = (changed[:, 7:] + 1) % 11
    out = stack(idx)
    assert out.shape == (2, 12, 5)
    assert torch.equal(out[:, :7], stack(changed)[:, :7])
    inside = "none" if position in ("none", "sinusoidal", "learned") else position
    assert all(block.config.positions == inside for block in stack.blocks)


def test_stack_positions_make_order_visible():
    torch.manual_seed(0)
    config = BlockConfig(d_model=16, n_heads=4)
    idx = torch.tensor([[1, 2, 3, 4]])
    swapped = torch.tensor([[2, 1, 3, 4]])
    for position in ("none", "sinusoidal", "learned", "rope", "alibi"):
        stack = TransformerStack(6, 1, config, position=position, max_len=4).double().eval()
        same_set = torch.allclose(stack(idx)[0, 2:], stack(swapped)[0, 2:], rtol=0, atol=1e-12)
        assert same_set == (position == "none"), position


def test_stack_post_ln_has_no_final_norm_and_learned_positions_clamp():
    stack = TransformerStack(6, 1, BlockConfig(d_model=8, n_heads=2, norm="post"), position="learned", max_len=4,
                             clamp=True)
    assert isinstance(stack.ln_f, nn.Identity)
    assert stack(torch.zeros(1, 9, dtype=torch.long)).shape == (1, 9, 6)
    strict = TransformerStack(6, 1, BlockConfig(d_model=8, n_heads=2), position="learned", max_len=4)
    with pytest.raises(ValueError, match="go beyond the 4 learned positions"):
        strict(torch.zeros(1, 9, dtype=torch.long))


def test_stack_errors():
    config = BlockConfig(d_model=8, n_heads=2)
    with pytest.raises(ValueError, match="position must be one of .*got 'absolute'"):
        TransformerStack(6, 1, config, position="absolute")
    with pytest.raises(ValueError, match="learned positions need max_len"):
        TransformerStack(6, 1, config, position="learned")
    with pytest.raises(ValueError, match="n_layers must be a positive int, got 0"):
        TransformerStack(6, 0, config, position="rope")
    with pytest.raises(ValueError, match=r"idx must be a \(B, L\) tensor of token ids \(torch.long\), got torch.float32 \(2, 3\)"):
        TransformerStack(6, 1, config, position="rope")(torch.zeros(2, 3))


def test_lag_copy_task_targets():
    tokens, targets = lag_copy_task(4, 10, [1, 3], 5, generator=torch.Generator().manual_seed(0))
    assert tokens.shape == (4, 10) and targets.shape == (4, 10, 2)
    assert tokens.min() >= 0 and tokens.max() < 5
    assert torch.equal(targets[:, 3:, 1], tokens[:, :-3]) and (targets[:, :3, 1] == -100).all()
    assert torch.equal(targets[:, 1:, 0], tokens[:, :-1]) and (targets[:, 0, 0] == -100).all()
    again, _ = lag_copy_task(4, 10, [1, 3], 5, generator=torch.Generator().manual_seed(0))
    assert torch.equal(tokens, again)
    with pytest.raises(ValueError, match=r"lags must be a non-empty list of ints in \[1, length=10\), got \[0, 3\]"):
        lag_copy_task(4, 10, [0, 3])
    with pytest.raises(ValueError, match="batch_size must be a positive int, got 0"):
        lag_copy_task(0, 10, [1])


def test_text_windows_are_shifted_slices():
    ids = torch.arange(100)
    inputs, targets = text_windows(ids, 8, 5, generator=torch.Generator().manual_seed(0))
    assert inputs.shape == targets.shape == (5, 8)
    assert torch.equal(targets, inputs + 1)
    assert torch.equal(inputs[:, 1:], inputs[:, :-1] + 1)
    assert targets.max() < 100
    with pytest.raises(ValueError, match="a window of length 8 needs at least 9 ids, got 5"):
        text_windows(torch.arange(5), 8, 2)
    with pytest.raises(ValueError, match=r"ids must be a 1-D integer tensor, got torch.float32 \(4,\)"):
        text_windows(torch.zeros(4), 2, 2)


def test_feed_forward_rejects_a_non_positive_hidden_size():
    with pytest.raises(ValueError, match="FeedForward: d_ff must be a positive int, got 0"):
        FeedForward(8, 0)

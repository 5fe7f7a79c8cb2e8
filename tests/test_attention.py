"""selfattention.attention: invariants (hypothesis), equality with torch SDPA, and error messages."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from selfattention.attention import causal_mask, padding_mask, scaled_dot_product_attention, softmax

PROPERTY = settings(max_examples=40, deadline=None)


def _qkv(seed: int, lead: tuple[int, ...], lq: int, lk: int, d: int = 8, dv: int = 5, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(*lead, lq, d, generator=g, dtype=dtype)
    k = torch.randn(*lead, lk, d, generator=g, dtype=dtype)
    v = torch.randn(*lead, lk, dv, generator=g, dtype=dtype)
    return q, k, v


sizes = st.tuples(st.integers(0, 2**16), st.integers(1, 3), st.integers(1, 7), st.integers(1, 7))


# ---------------------------------------------------------------- properties


@PROPERTY
@given(sizes)
def test_rows_sum_to_one(case):
    seed, b, lq, lk = case
    _, weights = scaled_dot_product_attention(*_qkv(seed, (b,), lq, lk))
    assert weights.shape == (b, lq, lk)
    torch.testing.assert_close(weights.sum(-1), torch.ones(b, lq, dtype=torch.float64), rtol=0, atol=1e-12)
    assert (weights >= 0).all()


@PROPERTY
@given(sizes)
def test_permuting_tokens_permutes_outputs(case):
    seed, b, lq, lk = case
    q, k, v = _qkv(seed, (b,), lq, lk)
    g = torch.Generator().manual_seed(seed + 1)
    pq, pk = torch.randperm(lq, generator=g), torch.randperm(lk, generator=g)
    out, w = scaled_dot_product_attention(q, k, v)
    # Permuting queries permutes output rows; permuting keys with their values changes nothing.
    out_p, w_p = scaled_dot_product_attention(q[:, pq], k[:, pk], v[:, pk])
    torch.testing.assert_close(out_p, out[:, pq], rtol=0, atol=1e-12)
    torch.testing.assert_close(w_p, w[:, pq][:, :, pk], rtol=0, atol=1e-12)


@PROPERTY
@given(sizes, st.integers(0, 6))
def test_causal_outputs_ignore_later_tokens(case, cut):
    seed, b, length, _ = case
    cut = min(cut, length - 1)
    q, k, v = _qkv(seed, (b,), length, length)
    out, _ = scaled_dot_product_attention(q, k, v, is_causal=True)
    q2, k2, v2 = (t.clone() for t in (q, k, v))
    for t in (q2, k2, v2):  # overwrite every token after position `cut`
        t[:, cut + 1:] = torch.randn_like(t[:, cut + 1:]) * 10
    out2, _ = scaled_dot_product_attention(q2, k2, v2, is_causal=True)
    torch.testing.assert_close(out2[:, : cut + 1], out[:, : cut + 1], rtol=0, atol=1e-12)


@PROPERTY
@given(sizes, st.data())
def test_masked_keys_get_zero_weight(case, data):
    seed, b, lq, lk = case
    allowed = torch.tensor(data.draw(st.lists(st.lists(st.booleans(), min_size=lk, max_size=lk),
                                              min_size=lq, max_size=lq)))
    q, k, v = _qkv(seed, (b,), lq, lk)
    out, w = scaled_dot_product_attention(q, k, v, allowed)
    assert (w[:, ~allowed] == 0).all()
    has_key = allowed.any(-1)
    torch.testing.assert_close(w.sum(-1)[:, has_key], torch.ones(b, int(has_key.sum()), dtype=w.dtype))
    # A query that may attend to nothing gets zero weights and a zero output, not NaN.
    assert (w[:, ~has_key] == 0).all() and (out[:, ~has_key] == 0).all()
    assert not out.isnan().any()


@PROPERTY
@given(st.integers(0, 2**16), st.sampled_from([torch.float32, torch.bfloat16]), st.sampled_from([1e4, -1e4]))
def test_huge_logits_neither_overflow_nor_nan(seed, dtype, sign):
    g = torch.Generator().manual_seed(seed)
    logits = (torch.randn(3, 6, generator=g) * sign).to(dtype)
    w = softmax(logits)
    assert w.dtype == dtype and torch.isfinite(w).all()
    torch.testing.assert_close(w.float().sum(-1), torch.ones(3), rtol=0, atol=1e-2 if dtype == torch.bfloat16 else 1e-6)
    torch.testing.assert_close(w.float(), torch.softmax(logits.float(), -1), rtol=0, atol=1e-2)
    q = torch.randn(2, 5, 4, generator=g).to(dtype) * 100  # scores around +-1e4 after q k^T / 2
    out, weights = scaled_dot_product_attention(q, q, q)
    assert torch.isfinite(out).all() and torch.isfinite(weights).all()


def test_naive_softmax_overflows_where_ours_does_not():
    logits = torch.tensor([[1e4, 0.0, -1e4]], dtype=torch.float32)
    naive = logits.exp() / logits.exp().sum(-1, keepdim=True)
    assert naive.isnan().any()  # inf / inf
    torch.testing.assert_close(softmax(logits), torch.tensor([[1.0, 0.0, 0.0]]))


def test_all_masked_row_is_zero_and_gradients_are_finite():
    q, k, v = (t.requires_grad_() for t in _qkv(0, (2,), 3, 4))
    allowed = torch.tensor([[True, False, True, False], [False] * 4, [True] * 4])
    out, w = scaled_dot_product_attention(q, k, v, allowed)
    assert (out[:, 1] == 0).all() and (w[:, 1] == 0).all()
    out.sum().backward()
    assert all(torch.isfinite(t.grad).all() for t in (q, k, v))


def test_softmax_equals_torch_and_leaves_input_alone():
    x = torch.randn(4, 9, dtype=torch.float64) * 30
    before = x.clone()
    torch.testing.assert_close(softmax(x), torch.softmax(x, -1), rtol=0, atol=1e-15)
    torch.testing.assert_close(softmax(x, dim=0), torch.softmax(x, 0), rtol=0, atol=1e-15)
    assert torch.equal(x, before)


# ---------------------------------------------------------------- equality with torch SDPA (float64, 1e-10)


def _assert_matches_torch(q, k, v, mask=None, is_causal=False, scale=None):
    out, _ = scaled_dot_product_attention(q, k, v, mask, is_causal=is_causal, scale=scale)
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=is_causal, scale=scale)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-10)


@pytest.mark.parametrize("lq,lk", [(5, 5), (3, 7), (7, 3)])
def test_equals_torch_plain_and_scaled(lq, lk):
    q, k, v = _qkv(1, (2, 3), lq, lk)
    _assert_matches_torch(q, k, v)
    _assert_matches_torch(q, k, v, scale=0.3)


@pytest.mark.parametrize("lq,lk", [(6, 6), (4, 6), (6, 4)])
def test_equals_torch_causal(lq, lk):
    _assert_matches_torch(*_qkv(2, (2, 3), lq, lk), is_causal=True)


def test_equals_torch_boolean_and_float_masks():
    q, k, v = _qkv(3, (2, 3), 4, 6)
    allowed = torch.rand(2, 1, 4, 6, generator=torch.Generator().manual_seed(0)) > 0.3
    allowed[..., 0] = True  # torch gives NaN-free rows only with at least one key
    _assert_matches_torch(q, k, v, allowed)
    additive = torch.randn(4, 6, dtype=torch.float64)
    _assert_matches_torch(q, k, v, additive)
    _assert_matches_torch(q, k, v, padding_mask([6, 3])[:, None, None, :])


def test_equals_torch_when_leading_dimensions_broadcast():
    g = torch.Generator().manual_seed(4)
    q = torch.randn(2, 3, 5, 8, generator=g, dtype=torch.float64)
    k = torch.randn(1, 3, 7, 8, generator=g, dtype=torch.float64)
    v = torch.randn(3, 7, 4, generator=g, dtype=torch.float64)
    out, w = scaled_dot_product_attention(q, k, v)
    assert out.shape == (2, 3, 5, 4) and w.shape == (2, 3, 5, 7)
    ref = F.scaled_dot_product_attention(q, k.expand(2, 3, 7, 8), v.expand(2, 3, 7, 4))
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-10)


def test_fully_masked_row_matches_torch_zeros():
    q, k, v = _qkv(5, (1,), 3, 4)
    allowed = torch.ones(3, 4, dtype=torch.bool)
    allowed[1] = False
    out, _ = scaled_dot_product_attention(q, k, v, allowed)
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
    torch.testing.assert_close(out, torch.nan_to_num(ref), rtol=0, atol=1e-10)
    assert (out[:, 1] == 0).all()


def test_gradients_equal_torch():
    q, k, v = (t.requires_grad_() for t in _qkv(6, (2,), 5, 5))
    allowed = padding_mask([5, 3])[:, None, :]
    out, _ = scaled_dot_product_attention(q, k, v, allowed, is_causal=True)
    grads = torch.autograd.grad(out.square().sum(), (q, k, v))
    bias = torch.zeros(2, 5, 5, dtype=torch.float64).masked_fill(~(allowed & causal_mask(5)), float("-inf"))
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
    ref_grads = torch.autograd.grad(ref.square().sum(), (q, k, v))
    for a, b in zip(grads, ref_grads):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10)


def test_gradients_reach_a_learned_float_mask_like_torch():
    q, k, v = _qkv(8, (2, 3), 4, 4)
    bias = torch.randn(3, 4, 4, dtype=torch.float64, requires_grad=True)  # a learned per-head bias (chapter 05)
    out, _ = scaled_dot_product_attention(q, k, v, bias)
    (grad,) = torch.autograd.grad(out.square().sum(), bias)
    (ref,) = torch.autograd.grad(F.scaled_dot_product_attention(q, k, v, attn_mask=bias).square().sum(), bias)
    torch.testing.assert_close(grad, ref, rtol=0, atol=1e-10)


def test_dropout_acts_after_the_returned_weights():
    q, k, v = _qkv(7, (2,), 4, 4)
    torch.manual_seed(0)
    out, w = scaled_dot_product_attention(q, k, v, dropout_p=0.5)
    _, w_clean = scaled_dot_product_attention(q, k, v)
    torch.testing.assert_close(w, w_clean, rtol=0, atol=0)
    assert not torch.allclose(out, w_clean @ v)


# ---------------------------------------------------------------- masks


def test_causal_mask_values_and_offset():
    assert causal_mask(3).tolist() == [[True, False, False], [True, True, False], [True, True, True]]
    assert causal_mask(2, 4, offset=2).tolist() == [[True, True, True, False], [True, True, True, True]]
    assert causal_mask(2, 3).shape == (2, 3)


def test_padding_mask_values():
    assert padding_mask([2, 0, 3]).tolist() == [[True, True, False], [False, False, False], [True, True, True]]
    assert padding_mask(torch.tensor([1]), max_len=3).tolist() == [[True, False, False]]


# ---------------------------------------------------------------- errors, checked by message


@pytest.mark.parametrize("kwargs,match", [
    ({"q": torch.randn(3)}, r"q must have shape \(\.\.\., length, dim\), got shape \(3,\)"),
    ({"k": torch.randn(4, 5)}, r"q and k must have the same last dimension, got q \(3, 8\) and k \(4, 5\)"),
    ({"v": torch.randn(5, 2)}, r"k and v must have the same length.*k \(4, 8\) and v \(5, 2\)"),
    ({"q": torch.randint(0, 3, (3, 8))}, r"q must be floating point, got dtype torch.int64"),
    ({"v": torch.randn(4, 2, dtype=torch.float64)}, r"must share a dtype, got torch.float32, torch.float32, torch.float64"),
    ({"q": torch.randn(2, 3, 8), "k": torch.randn(3, 4, 8), "v": torch.randn(3, 4, 2)},
     r"leading dimensions do not broadcast: q \(2, 3, 8\), k \(3, 4, 8\), v \(3, 4, 2\)"),
    ({"mask": torch.ones(3, 5, dtype=torch.bool)}, r"mask of shape \(3, 5\) does not broadcast to the scores .* \(3, 4\)"),
    ({"mask": torch.ones(3, 4, dtype=torch.int64)}, r"mask must be bool .* or floating .*got dtype torch.int64"),
    ({"dropout_p": 1.0}, r"dropout_p must be in \[0, 1\), got 1.0"),
])
def test_bad_inputs_raise_value_error(kwargs, match):
    args = {"q": torch.randn(3, 8), "k": torch.randn(4, 8), "v": torch.randn(4, 2)} | kwargs
    mask = args.pop("mask", None)
    with pytest.raises(ValueError, match=match):
        scaled_dot_product_attention(args.pop("q"), args.pop("k"), args.pop("v"), mask, **args)


def test_wrong_types_raise_type_error():
    with pytest.raises(TypeError, match=r"q must be a torch.Tensor, got list"):
        scaled_dot_product_attention([[1.0]], torch.randn(1, 1), torch.randn(1, 1))
    with pytest.raises(TypeError, match=r"mask must be a torch.Tensor, got list"):
        scaled_dot_product_attention(torch.randn(1, 1), torch.randn(1, 1), torch.randn(1, 1), [[True]])
    with pytest.raises(TypeError, match=r"softmax expects a torch.Tensor, got list"):
        softmax([1.0, 2.0])


def test_mask_helpers_reject_bad_input():
    with pytest.raises(ValueError, match=r"softmax expects a floating tensor, got dtype torch.int64"):
        softmax(torch.tensor([1, 2]))
    with pytest.raises(ValueError, match=r"q_len must be a non-negative int, got -1"):
        causal_mask(-1)
    with pytest.raises(ValueError, match=r"k_len must be a non-negative int, got 2.5"):
        causal_mask(2, 2.5)
    with pytest.raises(ValueError, match=r"lengths must be a 1-D integer sequence, got shape \(1, 2\)"):
        padding_mask([[1, 2]])
    with pytest.raises(ValueError, match=r"lengths must be non-negative, got \[2, -1\]"):
        padding_mask([2, -1])
    with pytest.raises(ValueError, match=r"max_len=2 is shorter than the longest sequence \(3\)"):
        padding_mask([3], max_len=2)


def test_no_keys_at_all_gives_zeros_like_torch():
    q, k, v = (torch.randn(*shape, dtype=torch.float64) for shape in ((3, 8), (0, 8), (0, 2)))  # no keys
    out, w = scaled_dot_product_attention(q, k, v)
    assert w.shape == (3, 0) and torch.equal(out, torch.zeros(3, 2, dtype=torch.float64))
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v), rtol=0, atol=0)

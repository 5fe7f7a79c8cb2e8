"""flash_attention (chapter 11): exact against torch SDPA, tile sizes, causality, errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from selfattention.efficient import flash_attention


def qkv(lq, lk, d=16, dv=16, lead=(2, 3), dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(*lead, lq, d, generator=g, dtype=dtype), torch.randn(*lead, lk, d, generator=g, dtype=dtype),
            torch.randn(*lead, lk, dv, generator=g, dtype=dtype))


@pytest.mark.parametrize("is_causal", [False, True])
@pytest.mark.parametrize("block_size", [1, 7, 32, 128, 1000])
@pytest.mark.parametrize("lq,lk", [(100, 100), (129, 129), (37, 90), (90, 37), (1, 65)])
def test_equals_torch_sdpa_fp32(is_causal, block_size, lq, lk):
    q, k, v = qkv(lq, lk, d=32, dv=24)
    expected = F.scaled_dot_product_attention(q, k, v, is_causal=is_causal)
    got = flash_attention(q, k, v, is_causal=is_causal, block_size=block_size, query_block_size=2 * block_size)
    assert got.shape == expected.shape
    assert (got - expected).abs().max() <= 2e-6


@given(lq=st.integers(1, 70), lk=st.integers(1, 70), block=st.integers(1, 40), qblock=st.integers(1, 80),
       is_causal=st.booleans())
def test_equals_torch_sdpa_fp64_any_tiles(lq, lk, block, qblock, is_causal):
    q, k, v = qkv(lq, lk, d=8, dv=5, lead=(2,), dtype=torch.float64, seed=lq * 100 + lk)
    expected = F.scaled_dot_product_attention(q, k, v, is_causal=is_causal)
    got = flash_attention(q, k, v, is_causal=is_causal, block_size=block, query_block_size=qblock)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-12)


def test_default_blocks_on_a_longer_sequence_and_broadcast_heads():
    g = torch.Generator().manual_seed(1)
    q = torch.randn(1, 4, 1500, 64, generator=g)
    k, v = torch.randn(1, 1, 1500, 64, generator=g), torch.randn(1, 1, 1500, 64, generator=g)
    for is_causal in (False, True):
        expected = F.scaled_dot_product_attention(q, k.expand_as(q), v.expand_as(q), is_causal=is_causal)
        assert (flash_attention(q, k, v, is_causal=is_causal) - expected).abs().max() <= 2e-6


def test_large_scores_do_not_overflow():
    q, k, v = qkv(40, 40, d=8)
    out = flash_attention(q * 300, k * 300, v, block_size=8)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q * 300, k * 300, v), rtol=0, atol=2e-5)


def test_no_keys_gives_zeros():
    q, k, v = qkv(5, 0)
    assert torch.equal(flash_attention(q, k, v), torch.zeros(2, 3, 5, 16))


@pytest.mark.parametrize("kwargs,match", [
    ({"block_size": 0}, r"block_size must be an int >= 1, got 0"),
    ({"block_size": 2.5}, r"block_size must be an int >= 1, got 2.5"),
    ({"query_block_size": -1}, r"query_block_size must be an int >= 1, got -1"),
])
def test_bad_block_sizes(kwargs, match):
    q, k, v = qkv(4, 4)
    with pytest.raises(ValueError, match=match):
        flash_attention(q, k, v, **kwargs)


def test_bad_shapes_and_types():
    q, k, v = qkv(4, 6)
    with pytest.raises(ValueError, match=r"flash_attention: q and k must have the same last dimension, got q \(2, 3, 4, 16\) and k \(2, 3, 6, 8\)"):
        flash_attention(q, k[..., :8], v)
    with pytest.raises(ValueError, match=r"k and v must have the same length \(dim -2\), got k \(2, 3, 6, 16\) and v \(2, 3, 5, 16\)"):
        flash_attention(q, k, v[..., :5, :])
    with pytest.raises(ValueError, match=r"leading dimensions do not broadcast"):
        flash_attention(q, k[:1, :2], v[:1, :2])
    with pytest.raises(ValueError, match=r"q must have shape \(\.\.\., length, dim\), got shape \(16,\)"):
        flash_attention(q[0, 0, 0], k, v)
    with pytest.raises(ValueError, match=r"q must be floating point, got dtype torch.int64"):
        flash_attention(q.long(), k, v)
    with pytest.raises(ValueError, match=r"q, k, v must share a dtype"):
        flash_attention(q.double(), k, v)
    with pytest.raises(TypeError, match=r"k must be a torch.Tensor, got list"):
        flash_attention(q, [1.0], v)


@pytest.mark.parametrize("is_causal", [False, True])
def test_gradients_equal_torch_sdpa(is_causal):
    q, k, v = (t.requires_grad_() for t in qkv(50, 50, d=8, dv=8, lead=(1, 2), dtype=torch.float64))
    ours = torch.autograd.grad(flash_attention(q, k, v, is_causal=is_causal, block_size=16, query_block_size=8)
                               .pow(2).sum(), (q, k, v))
    reference = torch.autograd.grad(F.scaled_dot_product_attention(q, k, v, is_causal=is_causal).pow(2).sum(), (q, k, v))
    for a, b in zip(ours, reference):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)

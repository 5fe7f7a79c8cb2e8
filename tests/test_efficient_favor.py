"""FAVOR+ (chapter 11): orthogonal features, error falls with r, causal form exact and leak-free."""

from __future__ import annotations

import pytest
import torch

from selfattention.attention import scaled_dot_product_attention
from selfattention.efficient import favor_attention, orthogonal_random_features, positive_random_features


def qkv(length, d=16, lead=(2,), seed=0, scale=0.5):
    g = torch.Generator().manual_seed(seed)
    return tuple(scale * torch.randn(*lead, length, d, generator=g, dtype=torch.float64) for _ in range(3))


def features(r, d=16, seed=0):
    return orthogonal_random_features(r, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_projection_rows_are_orthogonal_within_a_block():
    w = features(40, 16)
    block = w[:16] / w[:16].norm(dim=1, keepdim=True)
    torch.testing.assert_close(block @ block.T, torch.eye(16, dtype=torch.float64), rtol=0, atol=1e-12)
    assert w.shape == (40, 16)


def test_features_are_positive_and_estimate_the_softmax_kernel():
    q, k, _ = qkv(6, d=4, scale=0.3)
    w = features(40000, 4)
    est = positive_random_features(q[0], w) @ positive_random_features(k[0], w).T
    assert (est > 0).all()
    torch.testing.assert_close(est, torch.exp(q[0] @ k[0].T), rtol=0.05, atol=0)


@pytest.mark.parametrize("is_causal", [False, True])
def test_error_falls_as_features_grow(is_causal):
    q, k, v = qkv(128)
    exact, _ = scaled_dot_product_attention(q, k, v, is_causal=is_causal)

    def error(r):
        return sum((favor_attention(q, k, v, features(r, seed=s), is_causal=is_causal) - exact).abs().mean()
                   for s in range(8)) / 8

    errors = [error(r) for r in (4, 32, 256)]
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 0.01


def test_causal_chunks_equal_the_quadratic_masked_form():
    q, k, v = qkv(100)
    w = features(48)
    fq, fk = positive_random_features(q * 16**-0.25, w), positive_random_features(k * 16**-0.25, w)
    a = (fq @ fk.transpose(-2, -1)).tril()
    expected = (a @ v) / a.sum(dim=-1, keepdim=True)
    for chunk in (1, 7, 32, 128):
        got = favor_attention(q, k, v, w, is_causal=True, chunk_size=chunk)
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("chunk", [1, 16, 64])
def test_causal_form_leaks_nothing(chunk):
    q, k, v = qkv(64)
    k2, v2 = k.clone(), v.clone()
    k2[:, 40:] = 8.0 * torch.randn(2, 24, 16, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    v2[:, 40:] += 1.0
    w = features(32)
    a = favor_attention(q, k, v, w, is_causal=True, chunk_size=chunk)
    b = favor_attention(q, k2, v2, w, is_causal=True, chunk_size=chunk)
    assert torch.equal(a[:, :40], b[:, :40])  # exactly 0 difference before position 40
    assert not torch.allclose(a[:, 40:], b[:, 40:])


def test_fp32_does_not_overflow_with_large_inputs():
    q, k, v = (x.float() for x in qkv(64, scale=4.0))
    for is_causal in (False, True):
        assert torch.isfinite(favor_attention(q, k, v, features(64).float(), is_causal=is_causal)).all()


def test_errors():
    q, k, v = qkv(8)
    with pytest.raises(ValueError, match=r"favor_attention: projection must have shape \(r, 16\) to match q \(2, 8, 16\), got \(4, 3\)"):
        favor_attention(q, k, v, torch.ones(4, 3))
    with pytest.raises(ValueError, match=r"orthogonal_random_features: num_features must be an int >= 1, got 0"):
        orthogonal_random_features(0, 4)
    with pytest.raises(ValueError, match=r"favor_attention: q and k must have the same length here"):
        favor_attention(q, k[:, :5], v[:, :5], features(8), is_causal=True)


def test_no_keys_gives_zeros_like_dense_attention():
    q, kv = torch.randn(2, 3, 4), torch.randn(2, 0, 4)
    projection = orthogonal_random_features(16, 4, generator=torch.Generator().manual_seed(0))
    assert torch.equal(favor_attention(q, kv, kv, projection), torch.zeros(2, 3, 4))

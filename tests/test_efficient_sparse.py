"""Sparse patterns and sliding_window_attention (chapter 11): equal to dense attention with the band mask."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from selfattention.attention import scaled_dot_product_attention
from selfattention.efficient import bigbird_mask, fixed_mask, sliding_window_attention, sliding_window_mask, strided_mask


def qkv(length, d=8, dv=5, lead=(2, 3), dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(*lead, length, n, generator=g, dtype=dtype) for n in (d, d, dv))


@given(length=st.integers(1, 120), window=st.integers(0, 130), is_causal=st.booleans())
def test_sliding_window_equals_dense_with_band_mask(length, window, is_causal):
    q, k, v = qkv(length, seed=length + window)
    expected, _ = scaled_dot_product_attention(q, k, v, sliding_window_mask(length, window, is_causal=is_causal))
    got = sliding_window_attention(q, k, v, window, is_causal=is_causal)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-12)


def test_sliding_window_fp32_long_and_broadcast_leading_dims():
    g = torch.Generator().manual_seed(0)
    q = torch.randn(2, 4, 700, 32, generator=g)
    k, v = torch.randn(1, 4, 700, 32, generator=g), torch.randn(4, 700, 16, generator=g)
    for is_causal in (False, True):
        expected, _ = scaled_dot_product_attention(q, k, v, sliding_window_mask(700, 100, is_causal=is_causal))
        got = sliding_window_attention(q, k, v, 100, is_causal=is_causal)
        assert got.shape == (2, 4, 700, 16)
        assert (got - expected).abs().max() <= 2e-6


def test_band_masks_by_hand():
    assert sliding_window_mask(4, 1).int().tolist() == [[1, 1, 0, 0], [1, 1, 1, 0], [0, 1, 1, 1], [0, 0, 1, 1]]
    assert sliding_window_mask(4, 1, is_causal=True).int().tolist() == [[1, 0, 0, 0], [1, 1, 0, 0], [0, 1, 1, 0],
                                                                        [0, 0, 1, 1]]
    # window 0: each position sees itself only, so the output is its own value
    q, k, v = qkv(9)
    torch.testing.assert_close(sliding_window_attention(q, k, v, 0), v, rtol=0, atol=1e-15)


def test_strided_and_fixed_patterns():
    s = strided_mask(8, 3)
    assert s.int()[7].tolist() == [0, 1, 0, 0, 1, 1, 1, 1]  # 7-1=6 and 7-4=3 are multiples of 3; 5, 6, 7 are local
    assert not s.triu(1).any()
    f = fixed_mask(8, 4, 1)
    assert f.int()[6].tolist() == [0, 0, 0, 1, 1, 1, 1, 0]  # summary cell 3, then its own block 4..6
    assert torch.equal(fixed_mask(8, 4, 4), torch.ones(8, 8, dtype=torch.bool).tril())


def test_bigbird_mask_has_window_globals_and_random_keys():
    m = bigbird_mask(64, 2, 2, 3, generator=torch.Generator().manual_seed(0))
    assert m[:2].all() and m[:, :2].all()
    assert (m & sliding_window_mask(64, 2)).sum() == sliding_window_mask(64, 2).sum()
    extra = m & ~sliding_window_mask(64, 2)
    extra[:, :2] = False
    assert (extra[2:].sum(dim=1) <= 3).all() and extra[2:].sum() > 64  # random keys beyond the window
    again = bigbird_mask(64, 2, 2, 3, generator=torch.Generator().manual_seed(0))
    assert torch.equal(m, again)


def test_errors():
    q, k, v = qkv(6)
    with pytest.raises(ValueError, match=r"sliding_window_attention: window must be an int >= 0, got -1"):
        sliding_window_attention(q, k, v, -1)
    with pytest.raises(ValueError, match=r"sliding_window_attention: q and k must have the same length here, got q \(2, 3, 6, 8\) and k \(2, 3, 5, 8\)"):
        sliding_window_attention(q, k[..., :5, :], v[..., :5, :], 2)
    with pytest.raises(ValueError, match=r"strided_mask: stride must be an int >= 1, got 0"):
        strided_mask(8, 0)
    with pytest.raises(ValueError, match=r"fixed_mask: summary must be at most stride, got summary=5 and stride=4"):
        fixed_mask(8, 4, 5)
    with pytest.raises(ValueError, match=r"bigbird_mask: n_random must be at most length, got n_random=9 and length=8"):
        bigbird_mask(8, 1, 1, 9)


@pytest.mark.parametrize("length,window", [(2100, 0), (2100, 7), (3000, 100), (2500, 600)])
@pytest.mark.parametrize("is_causal", [False, True])
def test_sliding_window_across_query_groups(length, window, is_causal):
    q, k, v = qkv(length, d=4, dv=3, lead=(1,), seed=window)
    expected, _ = scaled_dot_product_attention(q, k, v, sliding_window_mask(length, window, is_causal=is_causal))
    got = sliding_window_attention(q, k, v, window, is_causal=is_causal)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-12)


def test_window_wider_than_the_sequence_equals_full_attention():
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, 2, 10, 4, generator=g, dtype=torch.float64) for _ in range(3))
    dense, _ = scaled_dot_product_attention(q, k, v)
    torch.testing.assert_close(sliding_window_attention(q, k, v, 4000), dense, rtol=0, atol=1e-12)

"""linear_attention and its RNN form (chapter 11): chunked causal = quadratic masked = RNN, errors."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from selfattention.efficient import LinearAttentionState, elu_feature_map, linear_attention


def qkv(lq, lk, d=8, dv=6, lead=(2, 3), seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(*lead, lq, d, generator=g, dtype=torch.float64),
            torch.randn(*lead, lk, d, generator=g, dtype=torch.float64),
            torch.randn(*lead, lk, dv, generator=g, dtype=torch.float64))


def quadratic(q, k, v, causal):
    """The masked quadratic form: weights phi(q_i).phi(k_j), normalised per row."""
    a = elu_feature_map(q) @ elu_feature_map(k).transpose(-2, -1)
    if causal:
        a = a.tril()
    return (a @ v) / a.sum(dim=-1, keepdim=True)


def test_feature_map_is_elu_plus_one_and_positive():
    x = torch.linspace(-30, 5, 101, dtype=torch.float64)
    torch.testing.assert_close(elu_feature_map(x), torch.where(x > 0, x + 1, torch.exp(x)), rtol=0, atol=1e-15)
    assert (elu_feature_map(x) > 0).all()


def test_non_causal_equals_quadratic_form_with_lq_not_lk():
    q, k, v = qkv(17, 29)
    torch.testing.assert_close(linear_attention(q, k, v), quadratic(q, k, v, False), rtol=0, atol=1e-12)


@given(length=st.integers(1, 80), chunk=st.integers(1, 50))
def test_causal_chunks_equal_quadratic_form(length, chunk):
    q, k, v = qkv(length, length, seed=length)
    got = linear_attention(q, k, v, is_causal=True, chunk_size=chunk)
    torch.testing.assert_close(got, quadratic(q, k, v, True), rtol=0, atol=1e-12)


def test_rnn_equals_chunked_and_quadratic():
    q, k, v = qkv(45, 45)
    state = LinearAttentionState()
    steps = torch.stack([state.step(q[..., t, :], k[..., t, :], v[..., t, :]) for t in range(45)], dim=-2)
    chunked = linear_attention(q, k, v, is_causal=True, chunk_size=16)
    torch.testing.assert_close(steps, chunked, rtol=0, atol=1e-12)
    torch.testing.assert_close(steps, quadratic(q, k, v, True), rtol=0, atol=1e-12)
    assert state.steps == 45 and state.kv.shape == (2, 3, 8, 6) and state.z.shape == (2, 3, 8)


def test_causal_output_does_not_see_the_future():
    q, k, v = qkv(40, 40)
    k2, v2 = k.clone(), v.clone()
    k2[..., 25:, :] += 3.0
    v2[..., 25:, :] -= 2.0
    a = linear_attention(q, k, v, is_causal=True, chunk_size=8)
    b = linear_attention(q, k2, v2, is_causal=True, chunk_size=8)
    torch.testing.assert_close(a[..., :25, :], b[..., :25, :], rtol=0, atol=1e-14)
    assert not torch.allclose(a[..., 25:, :], b[..., 25:, :])


def test_fp32_close_to_fp64():
    q, k, v = qkv(300, 300)
    got = linear_attention(q.float(), k.float(), v.float(), is_causal=True)
    torch.testing.assert_close(got.double(), quadratic(q, k, v, True), rtol=0, atol=1e-5)


def test_errors():
    q, k, v = qkv(5, 7)
    with pytest.raises(ValueError, match=r"linear_attention: q and k must have the same length here, got q \(2, 3, 5, 8\) and k \(2, 3, 7, 8\)"):
        linear_attention(q, k, v, is_causal=True)
    with pytest.raises(ValueError, match=r"linear_attention: chunk_size must be an int >= 1, got 0"):
        linear_attention(q, k, v, chunk_size=0)
    with pytest.raises(ValueError, match=r"linear_attention: q and k must have the same last dimension"):
        linear_attention(q, k[..., :3], v)
    state = LinearAttentionState()
    state.step(q[..., 0, :], k[..., 0, :], v[..., 0, :])
    with pytest.raises(ValueError, match=r"LinearAttentionState.step: the state holds \(\.\.\., d, dv\) = \(2, 3, 8, 6\), got k \(2, 3, 8\) and v \(2, 3, 2\)"):
        state.step(q[..., 1, :], k[..., 1, :], v[..., 1, :2])


def test_rnn_state_rejects_a_step_with_another_batch():
    state = LinearAttentionState()
    x = torch.randn(2, 3, 4)
    state.step(x[:, 0], x[:, 0], x[:, 0])
    with pytest.raises(ValueError, match=r"LinearAttentionState.step: the state holds \(\.\.\., d, dv\) = \(2, 4, 4\)"):
        state.step(x[:1, 1], x[:1, 1], x[:1, 1])


def test_no_keys_gives_zeros_like_dense_attention():
    q, kv = torch.randn(2, 3, 4), torch.randn(2, 0, 4)
    assert torch.equal(linear_attention(q, kv, kv), torch.zeros(2, 3, 4))

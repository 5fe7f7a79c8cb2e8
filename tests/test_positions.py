"""Tests of selfattention.positions (chapter 05): formulas, Hugging Face references, invariants, errors."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from selfattention.attention import causal_mask, scaled_dot_product_attention
from selfattention.multihead import MultiHeadAttention
from selfattention.positions import (
    LearnedPositions,
    SinusoidalPositions,
    alibi_bias,
    alibi_slopes,
    apply_rope,
    rope_cos_sin,
    rope_frequencies,
    rope_permutation,
    rotate_half,
    sinusoidal_encoding,
)

# --------------------------------------------------------------------------- sinusoidal


def test_sinusoidal_matches_the_formula_fp64():
    length, d_model, offset = 50, 16, 7
    encoding = sinusoidal_encoding(length, d_model, offset=offset, dtype=torch.float64)
    assert encoding.shape == (length, d_model) and encoding.dtype == torch.float64
    for p in range(length):
        for i in range(d_model // 2):
            angle = (p + offset) / 10000 ** (2 * i / d_model)
            assert abs(encoding[p, 2 * i].item() - math.sin(angle)) < 1e-10
            assert abs(encoding[p, 2 * i + 1].item() - math.cos(angle)) < 1e-10


def test_sinusoidal_offset_is_a_slice_of_the_longer_table():
    full = sinusoidal_encoding(40, 8, dtype=torch.float64)
    torch.testing.assert_close(sinusoidal_encoding(10, 8, offset=30, dtype=torch.float64), full[30:], rtol=0, atol=1e-12)


def test_sinusoidal_module_adds_the_encoding():
    x = torch.randn(2, 5, 8)
    out = SinusoidalPositions(8)(x, offset=3)
    torch.testing.assert_close(out - x, sinusoidal_encoding(5, 8, offset=3).expand(2, -1, -1), rtol=0, atol=1e-6)


def test_sinusoidal_errors():
    with pytest.raises(ValueError, match="d_model must be even.*got 7"):
        sinusoidal_encoding(4, 7)
    with pytest.raises(ValueError, match="length must be an int >= 0, got -1"):
        sinusoidal_encoding(-1, 8)
    with pytest.raises(ValueError, match=r"x must have shape \(\.\.\., L, 8\), got \(2, 3, 6\)"):
        SinusoidalPositions(8)(torch.zeros(2, 3, 6))


# --------------------------------------------------------------------------- learned


def test_learned_positions_add_rows_from_offset():
    pos = LearnedPositions(10, 4)
    x = torch.zeros(1, 3, 4)
    torch.testing.assert_close(pos(x, offset=2)[0], pos.weight[2:5].detach(), rtol=0, atol=0)


def test_learned_positions_refuse_or_clamp_beyond_max_len():
    pos = LearnedPositions(4, 2)
    with pytest.raises(ValueError, match=r"positions 0\.\.5 go beyond the 4 learned positions.*\(1, 6, 2\)"):
        pos(torch.zeros(1, 6, 2))
    clamped = LearnedPositions(4, 2, clamp=True)
    clamped.weight.data = torch.arange(8.0).reshape(4, 2)
    out = clamped(torch.zeros(6, 2))
    torch.testing.assert_close(out[3:], clamped.weight.data[3].expand(3, 2), rtol=0, atol=0)


def test_learned_positions_errors():
    with pytest.raises(ValueError, match="max_len must be an int >= 1, got 0"):
        LearnedPositions(0, 4)
    with pytest.raises(ValueError, match=r"x must have shape \(\.\.\., L, 4\), got \(3, 5\)"):
        LearnedPositions(8, 4)(torch.zeros(3, 5))


# --------------------------------------------------------------------------- RoPE


def _hf_llama_rope(q, k, offset, d_head, base=10000.0):
    from transformers import LlamaConfig
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding, apply_rotary_pos_emb

    n_heads = q.shape[1]
    config = LlamaConfig(hidden_size=d_head * n_heads, num_attention_heads=n_heads, num_key_value_heads=n_heads,
                         num_hidden_layers=1, intermediate_size=8, vocab_size=8, max_position_embeddings=256,
                         rope_parameters={"rope_type": "default", "rope_theta": base})
    rotary = LlamaRotaryEmbedding(config)
    position_ids = torch.arange(offset, offset + q.shape[-2])[None].expand(q.shape[0], -1)
    cos, sin = rotary(q, position_ids)
    return apply_rotary_pos_emb(q, k, cos, sin)


@pytest.mark.parametrize("d_head,offset,base", [(16, 0, 10000.0), (8, 13, 10000.0), (32, 100, 500000.0)])
def test_rope_equals_hugging_face_llama(d_head, offset, base):
    gen = torch.Generator().manual_seed(0)
    q = torch.randn(2, 3, 11, d_head, generator=gen)
    k = torch.randn(2, 3, 11, d_head, generator=gen)
    q_hf, k_hf = _hf_llama_rope(q, k, offset, d_head, base)
    torch.testing.assert_close(apply_rope(q, offset, base=base), q_hf, rtol=0, atol=1e-5)
    torch.testing.assert_close(apply_rope(k, offset, base=base), k_hf, rtol=0, atol=1e-5)


def test_rope_frequencies_and_cos_sin_layouts():
    theta = rope_frequencies(8)
    torch.testing.assert_close(theta, torch.tensor([1.0, 0.1, 0.01, 0.001]), rtol=1e-6, atol=0)
    cos, sin = rope_cos_sin(3, 8, offset=2, dtype=torch.float64)
    angle = torch.tensor([2.0, 3.0, 4.0], dtype=torch.float64)[:, None] * rope_frequencies(8, dtype=torch.float64)
    torch.testing.assert_close(cos, torch.cat((angle, angle), -1).cos(), rtol=0, atol=1e-12)
    cos_i, sin_i = rope_cos_sin(3, 8, offset=2, interleaved=True, dtype=torch.float64)
    torch.testing.assert_close(sin_i, angle.repeat_interleave(2, -1).sin(), rtol=0, atol=1e-12)


def test_rope_by_hand_on_one_pair():
    # With d_h = 2 there is one frequency (theta_0 = 1): R_m is the 2-D rotation by m radians.
    x = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 2.0]], dtype=torch.float64)
    out = apply_rope(x)
    expected = torch.tensor([[1.0, 0.0], [math.cos(1), math.sin(1)], [-2 * math.sin(2), 2 * math.cos(2)]],
                            dtype=torch.float64)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-12)


def test_rotate_half_is_a_quarter_turn():
    x = torch.arange(6.0)
    torch.testing.assert_close(rotate_half(x), torch.tensor([-3.0, -4.0, -5.0, 0.0, 1.0, 2.0]), rtol=0, atol=0)


def test_rope_keeps_norms():
    x = torch.randn(2, 4, 9, 16, dtype=torch.float64)
    torch.testing.assert_close(apply_rope(x, 5).norm(dim=-1), x.norm(dim=-1), rtol=0, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(m=st.integers(0, 2000), n=st.integers(0, 2000), shift=st.integers(0, 2000),
       seed=st.integers(0, 2**31 - 1), interleaved=st.booleans())
def test_rope_score_depends_only_on_the_distance(m, n, shift, seed, interleaved):
    gen = torch.Generator().manual_seed(seed)
    q, k = torch.randn(2, 16, dtype=torch.float64, generator=gen)

    def score(pos_q: int, pos_k: int) -> float:
        rq = apply_rope(q[None], pos_q, interleaved=interleaved)[0]
        rk = apply_rope(k[None], pos_k, interleaved=interleaved)[0]
        return float(rq @ rk)

    assert abs(score(m, n) - score(m + shift, n + shift)) < 1e-9
    # and equals q R_{n-m} k, written with the key alone rotated by n - m (or the query by m - n)
    relative = score(0, n - m) if n >= m else score(m - n, 0)
    assert abs(score(m, n) - relative) < 1e-9


def test_interleaved_and_rotate_half_agree_after_the_permutation():
    perm = rope_permutation(8)
    assert perm.tolist() == [0, 2, 4, 6, 1, 3, 5, 7]
    x = torch.randn(2, 3, 10, 8, dtype=torch.float64)
    torch.testing.assert_close(apply_rope(x, 4, interleaved=True)[..., perm], apply_rope(x[..., perm], 4),
                               rtol=0, atol=1e-12)
    # Scores agree without permuting back: a dot product ignores the order of dimensions.
    q, k = torch.randn(2, 10, 8, dtype=torch.float64)
    scores_interleaved = apply_rope(q, interleaved=True) @ apply_rope(k, interleaved=True).T
    scores_half = apply_rope(q[..., perm]) @ apply_rope(k[..., perm]).T
    torch.testing.assert_close(scores_interleaved, scores_half, rtol=0, atol=1e-12)


def test_rope_offset_equals_slicing_a_longer_sequence():
    x = torch.randn(1, 2, 12, 8)
    torch.testing.assert_close(apply_rope(x, 0)[..., 7:, :], apply_rope(x[..., 7:, :], 7), rtol=0, atol=1e-6)


def test_rope_errors():
    with pytest.raises(ValueError, match=r"head size d_h must be even.*\(2, 5\)"):
        apply_rope(torch.zeros(2, 5))
    with pytest.raises(ValueError, match=r"floating tensor of shape \(\.\.\., L, d_h\), got shape \(4, 2\) and dtype torch.int64"):
        apply_rope(torch.zeros(4, 2, dtype=torch.long))
    with pytest.raises(TypeError, match="x must be a torch.Tensor, got list"):
        apply_rope([[1.0, 2.0]])
    with pytest.raises(ValueError, match="offset must be an int >= 0, got -3"):
        apply_rope(torch.zeros(2, 4), -3)
    with pytest.raises(ValueError, match="d_head must be even"):
        rope_permutation(5)


# --------------------------------------------------------------------------- ALiBi


@pytest.mark.parametrize("n_heads", [1, 2, 3, 4, 5, 6, 8, 12, 16, 24, 32])
def test_alibi_slopes_equal_hugging_face_bloom(n_heads):
    from transformers.models.bloom.modeling_bloom import build_alibi_tensor

    length = 9
    hf = build_alibi_tensor(torch.ones(1, length), n_heads, torch.float32)  # (h, 1, L): slope * key position
    torch.testing.assert_close(alibi_slopes(n_heads), hf[:, 0, 1], rtol=1e-6, atol=0)
    # BLOOM adds slope * j; ours adds -slope * (i - j).  On the causal part they differ by a constant per row,
    # which the softmax removes.
    q, k, v = torch.randn(3, 2, n_heads, length, 4).unbind(0)
    allowed = causal_mask(length)
    ours, _ = scaled_dot_product_attention(q, k, v, alibi_bias(n_heads, length).masked_fill(~allowed, float("-inf")))
    bloom_bias = hf.expand(n_heads, length, length).masked_fill(~allowed, float("-inf"))
    theirs, _ = scaled_dot_product_attention(q, k, v, bloom_bias)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-5)


def test_alibi_slopes_of_the_paper():
    torch.testing.assert_close(alibi_slopes(8), torch.tensor([2.0**-k for k in range(1, 9)]), rtol=0, atol=0)
    # 6 heads: the 4 slopes of n=4 (2^-2, 2^-4, 2^-6, 2^-8), then 2^-1 and 2^-3 from n=8
    expected = torch.tensor([2.0**-2, 2.0**-4, 2.0**-6, 2.0**-8, 2.0**-1, 2.0**-3])
    torch.testing.assert_close(alibi_slopes(6), expected, rtol=0, atol=0)


def test_alibi_bias_values_and_cache_offset():
    bias = alibi_bias(2, 4)
    assert bias.shape == (2, 4, 4)
    expected0 = -(2.0**-4) * (torch.arange(4)[:, None] - torch.arange(4)[None, :]).abs()
    torch.testing.assert_close(bias[0], expected0.float(), rtol=0, atol=0)
    # one new query after 5 cached keys sits at position 5
    torch.testing.assert_close(alibi_bias(2, 1, 6), alibi_bias(2, 6)[:, 5:], rtol=0, atol=0)


def test_alibi_errors():
    with pytest.raises(ValueError, match="n_heads must be an int >= 1, got 0"):
        alibi_slopes(0)
    with pytest.raises(ValueError, match="q_len must be an int >= 0, got 2.5"):
        alibi_bias(4, 2.5)


# --------------------------------------------------------------------------- why positions are needed


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), length=st.integers(2, 12))
def test_attention_without_positions_is_permutation_equivariant(seed, length):
    torch.manual_seed(seed)
    mha = MultiHeadAttention(16, 4).double()
    x = torch.randn(2, length, 16, dtype=torch.float64)
    perm = torch.randperm(length)
    out, _ = mha(x)
    out_perm, _ = mha(x[:, perm])
    torch.testing.assert_close(out_perm, out[:, perm], rtol=0, atol=1e-12)


def test_positions_break_the_permutation_equivariance():
    torch.manual_seed(0)
    mha = MultiHeadAttention(16, 4).double()
    pos = SinusoidalPositions(16)
    x = torch.randn(1, 6, 16, dtype=torch.float64)
    perm = torch.tensor([1, 0, 2, 3, 4, 5])
    out, _ = mha(pos(x))
    out_perm, _ = mha(pos(x[:, perm]))
    assert (out_perm - out[:, perm]).abs().max() > 1e-3

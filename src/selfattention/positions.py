"""Where is each word?  Four ways to tell attention about positions.

Derived in chapter 05, "Where is each word?" (``notebooks/05_positions.ipynb``).

Attention alone is blind to order: permute the tokens and its outputs permute
with them.  Two families fix that:

- *absolute* encodings are added to the token embeddings before the first
  block: :func:`sinusoidal_encoding` / :class:`SinusoidalPositions` (fixed) and
  :class:`LearnedPositions` (one trained vector per position, GPT-2, BERT);
- *relative* schemes act inside attention on every layer: RoPE rotates the
  queries and keys (:func:`apply_rope`, Llama), ALiBi adds a bias that grows
  with distance to the scores (:func:`alibi_bias`, BLOOM).

Shapes follow the package: heads lead, ``(B, h, L, d_h)`` for per-head
queries and keys, ``(h, Lq, Lk)`` for biases added to the scores.  ``offset``
is the position of the first row, so that a model with a KV cache can encode
only its new tokens.
"""

from __future__ import annotations

import math
import numbers

import torch
from torch import nn

from .checks import check_int

__all__ = [
    "sinusoidal_encoding",
    "SinusoidalPositions",
    "LearnedPositions",
    "rope_frequencies",
    "rope_cos_sin",
    "rotate_half",
    "apply_rope",
    "rope_permutation",
    "alibi_slopes",
    "alibi_bias",
]


# --------------------------------------------------------------------------- absolute


def sinusoidal_encoding(
    length: int,
    d_model: int,
    *,
    offset: int = 0,
    base: float = 10000.0,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    r"""The fixed encodings of the original transformer, ``(length, d_model)``.

    Row ``p`` (position ``p + offset``) holds, for ``i = 0 .. d_model/2 - 1``,
    ``P[p, 2i] = sin(p / base^(2i/d_model))`` and ``P[p, 2i+1] = cos(p / base^(2i/d_model))``:
    sine and cosine pairs whose wavelengths grow geometrically from ``2 pi`` to
    ``2 pi * base``.  Computed in float64 and cast to ``dtype``.

    Chapter 05, "Sinusoidal encodings".
    """
    check_int("sinusoidal_encoding", "length", length, minimum=0)
    check_int("sinusoidal_encoding", "offset", offset, minimum=0)
    check_int("sinusoidal_encoding", "d_model", d_model, minimum=2)
    if d_model % 2:
        raise ValueError(f"sinusoidal_encoding: d_model must be even (sine/cosine pairs), got {d_model}")
    position = torch.arange(offset, offset + length, dtype=torch.float64, device=device)[:, None]  # (L, 1)
    two_i = torch.arange(0, d_model, 2, dtype=torch.float64, device=device)  # (d_model/2,)
    angle = position / base ** (two_i / d_model)  # (L, d_model/2)
    encoding = torch.empty(length, d_model, dtype=torch.float64, device=device)
    encoding[:, 0::2] = torch.sin(angle)
    encoding[:, 1::2] = torch.cos(angle)
    return encoding.to(dtype)


class SinusoidalPositions(nn.Module):
    """Adds :func:`sinusoidal_encoding` to ``x (..., L, d_model)``; nothing to train, any length.

    ``forward(x, offset=0)``: ``offset`` is the position of ``x``'s first row
    (the number of tokens already in a KV cache).

    Chapter 05, "Sinusoidal encodings".
    """

    def __init__(self, d_model: int, base: float = 10000.0):
        super().__init__()
        check_int("SinusoidalPositions", "d_model", d_model, minimum=2)
        if d_model % 2:
            raise ValueError(f"SinusoidalPositions: d_model must be even, got {d_model}")
        self.d_model, self.base = d_model, base

    def forward(self, x: torch.Tensor, offset: int = 0) -> torch.Tensor:
        if x.ndim < 2 or x.shape[-1] != self.d_model:
            raise ValueError(f"SinusoidalPositions: x must have shape (..., L, {self.d_model}), got {tuple(x.shape)}")
        return x + sinusoidal_encoding(x.shape[-2], self.d_model, offset=offset, base=self.base,
                                       dtype=x.dtype, device=x.device)


class LearnedPositions(nn.Module):
    """One trained vector per position, added to ``x (..., L, d_model)`` (GPT-2, BERT).

    A table of ``max_len`` rows cannot say anything about position ``max_len``
    or later: by default such input raises ValueError.  ``clamp=True`` gives
    every later position the last row instead, which is how chapter 05
    evaluates learned positions beyond their training length (and shows that
    it fails).

    Chapter 05, "Learned positions".
    """

    def __init__(self, max_len: int, d_model: int, *, clamp: bool = False, init_std: float = 0.02):
        super().__init__()
        check_int("LearnedPositions", "max_len", max_len, minimum=1)
        check_int("LearnedPositions", "d_model", d_model, minimum=1)
        self.max_len, self.d_model, self.clamp = max_len, d_model, clamp
        self.weight = nn.Parameter(torch.randn(max_len, d_model) * init_std)  # (max_len, d_model)

    def forward(self, x: torch.Tensor, offset: int = 0) -> torch.Tensor:
        if x.ndim < 2 or x.shape[-1] != self.d_model:
            raise ValueError(f"LearnedPositions: x must have shape (..., L, {self.d_model}), got {tuple(x.shape)}")
        check_int("LearnedPositions", "offset", offset, minimum=0)
        end = offset + x.shape[-2]
        if end > self.max_len and not self.clamp:
            raise ValueError(f"LearnedPositions: positions {offset}..{end - 1} go beyond the {self.max_len} learned "
                             f"positions (x has shape {tuple(x.shape)}, offset={offset}); pass clamp=True to reuse "
                             f"the last one")
        index = torch.arange(offset, end, device=x.device).clamp(max=self.max_len - 1)
        return x + self.weight[index].to(x.dtype)


# --------------------------------------------------------------------------- RoPE


def rope_frequencies(d_head: int, base: float = 10000.0, *, dtype: torch.dtype = torch.float32,
                     device: torch.device | str | None = None) -> torch.Tensor:
    r"""The rotation frequencies ``theta_i = base^(-2i/d_head)``, ``i = 0 .. d_head/2 - 1``, ``(d_head/2,)``.

    In float32 they are computed exactly as Hugging Face's Llama does, so that
    the angles agree bit for bit; pass ``dtype=torch.float64`` for more digits.

    Chapter 05, "Rotary embeddings (RoPE)".
    """
    check_int("rope_frequencies", "d_head", d_head, minimum=2)
    if d_head % 2:
        raise ValueError(f"rope_frequencies: d_head must be even (dimensions rotate in pairs), got {d_head}")
    return 1.0 / (base ** (torch.arange(0, d_head, 2, dtype=dtype, device=device) / d_head))


def rope_cos_sin(
    length: int,
    d_head: int,
    *,
    offset: int = 0,
    base: float = 10000.0,
    interleaved: bool = False,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cosines and sines of the angles ``m * theta_i`` for positions ``m = offset .. offset+length-1``.

    Each is ``(length, d_head)``, laid out for the convention: rotate-half
    (default) repeats the ``d_head/2`` angles as ``[a_0 .. a_{d/2-1}, a_0 .. a_{d/2-1}]``;
    interleaved repeats each angle twice in place, ``[a_0, a_0, a_1, a_1, ...]``.
    Angles are computed in float32 (in float64 when ``dtype`` is float64), then cast.

    Chapter 05, "Rotary embeddings (RoPE)".
    """
    check_int("rope_cos_sin", "length", length, minimum=0)
    check_int("rope_cos_sin", "offset", offset, minimum=0)
    work = torch.float64 if dtype == torch.float64 else torch.float32
    theta = rope_frequencies(d_head, base, dtype=work, device=device)  # (d_head/2,)
    position = torch.arange(offset, offset + length, device=device).to(work)  # (L,)
    angle = position[:, None] * theta[None, :]  # (L, d_head/2)
    angle = angle.repeat_interleave(2, dim=-1) if interleaved else torch.cat((angle, angle), dim=-1)
    return angle.cos().to(dtype), angle.sin().to(dtype)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """``[x1, x2] -> [-x2, x1]`` on the last dimension split in halves: a quarter turn of every pair ``(x_i, x_{i+d/2})``.

    Chapter 05, "Rotary embeddings (RoPE)".
    """
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def _rotate_pairs(x: torch.Tensor) -> torch.Tensor:
    # The interleaved twin of rotate_half: (x_0, x_1) -> (-x_1, x_0) for each adjacent pair.
    pairs = x.unflatten(-1, (-1, 2))  # (..., d/2, 2)
    return torch.stack((-pairs[..., 1], pairs[..., 0]), dim=-1).flatten(-2)


def apply_rope(x: torch.Tensor, offset: int = 0, *, base: float = 10000.0, interleaved: bool = False) -> torch.Tensor:
    r"""Rotate queries or keys ``x (..., L, d_h)`` by their positions ``offset .. offset+L-1``.

    Row ``m`` becomes ``R_m x_m``: each pair of dimensions turns by the angle
    ``m * theta_i``.  Because rotations compose, the score of a rotated query
    at ``m`` and a rotated key at ``n`` is ``q R_{n-m} k^T``: it depends on the
    positions only through ``m - n``.

    Two conventions pair the dimensions differently:

    - rotate-half (default; Hugging Face's Llama, GPT-NeoX): dimension ``i``
      pairs with ``i + d_h/2``;
    - interleaved (``interleaved=True``; the RoFormer paper, GPT-J, Meta's
      original Llama code): dimension ``2i`` pairs with ``2i + 1``.

    They give the same scores once the head dimensions are permuted, see
    :func:`rope_permutation`.  Typical use is ``(B, h, L, d_h)`` tensors;
    with a KV cache pass ``offset`` = number of cached tokens.

    Chapter 05, "Rotary embeddings (RoPE)"; equal to Hugging Face's
    ``LlamaRotaryEmbedding`` + ``apply_rotary_pos_emb``.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"apply_rope: x must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim < 2 or not x.is_floating_point():
        raise ValueError(f"apply_rope: x must be a floating tensor of shape (..., L, d_h), "
                         f"got shape {tuple(x.shape)} and dtype {x.dtype}")
    if x.shape[-1] % 2:
        raise ValueError(f"apply_rope: the head size d_h must be even, got x of shape {tuple(x.shape)}")
    cos, sin = rope_cos_sin(x.shape[-2], x.shape[-1], offset=offset, base=base, interleaved=interleaved,
                            dtype=x.dtype, device=x.device)  # (L, d_h) each
    turned = _rotate_pairs(x) if interleaved else rotate_half(x)
    return x * cos + turned * sin


def rope_permutation(d_head: int) -> torch.Tensor:
    """Index that takes interleaved head dimensions to rotate-half ones: ``[0, 2, 4, ..., 1, 3, 5, ...]``.

    With ``perm = rope_permutation(d_h)``:
    ``apply_rope(x, interleaved=True)[..., perm] == apply_rope(x[..., perm])``.
    Scores are dot products, which do not change when both ``q`` and ``k``
    permute their dimensions alike, so a model trained with one convention runs
    with the other after permuting the rows of each head's ``W_Q`` and ``W_K``
    (that is what Hugging Face's Llama weight conversion does).

    Chapter 05, "Two ways to pair dimensions".
    """
    check_int("rope_permutation", "d_head", d_head, minimum=2)
    if d_head % 2:
        raise ValueError(f"rope_permutation: d_head must be even, got {d_head}")
    return torch.cat((torch.arange(0, d_head, 2), torch.arange(1, d_head, 2)))


# --------------------------------------------------------------------------- ALiBi


def alibi_slopes(n_heads: int) -> torch.Tensor:
    r"""The per-head slopes ``m_h`` of ALiBi, float32 ``(n_heads,)``.

    For ``n`` a power of two they form the geometric sequence
    ``2^(-8/n), 2^(-16/n), ..., 2^(-8)``.  Otherwise the paper takes the ``p``
    slopes of the closest smaller power of two ``p``, then every other slope of
    the sequence for ``2p`` (``2^(-4/p)``, ``2^(-12/p)``, ...) until there are
    ``n``.  Equal to Hugging Face's BLOOM (``build_alibi_tensor``).

    Chapter 05, "ALiBi".
    """
    check_int("alibi_slopes", "n_heads", n_heads, minimum=1)

    def geometric(n: int) -> list[float]:
        return [2.0 ** (-8.0 * k / n) for k in range(1, n + 1)]

    p = 2 ** math.floor(math.log2(n_heads))
    slopes = geometric(p) + geometric(2 * p)[0::2][: n_heads - p]
    return torch.tensor(slopes, dtype=torch.float32)


def alibi_bias(
    n_heads: int,
    q_len: int,
    k_len: int | None = None,
    *,
    offset: int | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    r"""ALiBi's additive bias ``(n_heads, q_len, k_len)``: ``-m_h * |i - j|`` for query ``i`` and key ``j``.

    Add it to the scores (it is a float mask for
    :func:`~selfattention.attention.scaled_dot_product_attention`).  Query row
    ``r`` sits at position ``r + offset``; ``offset`` defaults to
    ``k_len - q_len``, so that with a KV cache the new queries are the last
    positions.  The paper is causal: there only ``j <= i`` matters and the bias
    is ``-m_h (i - j)``; combine it with a causal mask.  The symmetric
    ``|i - j|`` is the usual extension to bidirectional attention.

    Chapter 05, "ALiBi".
    """
    k_len = q_len if k_len is None else k_len
    check_int("alibi_bias", "q_len", q_len, minimum=0)
    check_int("alibi_bias", "k_len", k_len, minimum=0)
    offset = k_len - q_len if offset is None else offset
    if not isinstance(offset, numbers.Integral) or isinstance(offset, bool):
        raise ValueError(f"alibi_bias: offset must be an int, got {offset!r}")
    i = torch.arange(q_len, device=device)[:, None] + offset  # (Lq, 1)
    j = torch.arange(k_len, device=device)[None, :]  # (1, Lk)
    distance = (i - j).abs().to(torch.float32)  # (Lq, Lk)
    slopes = alibi_slopes(n_heads).to(device)[:, None, None]  # (h, 1, 1)
    return (-slopes * distance).to(dtype)

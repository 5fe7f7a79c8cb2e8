"""Sparse attention: each query looks at a chosen few keys.

Chapter 11, "Sparse patterns".  The patterns are written as boolean masks
``(L, L)`` (True = may attend, the polarity of
:func:`selfattention.attention.scaled_dot_product_attention`) because a mask is
the clearest way to see and test a pattern.  A mask alone saves nothing: the
dense scores are still computed.  :func:`sliding_window_attention` is the one
pattern computed without the ``L x L`` matrix: queries go in blocks, and each
block meets only the band of keys it can see.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..attention import softmax
from ..checks import check_int, check_qkv

__all__ = ["sliding_window_mask", "strided_mask", "fixed_mask", "bigbird_mask", "sliding_window_attention"]


def _positions(length: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    i = torch.arange(length, device=device)[:, None]  # query positions, a column
    j = torch.arange(length, device=device)[None, :]  # key positions, a row
    return i, j


def sliding_window_mask(length: int, window: int, *, is_causal: bool = False, device=None) -> torch.Tensor:
    """``(L, L)`` band: query ``i`` sees keys with ``|i - j| <= window`` (causal: ``0 <= i - j <= window``).

    Chapter 11, "Sliding window" (the local attention of Longformer).
    """
    check_int("sliding_window_mask", "length", length, minimum=0)
    check_int("sliding_window_mask", "window", window, minimum=0)
    i, j = _positions(length, device)
    if is_causal:
        return (i - j >= 0) & (i - j <= window)
    return (i - j).abs() <= window


def strided_mask(length: int, stride: int, *, device=None) -> torch.Tensor:
    """Causal strided pattern of the Sparse Transformer: the last ``stride`` keys, plus every ``stride``-th key back.

    Query ``i`` sees key ``j <= i`` when ``i - j < stride`` (a local head) or
    ``(i - j) % stride == 0`` (a strided head); together every key is reachable
    in two steps.  Suits data with a period, such as rows of an image.

    Chapter 11, "Strided and fixed patterns".
    """
    check_int("strided_mask", "length", length, minimum=0)
    check_int("strided_mask", "stride", stride, minimum=1)
    i, j = _positions(length, device)
    return (j <= i) & (((i - j) < stride) | ((i - j) % stride == 0))


def fixed_mask(length: int, stride: int, summary: int = 1, *, device=None) -> torch.Tensor:
    """Causal fixed pattern of the Sparse Transformer: own block, plus the last ``summary`` keys of every block.

    Blocks have ``stride`` positions; query ``i`` sees key ``j <= i`` when both
    lie in the same block, or when ``j`` is among the last ``summary`` positions
    of its block (the "summary" cells that carry a block's content onward).

    Chapter 11, "Strided and fixed patterns".
    """
    check_int("fixed_mask", "length", length, minimum=0)
    check_int("fixed_mask", "stride", stride, minimum=1)
    check_int("fixed_mask", "summary", summary, minimum=1)
    if summary > stride:
        raise ValueError(f"fixed_mask: summary must be at most stride, got summary={summary} and stride={stride}")
    i, j = _positions(length, device)
    return (j <= i) & ((i // stride == j // stride) | (j % stride >= stride - summary))


def bigbird_mask(length: int, window: int, n_global: int, n_random: int, *, generator: torch.Generator | None = None,
                 device=None) -> torch.Tensor:
    """BigBird's pattern: a sliding window, ``n_global`` global tokens, and ``n_random`` random keys per query.

    The first ``n_global`` positions see every key and are seen by every
    query; each other query also sees ``n_random`` keys drawn at random
    (with ``generator``).  Not causal: BigBird is an encoder pattern.

    Chapter 11, "Global, window and random keys".
    """
    check_int("bigbird_mask", "length", length, minimum=0)
    check_int("bigbird_mask", "n_global", n_global, minimum=0)
    check_int("bigbird_mask", "n_random", n_random, minimum=0)
    if n_random > length:
        raise ValueError(f"bigbird_mask: n_random must be at most length, got n_random={n_random} and length={length}")
    mask = sliding_window_mask(length, window, device=device)
    mask[:n_global, :] = True
    mask[:, :n_global] = True
    if n_random:
        noise = torch.rand(length, length, generator=generator).to(device)
        picks = noise.topk(n_random, dim=-1).indices  # (L, n_random) distinct keys per query
        mask.scatter_(1, picks, True)
    return mask


def sliding_window_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, window: int, *, is_causal: bool = False
) -> torch.Tensor:
    """Attention of query ``i`` over keys with ``|i - j| <= window`` (causal: ``0 <= i - j <= window``).

    Equal to dense attention with :func:`sliding_window_mask`, but computed in
    blocks of ``max(window // 2, 32)`` queries, each against only the
    ``block + 2 window`` keys around it (``block + window`` when causal), so
    time grows as ``L * window`` rather than ``L**2``; blocks go a group of
    about 1024 queries at a time, so memory stays ``O(window)`` per query of
    a group whatever the length.  ``q (..., L, d)``, ``k (..., L, d)``,
    ``v (..., L, dv)`` give ``(..., L, dv)``; queries and keys share
    positions, so their lengths must match.

    Chapter 11, "Sliding window".
    """
    check_qkv("sliding_window_attention", q, k, v, same_length=True)
    check_int("sliding_window_attention", "window", window, minimum=0)
    length = q.shape[-2]
    window = min(window, max(length - 1, 0))  # a wider window sees the same keys; only the padding would grow
    lead = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    block = max(window // 2, 32)  # smaller blocks waste fewer scores; one batched matmul covers a group
    group = block * -(-1024 // block)
    out = q.new_empty(*lead, length, v.shape[-1])
    for start in range(0, length, group):
        stop = min(start + group, length)
        out[..., start:stop, :] = _window_group(q, k, v, start, stop, window, block, is_causal)
    return out


def _window_group(q, k, v, start, stop, window, block, is_causal):
    """Sliding-window attention for the queries ``start:stop``, in blocks of ``block``."""
    length, d = q.shape[-2:]
    n_blocks = -(-(stop - start) // block)
    left, right = window, (0 if is_causal else window)
    span = block + left + right  # keys one block of queries can see
    # Keys from start - left to start + n_blocks * block + right, zero-padded where they fall outside [0, L).
    lo, hi = start - left, start + n_blocks * block + right
    pad = (0, 0, max(0, -lo), max(0, hi - length))
    kp = F.pad(k[..., max(0, lo) : min(hi, length), :], pad).unfold(-2, span, block)  # (..., nb, d, span)
    vp = F.pad(v[..., max(0, lo) : min(hi, length), :], pad).unfold(-2, span, block)  # (..., nb, dv, span)
    qb = F.pad(q[..., start:stop, :], (0, 0, 0, n_blocks * block - (stop - start))).unflatten(-2, (n_blocks, block))
    scores = (qb @ kp) * d**-0.5  # (..., nb, b, span)
    t = torch.arange(n_blocks, device=q.device)[:, None, None]
    r = torch.arange(block, device=q.device)[None, :, None]
    c = torch.arange(span, device=q.device)[None, None, :]
    i, j = start + t * block + r, start + t * block + c - left  # absolute query and key positions
    visible = (i - j >= (0 if is_causal else -window)) & (i - j <= window) & (j >= 0) & (j < length)
    weights = softmax(scores.masked_fill_(~visible, float("-inf")), dim=-1)
    out = weights @ vp.transpose(-1, -2)  # (..., nb, b, dv)
    return out.flatten(-3, -2)[..., : stop - start, :]

"""Attention with a memory of the past: Transformer-XL segments and a kNN memory.

Chapter 11, "Remembering earlier segments".  A long text is processed in
segments of fixed length.  :class:`SegmentRecurrence` keeps the keys and
values of the last ``mem_len`` positions and lets the next segment attend to
them as extra keys (Transformer-XL, without its relative positions).
:class:`KNNMemory` keeps many more past keys and values and lets a query attend
only to its ``top_k`` best-matching ones, found by exact search (Memorizing
Transformers, which use approximate search at scale).
"""

from __future__ import annotations

import torch

from ..attention import causal_mask, scaled_dot_product_attention, softmax
from ..checks import check_int, check_qkv

__all__ = ["segment_mask", "SegmentRecurrence", "KNNMemory"]


def segment_mask(length: int, segment_len: int, mem_len: int, *, device=None) -> torch.Tensor:
    """``(L, L)`` mask of one pass equivalent to :class:`SegmentRecurrence` over segments of ``segment_len``.

    Query ``i`` sees key ``j <= i`` when ``j`` is in its own segment or among
    the ``mem_len`` positions just before that segment.

    Chapter 11, "Remembering earlier segments".
    """
    check_int("segment_mask", "length", length, minimum=0)
    check_int("segment_mask", "segment_len", segment_len, minimum=1)
    check_int("segment_mask", "mem_len", mem_len, minimum=0)
    i = torch.arange(length, device=device)[:, None]
    j = torch.arange(length, device=device)[None, :]
    start = (i // segment_len) * segment_len  # first position of query i's segment
    return causal_mask(length, device=device) & (j >= start - mem_len)


class SegmentRecurrence:
    """Causal attention over segments, with the last ``mem_len`` keys and values of the past as extra keys.

    Call it on one segment after the other: ``out = rec(q, k, v)`` with
    ``q, k (..., S, d)``, ``v (..., S, dv)``.  The cache is detached, as in
    Transformer-XL, so gradients stay within a segment.  :meth:`reset` starts a
    new text.

    Chapter 11, "Remembering earlier segments".
    """

    def __init__(self, mem_len: int) -> None:
        check_int("SegmentRecurrence", "mem_len", mem_len, minimum=0)
        self.mem_len = mem_len
        self.k: torch.Tensor | None = None
        self.v: torch.Tensor | None = None

    def reset(self) -> None:
        """Forget the cached segment."""
        self.k = self.v = None

    def __call__(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        check_qkv("SegmentRecurrence", q, k, v, same_length=True)
        if self.k is not None:
            if self.k.shape[:-2] != k.shape[:-2] or (self.k.shape[-1], self.v.shape[-1]) != (k.shape[-1], v.shape[-1]):
                raise ValueError(f"SegmentRecurrence: the cache holds k {tuple(self.k.shape)} and v {tuple(self.v.shape)}; "
                                 f"got k {tuple(k.shape)} and v {tuple(v.shape)} (same batch and sizes, or reset())")
            k = torch.cat([self.k, k], dim=-2)  # (..., cached + new, d)
            v = torch.cat([self.v, v], dim=-2)
        memory = k.shape[-2] - q.shape[-2]
        mask = causal_mask(q.shape[-2], k.shape[-2], offset=memory, device=q.device)
        out, _ = scaled_dot_product_attention(q, k, v, mask)
        keep = min(self.mem_len, k.shape[-2])
        self.k, self.v = k[..., k.shape[-2] - keep :, :].detach(), v[..., v.shape[-2] - keep :, :].detach()
        return out


class KNNMemory:
    """A store of past keys ``(N, d)`` and values ``(N, dv)``; queries attend to their exact top-k keys.

    ``capacity`` bounds the store: the oldest entries are dropped first.

    Chapter 11, "A kNN memory".
    """

    def __init__(self, capacity: int) -> None:
        check_int("KNNMemory", "capacity", capacity, minimum=1)
        self.capacity = capacity
        self.keys: torch.Tensor | None = None
        self.values: torch.Tensor | None = None

    def __len__(self) -> int:
        return 0 if self.keys is None else self.keys.shape[0]

    def add(self, keys: torch.Tensor, values: torch.Tensor) -> None:
        """Append ``keys (n, d)`` and ``values (n, dv)``, dropping the oldest beyond ``capacity``."""
        check_qkv("KNNMemory.add", keys, keys, values)
        if keys.ndim != 2 or values.ndim != 2:
            raise ValueError(f"KNNMemory.add: keys and values must be 2-D (n, d), got keys {tuple(keys.shape)} "
                             f"and values {tuple(values.shape)}")
        if self.keys is not None and (keys.shape[1], values.shape[1]) != (self.keys.shape[1], self.values.shape[1]):
            raise ValueError(f"KNNMemory.add: the memory holds keys of size {self.keys.shape[1]} and values of size "
                             f"{self.values.shape[1]}, got keys {tuple(keys.shape)} and values {tuple(values.shape)}")
        if self.keys is not None:
            keys, values = torch.cat([self.keys, keys]), torch.cat([self.values, values])
        self.keys, self.values = keys[-self.capacity :].detach(), values[-self.capacity :].detach()

    def search(self, queries: torch.Tensor, top_k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Exact top-``k`` by dot product: ``(scores, indices)``, each ``(..., Lq, top_k)``, best first."""
        check_int("KNNMemory.search", "top_k", top_k, minimum=1)
        if self.keys is None:
            raise ValueError("KNNMemory.search: the memory is empty; add keys first")
        check_qkv("KNNMemory.search", queries, self.keys, self.values)
        if top_k > len(self):
            raise ValueError(f"KNNMemory.search: top_k={top_k} is more than the {len(self)} stored keys")
        return (queries @ self.keys.T).topk(top_k, dim=-1)

    def attend(self, queries: torch.Tensor, top_k: int) -> torch.Tensor:
        """Softmax attention of ``queries (..., Lq, d)`` over their ``top_k`` retrieved keys (scores / sqrt(d))."""
        scores, index = self.search(queries, top_k)  # (..., Lq, k)
        weights = softmax(scores * queries.shape[-1] ** -0.5, dim=-1)
        return (weights[..., None] * self.values[index]).sum(dim=-2)  # (..., Lq, dv)

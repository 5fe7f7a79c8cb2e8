"""Input checks shared by the efficient attention variants (chapter 11)."""

from __future__ import annotations

import torch


def check_qkv(fn: str, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, same_length: bool = False) -> None:
    """Raise a clear error unless ``q (..., Lq, d)``, ``k (..., Lk, d)``, ``v (..., Lk, dv)`` fit together."""
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{fn}: {name} must be a torch.Tensor, got {type(t).__name__}")
        if t.ndim < 2:
            raise ValueError(f"{fn}: {name} must have shape (..., length, dim), got shape {tuple(t.shape)}")
        if not t.is_floating_point():
            raise ValueError(f"{fn}: {name} must be floating point, got dtype {t.dtype}")
    if not (q.dtype == k.dtype == v.dtype):
        raise ValueError(f"{fn}: q, k, v must share a dtype, got {q.dtype}, {k.dtype}, {v.dtype}")
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"{fn}: q and k must have the same last dimension, "
                         f"got q {tuple(q.shape)} and k {tuple(k.shape)}")
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(f"{fn}: k and v must have the same length (dim -2), "
                         f"got k {tuple(k.shape)} and v {tuple(v.shape)}")
    if same_length and q.shape[-2] != k.shape[-2]:
        raise ValueError(f"{fn}: q and k must have the same length here, got q {tuple(q.shape)} and k {tuple(k.shape)}")
    try:
        torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    except RuntimeError:
        raise ValueError(f"{fn}: leading dimensions do not broadcast: q {tuple(q.shape)}, k {tuple(k.shape)}, "
                         f"v {tuple(v.shape)}") from None


def check_positive_int(fn: str, name: str, value, *, minimum: int = 1) -> None:
    """Raise unless ``value`` is an int (not a bool) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{fn}: {name} must be an int >= {minimum}, got {value!r}")

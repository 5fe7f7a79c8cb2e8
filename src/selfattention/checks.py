"""Input checks shared across the package, so that every function reports bad input the same way.

First used in chapter 03 (``scaled_dot_product_attention``); chapters 05 and 11
check their sizes and windows with the same helpers.
"""

from __future__ import annotations

import numbers

import torch

__all__ = ["check_qkv", "check_int"]


def check_int(caller: str, name: str, value, *, minimum: int) -> None:
    """Raise a ValueError naming ``caller`` unless ``value`` is an integer (not a bool) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{caller}: {name} must be an int >= {minimum}, got {value!r}")


def check_qkv(caller: str, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, same_length: bool = False) -> None:
    """Raise a clear error, naming ``caller``, unless ``q (..., Lq, d)``, ``k (..., Lk, d)``, ``v (..., Lk, dv)`` fit.

    ``same_length`` also requires ``Lq == Lk``, for the variants that pair query ``i`` with key ``i``.
    """
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{caller}: {name} must be a torch.Tensor, got {type(t).__name__}")
        if t.ndim < 2:
            raise ValueError(f"{caller}: {name} must have shape (..., length, dim), "
                             f"got shape {tuple(t.shape)}")
        if not t.is_floating_point():
            raise ValueError(f"{caller}: {name} must be floating point, got dtype {t.dtype}")
    if not (q.dtype == k.dtype == v.dtype):
        raise ValueError(f"{caller}: q, k, v must share a dtype, got {q.dtype}, {k.dtype}, {v.dtype}")
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"{caller}: q and k must have the same last dimension, "
                         f"got q {tuple(q.shape)} and k {tuple(k.shape)}")
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(f"{caller}: k and v must have the same length (dim -2), "
                         f"got k {tuple(k.shape)} and v {tuple(v.shape)}")
    if same_length and q.shape[-2] != k.shape[-2]:
        raise ValueError(f"{caller}: q and k must have the same length here, got q {tuple(q.shape)} and k {tuple(k.shape)}")
    try:
        torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    except RuntimeError:
        raise ValueError(f"{caller}: leading dimensions do not broadcast: "
                         f"q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}") from None

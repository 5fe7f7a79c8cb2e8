"""Input checks shared by the efficient attention variants (chapter 11)."""

from __future__ import annotations

import torch

from .. import attention


def check_qkv(fn: str, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, same_length: bool = False) -> None:
    """The package's q/k/v checks, plus ``Lq == Lk`` for the variants that pair query i with key i."""
    attention.check_qkv(fn, q, k, v)
    if same_length and q.shape[-2] != k.shape[-2]:
        raise ValueError(f"{fn}: q and k must have the same length here, got q {tuple(q.shape)} and k {tuple(k.shape)}")


def check_positive_int(fn: str, name: str, value, *, minimum: int = 1) -> None:
    """Raise unless ``value`` is an int (not a bool) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{fn}: {name} must be an int >= {minimum}, got {value!r}")

"""Scaled dot-product attention, its softmax and its masks.

Derived in chapter 03, "Scaled dot-product attention"
(``notebooks/03_scaled_dot_product_attention.ipynb``).

Masks follow torch's ``scaled_dot_product_attention``: a boolean mask is True
where a query *may* attend to a key; a floating mask is added to the scores.
"""

from __future__ import annotations

import math

import torch

from .checks import check_qkv

__all__ = ["softmax", "scaled_dot_product_attention", "causal_mask", "padding_mask", "combine_masks"]

_LOW_PRECISION = (torch.float16, torch.bfloat16)


def softmax(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Softmax that neither overflows nor turns an all-masked row into NaN.

    Subtracting the row maximum leaves the result unchanged (it cancels between
    numerator and denominator) but keeps every exponent at or below zero.  A row
    whose entries are all ``-inf`` has nothing to attend to and returns zeros.
    Half-precision inputs are computed in float32 and cast back.

    Chapter 03, "A softmax that does not overflow".
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"softmax expects a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise ValueError(f"softmax expects a floating tensor, got dtype {x.dtype}")
    if x.shape[dim] == 0:  # no keys at all: nothing to attend to, like an all-masked row
        return x.clone()
    work = x.float() if x.dtype in _LOW_PRECISION else x
    row_max = work.amax(dim=dim, keepdim=True)
    # An all -inf row has max -inf; shifting by it would give (-inf) - (-inf) = NaN.
    row_max = torch.where(torch.isfinite(row_max), row_max, torch.zeros_like(row_max))
    # One fresh (..., n) buffer, then in place: at n = 4096 every extra copy of the
    # scores costs as much time as a matmul.  exp_ is safe for autograd (its backward
    # needs only its output); the final division may be in place only without a graph.
    exps = (work - row_max).exp_()
    total = exps.sum(dim=dim, keepdim=True)
    total = torch.where(total > 0, total, torch.ones_like(total))
    out = exps / total if exps.requires_grad else exps.div_(total)
    return out.to(x.dtype)


def causal_mask(
    q_len: int, k_len: int | None = None, *, offset: int = 0, device: torch.device | str | None = None
) -> torch.Tensor:
    """Boolean ``(q_len, k_len)`` mask, True where query ``i`` may see key ``j``: ``j <= i + offset``.

    ``offset=0`` aligns the first query with the first key, as torch's
    ``is_causal`` does.  When a cache already holds earlier keys, queries are the
    *last* ``q_len`` positions: use ``offset = k_len - q_len``.

    Chapter 03, "Masks".
    """
    k_len = q_len if k_len is None else k_len
    for name, value in (("q_len", q_len), ("k_len", k_len)):
        if not isinstance(value, int) or value < 0:
            raise ValueError(f"causal_mask: {name} must be a non-negative int, got {value!r}")
    i = torch.arange(q_len, device=device)[:, None]
    j = torch.arange(k_len, device=device)[None, :]
    return j <= i + offset


def padding_mask(lengths: torch.Tensor | list[int], max_len: int | None = None) -> torch.Tensor:
    """Boolean key mask ``(B, max_len)``, True at real tokens, False at padding.

    Broadcast it over the scores with ``mask[:, None, :]`` for ``(B, Lq, Lk)``,
    or ``mask[:, None, None, :]`` when heads lead: ``(B, h, Lq, Lk)``.

    Chapter 03, "Masks".
    """
    lengths = torch.as_tensor(lengths)
    if lengths.ndim != 1 or lengths.is_floating_point():
        raise ValueError(f"padding_mask: lengths must be a 1-D integer sequence, got shape {tuple(lengths.shape)} "
                         f"and dtype {lengths.dtype}")
    if (lengths < 0).any():
        raise ValueError(f"padding_mask: lengths must be non-negative, got {lengths.tolist()}")
    longest = int(lengths.max()) if lengths.numel() else 0
    max_len = longest if max_len is None else max_len
    if max_len < longest:
        raise ValueError(f"padding_mask: max_len={max_len} is shorter than the longest sequence ({longest})")
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


def combine_masks(*masks: torch.Tensor | None) -> torch.Tensor | None:
    """One mask that allows only what every given mask allows; ``None`` entries are skipped.

    Boolean masks (True = may attend) combine with ``&``; a floating mask keeps
    its values where all boolean masks allow and gets ``-inf`` elsewhere; two
    floating masks add.  Shapes broadcast.

    Chapter 03, "Masks"; used by the blocks of chapter 06.
    """
    result = None
    for mask in masks:
        if mask is None:
            continue
        if not isinstance(mask, torch.Tensor) or not (mask.dtype == torch.bool or mask.is_floating_point()):
            got = mask.dtype if isinstance(mask, torch.Tensor) else type(mask).__name__
            raise ValueError(f"combine_masks: masks must be bool or floating tensors, got {got}")
        if result is None:
            result = mask
        elif result.dtype == torch.bool and mask.dtype == torch.bool:
            result = result & mask
        elif result.dtype == torch.bool:
            result = mask.masked_fill(~result, float("-inf"))
        elif mask.dtype == torch.bool:
            result = result.masked_fill(~mask, float("-inf"))
        else:
            result = result + mask
    return result

def _apply_mask(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"scaled_dot_product_attention: mask must be a torch.Tensor, got {type(mask).__name__}")
    try:
        torch.broadcast_shapes(mask.shape, scores.shape)
    except RuntimeError:
        raise ValueError(f"scaled_dot_product_attention: mask of shape {tuple(mask.shape)} does not broadcast "
                         f"to the scores (..., Lq, Lk) = {tuple(scores.shape)}") from None
    # ``scores`` is a fresh buffer owned by the caller: edit it in place unless the
    # mask broadcasts it to a larger shape.
    in_place = torch.broadcast_shapes(mask.shape, scores.shape) == scores.shape
    if mask.dtype == torch.bool:
        return scores.masked_fill_(~mask, float("-inf")) if in_place else scores.masked_fill(~mask, float("-inf"))
    if mask.is_floating_point():
        mask = mask.to(scores.dtype)
        return scores.add_(mask) if in_place else scores + mask
    raise ValueError(f"scaled_dot_product_attention: mask must be bool (True = may attend) or floating "
                     f"(added to the scores), got dtype {mask.dtype}")


def scaled_dot_product_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    is_causal: bool = False,
    scale: float | None = None,
    dropout_p: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Attention of every query over every key: ``softmax(q k^T * scale + mask) v``.

    Shapes: ``q (..., Lq, d)``, ``k (..., Lk, d)``, ``v (..., Lk, dv)`` give
    ``out (..., Lq, dv)`` and ``weights (..., Lq, Lk)``; leading dimensions
    (batch, heads) broadcast.  ``scale`` defaults to ``1/sqrt(d)``.

    ``mask`` is boolean (True = may attend) or floating (added to the scores).
    ``is_causal`` adds :func:`causal_mask` (top-left aligned, as in torch) and
    may be combined with ``mask``, for padding plus causality.  A query with no
    key left to attend to gets zero weights and a zero output, never NaN.
    ``dropout_p`` drops weights after the softmax (used in training); the
    returned weights are those before dropout.

    Chapter 03, "Scaled dot-product attention"; equal to
    ``torch.nn.functional.scaled_dot_product_attention``.
    """
    check_qkv("scaled_dot_product_attention", q, k, v)
    if not 0.0 <= dropout_p < 1.0:
        raise ValueError(f"scaled_dot_product_attention: dropout_p must be in [0, 1), got {dropout_p}")
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = (q * scale) @ k.transpose(-2, -1)  # (..., Lq, Lk); scaling q is cheaper than scaling the scores
    if mask is not None:
        scores = _apply_mask(scores, mask)
    if is_causal:
        allowed = causal_mask(q.shape[-2], k.shape[-2], device=q.device)
        scores = scores.masked_fill_(~allowed, float("-inf"))
    weights = softmax(scores, dim=-1)
    dropped = torch.nn.functional.dropout(weights, p=dropout_p) if dropout_p > 0 else weights
    return dropped @ v, weights

"""Multi-head attention: several attention patterns side by side.

Derived in chapter 04, "Multi-head attention"
(``notebooks/04_multi_head_attention.ipynb``).
"""

from __future__ import annotations

import torch
from torch import nn

from .attention import combine_masks, scaled_dot_product_attention

__all__ = ["MultiHeadAttention", "split_heads", "merge_heads"]


def split_heads(x: torch.Tensor, n_heads: int) -> torch.Tensor:
    """``(..., L, d_model)`` -> ``(..., n_heads, L, d_head)``: each head gets its own slice of features.

    Chapter 04, "Split and merge".
    """
    if isinstance(n_heads, bool) or not isinstance(n_heads, int) or n_heads <= 0:
        raise ValueError(f"split_heads: n_heads must be a positive int, got {n_heads!r}")
    *lead, length, d_model = x.shape
    if d_model % n_heads:
        raise ValueError(f"split_heads: last dimension {d_model} is not divisible by n_heads={n_heads}")
    return x.reshape(*lead, length, n_heads, d_model // n_heads).transpose(-3, -2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """``(..., n_heads, L, d_head)`` -> ``(..., L, n_heads * d_head)``, the inverse of :func:`split_heads`.

    Chapter 04, "Split and merge".
    """
    *lead, n_heads, length, d_head = x.shape
    return x.transpose(-3, -2).reshape(*lead, length, n_heads * d_head)


class MultiHeadAttention(nn.Module):
    """Multi-head attention with separate query, key, value and output projections.

    ``forward(query, key=None, value=None, mask=None, *, key_padding_mask=None, is_causal=False)``
    returns ``(out, weights)``: ``out (..., Lq, d_model)`` and per-head
    ``weights (..., n_heads, Lq, Lk)``.  Self-attention when ``key`` is None;
    cross-attention when ``key`` (and optionally ``value``, default ``key``)
    come from another sequence.  ``mask`` broadcasts to ``(..., n_heads, Lq, Lk)``
    with True = may attend; ``key_padding_mask (..., Lk)`` is True at real tokens.

    Chapter 04, "Multi-head attention"; equal to ``torch.nn.MultiheadAttention``
    after :meth:`load_torch`.
    """

    def __init__(self, d_model: int, n_heads: int, bias: bool = True, dropout: float = 0.0):
        super().__init__()
        if not isinstance(d_model, int) or not isinstance(n_heads, int) or d_model <= 0 or n_heads <= 0:
            raise ValueError(f"MultiHeadAttention: d_model and n_heads must be positive ints, "
                             f"got d_model={d_model!r}, n_heads={n_heads!r}")
        if d_model % n_heads:
            raise ValueError(f"MultiHeadAttention: d_model={d_model} is not divisible by n_heads={n_heads}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"MultiHeadAttention: dropout must be in [0, 1), got {dropout}")
        self.d_model, self.n_heads, self.d_head = d_model, n_heads, d_model // n_heads
        self.dropout = dropout
        self.q_proj = nn.Linear(d_model, d_model, bias=bias)
        self.k_proj = nn.Linear(d_model, d_model, bias=bias)
        self.v_proj = nn.Linear(d_model, d_model, bias=bias)
        self.out_proj = nn.Linear(d_model, d_model, bias=bias)

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor | None = None,
        value: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        *,
        key_padding_mask: torch.Tensor | None = None,
        is_causal: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        key = query if key is None else key
        value = key if value is None else value
        for name, t in (("query", query), ("key", key), ("value", value)):
            if not isinstance(t, torch.Tensor) or t.ndim < 2 or t.shape[-1] != self.d_model:
                shape = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
                raise ValueError(f"MultiHeadAttention: {name} must have shape (..., length, {self.d_model}), got {shape}")
        if key.shape[-2] != value.shape[-2]:
            raise ValueError(f"MultiHeadAttention: key and value lengths differ: {tuple(key.shape)} vs {tuple(value.shape)}")
        q, k, v = self.project_heads(query, key, value)
        if key_padding_mask is not None:
            if not isinstance(key_padding_mask, torch.Tensor):
                raise TypeError(f"MultiHeadAttention: key_padding_mask must be a torch.Tensor, "
                                f"got {type(key_padding_mask).__name__}")
            if key_padding_mask.dtype != torch.bool or key_padding_mask.shape[-1] != key.shape[-2]:
                raise ValueError(f"MultiHeadAttention: key_padding_mask must be bool of shape (..., Lk={key.shape[-2]}), "
                                 f"got {key_padding_mask.dtype} {tuple(key_padding_mask.shape)}")
            mask = combine_masks(mask, key_padding_mask[..., None, None, :])  # padding: (..., 1, 1, Lk)
        out, weights = scaled_dot_product_attention(
            q, k, v, mask, is_causal=is_causal, dropout_p=self.dropout if self.training else 0.0
        )
        return self.out_proj(merge_heads(out)), weights

    def project_heads(self, query: torch.Tensor, key: torch.Tensor,
                      value: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Project and split into heads: ``(..., L, d_model)`` -> ``(..., h, L, d_h)`` for each of q, k, v."""
        q = split_heads(self.q_proj(query), self.n_heads)  # (..., h, Lq, dh)
        k = split_heads(self.k_proj(key), self.n_heads)  # (..., h, Lk, dh)
        v = split_heads(self.v_proj(value), self.n_heads)  # (..., h, Lk, dh)
        return q, k, v

    @torch.no_grad()
    def load_torch(self, torch_mha: nn.MultiheadAttention) -> "MultiHeadAttention":
        """Copy the weights of a ``torch.nn.MultiheadAttention`` with the same sizes; returns ``self``.

        torch packs the three input projections into one ``in_proj_weight`` of
        shape ``(3 d_model, d_model)``: rows for q, then k, then v.
        """
        if not isinstance(torch_mha, nn.MultiheadAttention):
            raise TypeError(f"load_torch expects torch.nn.MultiheadAttention, got {type(torch_mha).__name__}")
        if (torch_mha.embed_dim, torch_mha.num_heads) != (self.d_model, self.n_heads):
            raise ValueError(f"load_torch: sizes differ: torch has embed_dim={torch_mha.embed_dim}, "
                             f"num_heads={torch_mha.num_heads}; this module has d_model={self.d_model}, "
                             f"n_heads={self.n_heads}")
        if not torch_mha._qkv_same_embed_dim or torch_mha.bias_k is not None:
            raise ValueError("load_torch: kdim/vdim different from embed_dim and add_bias_kv are not supported")
        has_bias = torch_mha.in_proj_bias is not None
        if has_bias != (self.q_proj.bias is not None):
            raise ValueError(f"load_torch: bias mismatch: torch bias={has_bias}, this module bias={not has_bias}")
        for proj, weight in zip((self.q_proj, self.k_proj, self.v_proj), torch_mha.in_proj_weight.chunk(3)):
            proj.weight.copy_(weight)
        self.out_proj.weight.copy_(torch_mha.out_proj.weight)
        if has_bias:
            for proj, bias in zip((self.q_proj, self.k_proj, self.v_proj), torch_mha.in_proj_bias.chunk(3)):
                proj.bias.copy_(bias)
            self.out_proj.bias.copy_(torch_mha.out_proj.bias)
        return self

"""Exact attention by tiles with an online softmax, as in FlashAttention.

Chapter 11, "Exact attention in tiles".  The scores are never held for the
whole sequence: each block of queries visits the keys one block at a time and
keeps, per query row, a running maximum ``m_i``, a running sum ``l_i`` of
exponentials and an unnormalised output.  When a new block raises the maximum,
what was accumulated so far is rescaled by ``exp(m_old - m_new)``; at the end
the output is divided by ``l_i``.  The result equals softmax attention up to
rounding, while the extra memory is one tile of scores per head.
"""

from __future__ import annotations

import math

import torch

from ..attention import causal_mask
from ..checks import check_int, check_qkv

__all__ = ["flash_attention"]


def flash_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    is_causal: bool = False,
    block_size: int = 128,
    query_block_size: int = 512,
) -> torch.Tensor:
    """Exact ``softmax(q k^T / sqrt(d)) v`` computed tile by tile; extra memory O(L * block).

    Shapes ``q (..., Lq, d)``, ``k (..., Lk, d)``, ``v (..., Lk, dv)`` give
    ``(..., Lq, dv)``; leading dimensions broadcast.  Keys are visited in
    blocks of ``block_size``; queries go in blocks of ``query_block_size`` with
    every head at once, because on a CPU a pure-PyTorch loop pays per
    iteration, so fewer, larger tiles run faster.  ``is_causal`` lets query
    ``i`` see keys ``j <= i`` (top-left aligned, as torch's ``is_causal``) and
    skips the tiles above the diagonal.  A query with no key gets zeros.
    Autograd can differentiate it, but then stores every tile: only the
    forward pass saves memory.

    Chapter 11, "Exact attention in tiles"; equal to
    ``torch.nn.functional.scaled_dot_product_attention``.
    """
    check_qkv("flash_attention", q, k, v)
    check_int("flash_attention", "block_size", block_size, minimum=1)
    check_int("flash_attention", "query_block_size", query_block_size, minimum=1)
    lead = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    (q_len, d), k_len, dv = q.shape[-2:], k.shape[-2], v.shape[-1]
    # One batch dimension for all of batch and heads, so each tile is one bmm.
    n = math.prod(lead)
    q3 = q.expand(*lead, q_len, d).reshape(n, q_len, d)  # (N, Lq, d)
    k3 = k.expand(*lead, k_len, d).reshape(n, k_len, d)  # (N, Lk, d)
    v3 = v.expand(*lead, k_len, dv).reshape(n, k_len, dv)  # (N, Lk, dv)
    scale = d**-0.5
    out = q3.new_empty(n, q_len, dv)
    for q0 in range(0, q_len, query_block_size):
        qb = q3[:, q0 : q0 + query_block_size] * scale  # (N, bq, d)
        rows = qb.shape[1]
        m = qb.new_full((n, rows, 1), float("-inf"))  # running max m_i
        l = qb.new_zeros((n, rows, 1))  # running sum l_i
        acc = qb.new_zeros((n, rows, dv))  # unnormalised output
        k_stop = min(k_len, q0 + rows) if is_causal else k_len
        for k0 in range(0, k_stop, block_size):
            # A contiguous copy of the K^T block: on CPU the product runs about twice as fast as on a view.
            kt = k3[:, k0 : k0 + block_size].transpose(1, 2).contiguous()  # (N, d, b)
            s = torch.bmm(qb, kt)  # (N, bq, b) scores of one tile
            if is_causal and k0 + kt.shape[2] - 1 > q0:  # the tile crosses the diagonal
                allowed = causal_mask(rows, kt.shape[2], offset=q0 - k0, device=q.device)  # key k0+j, query q0+i
                s.masked_fill_(~allowed, float("-inf"))
            # Key 0 is in the first tile and visible to every query, so m_new is finite.
            m_new = torch.maximum(m, s.amax(dim=-1, keepdim=True))
            p = (s - m_new).exp_()  # s itself stays intact, so autograd can differentiate the loop
            alpha = (m - m_new).exp_()  # rescales what was accumulated under the old max
            l = l * alpha + p.sum(dim=-1, keepdim=True)
            acc = torch.baddbmm(acc * alpha, p, v3[:, k0 : k0 + block_size])
            m = m_new
        out[:, q0 : q0 + rows] = acc / torch.where(l > 0, l, torch.ones_like(l))
    return out.reshape(*lead, q_len, dv)

r"""Performer's FAVOR+: softmax attention approximated with positive orthogonal random features.

Chapter 11, "Random features: FAVOR+".  For a row ``Omega_rho ~ N(0, I)``,
``exp(q . k) = E[exp(Omega_rho.q - |q|^2/2) exp(Omega_rho.k - |k|^2/2)]``, so with ``r``
draws stacked as the rows of ``Omega (r, d)`` the feature map

    phi(x)_rho = exp(Omega_rho . x - |x|^2 / 2) / sqrt(r),  rho = 1, ..., r

gives ``phi(q) . phi(k) ~ exp(q . k)``, always positive.  Drawing the rows of
``Omega`` orthogonal (in blocks of ``d``) lowers the variance.  Queries and keys
are scaled by ``d**-0.25`` each so that ``q . k`` becomes ``q . k / sqrt(d)``.

Stabilisers.  ``exp`` overflows, so each feature vector is multiplied by
``exp(-mu)`` for some constant ``mu``.  For a query the constant cancels between
numerator and denominator, so any per-query ``mu`` is exact.  For keys, ``mu``
must be the same for all the keys that one query sums over.  The widely copied
implementation takes the maximum over *all* keys of the sequence, which in
the causal case lets later keys change earlier outputs (through rounding, and
through underflow when a later key is large).  Here the causal form uses the
*prefix* maximum ``mu_j`` of the log-features of keys ``j' <= j``: query ``i`` combines keys scaled
by ``exp(mu_j - mu_i) <= 1``, which depends on keys up to ``i`` only.
"""

from __future__ import annotations

import math

import torch

from ..checks import check_int, check_qkv

__all__ = ["orthogonal_random_features", "positive_random_features", "favor_attention"]


def orthogonal_random_features(num_features: int, dim: int, *, generator: torch.Generator | None = None,
                               dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``(num_features, dim)`` projection: orthogonal rows in blocks of ``dim``, with Gaussian-like lengths.

    Each block is the Q factor of a Gaussian matrix (rows orthonormal); each
    row is then scaled by the length of an independent Gaussian vector, so
    every row on its own is distributed as ``N(0, I)``.

    Chapter 11, "Random features: FAVOR+".
    """
    check_int("orthogonal_random_features", "num_features", num_features, minimum=1)
    check_int("orthogonal_random_features", "dim", dim, minimum=1)
    n_blocks = math.ceil(num_features / dim)
    gaussian = torch.randn(n_blocks, dim, dim, generator=generator, dtype=torch.float64)
    qmat, rmat = torch.linalg.qr(gaussian)  # a batch of QR factorisations
    # Signs of R's diagonal make Q uniformly distributed (Householder QR alone is biased).
    qmat = qmat * rmat.diagonal(dim1=-2, dim2=-1).sign()[:, None, :]
    directions = qmat.transpose(-2, -1).reshape(n_blocks * dim, dim)[:num_features]  # rows orthonormal per block
    lengths = torch.randn(num_features, dim, generator=generator, dtype=torch.float64).norm(dim=-1)
    return (directions * lengths[:, None]).to(dtype)


def _log_features(x: torch.Tensor, projection: torch.Tensor) -> torch.Tensor:
    """``Omega x - |x|^2 / 2 - log(sqrt(r))``: the logarithm of the positive features, ``(..., L, r)``."""
    r = projection.shape[0]
    return x @ projection.T - (x * x).sum(dim=-1, keepdim=True) / 2 - 0.5 * math.log(r)


def positive_random_features(x: torch.Tensor, projection: torch.Tensor) -> torch.Tensor:
    """``phi(x) = exp(Omega x - |x|^2/2) / sqrt(r)``, unstabilised: ``phi(q) . phi(k)`` estimates ``exp(q . k)``.

    Chapter 11, "Random features: FAVOR+".
    """
    return _log_features(x, projection).exp()


def favor_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    projection: torch.Tensor,
    *,
    is_causal: bool = False,
    chunk_size: int = 128,
) -> torch.Tensor:
    """FAVOR+ estimate of ``softmax(q k^T / sqrt(d)) v`` with the random ``projection (r, d)``.

    Cost ``O(L r d)``.  The causal form (``Lq == Lk``) runs in chunks like
    causal linear attention and uses per-prefix key stabilisers, so changing
    keys or values after position ``t`` leaves outputs up to ``t`` bit for
    bit unchanged.

    Chapter 11, "Random features: FAVOR+".
    """
    check_qkv("favor_attention", q, k, v, same_length=is_causal)
    check_int("favor_attention", "chunk_size", chunk_size, minimum=1)
    d = q.shape[-1]
    if not isinstance(projection, torch.Tensor) or projection.ndim != 2 or projection.shape[1] != d:
        shape = tuple(projection.shape) if isinstance(projection, torch.Tensor) else type(projection).__name__
        raise ValueError(f"favor_attention: projection must have shape (r, {d}) to match q {tuple(q.shape)}, "
                         f"got {shape}")
    if k.shape[-2] == 0:  # nothing to attend to: zeros, as scaled_dot_product_attention gives
        return q.new_zeros(*torch.broadcast_shapes(q.shape[:-2], v.shape[:-2]), q.shape[-2], v.shape[-1])
    projection = projection.to(device=q.device, dtype=q.dtype)
    lq = _log_features(q * d**-0.25, projection)  # (..., Lq, r)
    lk = _log_features(k * d**-0.25, projection)  # (..., Lk, r)
    fq = (lq - lq.amax(dim=-1, keepdim=True)).exp()  # per-query stabiliser: cancels exactly
    if not is_causal:
        fk = (lk - lk.amax(dim=(-2, -1), keepdim=True)).exp()  # one constant for all keys
        kv = fk.transpose(-2, -1) @ v  # (..., r, dv)
        z = fk.sum(dim=-2, keepdim=True).transpose(-2, -1)  # (..., r, 1)
        return (fq @ kv) / (fq @ z)
    c = lk.amax(dim=-1).cummax(dim=-1).values[..., None]  # (..., L, 1) prefix maxima mu_j
    fk = (lk - c).exp()  # key j scaled by exp(-mu_j)
    lead = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    length, r, dv = q.shape[-2], projection.shape[0], v.shape[-1]
    out = q.new_empty(*lead, length, dv)
    kv = q.new_zeros(*lead, r, dv)  # earlier chunks, scaled by exp(-c_prev)
    z = q.new_zeros(*lead, r, 1)
    c_prev = q.new_full((*lead, 1, 1), float("-inf"))
    tril = torch.ones(chunk_size, chunk_size, dtype=torch.bool, device=q.device).tril()
    for s in range(0, length, chunk_size):
        e = min(s + chunk_size, length)
        ci, cj = c[..., s:e, :], c[..., s:e, :].transpose(-2, -1)  # (..., C, 1) and (..., 1, C)
        rescale = (cj - ci).masked_fill(~tril[: e - s, : e - s], float("-inf")).exp()  # exp(mu_j - mu_i), 0 above
        a = (fq[..., s:e, :] @ fk[..., s:e, :].transpose(-2, -1)) * rescale  # (..., C, C)
        back = (c_prev - ci).exp()  # (..., C, 1): the state's scale relative to query i
        num = a @ v[..., s:e, :] + back * (fq[..., s:e, :] @ kv)
        den = a.sum(dim=-1, keepdim=True) + back * (fq[..., s:e, :] @ z)
        out[..., s:e, :] = num / den
        c_end = c[..., e - 1 : e, :]  # (..., 1, 1)
        to_end = (cj - c_end).exp().transpose(-2, -1)  # (..., C, 1)
        kv = (c_prev - c_end).exp() * kv + (fk[..., s:e, :] * to_end).transpose(-2, -1) @ v[..., s:e, :]
        z = (c_prev - c_end).exp() * z + (fk[..., s:e, :] * to_end).sum(dim=-2, keepdim=True).transpose(-2, -1)
        c_prev = c_end
    return out

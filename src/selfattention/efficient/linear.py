r"""Linear attention: a feature map in place of the softmax, then reassociate.

Chapter 11, "Linear attention".  With a positive feature map ``phi``
(here ``elu(x) + 1``, as in Katharopoulos et al.) the output of query ``i`` is

    o_i = phi(q_i)^T (sum_j phi(k_j) v_j^T) / phi(q_i)^T (sum_j phi(k_j)),

so the sums over keys are computed once, in ``O(L d^2)``, instead of an
``L x L`` matrix.  The causal form keeps prefix sums; computing them all at
once needs ``L`` matrices of ``d x d``, so it is done in chunks: a small masked
quadratic product inside each chunk and a running state between chunks.  The
same running state, one token at a time, is an RNN: :class:`LinearAttentionState`.
"""

from __future__ import annotations

import torch

from ..checks import check_int, check_qkv

__all__ = ["elu_feature_map", "linear_attention", "LinearAttentionState"]


def elu_feature_map(x: torch.Tensor) -> torch.Tensor:
    """``elu(x) + 1``: positive everywhere, so the normaliser of linear attention never vanishes.

    Chapter 11, "Linear attention".
    """
    return torch.nn.functional.elu(x) + 1


def linear_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, is_causal: bool = False, chunk_size: int = 128
) -> torch.Tensor:
    """Linear attention with the ``elu(x) + 1`` feature map; time and memory linear in length.

    ``q (..., Lq, d)``, ``k (..., Lk, d)``, ``v (..., Lk, dv)`` give
    ``(..., Lq, dv)``.  With ``is_causal`` query ``i`` sees keys ``j <= i``
    (so ``Lq`` must equal ``Lk``), computed ``chunk_size`` positions at a time:
    extra memory ``O(chunk^2 + d * dv)`` per head, whatever the length.

    Chapter 11, "Linear attention" and "Causal linear attention in chunks".
    """
    check_qkv("linear_attention", q, k, v, same_length=is_causal)
    check_int("linear_attention", "chunk_size", chunk_size, minimum=1)
    if k.shape[-2] == 0:  # nothing to attend to: zeros, as scaled_dot_product_attention gives
        return q.new_zeros(*torch.broadcast_shapes(q.shape[:-2], v.shape[:-2]), q.shape[-2], v.shape[-1])
    if not is_causal:
        fq, fk = elu_feature_map(q), elu_feature_map(k)  # (..., L, d)
        kv = fk.transpose(-2, -1) @ v  # (..., d, dv): sum_j phi(k_j) v_j^T
        z = fk.sum(dim=-2, keepdim=True).transpose(-2, -1)  # (..., d, 1): sum_j phi(k_j)
        return (fq @ kv) / (fq @ z)
    lead = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    length, d, dv = q.shape[-2], q.shape[-1], v.shape[-1]
    out = q.new_empty(*lead, length, dv)
    kv = q.new_zeros(*lead, d, dv)  # state: sum of phi(k_j) v_j^T over earlier chunks
    z = q.new_zeros(*lead, d, 1)  # state: sum of phi(k_j) over earlier chunks
    tril = torch.ones(chunk_size, chunk_size, dtype=torch.bool, device=q.device).tril()
    for s in range(0, length, chunk_size):
        e = min(s + chunk_size, length)
        fq, fk, vc = elu_feature_map(q[..., s:e, :]), elu_feature_map(k[..., s:e, :]), v[..., s:e, :]
        a = (fq @ fk.transpose(-2, -1)).masked_fill_(~tril[: e - s, : e - s], 0.0)  # (..., C, C) within the chunk
        num = a @ vc + fq @ kv  # (..., C, dv)
        den = a.sum(dim=-1, keepdim=True) + fq @ z  # (..., C, 1)
        out[..., s:e, :] = num / den
        kv = kv + fk.transpose(-2, -1) @ vc
        z = z + fk.sum(dim=-2, keepdim=True).transpose(-2, -1)
    return out


class LinearAttentionState:
    """Causal linear attention run as an RNN: a fixed-size state, one token per :meth:`step`.

    The state is ``U = sum_j phi(k_j) v_j^T`` (``d x dv``) and
    ``z = sum_j phi(k_j)`` (``d``), so decoding costs the same at every step,
    however long the context: no cache grows.  Gives the outputs of
    ``linear_attention(..., is_causal=True)`` one position at a time.

    Chapter 11, "The same model as an RNN".
    """

    def __init__(self) -> None:
        self.kv: torch.Tensor | None = None  # (..., d, dv)
        self.z: torch.Tensor | None = None  # (..., d)
        self.steps = 0

    def step(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Add key ``k (..., d)`` and value ``v (..., dv)`` to the state, then answer query ``q (..., d)``."""
        check_qkv("LinearAttentionState.step", q[..., None, :], k[..., None, :], v[..., None, :])
        fk = elu_feature_map(k)
        if self.kv is None:
            self.kv = fk.new_zeros(*fk.shape, v.shape[-1])
            self.z = fk.new_zeros(fk.shape)
        elif self.kv.shape != (*torch.broadcast_shapes(fk.shape[:-1], v.shape[:-1]), k.shape[-1], v.shape[-1]):
            raise ValueError(f"LinearAttentionState.step: the state holds (..., d, dv) = {tuple(self.kv.shape)}, "
                             f"got k {tuple(k.shape)} and v {tuple(v.shape)}: batch and sizes must stay the same")
        self.kv = self.kv + fk[..., :, None] * v[..., None, :]
        self.z = self.z + fk
        self.steps += 1
        fq = elu_feature_map(q)
        return (fq[..., None, :] @ self.kv).squeeze(-2) / (fq * self.z).sum(dim=-1, keepdim=True)

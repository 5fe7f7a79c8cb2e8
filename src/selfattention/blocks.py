"""The transformer block: attention and a feed-forward network, each wrapped in a residual and a norm.

Derived in chapter 06, "The transformer block, and why attention won"
(``notebooks/06_transformer_block.ipynb``).

One :class:`BlockConfig` covers the blocks the later chapters build on:

- GPT-2: ``norm="pre"``, ``causal=True``, ``activation="gelu_tanh"``, learned
  positions added to the input by the model;
- BERT: ``norm="post"``, ``causal=False``, ``eps=1e-12``;
- T5: ``norm_type="rms"``, ``bias=False``, ``activation="relu"``,
  ``cross_attention=True`` in the decoder, relative bias passed as ``mask``;
- Llama-style: ``norm_type="rms"``, ``activation="swiglu"``, ``positions="rope"``;
- BLOOM-style: ``positions="alibi"``.

Masks follow the package: boolean True = may attend, or floating = added to
the scores; either broadcasts to ``(B, h, Lq, Lk)``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import nn

from .attention import causal_mask, combine_masks, scaled_dot_product_attention
from .multihead import MultiHeadAttention, merge_heads
from .positions import LearnedPositions, SinusoidalPositions, alibi_bias, apply_rope

__all__ = ["BlockConfig", "FeedForward", "KVCache", "SelfAttention", "TransformerBlock", "TransformerStack",
           "POSITION_KINDS"]

_ACTIVATIONS = {
    "gelu": lambda: nn.GELU(),
    "gelu_tanh": lambda: nn.GELU(approximate="tanh"),
    "relu": lambda: nn.ReLU(),
}


@dataclass
class BlockConfig:
    """Everything that distinguishes one transformer block from another.

    ``norm``: ``"pre"`` (norm inside the residual branch, GPT-2 and later) or
    ``"post"`` (norm after the residual sum, the original transformer and BERT).
    ``positions``: what attention itself does about positions: ``"none"``
    (the model adds absolute encodings to its input, or uses none), ``"rope"``
    (rotate queries and keys) or ``"alibi"`` (add linear distance biases).
    ``d_ff`` defaults to ``4 * d_model``.

    Chapter 06, "Assembling the block".
    """

    d_model: int
    n_heads: int
    d_ff: int | None = None
    dropout: float = 0.0
    norm: str = "pre"
    causal: bool = False
    bias: bool = True
    activation: str = "gelu"
    norm_type: str = "layer"
    eps: float = 1e-5
    positions: str = "none"
    rope_base: float = 10000.0
    cross_attention: bool = False

    def __post_init__(self) -> None:
        for name in ("d_model", "n_heads"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"BlockConfig: {name} must be a positive int, got {value!r}")
        if self.d_model % self.n_heads:
            raise ValueError(f"BlockConfig: d_model={self.d_model} is not divisible by n_heads={self.n_heads}")
        self.d_ff = 4 * self.d_model if self.d_ff is None else self.d_ff
        if not isinstance(self.d_ff, int) or self.d_ff <= 0:
            raise ValueError(f"BlockConfig: d_ff must be a positive int, got {self.d_ff!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"BlockConfig: dropout must be in [0, 1), got {self.dropout}")
        choices = {"norm": ("pre", "post"), "norm_type": ("layer", "rms"), "positions": ("none", "rope", "alibi"),
                   "activation": (*_ACTIVATIONS, "swiglu")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"BlockConfig: {name} must be one of {allowed}, got {getattr(self, name)!r}")
        if self.positions == "rope" and (self.d_model // self.n_heads) % 2:
            raise ValueError(f"BlockConfig: RoPE needs an even head size, got d_model/n_heads = "
                             f"{self.d_model}/{self.n_heads} = {self.d_model // self.n_heads}")


class FeedForward(nn.Module):
    """The position-wise MLP ``W_2 act(W_1 x)``: the same two layers applied to every row.

    ``activation`` is ``"gelu"`` (exact, BERT), ``"gelu_tanh"`` (GPT-2),
    ``"relu"`` (original transformer, T5) or ``"swiglu"`` (Llama:
    ``W_2 (silu(W_1 x) * W_3 x)``, a gated variant with a third matrix).

    Chapter 06, "The feed-forward network".
    """

    def __init__(self, d_model: int, d_ff: int | None = None, *, activation: str = "gelu", bias: bool = True):
        super().__init__()
        d_ff = 4 * d_model if d_ff is None else d_ff
        for name, size in (("d_model", d_model), ("d_ff", d_ff)):
            if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
                raise ValueError(f"FeedForward: {name} must be a positive int, got {size!r}")
        if activation not in (*_ACTIVATIONS, "swiglu"):
            raise ValueError(f"FeedForward: activation must be one of {(*_ACTIVATIONS, 'swiglu')}, got {activation!r}")
        self.d_model = d_model
        self.up = nn.Linear(d_model, d_ff, bias=bias)
        self.gate = nn.Linear(d_model, d_ff, bias=bias) if activation == "swiglu" else None
        self.act = nn.SiLU() if activation == "swiglu" else _ACTIVATIONS[activation]()
        self.down = nn.Linear(d_ff, d_model, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.d_model:
            raise ValueError(f"FeedForward: x must have shape (..., {self.d_model}), got {tuple(x.shape)}")
        if self.gate is None:
            return self.down(self.act(self.up(x)))
        return self.down(self.act(self.gate(x)) * self.up(x))


@dataclass
class KVCache:
    """The keys and values one attention layer has already seen, ``(B, h, L_past, d_h)`` each.

    Chapter 06 defines it; chapter 07 (GPT) uses it to generate one token at a time.
    """

    k: torch.Tensor | None = None
    v: torch.Tensor | None = None

    @property
    def length(self) -> int:
        """Number of cached positions (the offset of the next token)."""
        return 0 if self.k is None else self.k.shape[-2]

    def append(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store the new keys and values after the old ones; returns all of them."""
        self.k = k if self.k is None else torch.cat((self.k, k), dim=-2)
        self.v = v if self.v is None else torch.cat((self.v, v), dim=-2)
        return self.k, self.v


class SelfAttention(MultiHeadAttention):
    """Multi-head self-attention that can see positions (RoPE, ALiBi) and keep a KV cache.

    Same parameters as :class:`~selfattention.multihead.MultiHeadAttention`
    (so ``load_torch`` still works); ``forward(x, mask=None, *, cache=None)``
    returns ``(out, weights)``.  Causality, RoPE and ALiBi take the cache
    into account: new queries sit at positions ``cache.length ..``.

    Chapter 06, "Assembling the block".
    """

    def __init__(self, d_model: int, n_heads: int, *, bias: bool = True, dropout: float = 0.0,
                 causal: bool = False, positions: str = "none", rope_base: float = 10000.0):
        super().__init__(d_model, n_heads, bias=bias, dropout=dropout)
        if positions not in ("none", "rope", "alibi"):
            raise ValueError(f"SelfAttention: positions must be 'none', 'rope' or 'alibi', got {positions!r}")
        self.causal, self.positions, self.rope_base = causal, positions, rope_base

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, *,
                cache: KVCache | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        if not isinstance(x, torch.Tensor) or x.ndim < 2 or x.shape[-1] != self.d_model:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"SelfAttention: x must have shape (..., L, {self.d_model}), got {shape}")
        offset = 0 if cache is None else cache.length
        q, k, v = self.project_heads(x, x, x)  # (B, h, Lq, d_h) each
        if self.positions == "rope":
            q = apply_rope(q, offset, base=self.rope_base)
            k = apply_rope(k, offset, base=self.rope_base)
        if cache is not None:
            k, v = cache.append(k, v)  # (B, h, Lk, d_h) with Lk = offset + Lq
        q_len, k_len = q.shape[-2], k.shape[-2]
        causal = causal_mask(q_len, k_len, offset=offset, device=x.device) if self.causal else None
        alibi = (alibi_bias(self.n_heads, q_len, k_len, offset=offset, dtype=q.dtype, device=x.device)
                 if self.positions == "alibi" else None)
        mask = combine_masks(mask, alibi, causal)
        out, weights = scaled_dot_product_attention(q, k, v, mask, dropout_p=self.dropout if self.training else 0.0)
        return self.out_proj(merge_heads(out)), weights


def _norm(config: BlockConfig) -> nn.Module:
    if config.norm_type == "rms":
        return nn.RMSNorm(config.d_model, eps=config.eps)
    return nn.LayerNorm(config.d_model, eps=config.eps, bias=config.bias)


class TransformerBlock(nn.Module):
    """Self-attention then a feed-forward network, each with a residual connection and a norm.

    Pre-LN (``config.norm="pre"``)::

        x = x + dropout(attention(LN_1(x)))
        x = x + dropout(FFN(LN_2(x)))

    Post-LN (``"post"``, the original transformer)::

        x = LN_1(x + dropout(attention(x)))
        x = LN_2(x + dropout(FFN(x)))

    With ``cross_attention=True`` a third sublayer between the two attends
    from ``x`` to ``memory`` (an encoder's output), as in T5's decoder.

    ``forward(x, mask=None, *, memory=None, memory_mask=None, cache=None,
    return_weights=False)``: ``x (B, L, d_model)``; ``mask`` is an extra
    boolean or additive mask broadcast to ``(B, h, L, L_k)`` (padding, T5's
    relative bias); causality, RoPE and ALiBi come from the config.  Returns
    ``x``, or ``(x, weights)`` with the self-attention weights ``(B, h, L, L_k)``.

    Chapter 06, "Assembling the block".
    """

    def __init__(self, config: BlockConfig):
        super().__init__()
        if not isinstance(config, BlockConfig):
            raise TypeError(f"TransformerBlock expects a BlockConfig, got {type(config).__name__}")
        self.config = config
        self.attn = SelfAttention(config.d_model, config.n_heads, bias=config.bias, dropout=config.dropout,
                                  causal=config.causal, positions=config.positions, rope_base=config.rope_base)
        self.ln_1 = _norm(config)
        if config.cross_attention:
            self.cross = MultiHeadAttention(config.d_model, config.n_heads, bias=config.bias, dropout=config.dropout)
            self.ln_cross = _norm(config)
        self.ffn = FeedForward(config.d_model, config.d_ff, activation=config.activation, bias=config.bias)
        self.ln_2 = _norm(config)
        self.drop = nn.Dropout(config.dropout)

    def _sublayer(self, x: torch.Tensor, norm: nn.Module, fn) -> torch.Tensor:
        if self.config.norm == "pre":
            return x + self.drop(fn(norm(x)))
        return norm(x + self.drop(fn(x)))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, *, memory: torch.Tensor | None = None,
                memory_mask: torch.Tensor | None = None, cache: KVCache | None = None,
                return_weights: bool = False):
        if not isinstance(x, torch.Tensor) or x.ndim < 2 or x.shape[-1] != self.config.d_model:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"TransformerBlock: x must have shape (B, L, d_model={self.config.d_model}), got {shape}")
        if (memory is not None) != self.config.cross_attention:
            raise ValueError(f"TransformerBlock: memory must be given exactly when cross_attention=True "
                             f"(cross_attention={self.config.cross_attention}, memory "
                             f"{'given' if memory is not None else 'missing'})")
        weights = []

        def attend(h: torch.Tensor) -> torch.Tensor:
            out, w = self.attn(h, mask, cache=cache)
            weights.append(w)
            return out

        x = self._sublayer(x, self.ln_1, attend)
        if memory is not None:
            x = self._sublayer(x, self.ln_cross, lambda h: self.cross(h, memory, mask=memory_mask)[0])
        x = self._sublayer(x, self.ln_2, self.ffn)
        return (x, weights[0]) if return_weights else x


POSITION_KINDS = ("none", "sinusoidal", "learned", "rope", "alibi")


class TransformerStack(nn.Module):
    """Token embedding, positions, ``n_layers`` blocks, a final norm (pre-LN) and a linear head.

    ``position`` picks one of :data:`POSITION_KINDS`: ``"sinusoidal"`` and
    ``"learned"`` are added to the embeddings once (learned ones need
    ``max_len``; ``clamp=True`` lets them run longer, reusing the last
    position); ``"rope"`` and ``"alibi"`` are handed to every block's attention;
    ``"none"`` gives attention no positions at all.  ``forward(idx (B, L))``
    returns logits ``(B, L, out_size)``, ``out_size`` defaulting to
    ``vocab_size``.  Post-LN stacks end without the final norm, since each
    block already ends with one.

    Chapter 06, "Stacking blocks"; used for the small experiments of chapters 05 and 06.
    """

    def __init__(self, vocab_size: int, n_layers: int, config: BlockConfig, *, position: str = "learned",
                 max_len: int | None = None, clamp: bool = False, out_size: int | None = None):
        super().__init__()
        if position not in POSITION_KINDS:
            raise ValueError(f"TransformerStack: position must be one of {POSITION_KINDS}, got {position!r}")
        if position == "learned" and max_len is None:
            raise ValueError("TransformerStack: learned positions need max_len (the number of positions to learn)")
        if not isinstance(n_layers, int) or n_layers < 1:
            raise ValueError(f"TransformerStack: n_layers must be a positive int, got {n_layers!r}")
        self.position = position
        inside = position if position in ("rope", "alibi") else "none"
        self.config = replace(config, positions=inside)
        self.embed = nn.Embedding(vocab_size, config.d_model)
        self.add_positions = {"sinusoidal": lambda: SinusoidalPositions(config.d_model),
                              "learned": lambda: LearnedPositions(max_len, config.d_model, clamp=clamp)
                              }.get(position, nn.Identity)()
        self.blocks = nn.ModuleList(TransformerBlock(self.config) for _ in range(n_layers))
        self.ln_f = _norm(self.config) if config.norm == "pre" else nn.Identity()
        self.head = nn.Linear(config.d_model, vocab_size if out_size is None else out_size)

    def forward(self, idx: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if not isinstance(idx, torch.Tensor) or idx.ndim != 2 or idx.dtype != torch.long:
            got = f"{idx.dtype} {tuple(idx.shape)}" if isinstance(idx, torch.Tensor) else type(idx).__name__
            raise ValueError(f"TransformerStack: idx must be a (B, L) tensor of token ids (torch.long), got {got}")
        x = self.add_positions(self.embed(idx))  # (B, L, d_model)
        for block in self.blocks:
            x = block(x, mask)
        return self.head(self.ln_f(x))

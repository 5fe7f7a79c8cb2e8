"""Time against sequence length: one LSTM layer against one causal self-attention layer.

Chapter 06, "Parallelism", shows a small version of this measurement and the
table this script writes (``results/recurrence_vs_attention.json`` and ``.md``).

For each sequence length ``n`` and thread count it measures, with the same
width, batch and number of heads:

- ``lstm_fwd_ms``: a forward pass of ``torch.nn.LSTM`` (``n`` sequential steps);
- ``attention_fwd_ms``: the package's ``SelfAttention`` (full ``n x n`` weights,
  chapter 03); skipped where its score matrices would not fit ``--max-score-gib``;
- ``sdpa_fwd_ms``: the same layer with torch's fused ``scaled_dot_product_attention``;
- ``lstm_train_ms`` and ``sdpa_train_ms``: forward plus backward of a mean loss.

Run on a quiet machine, with ``MALLOC_MMAP_THRESHOLD_=4294967296`` so that
fresh ``n^2`` buffers are not mapped and unmapped on every call::

    MALLOC_MMAP_THRESHOLD_=4294967296 python benchmarks/recurrence_vs_attention.py
    python benchmarks/recurrence_vs_attention.py --quick     # a small run (about a minute)
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import median_time, report  # noqa: E402

from selfattention.blocks import SelfAttention  # noqa: E402
from selfattention.multihead import merge_heads, split_heads  # noqa: E402


def fused(layer: SelfAttention, x: torch.Tensor) -> torch.Tensor:
    """``layer``'s computation with the scores done by torch's fused kernel."""
    q, k, v = (split_heads(proj(x), layer.n_heads) for proj in (layer.q_proj, layer.k_proj, layer.v_proj))
    out = nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, h, n, d_h)
    return layer.out_proj(merge_heads(out))


def forward_ms(fn, x: torch.Tensor, repeats: int) -> float:
    with torch.no_grad():
        return 1e3 * median_time(lambda: fn(x), repeats=repeats)


def train_ms(fn, x: torch.Tensor, repeats: int) -> float:
    def step():
        x.grad = None
        fn(x).float().mean().backward()

    return 1e3 * median_time(step, repeats=repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer lengths, one thread count, fewer repeats")
    parser.add_argument("--d-model", type=int, default=128)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--max-score-gib", type=float, default=1.0,
                        help="skip the package's attention where one (B, h, n, n) float32 tensor exceeds this")
    args = parser.parse_args()

    lengths = [16, 64, 256, 1024] if args.quick else [16, 64, 256, 1024, 2048, 4096]
    threads = [1] if args.quick else sorted({1, os.cpu_count() or 1})
    repeats = 3 if args.quick else 7

    torch.manual_seed(0)
    lstm = nn.LSTM(args.d_model, args.d_model, batch_first=True)
    attention = SelfAttention(args.d_model, args.heads, causal=True)
    lstm_fn = lambda x: lstm(x)[0]  # noqa: E731
    package_fn = lambda x: attention(x)[0]  # noqa: E731
    sdpa_fn = lambda x: fused(attention, x)  # noqa: E731

    rows = []
    for n_threads in threads:
        torch.set_num_threads(n_threads)
        for n in lengths:
            x = torch.randn(args.batch, n, args.d_model, requires_grad=True)
            score_gib = 4 * args.batch * args.heads * n * n / 2**30
            row = {
                "n": n,
                "threads": n_threads,
                "lstm_fwd_ms": forward_ms(lstm_fn, x, repeats),
                "attention_fwd_ms": forward_ms(package_fn, x, repeats) if score_gib <= args.max_score_gib else None,
                "sdpa_fwd_ms": forward_ms(sdpa_fn, x, repeats),
                "lstm_train_ms": train_ms(lstm_fn, x, repeats),
                "sdpa_train_ms": train_ms(sdpa_fn, x, repeats),
                "lstm_sequential_steps": n,
                "attention_sequential_steps": 1,
            }
            rows.append(row)
            print(row, flush=True)

    columns = ["n", "threads", "lstm_fwd_ms", "attention_fwd_ms", "sdpa_fwd_ms", "lstm_train_ms", "sdpa_train_ms",
               "lstm_sequential_steps", "attention_sequential_steps"]
    notes = (f"One LSTM layer vs one causal self-attention layer, d_model={args.d_model}, {args.heads} heads, "
             f"batch {args.batch}; median of {repeats} runs; times in ms. attention = the package's "
             f"(full n x n weights), sdpa = torch's fused kernel; train = forward + backward."
             + (" Quick run (--quick)." if args.quick else ""))
    report("recurrence_vs_attention", "Recurrence against attention: time against sequence length", rows, columns,
           notes)


if __name__ == "__main__":
    main()

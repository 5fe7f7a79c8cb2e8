"""Our scaled_dot_product_attention against torch's, by sequence length.

Compares ``selfattention.attention.scaled_dot_product_attention`` (which also
returns the weights) with ``torch.nn.functional.scaled_dot_product_attention``
under its default backend selection and forced to its math backend
(``torch.nn.attention.sdpa_kernel``), at batch 1, 8 heads, d=64, float32, no
mask, no gradient.  Reports the median time and the peak extra memory of one
call, prints a table and writes ``results/attention.json`` and ``.md``.

Run with glibc's mmap threshold raised, or fresh n^2 buffers are mapped and
unmapped on every call and dominate the timings (see NOTES.md)::

    MALLOC_MMAP_THRESHOLD_=4294967296 python benchmarks/attention.py            # 256 .. 4096
    MALLOC_MMAP_THRESHOLD_=4294967296 python benchmarks/attention.py --quick    # 256 and 1024

Chapter 03 ("Check against PyTorch") and chapter 11 refer to these numbers.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from _common import MiB, median_time, peak_extra_memory, report  # noqa: E402

from selfattention.attention import scaled_dot_product_attention  # noqa: E402

LENGTHS = [256, 512, 1024, 2048, 4096]
QUICK = [256, 1024]
BATCH, HEADS, DIM = 1, 8, 64


def candidates(q, k, v):
    """name -> zero-argument callable computing attention of (q, k, v)."""

    def torch_math():
        with sdpa_kernel(SDPBackend.MATH):
            return F.scaled_dot_product_attention(q, k, v)

    return {
        "ours": lambda: scaled_dot_product_attention(q, k, v),
        "torch default": lambda: F.scaled_dot_product_attention(q, k, v),
        "torch math": torch_math,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=LENGTHS, help="sequence lengths to measure")
    parser.add_argument("--quick", action="store_true", help=f"only lengths {QUICK} (a smoke test)")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per measurement (median reported)")
    args = parser.parse_args(argv)
    lengths = QUICK if args.quick else args.lengths
    if os.environ.get("MALLOC_MMAP_THRESHOLD_") is None:
        print("warning: MALLOC_MMAP_THRESHOLD_ is not set; timings of the n^2 buffers will be inflated", file=sys.stderr)

    torch.manual_seed(0)
    rows = []
    with torch.no_grad():
        for n in lengths:
            q, k, v = (torch.randn(BATCH, HEADS, n, DIM) for _ in range(3))
            fns = candidates(q, k, v)
            reference = fns["torch math"]()
            ours = fns["ours"]()[0]
            error = (ours - reference).abs().max().item()
            row = {"n": n, "max abs error": error}
            for name, fn in fns.items():
                row[f"{name} ms"] = 1e3 * median_time(fn, repeats=args.repeats)
                row[f"{name} MiB"] = peak_extra_memory(fn) / MiB
            row["ours / math"] = row["ours ms"] / row["torch math ms"]
            rows.append(row)
            print(f"n={n}: ours {row['ours ms']:.1f} ms, torch math {row['torch math ms']:.1f} ms, "
                  f"torch default {row['torch default ms']:.1f} ms", flush=True)

    columns = ["n", "ours ms", "torch math ms", "torch default ms", "ours / math",
               "ours MiB", "torch math MiB", "torch default MiB", "max abs error"]
    notes = (f"Batch {BATCH}, {HEADS} heads, d={DIM}, float32, no mask, forward only without gradients; median of "
             f"{args.repeats} calls after one warm-up. Memory is the peak resident set above the level before the "
             "call. Ours also returns the (B, h, n, n) weights, as torch's math backend materialises them "
             "internally; torch's default backend on CPU is a fused kernel that never stores them. Run with "
             "MALLOC_MMAP_THRESHOLD_=4294967296 so that glibc reuses the n^2 buffers instead of mapping fresh "
             "pages on every call (which would triple the times of both ours and torch math).")
    report("attention", "Scaled dot-product attention: ours against torch", rows, columns, notes)


if __name__ == "__main__":
    main()

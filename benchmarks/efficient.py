"""Time and peak memory of efficient attention against length (chapter 11).

Run ``python benchmarks/efficient.py`` on a quiet machine.  It measures dense
attention (the package's, which holds the L x L matrix), torch SDPA, the tiled
``flash_attention``, ``sliding_window_attention`` and ``linear_attention``, each
non-causal and causal, side by side in one run (d=64, 8 heads, batch 1, fp32,
no gradients), prints a table, checks the targets, and writes
``benchmarks/results/efficient.json`` and ``.md``.

glibc returns large freed buffers to the system with munmap and maps them
again on the next call, which triples the time of the dense path; the script
re-executes itself with ``MALLOC_MMAP_THRESHOLD_=4294967296`` so that timings
measure attention, not the allocator (the environment is recorded in the JSON).

Quick check: ``python benchmarks/efficient.py --lengths 512 1024 --memory-lengths 8192
--memory-methods flash linear --no-flex``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from _common import MiB, median_time, peak_extra_memory, report  # noqa: E402

from selfattention.attention import scaled_dot_product_attention  # noqa: E402
from selfattention.efficient import flash_attention, linear_attention, sliding_window_attention  # noqa: E402

MMAP_THRESHOLD = "4294967296"
HEADS, DIM, WINDOW = 8, 64, 256


def methods(flex: bool) -> dict:
    """Name -> function(q, k, v, causal) for every method measured."""
    table = {
        "dense": lambda q, k, v, c: scaled_dot_product_attention(q, k, v, is_causal=c)[0],
        "sdpa": lambda q, k, v, c: F.scaled_dot_product_attention(q, k, v, is_causal=c),
        "flash": lambda q, k, v, c: flash_attention(q, k, v, is_causal=c),
        f"window{WINDOW}": lambda q, k, v, c: sliding_window_attention(q, k, v, WINDOW, is_causal=c),
        "linear": lambda q, k, v, c: linear_attention(q, k, v, is_causal=c),
    }
    if flex:
        table[f"flex_window{WINDOW}"] = flex_sliding_window()
    return table


def flex_sliding_window():
    """Compiled ``flex_attention`` with a sliding-window block mask (forward only: no CPU backward)."""
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention

    compiled = torch.compile(flex_attention)
    masks: dict = {}

    def run(q, k, v, causal):
        key = (q.shape[-2], causal)
        if key not in masks:
            def band(b, h, i, j):
                return ((i - j) <= WINDOW) & ((i - j) >= 0) if causal else (i - j).abs() <= WINDOW

            masks[key] = create_block_mask(band, None, None, q.shape[-2], q.shape[-2], device="cpu")
        return compiled(q, k, v, block_mask=masks[key])

    return run


def inputs(length: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(length)
    return tuple(torch.randn(1, HEADS, length, DIM, generator=g) for _ in range(3))


def targets(rows: list[dict]) -> list[str]:
    """The issue's targets, checked on this run's numbers; missing measurements are reported as such."""
    def get(method, causal, length, field):
        for r in rows:
            if (r["method"], r["causal"], r["length"]) == (method, causal, length) and r.get(field) is not None:
                return r[field]
        return None

    lines = []
    mem = get("flash", False, 8192, "extra_MiB")
    lines.append(f"flash extra memory at 8192: {mem if mem is None else f'{mem:.1f} MiB'} (target <= 64 MiB)")
    t_f, t_s = get("flash", False, 4096, "time_ms"), get("sdpa", False, 4096, "time_ms")
    ratio = None if None in (t_f, t_s) else t_f / t_s
    lines.append(f"flash / SDPA time at 4096: {ratio if ratio is None else f'{ratio:.2f}x'} (target <= 2x)")
    mem = get("linear", True, 8192, "extra_MiB")
    lines.append(f"causal linear extra memory at 8192: {mem if mem is None else f'{mem:.1f} MiB'} (target <= 128 MiB)")
    lengths = sorted({r["length"] for r in rows if r["length"] >= 2048 and get("linear", True, r["length"], "time_ms")})
    faster = [get("linear", True, n, "time_ms") < get("sdpa", True, n, "time_ms") for n in lengths
              if get("sdpa", True, n, "time_ms")]
    lines.append(f"causal linear faster than causal SDPA at every length >= 2048 measured: "
                 f"{all(faster) if faster else None} (lengths {lengths})")
    for method in sorted({r["method"] for r in rows} - {"dense", "sdpa"}):
        for baseline in ("dense", "sdpa"):
            for causal in (False, True):
                timed = sorted(n for n in {r["length"] for r in rows} if get(method, causal, n, "time_ms")
                               and get(baseline, causal, n, "time_ms"))
                wins = [n for n in timed if get(method, causal, n, "time_ms") < get(baseline, causal, n, "time_ms")]
                cross = next((n for n in timed if all(m in wins for m in timed if m >= n)), None)
                lines.append(f"crossover {method} vs {baseline} ({'causal' if causal else 'non-causal'}): "
                             f"{'faster from ' + str(cross) if cross else 'not faster at the longest length measured'}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[256, 512, 1024, 2048, 4096, 8192])
    parser.add_argument("--memory-lengths", type=int, nargs="*", default=[],
                        help="extra lengths where only peak memory is measured")
    parser.add_argument("--memory-methods", nargs="*", default=None, help="methods measured at --memory-lengths")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-flex", action="store_true", help="skip compiled flex_attention (about 16 s per compile)")
    args = parser.parse_args()
    if os.environ.get("MALLOC_MMAP_THRESHOLD_") != MMAP_THRESHOLD:
        os.environ["MALLOC_MMAP_THRESHOLD_"] = MMAP_THRESHOLD
        print(f"re-running with MALLOC_MMAP_THRESHOLD_={MMAP_THRESHOLD} (glibc keeps big buffers mapped)", flush=True)
        os.execv(sys.executable, [sys.executable, *sys.argv])

    table = methods(flex=not args.no_flex)
    plan = [(n, m, True) for n in args.lengths for m in table]
    plan += [(n, m, False) for n in args.memory_lengths for m in (args.memory_methods or table)]
    rows = []
    with torch.inference_mode():
        for length, method, timed in plan:
            q, k, v = inputs(length)
            for causal in (False, True):
                fn = table[method]
                row = {"method": method, "causal": causal, "length": length}
                row["time_ms"] = 1000 * median_time(lambda: fn(q, k, v, causal), repeats=args.repeats) if timed else None
                if not timed and method.startswith("flex"):
                    fn(q, k, v, causal)  # compile first, so that memory measures the kernel, not the compiler
                row["extra_MiB"] = peak_extra_memory(lambda: fn(q, k, v, causal)) / MiB
                rows.append(row)
                print(f"{method:>16} causal={causal!s:5} L={length:5}  time={row['time_ms']} ms  "
                      f"extra={row['extra_MiB']:.1f} MiB", flush=True)
    checks = targets(rows)
    notes = ("d=64, 8 heads, batch 1, fp32, inference mode; extra_MiB = peak resident memory above the level "
             f"before the call (output included); {WINDOW=}; timings with MALLOC_MMAP_THRESHOLD_={MMAP_THRESHOLD}. "
             + " ".join(f"{c}." for c in checks))
    report("efficient", "Efficient attention: time and peak extra memory against length", rows,
           ["method", "causal", "length", "time_ms", "extra_MiB"], notes,
           views=[("Median time (ms)", *by_method(rows, "time_ms")),
                  ("Peak extra memory (MiB)", *by_method(rows, "extra_MiB"))])


def by_method(rows: list[dict], value: str) -> tuple[list[dict], list[str]]:
    """One row per (length, causal), one column per method: the shape a reader compares along."""
    methods = list(dict.fromkeys(r["method"] for r in rows))
    table: dict[tuple[int, bool], dict] = {}
    for r in rows:
        if r[value] is not None:
            table.setdefault((r["length"], r["causal"]), {"length": r["length"], "causal": r["causal"]})[
                r["method"]] = r[value]
    return [table[key] for key in sorted(table)], ["length", "causal", *methods]


if __name__ == "__main__":
    main()

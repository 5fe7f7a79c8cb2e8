"""Timing, peak-memory and reporting helpers shared by the benchmark scripts.

Each script measures, prints a table, and writes ``benchmarks/results/NAME.json``
plus ``NAME.md`` (a Markdown table the status page includes).  Memory is the
process's peak resident set above its level before the call, read from Linux's
``VmHWM`` after resetting it, so it covers every allocator torch uses on CPU.
"""

from __future__ import annotations

import ctypes
import gc
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Callable

import torch

RESULTS = Path(__file__).resolve().parent / "results"
MiB = 2**20


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not found in /proc/self/status")


def _release_free_memory() -> None:
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:  # not glibc: the measurement is then an upper bound
        pass


def peak_extra_memory(fn: Callable[[], object]) -> int:
    """Bytes of resident memory ``fn()`` needs above what the process holds before the call."""
    _release_free_memory()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM (the peak) to the current VmRSS
    before = _status_kib("VmRSS")
    result = fn()
    peak = _status_kib("VmHWM")
    del result
    _release_free_memory()
    return max(0, peak - before) * 1024


def median_time(fn: Callable[[], object], *, repeats: int = 5, warmup: int = 1, budget_s: float = 20.0) -> float:
    """Median wall time in seconds of ``fn()``, with fewer repeats when one call is slow."""
    for _ in range(warmup):
        fn()
    times: list[float] = []
    while len(times) < repeats:
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
        if sum(times) > budget_s and len(times) >= 1:
            break
    return statistics.median(times)


def environment() -> dict:
    """What the numbers were measured on."""
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "MALLOC_MMAP_THRESHOLD_": os.environ.get("MALLOC_MMAP_THRESHOLD_"),
    }


def markdown_table(rows: list[dict], columns: list[str]) -> str:
    """Rows of dicts as a Markdown table (floats to three significant figures)."""

    def cell(value) -> str:
        if isinstance(value, float):
            return f"{value:.3g}"
        return "" if value is None else str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def report(name: str, title: str, rows: list[dict], columns: list[str], notes: str = "", *,
           views: list[tuple[str, list[dict], list[str]]] | None = None) -> None:
    """Print the table and write ``results/NAME.json`` and ``results/NAME.md``.

    ``views`` replaces the one long table in the printout and the Markdown by
    several shorter ones, each ``(heading, rows, columns)``; the JSON always
    keeps ``rows`` as measured.
    """
    if views:
        table = "\n\n".join(f"**{heading}**\n\n{markdown_table(v_rows, v_columns)}"
                             for heading, v_rows, v_columns in views)
    else:
        table = markdown_table(rows, columns)
    print(f"\n{title}\n\n{table}\n")
    if notes:
        print(notes)
    RESULTS.mkdir(exist_ok=True)
    payload = {"title": title, "environment": environment(), "columns": columns, "rows": rows, "notes": notes}
    (RESULTS / f"{name}.json").write_text(json.dumps(payload, indent=2) + "\n")
    env = payload["environment"]
    measured = (f"Measured with torch {env['torch']} on {env['cores']} cores ({env['threads']} threads); "
                f"MALLOC_MMAP_THRESHOLD_={env['MALLOC_MMAP_THRESHOLD_']}.")
    (RESULTS / f"{name}.md").write_text(f"{table}\n\n{measured} {notes}\n")

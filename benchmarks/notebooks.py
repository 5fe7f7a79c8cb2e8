"""Execute every chapter in a fresh kernel; record its wall time and the kernel's peak memory.

The course promises each chapter runs in at most 90 s on 2 CPU cores with
under 2 GiB of memory (a free Binder session).  This script measures both and
writes ``results/notebooks.json`` and ``results/notebooks.md`` for the status page.

    python benchmarks/notebooks.py [notebooks/03_*.ipynb ...]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import MiB, report  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
BUDGET_S, BUDGET_MIB = 90, 2048


def kernel_peak_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024 / MiB
    raise RuntimeError(f"no VmHWM for kernel process {pid}")


def run_notebook(path: Path) -> dict:
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    with client.setup_kernel():
        start = time.perf_counter()
        for index, cell in enumerate(nb.cells):
            client.execute_cell(cell, index)
        wall = time.perf_counter() - start
        peak = kernel_peak_mib(client.km.provisioner.pid)
    return {"chapter": path.stem, "wall_s": round(wall, 1), "peak_mib": round(peak),
            "within_budget": "yes" if wall <= BUDGET_S and peak <= BUDGET_MIB else "NO"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every chapter in notebooks/")
    args = parser.parse_args()
    paths = args.notebooks or sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    rows = [run_notebook(p) for p in tqdm(paths, desc="chapters")]
    report("notebooks", "Chapter execution: wall time and kernel peak memory", rows,
           ["chapter", "wall_s", "peak_mib", "within_budget"],
           notes=f"Budget: {BUDGET_S} s and {BUDGET_MIB} MiB per chapter. Wall time excludes kernel start-up.")


if __name__ == "__main__":
    main()

"""Self-attention, step by step: the package behind the course.

Each module holds one idea and names the chapter that derives it.  Chapters
build each piece by hand first, then prove it equal to the version here.
"""

from __future__ import annotations

import random

import numpy as np
import torch

__version__ = "0.1.0"

__all__ = ["seed_everything", "__version__"]


def seed_everything(seed: int = 0) -> None:
    """Seed Python, NumPy and PyTorch so that a chapter gives the same output on every run.

    Called by the setup cell of every chapter.
    """
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)

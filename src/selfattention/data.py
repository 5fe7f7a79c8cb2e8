"""Corpora and generated tasks.  Nothing here downloads: text comes from Python itself.

Each generator names the chapter that uses it and is deterministic given a
``torch.Generator`` or seed.
"""

from __future__ import annotations

import torch

"""Matplotlib figures reused across chapters: heatmaps, bars, attention arrows.

Every function draws on an ``ax`` you may pass in (or a new one) and returns
the axes, so chapters compose them into grids.  Inputs are NumPy arrays or
tensors; nothing here computes attention.  First used in chapter 02.
"""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np

__all__ = ["to_numpy", "heatmap", "bar", "attention_arrows"]


def to_numpy(x) -> np.ndarray:
    """A NumPy copy of an array-like or a (possibly grad-tracking) tensor."""
    if hasattr(x, "detach"):
        x = x.detach().cpu()
        x = (x.float() if str(x.dtype) == "torch.bfloat16" else x).numpy()  # NumPy has no bfloat16
    return np.array(x)  # a copy: callers may change it without touching the tensor


def _new_ax(ax, figsize):
    if ax is None:
        _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def heatmap(
    matrix,
    row_labels: Sequence[str] | None = None,
    col_labels: Sequence[str] | None = None,
    *,
    ax=None,
    title: str | None = None,
    cmap: str = "viridis",
    vmin: float | None = None,
    vmax: float | None = None,
    annotate: bool = False,
    fmt: str = "{:.2f}",
    colorbar: bool = True,
    xlabel: str | None = "key",
    ylabel: str | None = "query",
):
    """Draw a 2-D matrix (attention weights, scores, similarities) with labelled rows and columns."""
    m = to_numpy(matrix)
    if m.ndim != 2:
        raise ValueError(f"heatmap expects a 2-D matrix, got shape {m.shape}")
    for name, labels, n in (("row_labels", row_labels, m.shape[0]), ("col_labels", col_labels, m.shape[1])):
        if labels is not None and len(labels) != n:
            raise ValueError(f"heatmap: {len(labels)} {name} for {n} {'rows' if name == 'row_labels' else 'columns'}")
    ax = _new_ax(ax, (0.45 * m.shape[1] + 2.5, 0.4 * m.shape[0] + 1.5))
    image = ax.imshow(m, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
    if col_labels is not None:
        ax.set_xticks(range(m.shape[1]), col_labels, rotation=60, ha="right", rotation_mode="anchor")
    if row_labels is not None:
        ax.set_yticks(range(m.shape[0]), row_labels)
    if annotate:
        middle = (np.nanmax(m) + np.nanmin(m)) / 2
        for (i, j), value in np.ndenumerate(m):
            ax.text(j, i, fmt.format(value), ha="center", va="center", fontsize=7,
                    color="black" if value > middle else "white")
    if colorbar:
        ax.figure.colorbar(image, ax=ax, shrink=0.8)
    if xlabel:
        ax.set_xlabel(xlabel)
    if ylabel:
        ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    return ax


def bar(values, labels: Sequence[str], *, ax=None, title: str | None = None, highlight: int | None = None,
        ylabel: str | None = None, color: str = "tab:blue", highlight_color: str = "tab:orange"):
    """Vertical bars, one per label; ``highlight`` colours one bar (the query word, the argmax)."""
    v = to_numpy(values).ravel()
    if len(labels) != len(v):
        raise ValueError(f"bar: {len(labels)} labels for {len(v)} values")
    ax = _new_ax(ax, (0.5 * len(v) + 2, 3))
    colors = [highlight_color if i == highlight else color for i in range(len(v))]
    ax.bar(range(len(v)), v, color=colors)
    ax.set_xticks(range(len(v)), labels, rotation=60, ha="right", rotation_mode="anchor")
    if ylabel:
        ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    return ax


def attention_arrows(weights, queries: Sequence[str], keys: Sequence[str] | None = None, *, ax=None,
                     title: str | None = None, highlight: int | None = None, color: str = "tab:blue"):
    """Static twin of the arrow view: queries on the left, keys on the right, line opacity = weight.

    ``highlight`` draws only the lines of one query, as hovering does in the
    interactive view (:mod:`selfattention.views`).
    """
    w = to_numpy(weights)
    keys = queries if keys is None else keys
    if w.shape != (len(queries), len(keys)):
        raise ValueError(f"attention_arrows: weights of shape {w.shape} do not match "
                         f"{len(queries)} queries and {len(keys)} keys")
    ax = _new_ax(ax, (3.2, 0.3 * max(len(queries), len(keys)) + 0.8))
    top = max(w.max(), 1e-12)
    for i in range(len(queries)):
        if highlight is not None and i != highlight:
            continue
        for j in range(len(keys)):
            ax.plot([0, 1], [-i, -j], color=color, alpha=float(w[i, j] / top), linewidth=2.5 * w[i, j] / top)
    for i, token in enumerate(queries):
        ax.text(-0.05, -i, token, ha="right", va="center", fontweight="bold" if i == highlight else None)
    for j, token in enumerate(keys):
        ax.text(1.05, -j, token, ha="left", va="center")
    ax.set_xlim(-0.6, 1.6)
    ax.set_ylim(-max(len(queries), len(keys)) + 0.5, 0.5)
    ax.axis("off")
    if title:
        ax.set_title(title)
    return ax


# --- Chapter 02: one query's weights, as bars and arrows ---

def query_weights(weights, queries: Sequence[str], keys: Sequence[str] | None = None, *, query: int = 0,
                  axes=None, title: str | None = None):
    """One query's row of attention weights as bars (left) and arrows (right); returns the two axes.

    ``weights`` is the full ``(Lq, Lk)`` matrix; ``query`` the row to show.
    ``axes`` is a pair (bar axes, arrow axes); by default a new figure holds
    both.  This is the static twin of :func:`selfattention.widgets.attention_panel`,
    which draws the same picture each time a control moves.

    Chapter 02, "Pick a query word".
    """
    w = to_numpy(weights)
    keys = list(queries) if keys is None else list(keys)
    if w.ndim != 2 or w.shape != (len(queries), len(keys)):
        raise ValueError(f"query_weights: weights of shape {w.shape} do not match {len(queries)} queries "
                         f"and {len(keys)} keys")
    if not isinstance(query, (int, np.integer)) or not 0 <= query < len(queries):
        raise ValueError(f"query_weights: query must be an index in [0, {len(queries)}), got {query!r}")
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(max(6.0, 0.55 * len(keys) + 4.0), 3.4), width_ratios=[2, 1],
                               layout="constrained")
    ax_bar, ax_arrows = axes
    bar(w[query], keys, ax=ax_bar, highlight=int(np.argmax(w[query])), ylabel="weight",
        title=f"weights of the query {queries[query]!r}" if title is None else title)
    ax_bar.set_ylim(0, 1)
    attention_arrows(w, queries, keys, ax=ax_arrows, highlight=query)
    return ax_bar, ax_arrows

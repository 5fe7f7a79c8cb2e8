"""Kernel-free views: attention as self-contained HTML with inline JavaScript.

A view is plain HTML (SVG or a table) plus one inline ``<script>``: no CDN, no
require.js, no kernel.  The same output therefore responds to hover and sliders
in the rendered book (Jupyter Book 1.x puts ``text/html`` outputs on the page
raw), in JupyterLab and VS Code (trusted notebooks) and in Colab.  Without
JavaScript a view still shows its first state: the HTML is rendered in Python.

- :func:`arrow_view`: queries on the left, keys on the right, one line per
  pair whose opacity and width grow with the weight; hovering (or focusing) a
  token keeps its lines and fades the others; a head selector switches heads.
- :func:`heatmap_view`: the weight matrix as a table, with a temperature slider
  that recomputes ``softmax(S / tau)`` in the browser from the stored scores.
- :func:`page`: several views in one standalone HTML document (used by the
  browser tests; handy for sharing a view outside a notebook).

First used in chapter 03 (the heatmap) and chapter 04 (the arrows, per head).

DOM conventions (the browser tests rely on them; keep them stable)
------------------------------------------------------------------
Every view's root is a ``div`` with class ``sa-view`` plus ``sa-arrows`` or
``sa-heatmap``, a deterministic ``id`` (``sa-<kind>-<hash of the data>-<n>``,
``n`` counting the views made in this process, so two views of the same data
differ), and these data attributes:

- ``data-heads``: number of heads (1 for a single matrix); ``data-head``: the
  head shown now (0-based);
- ``data-rows`` / ``data-cols``: number of queries / keys;
- arrows only: ``data-focus``: ``""``, ``"q<i>"`` or ``"k<j>"`` for the token
  hovered or focused now;
- heatmap only: ``data-temperature``: the current tau as a decimal string.

Inside the root:

- ``button.sa-head[data-head=h]``: head buttons (only when heads > 1); the
  shown one has ``aria-pressed="true"``;
- arrows: ``.sa-token[data-side="query"|"key"][data-index=i]`` (SVG ``text``,
  focusable); ``line.sa-line[data-q=i][data-k=j][data-weight=w]``: one per
  (query, key) pair of the shown head, ``w`` its weight at full precision.
  While a token is focused its lines carry class ``sa-active`` and every other
  line class ``sa-faded``; ``text.sa-weight-label[data-k=j]`` then shows the
  focused query's weights (empty otherwise);
- heatmap: ``input.sa-temperature`` (``type=range``; its value is log10 tau)
  and ``output.sa-temperature-value`` (tau, two decimals);
  ``td.sa-cell[data-q=i][data-k=j][data-weight=w]``: one per pair, ``w`` the
  weight shown now at full precision (the cell text is rounded); masked pairs
  also have class ``sa-masked`` and weight 0; ``th.sa-token`` label rows and
  columns.

To read the weights back, collect ``data-weight`` of the cells (or lines) by
``data-q`` and ``data-k``; each row sums to 1 (or is all 0 when every key of
that row is masked).
"""

from __future__ import annotations

import hashlib
import html
import itertools
import json
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .viz import to_numpy

__all__ = ["View", "arrow_view", "heatmap_view", "page"]

_counter = itertools.count()

_STYLE = """<style>
.sa-view{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;font-size:13px;margin:.5em 0;color:inherit}
.sa-view .sa-title{font-weight:600;margin-bottom:.3em}
.sa-view .sa-controls{display:flex;flex-wrap:wrap;gap:.4em;align-items:center;margin-bottom:.4em}
.sa-view button.sa-head{font:inherit;padding:.1em .6em;border:1px solid #888;border-radius:4px;background:transparent;color:inherit;cursor:pointer}
.sa-view button.sa-head[aria-pressed="true"]{background:#1f77b4;border-color:#1f77b4;color:#fff}
.sa-arrows svg{overflow:visible}
.sa-arrows .sa-token{fill:currentColor;cursor:pointer;outline:none}
.sa-arrows .sa-token:focus,.sa-arrows .sa-token.sa-active{font-weight:700;fill:#d62728}
.sa-arrows line.sa-line{stroke:#1f77b4;transition:stroke-opacity .15s}
.sa-arrows line.sa-line.sa-faded{stroke-opacity:.04}
.sa-arrows line.sa-line.sa-active{stroke:#d62728}
.sa-arrows .sa-weight-label{fill:#d62728;font-size:11px}
.sa-heatmap table.sa-grid{border-collapse:collapse}
.sa-heatmap .sa-grid th{font-weight:400;padding:1px 4px;white-space:nowrap}
.sa-heatmap .sa-grid thead th{writing-mode:vertical-rl;transform:rotate(180deg);text-align:left}
.sa-heatmap .sa-grid tbody th{text-align:right}
.sa-heatmap td.sa-cell{width:2.6em;height:1.9em;text-align:center;font-size:11px;border:1px solid rgba(128,128,128,.25)}
.sa-heatmap td.sa-masked{background:repeating-linear-gradient(45deg,rgba(128,128,128,.15) 0 3px,transparent 3px 6px)}
</style>"""

# Shared by both views: head buttons that set data-head and call the view's draw().
_JS_HEADS = """
  root.querySelectorAll("button.sa-head").forEach(function (b) {
    b.addEventListener("click", function () {
      root.dataset.head = b.dataset.head;
      root.querySelectorAll("button.sa-head").forEach(function (o) {
        o.setAttribute("aria-pressed", String(o === b));
      });
      draw();
    });
  });
"""

_JS_ARROWS = """
(function () {
  var root = document.getElementById(%(id)s), data = %(data)s;
  if (!root) return;
  var lines = root.querySelectorAll("line.sa-line"), labels = root.querySelectorAll("text.sa-weight-label");
  function draw() {
    var w = data.weights[+root.dataset.head], top = data.top[+root.dataset.head];
    var focus = root.dataset.focus, side = focus.charAt(0), idx = +focus.slice(1);
    lines.forEach(function (line) {
      var i = +line.dataset.q, j = +line.dataset.k, x = w[i][j], r = x / top;
      line.dataset.weight = String(x);
      line.setAttribute("stroke-opacity", (0.05 + 0.95 * r).toFixed(3));
      line.setAttribute("stroke-width", (0.5 + 3.5 * r).toFixed(2));
      var on = focus !== "" && (side === "q" ? i === idx : j === idx);
      line.classList.toggle("sa-active", on);
      line.classList.toggle("sa-faded", focus !== "" && !on);
    });
    labels.forEach(function (label) {
      label.textContent = side === "q" ? w[idx][+label.dataset.k].toFixed(2) : "";
    });
  }
  root.querySelectorAll(".sa-token").forEach(function (t) {
    var key = (t.dataset.side === "query" ? "q" : "k") + t.dataset.index;
    function on() { root.dataset.focus = key; t.classList.add("sa-active"); draw(); }
    function off() { root.dataset.focus = ""; t.classList.remove("sa-active"); draw(); }
    t.addEventListener("mouseenter", on); t.addEventListener("focus", on);
    t.addEventListener("mouseleave", off); t.addEventListener("blur", off);
  });
%(heads)s
  draw();
})();
"""

_JS_HEATMAP = """
(function () {
  var root = document.getElementById(%(id)s), data = %(data)s;
  if (!root) return;
  var slider = root.querySelector("input.sa-temperature"), shown = root.querySelector("output.sa-temperature-value");
  var cells = root.querySelectorAll("td.sa-cell");
  function softmaxRows(scores, tau) {
    return scores.map(function (row) {
      var m = -Infinity, total = 0;
      row.forEach(function (s) { if (s !== null && s / tau > m) m = s / tau; });
      var e = row.map(function (s) { if (s === null) return 0; var x = Math.exp(s / tau - m); total += x; return x; });
      return e.map(function (x) { return total > 0 ? x / total : 0; });
    });
  }
  function draw() {
    var tau = Math.pow(10, +slider.value), scores = data.scores[+root.dataset.head], w = softmaxRows(scores, tau);
    root.dataset.temperature = String(tau);
    shown.value = shown.textContent = tau.toFixed(2);
    cells.forEach(function (cell) {
      var i = +cell.dataset.q, j = +cell.dataset.k, x = w[i][j], s = scores[i][j];
      cell.dataset.weight = String(x);
      cell.classList.toggle("sa-masked", s === null);
      cell.textContent = s === null ? "" : x.toFixed(%(decimals)d);
      cell.style.background = s === null ? "" : "rgba(31,119,180," + x.toFixed(3) + ")";
      cell.style.color = x > 0.55 ? "#fff" : "";
      cell.title = data.queries[i] + " \\u2192 " + data.keys[j] + ": weight " + x.toFixed(4) +
        (s === null ? " (masked)" : ", score " + s.toFixed(3));
    });
  }
  slider.addEventListener("input", draw);
%(heads)s
  draw();
})();
"""


@dataclass(frozen=True)
class View:
    """An HTML view; notebooks display it through ``_repr_html_``, ``.html`` is the markup itself.

    Chapter 03, "A heatmap you can heat up"; chapter 04 uses the arrow view.
    """

    html: str

    def _repr_html_(self) -> str:
        return self.html


def _json_for_script(obj) -> str:
    # "<" escaped so that no "</script>" inside a token can end the script early.
    return json.dumps(obj, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c")


def _view_id(kind: str, payload: str) -> str:
    digest = hashlib.sha1(payload.encode()).hexdigest()[:10]
    return f"sa-{kind}-{digest}-{next(_counter)}"


def _as_heads(name: str, x, queries: Sequence[str], keys: Sequence[str]) -> np.ndarray:
    """``(Lq, Lk)`` or ``(h, Lq, Lk)`` -> float64 ``(h, Lq, Lk)``, checked against the token lists."""
    m = to_numpy(x).astype(np.float64)
    if m.ndim == 2:
        m = m[None]
    if m.ndim != 3 or m.shape[1:] != (len(queries), len(keys)) or m.shape[0] < 1:
        raise ValueError(f"{name} must have shape (Lq, Lk) or (heads, Lq, Lk) with Lq={len(queries)} queries and "
                         f"Lk={len(keys)} keys, got shape {to_numpy(x).shape}")
    return m


def _tokens(queries: Sequence[str], keys: Sequence[str] | None) -> tuple[list[str], list[str]]:
    if isinstance(queries, str) or (keys is not None and isinstance(keys, str)):
        raise TypeError("queries and keys must be sequences of tokens, not a single str")
    queries = [str(t) for t in queries]
    keys = queries if keys is None else [str(t) for t in keys]
    if not queries or not keys:
        raise ValueError(f"need at least one query and one key, got {len(queries)} queries and {len(keys)} keys")
    return queries, keys


def _head_buttons(n_heads: int, head_names: Sequence[str] | None) -> str:
    if head_names is not None and len(head_names) != n_heads:
        raise ValueError(f"head_names has {len(head_names)} names for {n_heads} heads")
    if n_heads == 1:
        return ""
    names = head_names or [f"head {h}" for h in range(n_heads)]
    return "".join(f'<button type="button" class="sa-head" data-head="{h}" aria-pressed="{str(h == 0).lower()}">'
                   f"{html.escape(str(name))}</button>" for h, name in enumerate(names))


def _title(title: str | None) -> str:
    return f'<div class="sa-title">{html.escape(title)}</div>' if title else ""


def arrow_view(weights, queries: Sequence[str], keys: Sequence[str] | None = None, *,
               head_names: Sequence[str] | None = None, title: str | None = None) -> View:
    """Attention as lines from query tokens (left) to key tokens (right); hover a token to focus it.

    ``weights`` is ``(Lq, Lk)`` or per head ``(h, Lq, Lk)`` (array or tensor);
    with several heads, buttons switch between them.  Line opacity and width
    are the weight divided by the largest weight of the shown head.

    Chapter 04, "Looking at each head"; the static twin is :func:`selfattention.viz.attention_arrows`.
    """
    queries, keys = _tokens(queries, keys)
    w = _as_heads("arrow_view: weights", weights, queries, keys)
    if not np.isfinite(w).all() or (w < 0).any():
        raise ValueError("arrow_view: weights must be finite and non-negative")
    top = [max(float(h.max()), 1e-12) for h in w]
    data = {"weights": w.tolist(), "top": top}
    payload = _json_for_script(data)
    view_id = _view_id("arrows", payload + _json_for_script([queries, keys, title]))

    row, pad, x_q, x_k = 22, 14, 150, 330
    height = pad * 2 + row * max(len(queries), len(keys))
    y = lambda i: pad + row * i + row / 2  # noqa: E731  (row centre)
    lines = []
    for i in range(len(queries)):
        for j in range(len(keys)):
            r = w[0, i, j] / top[0]
            lines.append(f'<line class="sa-line" data-q="{i}" data-k="{j}" data-weight="{float(w[0, i, j])!r}" '
                         f'x1="{x_q + 6}" y1="{y(i):g}" x2="{x_k - 6}" y2="{y(j):g}" '
                         f'stroke-opacity="{0.05 + 0.95 * r:.3f}" stroke-width="{0.5 + 3.5 * r:.2f}"/>')
    texts = [f'<text class="sa-token" data-side="query" data-index="{i}" tabindex="0" x="{x_q}" y="{y(i):g}" '
             f'text-anchor="end" dominant-baseline="middle">{html.escape(t)}</text>' for i, t in enumerate(queries)]
    texts += [f'<text class="sa-token" data-side="key" data-index="{j}" tabindex="0" x="{x_k}" y="{y(j):g}" '
              f'dominant-baseline="middle">{html.escape(t)}</text>' for j, t in enumerate(keys)]
    texts += [f'<text class="sa-weight-label" data-k="{j}" x="{x_k + 110}" y="{y(j):g}" text-anchor="end" '
              f'dominant-baseline="middle"></text>' for j in range(len(keys))]
    svg = (f'<svg width="{x_k + 120}" height="{height}" role="img" '
           f'aria-label="attention of {len(queries)} queries over {len(keys)} keys">'
           + "".join(lines) + "".join(texts) + "</svg>")
    buttons = _head_buttons(len(w), head_names)
    controls = f'<div class="sa-controls">{buttons}</div>' if buttons else ""
    script = _JS_ARROWS % {"id": json.dumps(view_id), "data": payload, "heads": _JS_HEADS}
    markup = (f'{_STYLE}<div class="sa-view sa-arrows" id="{view_id}" data-heads="{len(w)}" data-head="0" '
              f'data-rows="{len(queries)}" data-cols="{len(keys)}" data-focus="">{_title(title)}'
              f"{controls}{svg}<script>{script}</script></div>")
    return View(markup)


def _softmax_rows(scores: np.ndarray, tau: float) -> np.ndarray:
    """Row softmax of ``scores / tau`` with NaN meaning masked (weight 0); the browser does the same."""
    s = np.where(np.isnan(scores), -np.inf, scores / tau)
    top = s.max(axis=-1, keepdims=True)
    e = np.exp(s - np.where(np.isfinite(top), top, 0.0))
    total = e.sum(axis=-1, keepdims=True)
    return e / np.where(total > 0, total, 1.0)


def heatmap_view(scores, queries: Sequence[str], keys: Sequence[str] | None = None, *, mask=None,
                 temperature: float = 1.0, temperature_range: tuple[float, float] = (0.1, 10.0),
                 head_names: Sequence[str] | None = None, title: str | None = None, decimals: int = 2) -> View:
    """The weights ``softmax(S / tau)`` as a table, with a temperature slider that works without a kernel.

    ``scores`` are the scores ``S`` (before the softmax), ``(Lq, Lk)`` or per
    head ``(h, Lq, Lk)``.  Masked pairs (``mask`` False, torch SDPA's polarity,
    broadcast to the scores; or a score of ``-inf``) are stored as null and get
    weight 0.  The slider moves ``tau`` on a log scale over ``temperature_range``.

    Chapter 03, "A heatmap you can heat up".
    """
    queries, keys = _tokens(queries, keys)
    s = _as_heads("heatmap_view: scores", scores, queries, keys)
    if mask is not None:
        m = to_numpy(mask).astype(bool)
        try:
            m = np.broadcast_to(m, s.shape)
        except ValueError:
            raise ValueError(f"heatmap_view: mask of shape {m.shape} does not broadcast to the scores "
                             f"{s.shape}") from None
        s = np.where(m, s, np.nan)
    s = np.where(np.isneginf(s), np.nan, s)
    if np.isinf(s).any() or (np.isnan(to_numpy(scores)).any()):
        raise ValueError("heatmap_view: scores must be finite (mark masked pairs with mask or -inf)")
    low, high = temperature_range
    if not 0 < low <= temperature <= high:
        raise ValueError(f"heatmap_view: need 0 < low <= temperature <= high, got temperature_range={temperature_range} "
                         f"and temperature={temperature}")
    data = {"scores": [[[None if math.isnan(x) else x for x in r] for r in h] for h in s.tolist()],
            "queries": queries, "keys": keys}
    payload = _json_for_script(data)
    view_id = _view_id("heatmap", payload + _json_for_script([title, temperature, decimals]))

    weights = _softmax_rows(s[0], temperature)
    head = "".join(f'<th class="sa-token" data-side="key" data-index="{j}" scope="col">{html.escape(t)}</th>'
                   for j, t in enumerate(keys))
    body = []
    for i, token in enumerate(queries):
        cells = "".join(
            f'<td class="sa-cell{" sa-masked" if math.isnan(s[0, i, j]) else ""}" data-q="{i}" data-k="{j}" '
            f'data-weight="{float(weights[i, j])!r}">{"" if math.isnan(s[0, i, j]) else f"{weights[i, j]:.{decimals}f}"}</td>'
            for j in range(len(keys)))
        body.append(f'<tr><th class="sa-token" data-side="query" data-index="{i}" scope="row">'
                    f"{html.escape(token)}</th>{cells}</tr>")
    lo, hi, at = (math.log10(x) for x in (low, high, temperature))
    slider = (f'<label>temperature &tau; <input class="sa-temperature" type="range" min="{lo:.4f}" max="{hi:.4f}" '
              f'step="any" value="{at:.6f}" aria-label="temperature (log10)"></label>'
              f'<output class="sa-temperature-value">{temperature:.2f}</output>')
    script = _JS_HEATMAP % {"id": json.dumps(view_id), "data": payload, "heads": _JS_HEADS, "decimals": decimals}
    markup = (f'{_STYLE}<div class="sa-view sa-heatmap" id="{view_id}" data-heads="{len(s)}" data-head="0" '
              f'data-rows="{len(queries)}" data-cols="{len(keys)}" data-temperature="{float(temperature)!r}">{_title(title)}'
              f'<div class="sa-controls">{_head_buttons(len(s), head_names)}{slider}</div>'
              f'<table class="sa-grid"><thead><tr><th></th>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'
              f"<script>{script}</script></div>")
    return View(markup)


def page(*views: View, title: str = "Self-attention views") -> str:
    """A standalone HTML document holding ``views``, one after the other.

    Used by the browser tests of chapter 03 and 04's views.
    """
    for v in views:
        if not isinstance(v, View):
            raise TypeError(f"page expects View objects, got {type(v).__name__}")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title></head>'
            f'<body>{"".join(v.html for v in views)}</body></html>\n')

"""Interactive panels (ipywidgets) for Binder, Colab and Jupyter.

A :class:`Panel` is a row of controls above a matplotlib figure.  Moving any
control calls a *draw* function with the current values of all controls and
shows the redrawn figure.  :func:`attention_panel` is the panel most chapters
need: pick a query token (and, where the chapter asks for them, a temperature,
a head or a dimension) and see that query's attention weights as bars and
arrows.  A chapter with another picture builds a :class:`Panel` with its own
draw function and the control helpers below.

The figure is a plain :class:`matplotlib.figure.Figure` (not pyplot's), so it
is never shown twice, and it reaches the page as a PNG inside an
``ipywidgets.Image``; this works with any matplotlib backend, in Colab, and
when a notebook runs headless (nbclient), where nothing is drawn on screen but
every redraw still happens.  Panels need a kernel: the rendered book shows a
static figure of the default state next to each one.

First used in chapter 02, "Attention by hand".
"""

from __future__ import annotations

import io
from typing import Any, Callable, Mapping, Sequence

import ipywidgets as widgets
import numpy as np
from matplotlib.figure import Figure

from .viz import query_weights

__all__ = [
    "Panel",
    "query_dropdown",
    "temperature_slider",
    "head_selector",
    "dimension_slider",
    "attention_panel",
]

DrawFn = Callable[[Figure, dict[str, Any]], None]


class Panel:
    """Controls above a figure that is redrawn whenever a control's value changes.

    ``controls`` maps a name to an ipywidgets value widget (a dropdown, a
    slider); ``draw(figure, values)`` receives an empty figure and the dict
    ``{name: control.value}`` and draws on it.  Display the panel by making it
    the last expression of a cell, or with ``IPython.display.display(panel)``.
    ``panel.figure`` holds the current drawing, so tests (and curious readers)
    can inspect what is shown.

    Chapter 02, "Pick a query word"; reused by later chapters.
    """

    def __init__(self, controls: Mapping[str, widgets.ValueWidget], draw: DrawFn, *,
                 figsize: tuple[float, float] = (9.0, 3.4), dpi: int = 100):
        if not controls:
            raise ValueError("Panel: controls is empty; give at least one control to move")
        for name, control in controls.items():
            if not isinstance(control, widgets.ValueWidget):
                raise TypeError(f"Panel: control {name!r} must be an ipywidgets value widget, "
                                f"got {type(control).__name__}")
        if not callable(draw):
            raise TypeError(f"Panel: draw must be callable, got {type(draw).__name__}")
        self.controls = dict(controls)
        self.figure = Figure(figsize=figsize, dpi=dpi, layout="constrained")
        self.image = widgets.Image(format="png")
        self.widget = widgets.VBox([widgets.HBox(list(self.controls.values())), self.image])
        self._draw = draw
        for control in self.controls.values():
            control.observe(self._on_change, names="value")
        self.redraw()

    @property
    def values(self) -> dict[str, Any]:
        """The current value of every control, by name."""
        return {name: control.value for name, control in self.controls.items()}

    def redraw(self) -> None:
        """Draw the figure afresh from the current values and send it to the page."""
        self.figure.clear()
        self._draw(self.figure, self.values)
        buffer = io.BytesIO()
        self.figure.savefig(buffer, format="png")
        self.image.value = buffer.getvalue()

    def _on_change(self, change) -> None:
        self.redraw()

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)


def _query_index(tokens: Sequence[str], query: int | str) -> int:
    if isinstance(query, str):
        if query not in tokens:
            raise ValueError(f"query {query!r} is not one of the tokens {list(tokens)}")
        return list(tokens).index(query)
    if not isinstance(query, (int, np.integer)) or not 0 <= query < len(tokens):
        raise ValueError(f"query must be a token or an index in [0, {len(tokens)}), got {query!r}")
    return int(query)


def query_dropdown(tokens: Sequence[str], query: int | str = 0) -> widgets.Dropdown:
    """A dropdown of the tokens whose value is the chosen token's *index* (tokens may repeat).

    ``query`` is the initial choice: an index, or a token (its first occurrence).

    Chapter 02, "Pick a query word".
    """
    if len(tokens) == 0:
        raise ValueError("query_dropdown: tokens is empty")
    options = [(f"{i}: {token}", i) for i, token in enumerate(tokens)]
    return widgets.Dropdown(options=options, value=_query_index(tokens, query), description="query")


def temperature_slider(value: float = 1.0, *, low: float = 0.1, high: float = 5.0,
                       step: float = 0.05) -> widgets.FloatSlider:
    """A slider for the softmax temperature (tau): low sharpens the weights, high flattens them.

    Chapter 02 onwards; the temperature itself is explained in chapter 03.
    """
    if not 0 < low <= value <= high:
        raise ValueError(f"temperature_slider: need 0 < low <= value <= high, got low={low}, value={value}, "
                         f"high={high}")
    return widgets.FloatSlider(value=value, min=low, max=high, step=step, description="temperature",
                               continuous_update=False)


def head_selector(n_heads: int, head: int = 0) -> widgets.Dropdown:
    """A dropdown of heads ``0 .. n_heads-1``; its value is the head index.

    Chapter 04, "Multi-head attention".
    """
    if not isinstance(n_heads, (int, np.integer)) or n_heads < 1:
        raise ValueError(f"head_selector: n_heads must be a positive int, got {n_heads!r}")
    if not 0 <= head < n_heads:
        raise ValueError(f"head_selector: head must be in [0, {n_heads}), got {head!r}")
    return widgets.Dropdown(options=[(f"head {h}", h) for h in range(n_heads)], value=head, description="head")


def dimension_slider(dims: Sequence[int], dim: int | None = None) -> widgets.SelectionSlider:
    """A slider over the given sizes (for example ``d_k`` in 2, 8, 32, 128); its value is the size.

    Chapter 03, "Why divide by the square root of d_k".
    """
    dims = [int(d) for d in dims]
    if not dims:
        raise ValueError("dimension_slider: dims is empty")
    dim = dims[0] if dim is None else dim
    if dim not in dims:
        raise ValueError(f"dimension_slider: dim={dim!r} is not one of dims {dims}")
    return widgets.SelectionSlider(options=dims, value=dim, description="dimension", continuous_update=False)


def attention_panel(
    tokens: Sequence[str],
    weights_fn: Callable[..., Any],
    *,
    keys: Sequence[str] | None = None,
    query: int | str = 0,
    temperature: float | None = None,
    n_heads: int | None = None,
    dims: Sequence[int] | None = None,
    title: str | None = None,
) -> Panel:
    """Pick a query token and see its attention weights as bars (left) and arrows (right).

    ``weights_fn`` returns the full weight matrix ``(Lq, Lk)`` (array or
    tensor), one row per token in ``tokens`` and one column per key (``keys``
    defaults to ``tokens``).  It is called with keyword arguments for the
    extra controls that were asked for, and only those:

    - ``temperature=...`` (float) when ``temperature`` gives the slider's start value;
    - ``head=...`` (int) when ``n_heads`` is given;
    - ``dim=...`` (int) when ``dims`` lists the sizes to choose from.

    So ``attention_panel(tokens, lambda: A)`` shows a fixed matrix, and
    ``attention_panel(tokens, lambda head: A[head], n_heads=4)`` adds a head selector.

    Chapter 02, "Pick a query word"; chapters 03 and 04 add the other controls.
    """
    keys = list(tokens) if keys is None else list(keys)
    controls: dict[str, widgets.ValueWidget] = {"query": query_dropdown(tokens, query)}
    if temperature is not None:
        controls["temperature"] = temperature_slider(temperature)
    if n_heads is not None:
        controls["head"] = head_selector(n_heads)
    if dims is not None:
        controls["dim"] = dimension_slider(dims)

    def draw(figure: Figure, values: dict[str, Any]) -> None:
        i = values.pop("query")
        query_weights(weights_fn(**values), tokens, keys, query=i, axes=figure.subplots(1, 2, width_ratios=[2, 1]),
                      title=title)

    return Panel(controls, draw, figsize=(max(6.0, 0.55 * len(keys) + 4.0), 3.4))

"""ipywidgets panels, built headless: moving a control must change what is drawn."""

import ipywidgets as widgets
import numpy as np
import pytest

from selfattention.widgets import (
    Panel,
    attention_panel,
    dimension_slider,
    head_selector,
    query_dropdown,
    temperature_slider,
)

TOKENS = ["the", "cat", "sat", "the"]


def _softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


SCORES = np.array([[3.0, 1.0, 0.0, 0.5],
                   [0.0, 2.0, 1.0, -1.0],
                   [1.0, 0.0, 4.0, 0.0],
                   [0.2, 0.1, 0.0, 2.5]])


def _bar_heights(panel):
    return np.array([p.get_height() for p in panel.figure.axes[0].patches])


def _line_alphas(panel):
    return np.array([line.get_alpha() for line in panel.figure.axes[1].lines])


def test_query_dropdown_changes_bars_and_arrows():
    weights = _softmax(SCORES)
    panel = attention_panel(TOKENS, lambda: weights, query=0)
    np.testing.assert_allclose(_bar_heights(panel), weights[0], atol=1e-12)
    first_png = panel.image.value
    assert first_png[:8] == b"\x89PNG\r\n\x1a\n"
    # The arrows show only the chosen query's lines, opacity relative to its largest weight.
    np.testing.assert_allclose(_line_alphas(panel), weights[0] / weights.max(), atol=1e-12)

    panel.controls["query"].value = 2
    np.testing.assert_allclose(_bar_heights(panel), weights[2], atol=1e-12)
    np.testing.assert_allclose(_line_alphas(panel), weights[2] / weights.max(), atol=1e-12)
    assert panel.image.value != first_png
    assert panel.values == {"query": 2}


def test_query_by_token_and_repeated_tokens():
    weights = _softmax(SCORES)
    panel = attention_panel(TOKENS, lambda: weights, query="sat")
    assert panel.controls["query"].value == 2
    # "the" appears twice: the dropdown holds indices, so both occurrences can be chosen.
    panel.controls["query"].value = 3
    np.testing.assert_allclose(_bar_heights(panel), weights[3], atol=1e-12)


def test_temperature_slider_changes_the_weights():
    calls = []

    def weights_fn(temperature):
        calls.append(temperature)
        return _softmax(SCORES / temperature)

    panel = attention_panel(TOKENS, weights_fn, query=1, temperature=1.0)
    before = _bar_heights(panel)
    panel.controls["temperature"].value = 3.0
    after = _bar_heights(panel)
    np.testing.assert_allclose(after, _softmax(SCORES[1] / 3.0), atol=1e-12)
    assert calls == [1.0, 3.0]
    # A higher temperature flattens the row: the largest weight drops.
    assert after.max() < before.max() - 0.1


def test_head_and_dimension_controls_are_passed_to_the_callback():
    per_head = np.stack([_softmax(SCORES), _softmax(SCORES.T)])

    def weights_fn(head, dim):
        return _softmax(np.log(per_head[head]) * dim / 4)

    panel = attention_panel(TOKENS, weights_fn, n_heads=2, dims=[4, 16])
    assert set(panel.controls) == {"query", "head", "dim"}
    np.testing.assert_allclose(_bar_heights(panel), per_head[0][0], atol=1e-12)
    panel.controls["head"].value = 1
    np.testing.assert_allclose(_bar_heights(panel), per_head[1][0], atol=1e-12)
    panel.controls["dim"].value = 16
    np.testing.assert_allclose(_bar_heights(panel), _softmax(np.log(per_head[1][0]) * 4), atol=1e-12)


def test_generic_panel_redraws_with_all_values():
    seen = []

    def draw(figure, values):
        seen.append(dict(values))
        ax = figure.subplots()
        ax.plot(np.arange(5) * values["dim"])

    panel = Panel({"dim": dimension_slider([1, 2, 3]), "head": head_selector(3)}, draw)
    panel.controls["dim"].value = 3
    assert seen == [{"dim": 1, "head": 0}, {"dim": 3, "head": 0}]
    np.testing.assert_array_equal(panel.figure.axes[0].lines[0].get_ydata(), np.arange(5) * 3)
    assert len(panel.figure.axes) == 1  # the old drawing is cleared, not stacked


def test_panel_displays_as_a_widget():
    panel = attention_panel(TOKENS, lambda: _softmax(SCORES))
    bundle = panel._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert isinstance(panel.widget, widgets.VBox)


def test_errors_name_the_bad_value():
    with pytest.raises(ValueError, match=r"weights of shape \(3, 3\) do not match 4 queries and 4 keys"):
        attention_panel(TOKENS, lambda: np.eye(3))
    with pytest.raises(ValueError, match=r"query 'dog' is not one of the tokens"):
        attention_panel(TOKENS, lambda: _softmax(SCORES), query="dog")
    with pytest.raises(ValueError, match=r"query must be a token or an index in \[0, 4\), got 7"):
        query_dropdown(TOKENS, 7)
    with pytest.raises(ValueError, match="n_heads must be a positive int, got 0"):
        head_selector(0)
    with pytest.raises(ValueError, match=r"dim=5 is not one of dims \[1, 2\]"):
        dimension_slider([1, 2], 5)
    with pytest.raises(ValueError, match="low=0.1, value=9.0, high=5.0"):
        temperature_slider(9.0)
    with pytest.raises(ValueError, match="controls is empty"):
        Panel({}, lambda figure, values: None)
    with pytest.raises(TypeError, match="control 'x' must be an ipywidgets value widget, got int"):
        Panel({"x": 3}, lambda figure, values: None)


def test_query_weights_static_twin_draws_the_chosen_row():
    from selfattention.viz import query_weights

    weights = _softmax(SCORES)
    ax_bar, ax_arrows = query_weights(weights, TOKENS, query=1)
    np.testing.assert_allclose([p.get_height() for p in ax_bar.patches], weights[1], atol=1e-12)
    assert ax_bar.patches[1].get_facecolor() != ax_bar.patches[0].get_facecolor()  # argmax highlighted
    with pytest.raises(ValueError, match=r"query must be an index in \[0, 4\), got 4"):
        query_weights(weights, TOKENS, query=4)

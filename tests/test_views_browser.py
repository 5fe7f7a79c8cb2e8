"""The kernel-free views in a real browser: Debian's Chromium driven by Playwright, offline.

A standalone page with several views is served on 127.0.0.1; every request that
leaves loopback is aborted.  Hovering, the temperature slider and the head
buttons must change what is shown, through the DOM conventions documented in
:mod:`selfattention.views`.
"""

from __future__ import annotations

import pytest
import torch
from browser import offline_browser, open_page, serve

from selfattention.attention import causal_mask
from selfattention.views import arrow_view, heatmap_view, page

TOKENS = ["the", "cat", "sat", "on", "the", "<mat>"]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """Serve a page with two arrow views and two heatmaps (several views must not interfere)."""
    g = torch.Generator().manual_seed(0)
    weights = torch.softmax(3 * torch.randn(3, 6, 6, generator=g), -1)
    scores = 2 * torch.randn(2, 6, 6, generator=g)
    views = [
        arrow_view(weights, TOKENS, head_names=["prev", "match", "mix"], title="three heads"),
        arrow_view(weights[0], TOKENS, title="one head"),
        heatmap_view(scores, TOKENS, mask=causal_mask(6), title="causal, two heads"),
        heatmap_view(scores[0], TOKENS, title="plain"),
    ]
    root = tmp_path_factory.mktemp("views")
    (root / "index.html").write_text(page(*views), encoding="utf-8")
    with serve(root) as url:
        yield {"url": f"{url}/index.html", "weights": weights, "scores": scores}


@pytest.fixture(scope="module")
def browser(chromium_path):
    """Debian's Chromium (the ``chromium_path`` fixture skips, with its reason, where it is missing)."""
    with offline_browser(chromium_path) as b:
        yield b


@pytest.fixture
def page_(browser, site):
    """A fresh offline page on the served views; afterwards, no errors and no request beyond loopback."""
    pg, log = open_page(browser, site["url"])
    yield pg
    pg.close()
    assert log.console_errors == [] and log.page_errors == [], f"errors: {log.console_errors} {log.page_errors}"
    assert log.blocked == [], f"requests left loopback: {log.blocked}"


def _line_state(root):
    """{(q, k): (weight, class)} of every line in one arrow view."""
    return {(int(q), int(k)): (float(w), c) for q, k, w, c in root.locator("line.sa-line").evaluate_all(
        "ls => ls.map(l => [l.dataset.q, l.dataset.k, l.dataset.weight, l.getAttribute('class')])")}


def _cell_weights(root):
    """The heatmap's weights read back from the DOM, as a (rows, cols) tensor."""
    rows, cols = int(root.get_attribute("data-rows")), int(root.get_attribute("data-cols"))
    out = torch.full((rows, cols), float("nan"), dtype=torch.float64)
    for q, k, w in root.locator("td.sa-cell").evaluate_all(
            "cs => cs.map(c => [c.dataset.q, c.dataset.k, c.dataset.weight])"):
        out[int(q), int(k)] = float(w)
    return out


def test_views_render_with_distinct_deterministic_ids(page_):
    ids = page_.locator(".sa-view").evaluate_all("vs => vs.map(v => v.id)")
    assert len(ids) == 4 and len(set(ids)) == 4
    assert page_.locator(".sa-view.sa-arrows").count() == 2 and page_.locator(".sa-view.sa-heatmap").count() == 2


def test_hovering_a_query_focuses_its_lines(page_, site):
    root = page_.locator(".sa-arrows").first
    before = _line_state(root)
    assert all("sa-faded" not in c and "sa-active" not in c for _, c in before.values())
    root.locator('.sa-token[data-side="query"][data-index="2"]').hover()
    assert root.get_attribute("data-focus") == "q2"
    after = _line_state(root)
    assert {qk for qk, (_, c) in after.items() if "sa-active" in c} == {(2, k) for k in range(6)}
    assert {qk for qk, (_, c) in after.items() if "sa-faded" in c} == {(q, k) for q in range(6) for k in range(6) if q != 2}
    labels = root.locator("text.sa-weight-label").all_text_contents()
    assert labels == [f"{x:.2f}" for x in site["weights"][0, 2].tolist()]
    # the other arrow view on the page is untouched
    other = _line_state(page_.locator(".sa-arrows").nth(1))
    assert all("sa-faded" not in c for _, c in other.values())
    # hovering a key focuses the lines into it
    root.locator('.sa-token[data-side="key"][data-index="5"]').hover()
    after = _line_state(root)
    assert {qk for qk, (_, c) in after.items() if "sa-active" in c} == {(q, 5) for q in range(6)}
    page_.mouse.move(0, 0)
    assert root.get_attribute("data-focus") == ""
    assert all("sa-faded" not in c for _, c in _line_state(root).values())


def test_head_selector_switches_arrow_heads(page_, site):
    root = page_.locator(".sa-arrows").first
    weights = site["weights"]
    for h in (0, 2, 1):
        if h:
            root.locator(f'button.sa-head[data-head="{h}"]').click()
        assert root.get_attribute("data-head") == str(h)
        assert root.locator(f'button.sa-head[data-head="{h}"]').get_attribute("aria-pressed") == "true"
        shown = torch.tensor([[_line_state(root)[(q, k)][0] for k in range(6)] for q in range(6)], dtype=torch.float64)
        torch.testing.assert_close(shown, weights[h].double(), rtol=0, atol=1e-6)
    assert page_.locator(".sa-arrows").nth(1).locator("button.sa-head").count() == 0


def test_temperature_slider_changes_weights_that_still_sum_to_one(page_, site):
    root = page_.locator(".sa-heatmap").nth(1)  # the unmasked one
    scores = site["scores"][0].double()
    at_one = _cell_weights(root)
    torch.testing.assert_close(at_one, torch.softmax(scores, -1), rtol=0, atol=1e-12)
    slider = root.locator("input.sa-temperature")
    for tau in (0.2, 5.0):
        slider.fill(f"{torch.tensor(tau).log10().item():.4f}")
        tau_shown = float(root.get_attribute("data-temperature"))
        assert abs(tau_shown / tau - 1) < 1e-3  # the slider holds log10(tau) to 4 decimals here
        assert root.locator("output.sa-temperature-value").text_content() == f"{tau_shown:.2f}"
        w = _cell_weights(root)
        torch.testing.assert_close(w.sum(-1), torch.ones(6, dtype=torch.float64), rtol=0, atol=1e-12)
        torch.testing.assert_close(w, torch.softmax(scores / tau_shown, -1), rtol=0, atol=1e-12)
        assert (w - at_one).abs().max() > 0.05
    # low temperature sharpens: the largest weight of each row grows
    slider.fill(f"{torch.tensor(0.2).log10().item():.4f}")
    assert (_cell_weights(root).max(-1).values > at_one.max(-1).values - 1e-12).all()


def test_masked_cells_stay_zero_and_heads_switch_in_heatmap(page_, site):
    root = page_.locator(".sa-heatmap").first
    allowed = causal_mask(6)
    for h in (0, 1):
        if h:
            root.locator('button.sa-head[data-head="1"]').click()
        root.locator("input.sa-temperature").fill("0.3")
        w = _cell_weights(root)
        assert (w[~allowed] == 0).all()
        assert root.locator("td.sa-cell.sa-masked").count() == int((~allowed).sum())
        tau = float(root.get_attribute("data-temperature"))
        ref = torch.softmax((site["scores"][h].double() / tau).masked_fill(~allowed, float("-inf")), -1)
        torch.testing.assert_close(w, ref, rtol=0, atol=1e-12)
    # the plain heatmap kept its own temperature
    assert page_.locator(".sa-heatmap").nth(1).get_attribute("data-temperature") == "1"

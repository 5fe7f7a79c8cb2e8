"""selfattention.views without a browser: markup, stored data, ids, escaping, errors."""

from __future__ import annotations

import json
import re

import pytest
import torch

from selfattention.attention import causal_mask
from selfattention.views import View, arrow_view, heatmap_view, page

TOKENS = ["the", "cat", "sat"]


def _data(view: View) -> dict:
    """The JSON the view's script reads."""
    return json.loads(re.search(r"data = (\{.*?\});\n", view.html).group(1))


def _attr(view: View, name: str) -> str:
    return re.search(rf'class="sa-view [^"]*"[^>]* {name}="([^"]*)"', view.html).group(1)


def test_views_are_self_contained_html():
    for view in (arrow_view(torch.eye(3), TOKENS), heatmap_view(torch.zeros(3, 3), TOKENS)):
        assert view._repr_html_() == view.html
        assert "<script>" in view.html and "src=" not in view.html and "require" not in view.html
        assert "http" not in view.html  # no CDN, no fetch
        assert re.search(r'id="sa-(arrows|heatmap)-[0-9a-f]{10}-\d+"', view.html)


def test_ids_are_deterministic_and_distinct():
    a, b = arrow_view(torch.eye(3), TOKENS), arrow_view(torch.eye(3), TOKENS)
    id_a, id_b = (re.search(r'id="([^"]+)"', v.html).group(1) for v in (a, b))
    assert id_a != id_b  # same data twice on a page: the counter keeps them apart
    assert id_a.rsplit("-", 1)[0] == id_b.rsplit("-", 1)[0]  # the hash part depends only on the data
    assert int(id_b.rsplit("-", 1)[1]) == int(id_a.rsplit("-", 1)[1]) + 1
    assert a.html.replace(id_a, "ID") == b.html.replace(id_b, "ID")


def test_arrow_view_stores_every_head_and_renders_the_first():
    w = torch.softmax(torch.randn(2, 3, 4, generator=torch.Generator().manual_seed(0)), -1)
    view = arrow_view(w, TOKENS, ["a", "b", "c", "d"], head_names=["prev", "match"])
    torch.testing.assert_close(torch.tensor(_data(view)["weights"], dtype=torch.float64), w.double(), rtol=0, atol=1e-7)
    assert _attr(view, "data-heads") == "2" and _attr(view, "data-rows") == "3" and _attr(view, "data-cols") == "4"
    assert view.html.count('class="sa-line"') == 12 and view.html.count('<button type="button" class="sa-head"') == 2
    first = [float(x) for x in re.findall(r'class="sa-line" data-q="\d" data-k="\d" data-weight="([^"]+)"', view.html)]
    torch.testing.assert_close(torch.tensor(first, dtype=torch.float64), w[0].double().flatten(), rtol=0, atol=1e-7)
    assert ">prev</button>" in view.html
    assert 'class="sa-head"' not in arrow_view(w[0], TOKENS, list("abcd")).html


def test_heatmap_stores_scores_with_masked_as_null_and_renders_weights():
    scores = torch.randn(3, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    view = heatmap_view(scores, TOKENS, mask=causal_mask(3), temperature=0.5)
    stored = _data(view)["scores"][0]
    assert stored[0][1] is None and stored[0][2] is None and stored[1][2] is None
    assert stored[2] == scores[2].tolist()  # float64 scores are stored at full precision
    cells = re.findall(r'data-q="(\d)" data-k="(\d)" data-weight="([^"]+)"', view.html)
    shown = torch.zeros(3, 3, dtype=torch.float64)
    for q, k, w in cells:
        shown[int(q), int(k)] = float(w)
    ref = torch.softmax((scores / 0.5).masked_fill(~causal_mask(3), float("-inf")), -1)
    torch.testing.assert_close(shown, ref, rtol=0, atol=1e-7)
    assert view.html.count("sa-cell sa-masked") == 3
    assert _attr(view, "data-temperature") == "0.5"
    # -inf scores count as masked too; a fully masked row shows zeros
    s = scores.clone()
    s[1] = float("-inf")
    assert _data(heatmap_view(s, TOKENS))["scores"][0][1] == [None, None, None]


def test_tokens_are_escaped_in_markup_and_script():
    view = heatmap_view(torch.zeros(2, 2), ["<b>", "</script><script>alert(1)</script>"])
    assert "<b>" not in view.html.split("<table")[1] and "&lt;b&gt;" in view.html
    assert view.html.count("</script>") == 1
    assert _data(view)["queries"][1] == "</script><script>alert(1)</script>"


def test_page_holds_views():
    doc = page(arrow_view(torch.eye(2), ["a", "b"]), heatmap_view(torch.eye(2), ["a", "b"]), title="t")
    assert doc.startswith("<!DOCTYPE html>") and doc.count('class="sa-view ') == 2 and "<title>t</title>" in doc
    with pytest.raises(TypeError, match=r"page expects View objects, got str"):
        page("<p>")


@pytest.mark.parametrize("call,match", [
    (lambda: arrow_view(torch.ones(2, 3), TOKENS),
     r"arrow_view: weights must have shape \(Lq, Lk\) or \(heads, Lq, Lk\) with Lq=3 queries and Lk=3 keys, "
     r"got shape \(2, 3\)"),
    (lambda: arrow_view(-torch.ones(3, 3), TOKENS), r"weights must be finite and non-negative"),
    (lambda: arrow_view(torch.ones(2, 3, 3), TOKENS, head_names=["x"]), r"head_names has 1 names for 2 heads"),
    (lambda: heatmap_view(torch.ones(1, 2, 3, 3), TOKENS), r"got shape \(1, 2, 3, 3\)"),
    (lambda: heatmap_view(torch.ones(3, 3), TOKENS, mask=torch.ones(2, 2, dtype=torch.bool)),
     r"mask of shape \(2, 2\) does not broadcast to the scores \(1, 3, 3\)"),
    (lambda: heatmap_view(torch.full((3, 3), float("nan")), TOKENS), r"scores must be finite"),
    (lambda: heatmap_view(torch.ones(3, 3), TOKENS, temperature=20.0),
     r"need 0 < low <= temperature <= high, got temperature_range=\(0.1, 10.0\) and temperature=20.0"),
    (lambda: heatmap_view(torch.ones(0, 0), []), r"need at least one query and one key, got 0 queries and 0 keys"),
])
def test_bad_input_raises_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_a_single_string_is_not_a_token_list():
    with pytest.raises(TypeError, match=r"queries and keys must be sequences of tokens, not a single str"):
        arrow_view(torch.eye(3), "cat")

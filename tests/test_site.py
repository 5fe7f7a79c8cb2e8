"""The rendered book: it builds with zero warnings, every chapter executed cleanly, and every
page works in a real browser with no network (Debian's Chromium driven by Playwright).

The build is the one ``make book`` runs, so it executes every chapter (reusing
Jupyter Book's execution cache when the sources are unchanged).  Executed
notebooks land in ``_build/jupyter_execute``; their outputs are checked here.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from browser import is_loopback, offline_browser, open_page, serve
from conftest import NOTEBOOKS, ROOT, cell_source, load_config

pytestmark = pytest.mark.site

HTML = ROOT / "_build" / "html"
EXECUTED = ROOT / "_build" / "jupyter_execute" / "notebooks"
OWNER_REPO = load_config()["repository"]["url"].removeprefix("https://github.com/")

# Rounded numbers the chapters print, pinned exactly: a change in the maths shows up here.
PINNED_OUTPUTS: dict[str, list[str]] = {
    "01_tokens_and_embeddings": [
        "122 sentences, |V| = 52 words",
        "cos(bank, river) = 0.4537",
        "cos(bank, money) = 0.4926",
        "same id, same vector: the sentence makes no difference",
    ],
    "02_attention_by_hand": [
        "s(it, cup) = 3.0000   s(it, water) = 1.0000",
        "weight of it on cup:   0.5992",
        "weight of it on water: 0.0811",
        "it attends most to: cup",
        "o(it) strongest feature: container",
    ],
    "03_scaled_dot_product_attention": [
        "uniform row: H = log 16 = 2.773",
        "naive:  tensor([[nan, nan, 0.],",
        "all masked, package: tensor([[0., 0., 0.]])",
        "torch.bfloat16 softmax of [1e4, -1e4, 0]: [1.0, 0.0, 0.0]",
    ],
    "04_multi_head_attention": [
        "accuracy, token before me: 1.000   position of my twin: 1.000",
        "-> the previous head",
        "-> the twin head",
    ],
    "05_positions": [
        "P[1, :4] = [0.8415 0.5403 0.5332 0.846 ]",
        "theta = ['1', '0.3162', '0.1', '0.03162', '0.01', '0.003162', '0.001', '0.0003162']",
        "largest spread along a diagonal: below 1e-10: True",
        "permutation: [0, 2, 4, 6, 1, 3, 5, 7]",
        "6 heads: ['2^-2', '2^-4', '2^-6', '2^-8', '2^-1', '2^-3']",
    ],
    "06_transformer_block": [
        "LSTM: 59,792 parameters",
        "transformer: 59,376 parameters",
        "12 blocks of width 768 (GPT-2 small): 85,054,464 parameters",
    ],
    "11_efficient_attention": [
        "n=  8192: one fp32 score matrix for 8 heads =      2048 MiB",
        "prefix max: 0 of 800 earlier outputs changed",
        "running max m_i = 4.5455, running sum l_i = 1.7469; online softmax = softmax: OK",
        "KV cache at t=16384: 64 MiB; RNN state: 130 KiB",
        "answer 3 segment(s) back: no memory 0.09, Transformer-XL cache (1 segment) 0.09, kNN memory (top 4) 1.00",
    ],
}

# What may fail in a browser with no network, and why it is harmless.
ALLOWED_PAGE_ERRORS = [
    # Jupyter Book 1.x includes the thebe launcher script twice when launch_buttons.thebe is on.
    "Identifier 'THEBE_JS_URL' has already been declared",
]


def allowed_console_error(text: str, url: str) -> bool:
    # A request we aborted because it leaves the machine (the ipywidgets manager's CDN scripts).
    if text.startswith("Failed to load resource") and not is_loopback(url):
        return True
    # pydata-sphinx-theme's first-visit notice about an unset light/dark preference.
    return text.startswith("Got invalid theme mode")


@pytest.fixture(scope="session")
def build_log() -> tuple[int, str]:
    book = Path(sys.executable).parent / "jupyter-book"
    result = subprocess.run([str(book), "build", "-W", "-n", "--keep-going", str(ROOT)],
                            cwd=ROOT, capture_output=True, text=True)
    log = result.stdout + result.stderr
    (ROOT / "_build").mkdir(exist_ok=True)
    (ROOT / "_build" / "build.log").write_text(log)
    return result.returncode, log


@pytest.fixture(scope="session")
def site(build_log):
    if not (HTML / "index.html").exists():
        pytest.fail("the book did not build; see _build/build.log")
    return HTML


def test_book_builds_with_no_warnings(build_log):
    returncode, log = build_log
    warnings = [line for line in log.splitlines() if re.search(r"\bWARNING\b|\bERROR\b", line)
                and "Kernel is running over TCP" not in line]
    assert returncode == 0 and not warnings, "jupyter-book build -W -n failed:\n" + "\n".join(warnings[:30])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_chapter_executed_without_errors(site, path):
    executed = json.loads((EXECUTED / path.name).read_text())
    for index, cell in enumerate(executed["cells"]):
        for output in cell.get("outputs", []):
            assert output["output_type"] != "error", (
                f"{path.name} cell {index} raised {output.get('ename')}: {output.get('evalue')}")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_figure_output_has_caption_and_alt_text(site, path):
    executed = json.loads((EXECUTED / path.name).read_text())
    for index, cell in enumerate(executed["cells"]):
        if any("image/png" in o.get("data", {}) for o in cell.get("outputs", [])):
            meta = cell["metadata"].get("mystnb", {})
            assert meta.get("figure", {}).get("caption") and meta.get("image", {}).get("alt"), (
                f"{path.name} cell {index} draws a figure without caption and alt text:\n{cell_source(cell)[:200]}")


@pytest.mark.parametrize("stem", sorted(PINNED_OUTPUTS))
def test_pinned_outputs(site, stem):
    executed = json.loads((EXECUTED / f"{stem}.ipynb").read_text())
    printed = "".join("".join(o.get("text", "")) for c in executed["cells"] for o in c.get("outputs", [])
                      if o.get("output_type") == "stream" and o.get("name") == "stdout")
    for line in PINNED_OUTPUTS[stem]:
        assert line in printed, f"{stem}: expected the line {line!r} in the printed output"


@pytest.fixture(scope="module")
def browser(chromium_path):
    with offline_browser(chromium_path) as b:
        yield b


@pytest.fixture(scope="module")
def base_url(site):
    with serve(site) as url:
        yield url


def built_pages() -> list[str]:
    pages = ["index.html", "book/intro.html", "book/setup.html", "book/notation.html", "book/status.html",
             "book/bibliography.html"]
    return pages + [f"notebooks/{p.stem}.html" for p in NOTEBOOKS]


@pytest.mark.parametrize("page_path", built_pages())
def test_page_loads_offline_with_no_errors_and_no_broken_images(browser, base_url, page_path):
    page, log = open_page(browser, f"{base_url}/{page_path}")
    try:
        page.wait_for_timeout(300)
        errors = [e for e in log.page_errors if not any(a in e for a in ALLOWED_PAGE_ERRORS)]
        errors += [f"{text} ({url})" for text, url in log.console_errors if not allowed_console_error(text, url)]
        assert not errors, f"{page_path}: " + "; ".join(errors)
        # Images may be lazy: load each one now and report its decoded width (0 when broken).
        images = page.evaluate("""() => Promise.all([...document.querySelectorAll('img')].map(img => {
            img.loading = 'eager';
            return img.decode().then(() => img.naturalWidth, () => 0)
                .then(w => ({src: img.getAttribute('src'), w: w, alt: img.alt}));
        }))""")
        for image in images:
            assert image["w"] > 0, f"{page_path}: broken image {image['src']}"
            assert image["alt"].strip(), f"{page_path}: image {image['src']} has no alt text"
    finally:
        page.close()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_chapter_has_binder_and_colab_launch_links(browser, base_url, path):
    page, _ = open_page(browser, f"{base_url}/notebooks/{path.stem}.html")
    try:
        links = page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)")
    finally:
        page.close()
    binder = f"https://mybinder.org/v2/gh/{OWNER_REPO}/main?urlpath=lab/tree/notebooks/{path.name}"
    colab = f"https://colab.research.google.com/github/{OWNER_REPO}/blob/main/notebooks/{path.name}"
    assert binder in links, f"no Binder launch link on {path.stem}"
    assert colab in links, f"no Colab launch link on {path.stem}"


@pytest.mark.parametrize("page_path", ["book/notation.html"] + [f"notebooks/{p.stem}.html" for p in NOTEBOOKS])
def test_equations_are_typeset_offline(browser, base_url, page_path):
    """MathJax is served by the book itself (book/_ext/offline_mathjax.py), so no equation stays raw LaTeX."""
    page, log = open_page(browser, f"{base_url}/{page_path}")
    try:
        page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=15000)
        page.evaluate("() => MathJax.startup.promise")
        counts = page.evaluate("""() => {
            const spans = [...document.querySelectorAll('.math')];
            return [spans.length, spans.filter(s => !s.querySelector('mjx-container')).map(s => s.textContent.slice(0, 60))];
        }""")
        assert counts[0] > 0, f"{page_path}: no equation found"
        assert not counts[1], f"{page_path}: equations left as LaTeX: {counts[1][:3]}"
        assert not [url for url in log.blocked if "mathjax" in url.lower()], "MathJax was requested from the network"
    finally:
        page.close()


def chapters_with_views() -> list[str]:
    """Chapters whose source creates a kernel-free view (``selfattention.views``)."""
    return [p.stem for p in NOTEBOOKS if re.search(r"\b(arrow_view|heatmap_view)\(", p.read_text())]


@pytest.mark.parametrize("stem", chapters_with_views())
def test_kernel_free_views_respond_in_the_static_book(browser, base_url, stem):
    """The DOM conventions are documented in selfattention/views.py."""
    page, log = open_page(browser, f"{base_url}/notebooks/{stem}.html")
    try:
        views = page.locator(".sa-view")
        assert views.count() > 0, f"{stem}: no kernel-free view on the built page"
        for arrows in page.locator(".sa-view.sa-arrows").all():
            arrows.scroll_into_view_if_needed()
            arrows.locator('.sa-token[data-side="query"]').first.hover()
            assert arrows.get_attribute("data-focus") == "q0"
            active = arrows.locator("line.sa-line.sa-active")
            assert active.count() == int(arrows.get_attribute("data-cols"))
            assert arrows.locator("line.sa-line.sa-faded").count() > 0
        for heatmap in page.locator(".sa-view.sa-heatmap").all():
            heatmap.scroll_into_view_if_needed()
            before = heatmap.locator("td.sa-cell").evaluate_all("cs => cs.map(c => +c.dataset.weight)")
            heatmap.locator("input.sa-temperature").evaluate(
                "el => { el.value = el.max; el.dispatchEvent(new Event('input', {bubbles: true})); }")
            rows = heatmap.locator("td.sa-cell").evaluate_all(
                "cs => cs.map(c => [+c.dataset.q, +c.dataset.weight])")
            assert [w for _, w in rows] != before, f"{stem}: the temperature slider changed nothing"
            sums: dict[int, float] = {}
            for q, w in rows:
                sums[q] = sums.get(q, 0.0) + w
            assert all(abs(s - 1) < 1e-6 or s == 0 for s in sums.values()), f"{stem}: rows do not sum to 1: {sums}"
        assert not [e for e in log.page_errors if not any(a in e for a in ALLOWED_PAGE_ERRORS)]
    finally:
        page.close()

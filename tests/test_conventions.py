"""The notebook conventions of DESIGN.md, checked on the committed files (no execution here)."""

from __future__ import annotations

import re
import subprocess

import pytest
import yaml

from conftest import NOTEBOOKS, ROOT, cell_source, load_config, load_notebook

REPOSITORY = load_config()["repository"]["url"]


def toc_files() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc["parts"]:
        files += [chapter["file"] for chapter in part["chapters"]]
    return files


def test_every_chapter_is_in_the_toc_and_every_toc_entry_exists():
    listed = toc_files()
    chapters = [f"notebooks/{p.stem}" for p in NOTEBOOKS]
    assert sorted(f for f in listed if f.startswith("notebooks/")) == chapters
    for entry in listed:
        assert any((ROOT / f"{entry}{ext}").exists() for ext in (".md", ".ipynb")), f"{entry} in _toc.yml is missing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_without_outputs(path):
    for index, cell in enumerate(load_notebook(path)["cells"]):
        if cell["cell_type"] == "code":
            assert not cell["outputs"] and cell["execution_count"] is None, (
                f"{path.name} cell {index} has outputs: strip them before committing")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_first_cell_is_the_title_with_goals_and_prerequisites(path):
    first = load_notebook(path)["cells"][0]
    assert first["cell_type"] == "markdown"
    text = cell_source(first)
    number = path.name[:2]
    assert re.match(rf"# {int(number):02d}\. \S", text), f"{path.name}: first line must be '# {number}. Title'"
    assert "you will build" in text.lower() and "already know" in text.lower(), (
        f"{path.name}: the first cell says what you will build and what you should already know")


def test_setup_cell_is_identical_everywhere_and_names_the_configured_repository():
    setup_cells = {path.name: load_notebook(path)["cells"][1] for path in NOTEBOOKS}
    sources = {name: cell_source(cell) for name, cell in setup_cells.items()}
    assert len(set(sources.values())) == 1, "setup cells differ: " + ", ".join(sorted(sources))
    source = next(iter(sources.values()))
    assert f'REPOSITORY = "{REPOSITORY}"' in source
    assert "selfattention.seed_everything(" in source
    for name, cell in setup_cells.items():
        assert "hide-output" in cell["metadata"].get("tags", []), f"{name}: tag the setup cell hide-output"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_figure_cell_has_a_caption_and_alt_text(path):
    for index, cell in enumerate(load_notebook(path)["cells"]):
        if cell["cell_type"] == "code" and "plt.show()" in cell_source(cell):
            meta = cell["metadata"].get("mystnb", {})
            assert meta.get("figure", {}).get("caption"), f"{path.name} cell {index}: figure without caption"
            assert meta.get("image", {}).get("alt"), f"{path.name} cell {index}: figure without alt text"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_chapter_ends_with_exercises_and_dropdown_solutions(path):
    text = "\n".join(cell_source(c) for c in load_notebook(path)["cells"] if c["cell_type"] == "markdown")
    assert "## Exercises" in text
    exercises = re.findall(r"```\{exercise\}", text)
    solutions = re.findall(r"```\{solution\}[^\n]*\n:class: dropdown", text)
    assert exercises and len(solutions) == len(exercises), f"{path.name}: each exercise needs a dropdown solution"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_chapter_has_an_assert_cell(path):
    code = [cell_source(c) for c in load_notebook(path)["cells"] if c["cell_type"] == "code"]
    assert any(re.search(r"^\s*(assert |torch\.testing\.assert_close|np\.testing\.assert_)", c, re.M) for c in code)


def test_every_citation_is_in_the_bibliography():
    bib = (ROOT / "book" / "references.bib").read_text()
    keys = set(re.findall(r"@\w+\{([^,]+),", bib))
    texts = [p.read_text() for p in NOTEBOOKS] + [p.read_text() for p in (ROOT / "book").glob("*.md")]
    cited = {key.strip() for text in texts for group in re.findall(r"\{cite[pt]?\}`([^`]+)`", text)
             for key in group.split(",")}
    assert cited <= keys, f"cited but not in book/references.bib: {sorted(cited - keys)}"


def test_repository_is_named_once_and_everything_else_agrees():
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    for name in tracked:
        path = ROOT / name
        if path.suffix not in {".md", ".py", ".ipynb", ".txt", ".toml", ".yml", ".cfg", ""} or not path.is_file():
            continue
        for url in re.findall(r"https://github\.com/[\w.-]+/[\w.-]+", path.read_text(errors="ignore")):
            assert url == REPOSITORY, f"{name} names {url}, but _config.yml says {REPOSITORY}"


def test_binder_pins_agree_with_requirements():
    def pins(path):
        return dict(re.findall(r"^([A-Za-z0-9_.-]+)==([^\s;#]+)", path.read_text(), re.M))

    tested, binder = pins(ROOT / "requirements.txt"), pins(ROOT / "binder" / "requirements.txt")
    assert binder, "binder/requirements.txt pins nothing"
    for package, version in binder.items():
        assert tested.get(package, version).split("+")[0] == version.split("+")[0], (
            f"binder pins {package}=={version}, requirements.txt pins {tested[package]}")


def test_every_module_names_the_chapter_that_derives_it():
    for path in sorted((ROOT / "src" / "selfattention").rglob("*.py")):
        if path.name == "__init__.py":
            continue
        docstring = path.read_text().split('"""')[1] if '"""' in path.read_text() else ""
        assert re.search(r"[Cc]hapter \d\d", docstring), f"{path.relative_to(ROOT)}: docstring names no chapter"

# make book : create/refresh .venv from requirements.txt, execute the chapters, build _build/html
# make test : same environment, run every test (package, notebooks, built site in Chromium)
# make lab  : JupyterLab on the chapters
# make bench: the benchmark scripts (slow; results land in benchmarks/results/)

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: book test lab bench clean venv strip

venv: $(STAMP)

# Reinstall whenever the pins or the package metadata change.
$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

# -W turns warnings (a failing chapter among them) into errors; --keep-going reports them all.
book: $(STAMP)
	$(BIN)/jupyter-book build -W -n --keep-going .

test: $(STAMP)
	$(BIN)/python -m pytest

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks/

# glibc returns fresh n^2 buffers to the OS on every call unless the mmap threshold is raised,
# which would time the page faults instead of the attention.
bench: $(STAMP)
	$(BIN)/python benchmarks/notebooks.py
	MALLOC_MMAP_THRESHOLD_=4294967296 $(BIN)/python benchmarks/attention.py
	MALLOC_MMAP_THRESHOLD_=4294967296 $(BIN)/python benchmarks/recurrence_vs_attention.py
	MALLOC_MMAP_THRESHOLD_=4294967296 $(BIN)/python benchmarks/efficient.py

clean:
	rm -rf _build

# Notebooks are committed without outputs (tests/test_conventions.py checks).
strip: $(STAMP)
	$(BIN)/jupyter nbconvert --clear-output --inplace notebooks/*.ipynb

# One command installs and runs the demo, one installs and runs the tests (see README.md).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU build of torch: a plain `torch` requirement would pull a multi-GB CUDA build.
TORCH ?= torch==2.13.0

.PHONY: install demo test lint clean

$(VENV)/.installed: pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -e ".[test,data]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(PY) recipes/demo.py

test: install
	$(PY) -m pytest -q

lint: install
	$(PY) -m ruff check hf_binarize tests recipes bench scripts

clean:
	rm -rf $(VENV) build *.egg-info

# Set-up and entry points. `make bench` and `make test` each build everything they need from scratch
# (a virtual environment in .venv, PyTorch, the extension with its CUDA kernels when nvcc is found).
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU build of PyTorch; on a GPU machine use the CUDA build you already have (TORCH_SPEC=torch).
TORCH_SPEC ?= torch==2.13.0
SOURCES := pyproject.toml CMakeLists.txt $(shell find csrc python -type f -not -name '*.pyc' 2>/dev/null)

.PHONY: install test bench clean

$(VENV)/.installed: $(SOURCES)
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q ".[test,bench]"
	touch $@

install: $(VENV)/.installed

test: $(VENV)/.installed
	$(PY) -m pytest

bench: $(VENV)/.installed
	$(PY) benchmarks/throughput.py

clean:
	rm -rf $(VENV) build

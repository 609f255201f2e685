# The two commands a new user runs: `make demo` and `make test`.
PY ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test bench clean

install: $(STAMP)

# Torch goes in first, pinned to the local CPU wheel, so that no other
# requirement can resolve it to the CUDA build.
$(STAMP): pyproject.toml
	test -x $(VPY) || $(PY) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q "torch==2.13.0+cpu"
	$(VPY) -m pip install -q -e ".[test,bench]"
	touch $(STAMP)

demo: install
	$(VENV)/bin/spikec demo

test: install
	$(VPY) -m pytest -n 2 tests

# Every benchmark at its --quick sizes: tables, JSON and PNG under bench/results/.
bench: install
	$(VENV)/bin/spikec bench all --quick

clean:
	rm -rf $(VENV) build *.egg-info demo-out

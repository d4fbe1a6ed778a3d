# The README's two commands: `make demo` and `make test`. Both build .venv on first use.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip --disable-pip-version-check -q
STAMP := $(VENV)/.geocrop-installed
# Installing torch==2.13.0 first (the local CPU wheel) and constraining every later install to it keeps
# pip from pulling a CUDA build of several GB.
CONSTRAINTS := .ci/constraints.txt

.PHONY: demo test test-slow lint typecheck sample qgis-plugin bench clean

$(STAMP): pyproject.toml $(CONSTRAINTS)
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install --upgrade pip
	$(PIP) install torch==2.13.0
	$(PIP) install -c $(CONSTRAINTS) -e '.[test]'
	touch $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy

test: lint typecheck
	$(VENV)/bin/pytest -m "not slow" -q

# Exit code 5 means "no test selected", which is not a failure here.
test-slow: $(STAMP)
	$(VENV)/bin/pytest -m "slow" -q || [ $$? -eq 5 ]

sample: $(STAMP)
	$(VENV)/bin/geocrop simulate --out sample_aoi/data

demo: $(STAMP)
	$(VENV)/bin/geocrop demo

bench: $(STAMP)
	$(PY) bench/pretrain_throughput.py

clean:
	rm -rf $(VENV) build *.egg-info

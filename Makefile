# The README's two commands: `make demo` and `make test`. Both build .venv on first use.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip --disable-pip-version-check -q
STAMP := $(VENV)/.geocrop-installed
# Installing torch==2.13.0 first (the local CPU wheel) and constraining every later install to it keeps
# pip from pulling a CUDA build of several GB.
CONSTRAINTS := .ci/constraints.txt

.PHONY: demo test test-slow lint typecheck sample qgis-plugin bench docs clean

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

# One pytest worker per core; a test file stays on one worker, so its module fixtures are built once, and
# files go out in collection order, where tests/conftest.py puts the longest first (LONG_FILES). Python
# may write bytecode here even where the environment says not to (PYTHONDONTWRITEBYTECODE): otherwise each
# worker rewrites the asserts of every test module again (~4 s CPU) and each geocrop subprocess a test
# starts compiles the package again.
test: lint typecheck
	PYTHONDONTWRITEBYTECODE= $(VENV)/bin/pytest -m "not slow" -q -n auto --dist loadfile --no-loadscope-reorder --durations=20

# Exit code 5 means "no test selected", which is not a failure here.
test-slow: $(STAMP)
	$(VENV)/bin/pytest -m "slow" -q || [ $$? -eq 5 ]

sample: $(STAMP)
	$(VENV)/bin/geocrop simulate --out sample_aoi/data

demo: $(STAMP)
	$(VENV)/bin/geocrop demo

bench: $(STAMP)
	$(PY) bench/pretrain_throughput.py

# Rerun docs/real-area.md on the real data (../shared/realdata) and rewrite its output blocks, class table,
# quoted figures and pictures, and the smoothing figures of fields-and-smoothing.md (a few minutes on 2
# cores; the slow test tests/test_docs_real_area.py checks the pages against a rerun instead).
docs: $(STAMP)
	$(PY) docs/scripts/real_area.py --write

# The QGIS plugin as an installable zip (Plugins > Install from ZIP): qgis_plugin/ packed as geocrop_qgis/.
qgis-plugin:
	rm -rf build/qgis_plugin && mkdir -p build/qgis_plugin dist
	cp -r qgis_plugin build/qgis_plugin/geocrop_qgis
	find build/qgis_plugin -name __pycache__ -prune -exec rm -rf {} +
	rm -f dist/geocrop_qgis.zip
	cd build/qgis_plugin && python3 -m zipfile -c ../../dist/geocrop_qgis.zip geocrop_qgis
	@echo "dist/geocrop_qgis.zip"

clean:
	rm -rf $(VENV) build *.egg-info

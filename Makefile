# Two commands work on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: demo test lint install install-dev chromium check-python bench clean

# One clear line instead of a pip traceback: the Python version, and the venv module Debian ships apart.
check-python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null || { echo "make: edgefit needs \
	Python 3.10 or newer; $(PYTHON) is $$($(PYTHON) --version 2>/dev/null || echo missing): run make PYTHON=python3.11"; exit 2; }
	@$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || { echo "make: $(PYTHON) cannot create a virtual \
	environment: install it (Debian/Ubuntu: apt-get install python3-venv)"; exit 2; }

$(BIN)/python: | check-python
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# make demo: the runtime only; make test: the dev extras too (pytest, ruff, Ray, coremltools, executorch).
$(STAMP): pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/python -m pip install -q -c constraints.txt -e .
	touch $(STAMP)

$(DEV_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	touch $(DEV_STAMP)

# onnxruntime-web, copied into the web deploy bundle (pinned by package.json + package-lock.json).
NPM_STAMP := node_modules/.package-lock.json
$(NPM_STAMP): package.json package-lock.json
	@if command -v npm >/dev/null; then npm ci --ignore-scripts --no-audit --no-fund; \
	else echo "make: npm not found: the web deploy target needs it (install Node.js and npm, then make install)"; fi

install: $(STAMP) $(NPM_STAMP)

install-dev: $(DEV_STAMP) $(NPM_STAMP)

# Chromium for the web bundle's browser tests (Debian/Ubuntu as root; elsewhere the tests skip with the reason).
chromium:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || \
	{ [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
	echo "make: no Chromium (apt-get install -y chromium); the browser tests will be skipped"

DEMO_DATA := runs/demo-data
# The demo build (bench/build_demo.py times exactly these arguments).
DEMO_BUILD_ARGS := budgets/pi-zero-2w.yaml --data $(DEMO_DATA) --weights none --max-resolution 96 --search 2 --epochs 25 --out runs/demo-build

# Demo images (offline, generated) -> `edgefit build` for a small CPU -> the report. Rerunning it
# continues or skips the finished stages of runs/demo-build.
# Exit 1 from the build is a verdict (a budget line failed; the report says which), not a broken demo.
demo: install
	@test -d $(DEMO_DATA) || $(BIN)/edgefit demo-data $(DEMO_DATA) --classes 10 --per-class 200 --size 96
	@$(BIN)/edgefit build $(DEMO_BUILD_ARGS) || { rc=$$?; [ $$rc -eq 1 ] || exit $$rc; \
	  echo "make demo: the build ran, but a budget line failed (exit 1): see runs/demo-build/report.md"; }

test: install-dev chromium
	$(BIN)/python -m pytest -q

lint: install-dev
	$(BIN)/ruff check .

bench: install-dev
	$(BIN)/python bench/select_time.py
	$(BIN)/python bench/train_speed.py
	$(BIN)/python bench/export_size.py --fit
	test -d runs/demo-build || $(MAKE) demo
	$(BIN)/python bench/export_accuracy.py --run runs/demo-build/train
	$(BIN)/python bench/runtime_latency.py
	$(BIN)/python bench/latency_prediction.py
	$(BIN)/python bench/prune_tradeoff.py
	$(BIN)/python bench/build_demo.py
	$(BIN)/python bench/ram_truth.py --label current
	$(BIN)/python bench/train_defaults.py --label current

clean:
	rm -rf $(VENV) build *.egg-info node_modules

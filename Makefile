# Two commands work on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test install bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

DEMO_DATA := runs/demo-data

demo: install
	$(BIN)/edgefit select budgets/raspberry-pi-4.yaml --top 8
	@echo
	@echo "The worked example (SoC X, 500 MFLOP/s, 1000 KB, 5 FPS, top-1 >= 0.50): nothing fits, exit 1 expected."
	@$(BIN)/edgefit select budgets/soc-x.yaml --top 5; test $$? -eq 1
	@echo
	@test -d $(DEMO_DATA) || $(BIN)/edgefit demo-data $(DEMO_DATA) --classes 10 --per-class 200 --size 96
	rm -rf runs/demo-train
	$(BIN)/edgefit train --variant mobilenet_v2_0.35_96 --data $(DEMO_DATA) --weights none --epochs 20 \
		--batch-size 32 --jitter 0 --out runs/demo-train

test: install
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python bench/select_time.py
	$(BIN)/python bench/train_speed.py
	$(BIN)/python bench/export_size.py --fit
	test -d runs/demo-train || $(MAKE) demo
	$(BIN)/python bench/export_accuracy.py --run runs/demo-train
	$(BIN)/python bench/runtime_latency.py
	$(BIN)/python bench/latency_prediction.py

clean:
	rm -rf $(VENV) build *.egg-info

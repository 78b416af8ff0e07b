# st-reid: make venv | make test | make bench | make demo
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: venv test lint bench demo clean

venv: $(VENV)/.installed

# The stamp is rebuilt when the requirements change.
$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: lint
	$(PY) -m pytest

bench: venv
	@for script in benchmarks/bench_*.py; do \
		echo "== $$script"; $(PY) -m benchmarks.$$(basename $$script .py) || exit 1; \
	done

demo: venv
	$(PY) demo.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

# st-reid: make venv | make test | make bench | make demo | make mutate | make mutate-kernels
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: venv test lint bench demo mutate mutate-kernels clean

venv: $(VENV)/.installed

# The stamp is rebuilt when the requirements change.
$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
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

# Mutation testing of the faithful computations (st_model, metrics, evaluation, rerank, nearest,
# datasets) and of step 4 without labels (label_free, same_person) with the fast tests;
# configured in pyproject.toml ([tool.mutmut]).
# Lists the surviving mutants (`mutmut show NAME` shows one) and prints the score. One thread
# per worker: mutmut limits CPU time, and idle OpenMP threads spinning in torch would use it up.
mutate: venv
	rm -rf mutants
	OMP_NUM_THREADS=1 $(VENV)/bin/mutmut run
	$(VENV)/bin/mutmut results
	@$(VENV)/bin/mutmut results --all true | awk -F': ' '{n[$$NF]++; t++} \
		END {for (k in n) printf "%s: %d\n", k, n[k]; printf "score: %.1f%% killed of %d\n", 100 * n["killed"] / t, t}'

# The compiled kernels (streid/kernels.py), which mutmut does not mutate: planted bugs, one at a
# time, in a copy of the repository (tests/kernel_mutants.py).
mutate-kernels: venv
	$(PY) -m tests.kernel_mutants

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis mutants

# Each target creates .venv and installs rnnlab into it when needed,
# so on a fresh clone every target is a single command.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-dev

.PHONY: demo test lab bench figures clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m rnnlab tour

test: $(STAMP)
	$(PY) -m pytest -q

lab: $(STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[dev,lab]"
	$(VENV)/bin/jupyter lab notebooks/

bench: $(STAMP)
	$(PY) benchmarks/bench_cpu.py

figures: $(STAMP)
	$(PY) -m rnnlab figures

clean:
	rm -rf $(VENV) .pytest_cache

# Each target creates .venv and installs rnnlab into it when needed,
# so on a fresh clone every target is a single command.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-dev

.PHONY: demo test lab bench figures docs clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m rnnlab tour

test: $(STAMP)
	$(PY) -m pytest -q -n auto --dist loadfile

# Jupyter refuses to start as root without --allow-root; course containers often run as root.
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root)

lab: $(STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[dev,lab]"
	$(VENV)/bin/jupyter lab $(ALLOW_ROOT) notebooks/

# PyTorch (the optional bench extra) is installed when possible; without it the
# benchmark still runs and leaves the torch columns empty.
bench: $(STAMP)
	@$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install --quiet --disable-pip-version-check -e ".[bench]" \
		|| echo "torch==2.13.0 is not installable here: benchmarking without PyTorch"
	$(PY) benchmarks/bench_cpu.py

figures: $(STAMP)
	$(PY) -m rnnlab figures

docs: $(STAMP)
	$(PY) docs/hooks/notebooks.py build/executed-notebooks
	NO_MKDOCS_2_WARNING=1 RNNLAB_EXECUTED_NOTEBOOKS=build/executed-notebooks $(VENV)/bin/mkdocs build --strict -d site

clean:
	rm -rf $(VENV) .pytest_cache

# Golden fixtures from tf.keras 2 itself (tests/golden/make_golden.py): TensorFlow
# lives in a venv of its own, tests/golden/.venv, never in .venv.
# GOLDEN_PY=/path/to/python uses an interpreter that already has tensorflow-cpu
# and tf-keras; GOLDEN_ARGS=--fd adds the finite-difference check.
GOLDEN_VENV := tests/golden/.venv
GOLDEN_STAMP := $(GOLDEN_VENV)/.installed-golden
GOLDEN_ARGS ?=

.PHONY: golden

$(GOLDEN_STAMP):
	$(PYTHON) -m venv $(GOLDEN_VENV)
	$(GOLDEN_VENV)/bin/python -m pip install --quiet --disable-pip-version-check \
		tensorflow-cpu==2.21.0 tf-keras==2.21.0
	touch $(GOLDEN_STAMP)

ifdef GOLDEN_PY
golden:
	TF_CPP_MIN_LOG_LEVEL=2 $(GOLDEN_PY) tests/golden/make_golden.py $(GOLDEN_ARGS)
else
golden: $(GOLDEN_STAMP)
	TF_CPP_MIN_LOG_LEVEL=2 $(GOLDEN_VENV)/bin/python tests/golden/make_golden.py $(GOLDEN_ARGS)
endif

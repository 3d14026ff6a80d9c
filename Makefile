# The workbook's commands. `make run` and `make test` create .venv on first use.
PROFILE ?= quick
ONLY ?=
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install run test lab store exercises clean

install: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt -e .
	touch $(STAMP)

## run: execute every notebook with params/$(PROFILE).yaml into results/$(PROFILE)/
run: $(STAMP)
	$(PY) -m peel_utils.run --profile $(PROFILE) $(if $(ONLY),--only $(ONLY))

## test: exercises in step with the solutions, then nbval re-execution of the stored notebooks and unit tests
test: $(STAMP)
	$(PY) -m peel_utils.exercises --check
	$(PY) -m pytest

## exercises: regenerate exercises/ from the solution notebooks (commit both)
exercises: $(STAMP)
	$(PY) -m peel_utils.exercises

## lab: JupyterLab on notebooks/
lab: $(STAMP)
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks

## store: maintainers: re-execute notebooks/ in place so their stored outputs are current
store: $(STAMP)
	$(PY) -m peel_utils.run --store $(if $(ONLY),--only $(ONLY))

clean:
	rm -rf results .pytest_cache

# The workbook's commands. `make run` and `make test` create .venv on first use.
PROFILE ?= quick
ONLY ?=
SUBMISSIONS ?=
GRADE_TIMEOUT ?= 900
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install run test lab store exercises handout grade clean

install: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || { $(PYTHON) -m peel_course.disk $(VENV) && $(PYTHON) -m venv $(VENV); }
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt -e .
	touch $(STAMP)

## run: execute every notebook with params/$(PROFILE).yaml into results/$(PROFILE)/
run: $(STAMP)
	$(PY) -m peel_course.run --profile $(PROFILE) $(if $(ONLY),--only $(ONLY))

## test: exercises in step with the solutions, lint, the unit tests (they stand alone), then nbval re-execution of the stored notebooks
test: $(STAMP)
	$(PY) -m peel_course.exercises --check
	$(PY) -m peel_course.guide --check
	$(PY) -m ruff check peel_utils peel_course tests benchmarks conftest.py
	$(PY) -m pytest tests
	$(PY) -m pytest notebooks

## exercises: regenerate exercises/ from the solution notebooks and the guide's exercise table (commit them)
exercises: $(STAMP)
	$(PY) -m peel_course.exercises
	$(PY) -m peel_course.guide

## handout: handout/ and handout.zip for students: exercise notebooks, peel_utils without the answers
handout: $(STAMP)
	$(PY) -m peel_course.handout

## grade: run every notebook under SUBMISSIONS= (a folder per student) into grades/grades.csv and summary.md
grade: $(STAMP)
	@test -n "$(SUBMISSIONS)" || { echo "usage: make grade SUBMISSIONS=<folder>"; exit 2; }
	$(PY) -m peel_course.grade "$(SUBMISSIONS)" --timeout $(GRADE_TIMEOUT)

## lab: JupyterLab on notebooks/
lab: $(STAMP)
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks

## store: maintainers: re-execute notebooks/ in place so their stored outputs are current
store: $(STAMP)
	$(PY) -m peel_course.run --store $(if $(ONLY),--only $(ONLY))

clean:
	rm -rf results .pytest_cache handout handout.zip grades

# The workbook's commands. `make run`, `make check` and `make test` create .venv on first use.
PROFILE ?= quick
ONLY ?=
CELL_TIMEOUT ?=
SUBMISSIONS ?=
NBGRADER_DIR ?= nbgrader
GRADE_TIMEOUT ?= 900
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
NBGRADER_STAMP := $(VENV)/.installed-nbgrader
LINT := peel_utils peel_course tests benchmarks conftest.py

.PHONY: install run check test test-python lab store exercises handout grade nbgrader clean

## install: $(VENV) with the workbook's packages; stops at once under an unsupported Python or with too little disk
install: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "make install: no Python at PYTHON=$(PYTHON); pass a Python 3.10 to 3.13, e.g. make install PYTHON=python3.11"; exit 2; }
	test -x $(PY) || { $(PYTHON) -m peel_course.python_version && $(PYTHON) -m peel_course.disk $(VENV) && $(PYTHON) -m venv $(VENV); }
	$(PY) -m peel_course.python_version $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt -e .
	touch $(STAMP)

## run: execute every notebook with params/$(PROFILE).yaml into results/$(PROFILE)/ (CELL_TIMEOUT=seconds a cell may run)
run: $(STAMP)
	$(PY) -m peel_course.run --profile $(PROFILE) $(if $(ONLY),--only $(ONLY)) $(if $(CELL_TIMEOUT),--cell-timeout $(CELL_TIMEOUT))

## check: the maintainers' loop, minutes: lint, exercises and guide in step, the fast unit tests (no notebook runs)
check: $(STAMP)
	$(PY) -m ruff check $(LINT)
	$(PY) -m peel_course.exercises --check
	$(PY) -m peel_course.guide --check
	$(PY) -m pytest tests -m "not slow"

## test: everything (CI): exercises and guide in step, lint, every unit test (slow ones too, nbgrader's run too), then nbval re-execution of the stored notebooks
test: $(STAMP) $(NBGRADER_STAMP)
	$(PY) -m peel_course.exercises --check
	$(PY) -m peel_course.guide --check
	$(PY) -m ruff check $(LINT)
	$(PY) -m pytest tests
	$(PY) -m pytest notebooks

## test-python: on one interpreter (make test-python PYTHON=python3.10 VENV=.venv-3.10): install, the checks' tests, notebook 01
## (progress bars redraw every 2 s, as under pytest; a run that stalls is stopped after 20 minutes instead of the runner's hour per cell)
test-python: $(STAMP)
	$(PY) -m pytest tests/checks
	rm -rf $(VENV)/workbook && mkdir -p $(VENV)/workbook/notebooks && cp notebooks/01_*.ipynb $(VENV)/workbook/notebooks/
	TQDM_MININTERVAL=2 timeout 1200 $(PY) -m peel_course.run --profile quick --only 01 --notebooks $(VENV)/workbook/notebooks --results $(VENV)/workbook/results

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

## nbgrader: a course directory for nbgrader 0.9 in NBGRADER_DIR (nbgrader_config.py, source/<assignment>/ per notebook); installs the extra
nbgrader: $(NBGRADER_STAMP)
	$(PY) -m peel_course.nbgrader --out "$(NBGRADER_DIR)" $(if $(ONLY),--only $(ONLY))

$(NBGRADER_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e '.[nbgrader]'
	touch $(NBGRADER_STAMP)

## lab: JupyterLab on notebooks/, its kernels with the workbook's timing set-up (peel_utils.timing)
lab: $(STAMP)
	env $$($(PY) -c 'from peel_utils import timing; print(*(f"{k}={v}" for k, v in timing.environment().items()))') \
		$(VENV)/bin/jupyter lab --notebook-dir=notebooks

## store: maintainers: re-execute notebooks/ in place so their stored outputs are current
store: $(STAMP)
	$(PY) -m peel_course.run --store $(if $(ONLY),--only $(ONLY)) $(if $(CELL_TIMEOUT),--cell-timeout $(CELL_TIMEOUT))

clean:
	rm -rf results .pytest_cache handout handout.zip grades

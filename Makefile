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
BROWSER_STAMP := $(VENV)/.installed-browser
LINT := peel_utils peel_course tests benchmarks conftest.py

.PHONY: install run check test test-python lab store exercises handout grade challenge nbgrader clean

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

## test: everything (CI): exercises and guide in step, lint, the fast tests, then the slow ones (nbgrader's run, the browser, the
## full-profile and own-data chains), then nbval re-execution of the stored notebooks; each step prints its seconds
test: $(STAMP) $(NBGRADER_STAMP) $(BROWSER_STAMP)
	@t=$$(date +%s); $(PY) -m peel_course.exercises --check && $(PY) -m peel_course.guide --check && $(PY) -m ruff check $(LINT) \
		|| exit 1; echo "[step] generators and lint: $$(( $$(date +%s) - t )) s"
	@t=$$(date +%s); $(PY) -m pytest tests -m "not slow" -q || exit 1; echo "[step] fast tests: $$(( $$(date +%s) - t )) s"
	@t=$$(date +%s); $(PY) -m pytest tests -m slow --durations=25 || exit 1; echo "[step] slow tests: $$(( $$(date +%s) - t )) s"
	@t=$$(date +%s); $(PY) -m pytest notebooks --durations=25 || exit 1; echo "[step] nbval (every stored notebook re-executed): $$(( $$(date +%s) - t )) s"

## test-python: on one interpreter (make test-python PYTHON=python3.10 VENV=.venv-3.10): install, the fast tests (every module
## imported and exercised), notebook 01 with params/tiny.yaml (progress bars redraw every 2 s, as under pytest)
test-python: $(STAMP)
	$(PY) -m pytest tests -m "not slow" -q
	rm -rf $(VENV)/workbook && mkdir -p $(VENV)/workbook/notebooks && cp notebooks/01_*.ipynb $(VENV)/workbook/notebooks/
	TQDM_MININTERVAL=2 $(PY) -m peel_course.run --profile tiny --only 01 --cell-timeout 300 --notebooks $(VENV)/workbook/notebooks --results $(VENV)/workbook/results

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

## challenge: score the challenge entries under SUBMISSIONS= (a folder per student) on TEST= (mnist5k, imagefolder:<path>) into leaderboard.csv and .png
challenge: $(STAMP)
	@test -n "$(SUBMISSIONS)" || { echo "usage: make challenge SUBMISSIONS=<folder> TEST=imagefolder:/path/to/hidden"; exit 2; }
	$(PY) -m peel_course.challenge --submissions "$(SUBMISSIONS)" --test "$(or $(TEST),mnist5k)"

## nbgrader: a course directory for nbgrader 0.9 in NBGRADER_DIR (nbgrader_config.py, source/<assignment>/ per notebook); installs the extra
nbgrader: $(NBGRADER_STAMP)
	$(PY) -m peel_course.nbgrader --out "$(NBGRADER_DIR)" $(if $(ONLY),--only $(ONLY))

$(NBGRADER_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e '.[nbgrader]'
	touch $(NBGRADER_STAMP)

# the browser extra (playwright) for tests/test_browser_sliders.py; the browser is the system's Chromium (.ci/run installs it)
$(BROWSER_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e '.[browser]'
	touch $(BROWSER_STAMP)

## lab: JupyterLab on notebooks/, its kernels with the workbook's timing set-up (peel_utils.timing)
lab: $(STAMP)
	env $$($(PY) -c 'from peel_utils import timing; print(*(f"{k}={v}" for k, v in timing.environment().items()))') \
		$(VENV)/bin/jupyter lab --notebook-dir=notebooks

## store: maintainers: re-execute notebooks/ in place so their stored outputs are current
store: $(STAMP)
	$(PY) -m peel_course.run --store $(if $(ONLY),--only $(ONLY)) $(if $(CELL_TIMEOUT),--cell-timeout $(CELL_TIMEOUT))

clean:
	rm -rf results .pytest_cache handout handout.zip grades

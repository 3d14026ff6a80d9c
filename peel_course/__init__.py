"""peel_course: the teacher's and maintainer's tools around the PEEL workbook, never handed to students.

`run` executes the notebooks under a profile (papermill), `exercises` generates the exercise notebooks from the
solution notebooks (and is the one place that recognises, and tags, their stub and check cells), `guide` the
instructor guide's exercise table, `handout` the students' hand-out (the exercise notebooks and `peel_utils/`,
nothing of this package), `grade` runs submitted notebooks into a grade table, and `kernel` says how these tools
start Jupyter kernels. `python_version` and `disk` are `make install`'s preflights (standard library only: they
run before anything is installed). The notebooks import only `peel_utils`.
"""

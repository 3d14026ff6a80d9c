"""peel_course: the teacher's and maintainer's tools around the PEEL workbook, never handed to students.

`run` executes the notebooks under a profile (papermill), `exercises` generates the exercise notebooks from the
solution notebooks, `guide` the instructor guide's exercise table, `handout` the students' hand-out (the exercise
notebooks and `peel_utils/`, nothing of this package), `grade` runs submitted notebooks into a grade table, and
`disk` checks the free disk before `make install`. The notebooks import only `peel_utils`.
"""

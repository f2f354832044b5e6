"""repro.machinery: what turns the chapters into runs, verdicts and a book.

Modules, each importable on its own:

- ``chapters``   the chapters on disk: folders, parameters (the ``parameters`` cell), presets
- ``claims``     ``claims.yaml``: loading, checking against a run's metrics, the verdict table
- ``runner``     executing a chapter's experiments with papermill into a run folder, with provenance
- ``notebook``   ``finish``, the last cell of every experiments notebook: save metrics, show
                 verdicts
- ``records``    runs at another preset (paper scale) kept in ``data/records/``
- ``book``       building the book: every notebook executed, then rendered by Jupyter Book
- ``sphinxext``  the Sphinx directives of the book's pages (claims table, dashboard, reading list)
- ``assign``     classroom assignments from a chapter's exercises (otter-grader): the handout,
                 the student's environment (the library's wheel) and the autograder
- ``handout``    MyST exercise text as plain Jupyter markdown, for the handout
- ``grading``    grading a class: each submission in a sandbox, in parallel, grades as CSV
- ``sandbox``    the bubblewrap sandbox and resource limits a submission runs under
- ``testing``    ``disabled``: the library's own implementation switched off in a hidden test
- ``cli``        the ``repro`` command

The machinery sits on top of the science: it may import ``repro.paths`` and ``repro.Diverged``,
and no science module imports the machinery. Only the names below are re-exported, the ones a
notebook or a script needs; ``records``, ``book``, ``sphinxext`` (which pulls in Sphinx),
``assign``, ``grading`` and ``cli`` are imported from their modules where they are used.
"""

from repro.machinery.chapters import BadInput, Chapter, all_chapters, find_chapter
from repro.machinery.claims import ChapterClaims, VerdictTable, check_all
from repro.machinery.notebook import NoChapter, finish
from repro.machinery.runner import RunFailed, RunResult, run_chapter

__all__ = [
    "BadInput", "Chapter", "ChapterClaims", "NoChapter", "RunFailed", "RunResult", "VerdictTable",
    "all_chapters", "check_all", "find_chapter", "finish", "run_chapter",
]

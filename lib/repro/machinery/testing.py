"""Helpers for the tests of a chapter's exercises.

``disabled`` is for the hidden test of an implementation exercise: while its block runs, the
library's own implementation of the method raises, so an answer that merely calls it fails::

    expected = repro.mtl.nash_solve(M)            # the reference, computed before the block
    with disabled(repro.mtl.nash_solve):
        alpha = nash_weights(M)                   # the student's code, on fresh input
    assert ...

Used by: the hidden tests of the chapters' exercises notebooks.
"""

from __future__ import annotations

import types
from contextlib import contextmanager
from typing import Callable, Iterator


class LibraryDisabled(RuntimeError):
    """Raised by a library function while a test has disabled it."""


def _function(target) -> types.FunctionType:
    # a method reached through its class is a plain function; a bound method holds one
    function = getattr(target, "__func__", target)
    if not isinstance(function, types.FunctionType):
        raise TypeError(f"disabled() takes Python functions or methods, not {target!r}")
    return function


def _raising_code(name: str) -> types.CodeType:
    message = (f"{name} is the library's own implementation and is disabled in this test: "
               f"write the method yourself")
    # the code runs with the disabled function's own globals, so it reaches the exception class
    # through the import system rather than through a global name
    scope: dict = {}
    exec(f"def _disabled(*args, **kwargs):\n"
         f"    raise __import__({__name__!r}, fromlist=['_']).LibraryDisabled({message!r})", scope)
    return scope["_disabled"].__code__


@contextmanager
def disabled(*targets: Callable) -> Iterator[None]:
    """Within the block, calling any of ``targets`` raises ``LibraryDisabled``.

    The function objects themselves are changed (their code is swapped), so every reference to
    them, however it was imported or renamed, raises; the code is restored on exit.
    """
    functions = [_function(t) for t in targets]
    saved = [(f, f.__code__) for f in functions]
    try:
        for f in functions:
            if f.__code__.co_freevars:
                raise TypeError(f"disabled() cannot swap the code of the closure {f.__qualname__}")
            f.__code__ = _raising_code(f"{f.__module__}.{f.__qualname__}")
        yield
    finally:
        for f, code in saved:
            f.__code__ = code

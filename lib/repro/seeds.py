"""Seeds: every random draw in the book goes through a generator seeded explicitly.

``derive(seed, *parts)`` lays out one integer seed per stream as decimal digits: the base seed,
then one digit per part (a section of a notebook, a method's index, a repetition). Distinct part
tuples give distinct seeds, so two runs never share a noise stream by accident, and a seed read in
a record says where it came from (``derive(0, 2, 1, 0) == 210``: section 2, method 1).
``Streams`` names the parts: ``Streams(seed, methods)(section, "pgd")``.

Used in: every chapter.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from repro.checks import nonnegative_int


def generator(seed: int, on: torch.device | str | None = None) -> torch.Generator:
    """A torch generator seeded explicitly (on the CPU unless ``on`` says otherwise)."""
    g = torch.Generator(device=on if on is not None else "cpu")
    g.manual_seed(int(seed))
    return g


def derive(seed: int, *parts: int) -> int:
    """The seed ``seed`` followed by the decimal digits ``parts`` (each in 0..9).

    ``derive(seed, a, b, c) == 1000 * seed + 100 * a + 10 * b + c``.
    """
    out = nonnegative_int("seed", seed)
    for i, part in enumerate(parts):
        if nonnegative_int(f"part {i}", part) > 9:
            raise ValueError(f"part {i} of a derived seed must be a digit 0..9, got {part}")
        out = 10 * out + part
    return out


class Streams:
    """Named seed streams of one notebook: section digit, then the method's index (9 for a name
    that is not one of ``methods``), then a repetition digit."""

    OTHER = 9

    def __init__(self, seed: int, methods: Sequence[str]) -> None:
        if len(methods) > self.OTHER:
            raise ValueError(f"at most {self.OTHER} named methods, got {len(methods)}")
        self.seed, self.methods = nonnegative_int("seed", seed), list(methods)

    def __call__(self, section: int, method: str, extra: int = 0) -> int:
        index = self.methods.index(method) if method in self.methods else self.OTHER
        return derive(self.seed, section, index, extra)

    def generator(self, section: int, method: str, extra: int = 0) -> torch.Generator:
        return generator(self(section, method, extra))


__all__ = ["Streams", "derive", "generator"]

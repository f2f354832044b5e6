"""repro.seeds: explicit generators, derived seeds as decimal digits, named streams (the old
chapter-10 ``seed_for``)."""

from __future__ import annotations

import pytest
import torch

from repro import seeds
from repro.seeds import Streams, derive, generator


def test_generator_is_seeded_explicitly_on_the_cpu():
    a, b = generator(5), generator(5)
    assert a.device.type == "cpu" and a.initial_seed() == 5
    assert torch.equal(torch.randn(4, generator=a), torch.randn(4, generator=b))
    assert not torch.equal(torch.randn(4, generator=generator(5)),
                           torch.randn(4, generator=generator(6)))
    import repro

    assert repro.generator is seeds.generator


@pytest.mark.parametrize("seed,a,b,c", [(0, 2, 1, 0), (3, 0, 0, 0), (7, 9, 9, 9), (12, 4, 0, 8)])
def test_derive_is_the_decimal_layout(seed, a, b, c):
    assert derive(seed, a, b, c) == 1000 * seed + 100 * a + 10 * b + c
    assert derive(0, 2, 1, 0) == 210


def test_derive_with_fewer_digits_and_none():
    assert derive(4) == 4
    assert derive(4, 7) == 47
    assert derive(4, 7, 1) == 471


def test_distinct_parts_give_distinct_seeds():
    seen = {derive(2, a, b, c) for a in range(10) for b in range(10) for c in range(10)}
    assert len(seen) == 1000
    assert derive(1, 0, 0, 0) not in {derive(0, a, b, c) for a in range(10) for b in range(10)
                                      for c in range(10)}


@pytest.mark.parametrize("bad", [-1, 1.5, "3", True, None])
def test_derive_refuses_a_bad_seed(bad):
    with pytest.raises(ValueError, match="seed"):
        derive(bad, 1)


@pytest.mark.parametrize("bad", [10, -1, 2.0, True])
def test_derive_refuses_a_part_that_is_not_a_digit(bad):
    with pytest.raises(ValueError, match="part 1"):
        derive(0, 3, bad)


def old_seed_for(seed, methods, section, method, extra=0):
    """Chapter 10's helper before the restructure, verbatim but for its closure."""
    return 1000 * seed + 100 * section + 10 * methods.index(method) + extra if method in methods \
        else 1000 * seed + 100 * section + 90 + extra


@pytest.mark.parametrize("seed", [0, 1, 42])
def test_streams_equal_chapter_10s_seed_for(seed):
    methods = ("gd", "pgd", "anti_pgd")
    streams = Streams(seed, methods)
    for section in range(10):
        for method in (*methods, "sgd", "other"):
            for extra in (0, 3, 9):
                assert streams(section, method, extra) == \
                    old_seed_for(seed, methods, section, method, extra), (section, method, extra)


def test_streams_generator_is_seeded_with_the_stream():
    streams = Streams(1, ["a", "b"])
    g = streams.generator(2, "b", 3)
    assert g.initial_seed() == streams(2, "b", 3) == 1213


def test_streams_refuse_bad_input():
    with pytest.raises(ValueError, match="at most 9"):
        Streams(0, [f"m{i}" for i in range(10)])
    with pytest.raises(ValueError, match="seed"):
        Streams(-1, ["a"])
    streams = Streams(0, ["a"])
    with pytest.raises(ValueError, match="digit"):
        streams(10, "a")
    with pytest.raises(ValueError, match="digit"):
        streams(1, "a", extra=12)

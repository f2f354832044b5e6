"""Claims as data: each check passes when it should and fails when it should."""

from __future__ import annotations

import pytest

from repro.machinery.claims import (
    FAIL,
    NOT_RUN,
    PASS,
    ChapterClaims,
    Claim,
    ClaimsError,
    check_all,
    check_claim,
    evaluate,
    summarize,
)


def claim(**check) -> Claim:
    return Claim.from_dict({"id": "c", "statement": "s", "metric": "m.v", "check": check,
                            "presets": ["quick"]})


def test_ordering_passes_only_for_strictly_increasing_means():
    c = claim(ordering=["anti", "gd", "pgd"])
    metrics = {"m": {"v": {"anti": [1, 2], "gd": 2, "pgd": 3}}}
    assert check_claim(c, metrics, "quick").verdict == PASS
    assert check_claim(c, {"m": {"v": {"anti": 2, "gd": 2, "pgd": 3}}}, "quick").verdict == FAIL
    assert check_claim(c, {"m": {"v": {"anti": 1, "gd": 3, "pgd": 2}}}, "quick").verdict == FAIL
    nan = check_claim(c, {"m": {"v": {"anti": float("nan"), "gd": 1, "pgd": 2}}}, "quick")
    assert nan.verdict == FAIL


def test_ordering_with_a_missing_method_fails_with_a_reason():
    v = check_claim(claim(ordering=["a", "b"]), {"m": {"v": {"a": 1}}}, "quick")
    assert v.verdict == FAIL and "lacks b" in v.detail


def test_value_within_relative_and_absolute_tolerance():
    rel = claim(value=62.0, rel_tol=0.05)
    assert check_claim(rel, {"m": {"v": 64.0}}, "quick").verdict == PASS
    assert check_claim(rel, {"m": {"v": 66.0}}, "quick").verdict == FAIL
    absolute = claim(value=1.0, abs_tol=0.01)
    assert check_claim(absolute, {"m": {"v": [0.995, 1.005]}}, "quick").verdict == PASS
    assert check_claim(absolute, {"m": {"v": 1.02}}, "quick").verdict == FAIL


def test_bound_evaluates_an_expression_over_metric_paths():
    c = claim(bound="<= 16*valley.alpha*valley.D")
    metrics = {"valley": {"alpha": 0.25, "D": 2.0}, "m": {"v": [7.0, 8.0]}}  # limit 8, mean 7.5
    assert check_claim(c, metrics, "quick").verdict == PASS
    metrics["m"]["v"] = [8.0, 9.0]
    assert check_claim(c, metrics, "quick").verdict == FAIL
    metrics = {"valley": {"alpha": 0.5}, "m": {"v": 4.0}}
    assert check_claim(claim(bound=">= 2 / valley.alpha"), metrics, "quick").verdict == PASS


def test_bound_expressions_allow_arithmetic_only():
    assert evaluate("2 ** 3 - -1 + a.b / 2", {"a": {"b": 4}}) == 11.0
    with pytest.raises(ClaimsError):
        evaluate("__import__('os')", {})
    with pytest.raises(ClaimsError):
        claim(bound="16 * x")  # no comparison


def test_a_claim_outside_its_presets_is_not_run_never_pass():
    c = Claim.from_dict({"id": "c", "statement": "s", "metric": "m.v",
                         "check": {"value": 1.0, "rel_tol": 0.1}, "presets": ["paper"]})
    assert check_claim(c, {"m": {"v": 1.0}}, "quick").verdict == NOT_RUN


def test_a_missing_metric_at_a_listed_preset_fails():
    v = check_claim(claim(value=1.0, rel_tol=0.1), {"other": 1}, "quick")
    assert v.verdict == FAIL and "no metric" in v.detail


def test_no_run_means_every_claim_is_not_run(tmp_path):
    path = tmp_path / "claims.yaml"
    path.write_text("paper: {title: T}\nclaims:\n  - {id: a, statement: s, metric: m, "
                    "check: {value: 1, abs_tol: 1}, presets: [quick]}\n")
    assert [v.verdict for v in check_all(ChapterClaims.load(path), None, "quick")] == [NOT_RUN]


@pytest.mark.parametrize("body, message", [
    ("claims: []\n", "needs the keys"),
    ("paper: {}\nclaims:\n  - {id: a, statement: s, metric: m, presets: [quick]}\n", "lacks check"),
    ("paper: {}\nclaims:\n  - {id: a, statement: s, metric: m, check: {value: 1}, presets: [q]}\n",
     "rel_tol or abs_tol"),
    ("paper: {}\nclaims:\n  - {id: a, statement: s, metric: m, check: {}, presets: [q]}\n",
     "exactly one check"),
])
def test_malformed_claims_files_are_refused(tmp_path, body, message):
    path = tmp_path / "claims.yaml"
    path.write_text(body)
    with pytest.raises(ClaimsError, match=message):
        ChapterClaims.load(path)


def test_summarize_gives_mean_and_sample_spread():
    assert summarize(3) == (3.0, None, 1)
    mean, sd, n = summarize([1.0, 3.0])
    assert (mean, n) == (2.0, 2) and sd == pytest.approx(2 ** 0.5)
    with pytest.raises(TypeError):
        summarize([True, False])


def test_a_known_failure_still_fails_and_says_why():
    c = Claim.from_dict({"id": "c", "statement": "s", "metric": "m.v",
                         "check": {"bound": "<= 1"}, "presets": ["quick", "paper"],
                         "known_failure": {"quick": "too few samples at this size"}})
    v = check_claim(c, {"m": {"v": 2.0}}, "quick")
    assert v.verdict == FAIL and "too few samples" in v.detail
    assert check_claim(c, {"m": {"v": 0.5}}, "quick").verdict == PASS  # it can pass after all
    with pytest.raises(ClaimsError, match="not checked at"):
        Claim.from_dict({"id": "c", "statement": "s", "metric": "m", "check": {"bound": "<= 1"},
                         "presets": ["quick"], "known_failure": {"paper": "x"}})


def test_paired_passes_only_beyond_z_standard_errors_of_the_paired_difference():
    c = claim(paired=["a", "b"], z=2)
    shift = {"m": {"v": {"a": [1.0, 2.0, 3.0, 4.0], "b": [2.0, 3.1, 3.9, 5.0]}}}
    assert check_claim(c, shift, "quick").verdict == PASS        # -1 ± 0.04: far beyond 2 SE
    tie = {"m": {"v": {"a": [1.0, 2.0], "b": [1.0, 2.0]}}}
    assert check_claim(c, tie, "quick").verdict == FAIL          # a tie never passes
    noisy = {"m": {"v": {"a": [1.0, 2.0, 3.0, 4.0], "b": [1.1, 1.9, 3.2, 4.0]}}}
    assert check_claim(c, noisy, "quick").verdict == FAIL        # -0.05 ± 0.065: inside spread
    means_ok = {"m": {"v": {"a": [0.0, 10.0], "b": [5.0, 5.1]}}}  # mean a < mean b, not paired
    assert check_claim(c, means_ok, "quick").verdict == FAIL
    chained = claim(paired=["a", "b", "c"], z=1)
    three = {"m": {"v": {"a": [1.0, 1.1], "b": [2.0, 2.0], "c": [1.5, 1.6]}}}
    assert check_claim(chained, three, "quick").verdict == FAIL  # b < c does not hold


def test_paired_needs_the_same_seeds():
    c = claim(paired=["a", "b"])
    verdict = check_claim(c, {"m": {"v": {"a": [1.0, 2.0], "b": [2.0, 3.0, 4.0]}}}, "quick")
    assert verdict.verdict == FAIL and "same seeds" in verdict.detail


def test_a_paired_margin_refuses_a_consistent_but_negligible_difference():
    tiny = {"m": {"v": {"a": [1.00, 2.00, 3.00], "b": [1.01, 2.01, 3.011]}}}
    assert check_claim(claim(paired=["a", "b"]), tiny, "quick").verdict == PASS   # huge z
    assert check_claim(claim(paired=["a", "b"], margin=0.1), tiny, "quick").verdict == FAIL
    big = {"m": {"v": {"a": [1.0, 2.0, 3.0], "b": [1.5, 2.6, 3.5]}}}
    assert check_claim(claim(paired=["a", "b"], margin=0.1), big, "quick").verdict == PASS

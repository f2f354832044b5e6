"""A paper's claims as data, checked against what a run measured.

Each chapter's ``claims.yaml`` holds the paper's metadata and a list of claims. A claim names a
metric (a dotted path into the run's ``metrics.json``), a check, and the presets at which the
check is meaningful. Three checks exist:

``ordering: [a, b, c]``
    the metric is a mapping method -> value (or per-seed list); passes iff the means strictly
    increase in the order given.
``value: x, rel_tol: t``  (or ``abs_tol``)
    passes iff the mean is within the tolerance of ``x``.
``bound: "<= expr"``  (or ``<``, ``>=``, ``>``)
    ``expr`` is arithmetic over numbers and dotted metric paths; passes iff the inequality holds.
``paired: [a, b], z: 2, margin: 0``
    the metric maps methods to per-seed lists over the same seeds; passes iff the paired
    difference a - b + margin (seed by seed) is negative by more than ``z`` standard errors of
    its mean (``z`` defaults to 2, ``margin`` to 0): a must be below b by more than ``margin``, and
    not by chance. Several names chain: every consecutive pair must hold. A tie, or a difference
    inside the seeds' spread, fails; ``margin`` keeps a consistent but negligible difference (near
    deterministic seeds give a huge z) from passing. This is how noisy orderings are decided.

A claim may say where its threshold comes from: ``origin: "paper: ..."`` (quote where) or
``origin: "ours: ..."`` (why that value; and whether it was chosen after seeing a run).

Controls. ``controls:`` lists deliberate, plausible bugs that the claims must catch: each has an
``id``, ``what`` (the bug, in words), ``cell`` (Python run right after the notebook's parameters
cell, which patches the library or a parameter to plant the bug) and ``must_fail`` (ids of
claims that must say fail under it). ``repro controls CHAPTER`` runs them.

Verdicts are ``pass``, ``fail`` and ``not run``. A claim whose presets do not include the run's
preset is ``not run``; it never passes by default. A claim that should have been measured at this
preset but whose metric is missing from the run is ``fail``: the experiment did not do its job.

Used by: the runner, `finish` (``notebook``) and the Sphinx extension.
"""

from __future__ import annotations

import ast
import html
import math
import operator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

PASS, FAIL, NOT_RUN = "pass", "fail", "not run"
CHECKS = ("ordering", "value", "bound", "paired")


class ClaimsError(ValueError):
    """A claims.yaml that does not follow the schema."""


@dataclass(frozen=True)
class Claim:
    id: str
    statement: str
    where: str
    metric: str
    check: dict
    presets: tuple[str, ...]
    paper: str = ""
    # preset -> why the claim does not reproduce there. The verdict is still computed (and says
    # fail); this records the expectation, so a test notices when the outcome changes either way.
    known_failure: dict = field(default_factory=dict)
    origin: str = ""  # where the threshold comes from: "paper: ..." or "ours: ..."

    @classmethod
    def from_dict(cls, raw: Mapping, source: str = "claims.yaml") -> "Claim":
        missing = [k for k in ("id", "statement", "metric", "check", "presets") if k not in raw]
        if missing:
            raise ClaimsError(f"{source}: claim {raw.get('id', '?')!r} lacks {', '.join(missing)}")
        check = dict(raw["check"])
        kinds = [k for k in CHECKS if k in check]
        if len(kinds) != 1:
            raise ClaimsError(
                f"{source}: claim {raw['id']!r} needs exactly one check of {', '.join(CHECKS)}"
            )
        if "value" in check and not ("rel_tol" in check or "abs_tol" in check):
            raise ClaimsError(
                f"{source}: claim {raw['id']!r}: a value check needs rel_tol or abs_tol"
            )
        if "bound" in check:
            _split_bound(str(check["bound"]))  # fail early on a malformed bound
        if "paired" in check:
            names = check["paired"]
            if not isinstance(names, list) or len(names) < 2:
                raise ClaimsError(f"{source}: claim {raw['id']!r}: paired needs a list of two or "
                                  "more method names")
            if not float(check.get("z", 2.0)) >= 0 or not float(check.get("margin", 0.0)) >= 0:
                raise ClaimsError(f"{source}: claim {raw['id']!r}: z and margin must be >= 0")
        unknown = set(raw.get("known_failure") or {}) - set(raw["presets"])
        if unknown:
            raise ClaimsError(f"{source}: claim {raw['id']!r}: known_failure names presets it is "
                              f"not checked at: {', '.join(sorted(unknown))}")
        return cls(
            id=str(raw["id"]),
            statement=" ".join(str(raw["statement"]).split()),
            where=str(raw.get("where", "")),
            metric=str(raw["metric"]),
            check=check,
            presets=tuple(raw["presets"]),
            paper=str(raw.get("paper", "")),
            known_failure=dict(raw.get("known_failure") or {}),
            origin=" ".join(str(raw.get("origin", "")).split()),
        )

    def describe_check(self) -> str:
        if "paired" in self.check:
            margin = float(self.check.get("margin", 0.0))
            return (" < ".join(self.check["paired"])
                    + (f" by more than {margin:g}" if margin else "")
                    + f", > {float(self.check.get('z', 2.0)):g} SE, paired over seeds")
        if "ordering" in self.check:
            return " < ".join(self.check["ordering"])
        if "value" in self.check:
            tol = (
                f"± {self.check['rel_tol']:.0%}" if "rel_tol" in self.check
                else f"± {self.check['abs_tol']}"
            )
            return f"{self.check['value']} {tol}"
        return str(self.check["bound"])


@dataclass(frozen=True)
class Control:
    """A deliberate bug planted by a cell run after the parameters cell; ``must_fail`` claims must
    then say fail (the control is *caught*), or the claims cannot tell the method from the bug."""

    id: str
    what: str
    cell: str
    must_fail: tuple[str, ...]

    @classmethod
    def from_dict(cls, raw: Mapping, claim_ids: set[str], source: str) -> "Control":
        missing = [k for k in ("id", "what", "cell", "must_fail") if not raw.get(k)]
        if missing:
            raise ClaimsError(f"{source}: control {raw.get('id', '?')!r} lacks "
                              f"{', '.join(missing)}")
        must_fail = tuple(str(c) for c in raw["must_fail"])
        unknown = [c for c in must_fail if c not in claim_ids]
        if unknown:
            raise ClaimsError(f"{source}: control {raw['id']!r} names unknown claims: "
                              f"{', '.join(unknown)}")
        return cls(str(raw["id"]), " ".join(str(raw["what"]).split()), str(raw["cell"]),
                   must_fail)


@dataclass(frozen=True)
class ChapterClaims:
    paper: dict
    claims: tuple[Claim, ...]
    controls: tuple[Control, ...] = ()

    @classmethod
    def load(cls, path: str | Path) -> "ChapterClaims":
        path = Path(path)
        raw = yaml.safe_load(path.read_text()) or {}
        if "paper" not in raw or "claims" not in raw:
            raise ClaimsError(f"{path}: needs the keys 'paper' and 'claims'")
        claims = tuple(Claim.from_dict(c, str(path)) for c in raw["claims"])
        ids = [c.id for c in claims]
        if len(set(ids)) != len(ids):
            raise ClaimsError(f"{path}: claim ids must be unique")
        controls = tuple(Control.from_dict(c, set(ids), str(path))
                         for c in raw.get("controls") or [])
        if len({c.id for c in controls}) != len(controls):
            raise ClaimsError(f"{path}: control ids must be unique")
        return cls(paper=dict(raw["paper"]), claims=claims, controls=controls)


@dataclass(frozen=True)
class Verdict:
    claim: Claim
    verdict: str  # pass, fail, not run
    measured: str  # this run, as text
    detail: str = ""

    def as_dict(self) -> dict:
        return {
            "id": self.claim.id, "statement": self.claim.statement, "where": self.claim.where,
            "paper": self.claim.paper, "check": self.claim.describe_check(),
            "measured": self.measured, "verdict": self.verdict, "detail": self.detail,
        }


# --- reading metrics -------------------------------------------------------------------------

def lookup(metrics: Mapping, path: str) -> Any:
    """``lookup(m, "a.b")`` is ``m["a"]["b"]``; a KeyError names the missing path."""
    node: Any = metrics
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise KeyError(path)
        node = node[part]
    return node


def summarize(value: Any) -> tuple[float, float | None, int]:
    """(mean, standard deviation or None, count) of a number or a per-seed list of numbers."""
    if isinstance(value, bool) or value is None:
        raise TypeError(f"expected a number or a list of numbers, got {value!r}")
    if isinstance(value, (int, float)):
        return float(value), None, 1
    if isinstance(value, Sequence) and value and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in value
    ):
        xs = [float(v) for v in value]
        mean = sum(xs) / len(xs)
        if len(xs) == 1:
            return mean, None, 1
        var = sum((x - mean) ** 2 for x in xs) / (len(xs) - 1)
        return mean, math.sqrt(var), len(xs)
    raise TypeError(f"expected a number or a list of numbers, got {value!r}")


def _fmt(value: Any) -> str:
    mean, sd, n = summarize(value)
    text = f"{mean:.4g}"
    if sd is not None:
        text += f" ± {sd:.2g} (n={n})"
    return text


# --- bounds: a tiny arithmetic evaluator over metric paths -----------------------------------

_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
           ast.Div: operator.truediv, ast.Pow: operator.pow}
_COMPARE = {"<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt}


def _split_bound(bound: str) -> tuple[str, str]:
    text = bound.strip()
    for op in ("<=", ">=", "<", ">"):
        if text.startswith(op):
            return op, text[len(op):].strip()
    raise ClaimsError(f"a bound must start with <=, <, >= or >: {bound!r}")


def evaluate(expression: str, metrics: Mapping) -> float:
    """Evaluate arithmetic over numbers and dotted metric paths (no calls, no other names)."""

    def walk(node: ast.AST) -> float:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return float(node.value)
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            return _BINOPS[type(node.op)](walk(node.left), walk(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            return -walk(node.operand) if isinstance(node.op, ast.USub) else walk(node.operand)
        if isinstance(node, (ast.Name, ast.Attribute)):
            return summarize(lookup(metrics, _dotted(node)))[0]
        raise ClaimsError(f"unsupported element in bound expression {expression!r}")

    return walk(ast.parse(expression, mode="eval"))


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    raise ClaimsError("unsupported name in bound expression")


# --- checking --------------------------------------------------------------------------------

def check_claim(claim: Claim, metrics: Mapping, preset: str) -> Verdict:
    verdict = _check_claim(claim, metrics, preset)
    if verdict.verdict == FAIL and preset in claim.known_failure:
        why = " ".join(str(claim.known_failure[preset]).split())
        return Verdict(claim, FAIL, verdict.measured, f"expected at {preset}: {why}")
    return verdict


def _check_claim(claim: Claim, metrics: Mapping, preset: str) -> Verdict:
    if preset not in claim.presets:
        return Verdict(claim, NOT_RUN, "—", f"not testable at the {preset} preset")
    try:
        value = lookup(metrics, claim.metric)
    except KeyError:
        return Verdict(claim, FAIL, "—", f"the run recorded no metric {claim.metric!r}")
    try:
        if "paired" in claim.check:
            return _check_paired(claim, value)
        if "ordering" in claim.check:
            return _check_ordering(claim, value)
        if "value" in claim.check:
            return _check_value(claim, value)
        return _check_bound(claim, value, metrics)
    except (TypeError, KeyError) as error:
        return Verdict(claim, FAIL, "—", f"cannot check: {error}")


def _check_ordering(claim: Claim, value: Any) -> Verdict:
    order = list(claim.check["ordering"])
    if not isinstance(value, Mapping):
        raise TypeError(f"{claim.metric} must map methods to values for an ordering check")
    missing = [m for m in order if m not in value]
    if missing:
        raise KeyError(f"{claim.metric} lacks {', '.join(missing)}")
    means = [summarize(value[m])[0] for m in order]
    ok = all(a < b for a, b in zip(means, means[1:])) and all(map(math.isfinite, means))
    measured = "; ".join(f"{m} {_fmt(value[m])}" for m in order)
    return Verdict(claim, PASS if ok else FAIL, measured)


def _per_seed(value: Any, what: str) -> list[float]:
    if not isinstance(value, Sequence) or isinstance(value, str) or len(value) < 2:
        raise TypeError(f"{what} must be a per-seed list of two or more numbers for a paired check")
    return [float(v) for v in value]


def _check_paired(claim: Claim, value: Any) -> Verdict:
    names = list(claim.check["paired"])
    z_min = float(claim.check.get("z", 2.0))
    margin = float(claim.check.get("margin", 0.0))
    if not isinstance(value, Mapping):
        raise TypeError(f"{claim.metric} must map methods to per-seed lists for a paired check")
    missing = [m for m in names if m not in value]
    if missing:
        raise KeyError(f"{claim.metric} lacks {', '.join(missing)}")
    ok, parts = True, []
    for a, b in zip(names, names[1:]):
        xa = _per_seed(value[a], f"{claim.metric}.{a}")
        xb = _per_seed(value[b], f"{claim.metric}.{b}")
        if len(xa) != len(xb):
            raise TypeError(f"{a} and {b} have {len(xa)} and {len(xb)} seeds: a paired check "
                            "needs the same seeds")
        d = [x - y + margin for x, y in zip(xa, xb)]
        mean, sd, n = summarize(d)
        se = (sd or 0.0) / math.sqrt(n)
        z = -mean / se if se > 0 else (math.inf if mean < 0 else -math.inf if mean > 0 else 0.0)
        holds = all(map(math.isfinite, d)) and mean < 0 and z > z_min
        ok = ok and holds
        parts.append(f"{a} − {b} = {mean - margin:.3g} ± {se:.2g} (n={n}, {z:.1f} SE)")
    need = f"needs > {z_min:g} SE" + (f" below −{margin:g}" if margin else "")
    return Verdict(claim, PASS if ok else FAIL, "; ".join(parts), need)


def _check_value(claim: Claim, value: Any) -> Verdict:
    mean = summarize(value)[0]
    target = float(claim.check["value"])
    if "rel_tol" in claim.check:
        tol = float(claim.check["rel_tol"]) * abs(target)
    else:
        tol = float(claim.check["abs_tol"])
    ok = math.isfinite(mean) and abs(mean - target) <= tol
    return Verdict(
        claim, PASS if ok else FAIL, _fmt(value), f"|{mean:.4g} − {target:g}| vs {tol:.3g}"
    )


def _check_bound(claim: Claim, value: Any, metrics: Mapping) -> Verdict:
    op, expression = _split_bound(str(claim.check["bound"]))
    mean = summarize(value)[0]
    limit = evaluate(expression, metrics)
    ok = math.isfinite(mean) and _COMPARE[op](mean, limit)
    return Verdict(claim, PASS if ok else FAIL, f"{_fmt(value)}; bound {limit:.4g}")


def check_all(chapter: ChapterClaims, metrics: Mapping | None, preset: str) -> list[Verdict]:
    """Every claim's verdict; with no metrics at all, every claim is 'not run'."""
    if metrics is None:
        return [Verdict(c, NOT_RUN, "—", "no run recorded") for c in chapter.claims]
    return [check_claim(c, metrics, preset) for c in chapter.claims]


# --- presenting ------------------------------------------------------------------------------

class VerdictTable:
    """A list of verdicts that shows itself as a table in a notebook and in a terminal."""

    columns = ("claim", "paper", "this run", "verdict")

    def __init__(self, verdicts: list[Verdict], preset: str):
        self.verdicts = verdicts
        self.preset = preset

    def rows(self) -> list[tuple[str, str, str, str]]:
        return [
            (v.claim.id, v.claim.paper or v.claim.describe_check(), v.measured, v.verdict)
            for v in self.verdicts
        ]

    def counts(self) -> dict[str, int]:
        return {k: sum(v.verdict == k for v in self.verdicts) for k in (PASS, FAIL, NOT_RUN)}

    def __str__(self) -> str:
        rows = [self.columns, *self.rows()]
        widths = [min(60, max(len(r[i]) for r in rows)) for i in range(4)]
        lines = []
        for i, row in enumerate(rows):
            lines.append(
                "  ".join(cell[: widths[j]].ljust(widths[j]) for j, cell in enumerate(row))
            )
            if i == 0:
                lines.append("  ".join("-" * w for w in widths))
        c = self.counts()
        lines.append(f"[{self.preset}] {c[PASS]} pass, {c[FAIL]} fail, {c[NOT_RUN]} not run")
        return "\n".join(lines)

    def _repr_markdown_(self) -> str:
        head = "| claim | statement | paper | this run | verdict |\n|---|---|---|---|---|\n"
        body = "".join(
            f"| `{v.claim.id}` | {v.claim.statement} | {v.claim.paper or v.claim.describe_check()} "
            f"| {v.measured} | **{v.verdict}** |\n"
            for v in self.verdicts
        )
        c = self.counts()
        return head + body + (
            f"\nPreset `{self.preset}`: {c[PASS]} pass, {c[FAIL]} fail, {c[NOT_RUN]} not run.\n"
        )

    def _repr_html_(self) -> str:
        cells = "".join(
            "<tr>" + "".join(f"<td>{html.escape(x)}</td>" for x in row) + "</tr>"
            for row in self.rows()
        )
        head = "".join(f"<th>{c}</th>" for c in self.columns)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{cells}</tbody></table>"


def chapter_claims(slug: str) -> ChapterClaims:
    from repro.machinery.chapters import find_chapter

    return ChapterClaims.load(find_chapter(slug).claims_path)


def show_verdicts(slug: str, metrics: Mapping, preset: str) -> VerdictTable:
    """Check a chapter's claims against ``metrics``; returned last in a cell, it renders a table."""
    return VerdictTable(check_all(chapter_claims(slug), metrics, preset), preset)

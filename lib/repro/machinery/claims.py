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

The tables show ``statement`` and ``paper`` with their common ASCII and Unicode math (``alpha*D``,
``Delta_m``, ``X_GD → X_nuc``, ``|u|^2``, ``UUᵀ``) typeset as math, and TeX written between
dollars as it is. ``paper_tex`` (optional, e.g. ``'\\mathbb{E}|u|^2 \\le \\alpha D'``) gives
the paper's value as TeX outright; it is shown in place of ``paper``.

Controls. ``controls:`` lists deliberate, plausible bugs that the claims must catch: each has an
``id``, ``what`` (the bug, in words), ``cell`` (Python run right after the notebook's parameters
cell, which patches the library or a parameter to plant the bug) and ``must_fail`` (ids of
claims that must say fail under it). ``repro controls CHAPTER`` runs them.

Verdicts are ``pass``, ``fail`` and ``not run``. A claim whose presets do not include the run's
preset is ``not run``; it never passes by default. A claim that should have been measured at this
preset but whose metric is missing from the run is ``fail``: the experiment did not do its job.
A failing verdict is shown as a *known failure* when claims.yaml records why it fails at that
preset, and as *diverged* when the measured value is not finite (``Verdict.status``).

Used by: the runner, `finish` (``notebook``) and the Sphinx extension.
"""

from __future__ import annotations

import ast
import html
import math
import operator
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

PASS, FAIL, NOT_RUN = "pass", "fail", "not run"
# how a verdict is shown: a fail is a known failure (claims.yaml says why it fails at the preset)
# or diverged (the measured value is not finite) when it is one
KNOWN_FAILURE, DIVERGED = "known failure", "diverged"
STATUSES = (PASS, FAIL, KNOWN_FAILURE, DIVERGED, NOT_RUN)
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
    paper_tex: str = ""  # the paper's value as TeX, shown as math in place of ``paper``

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
            paper_tex=" ".join(str(raw.get("paper_tex", "")).split()),
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
    known: bool = False  # a fail that claims.yaml expects at this preset (known_failure)
    diverged: bool = False  # a fail on a measured value that is not finite

    @property
    def status(self) -> str:
        """One of STATUSES: the verdict, with a fail told apart as known failure or diverged."""
        if self.verdict != FAIL:
            return self.verdict
        return KNOWN_FAILURE if self.known else DIVERGED if self.diverged else FAIL

    def as_dict(self) -> dict:
        return {
            "id": self.claim.id, "statement": self.claim.statement, "where": self.claim.where,
            "paper": self.claim.paper, "check": self.claim.describe_check(),
            "measured": self.measured, "verdict": self.verdict, "detail": self.detail,
            "status": self.status,
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
        return replace(verdict, detail=f"expected at {preset}: {why}", known=True)
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
            verdict = _check_paired(claim, value)
        elif "ordering" in claim.check:
            verdict = _check_ordering(claim, value)
        elif "value" in claim.check:
            verdict = _check_value(claim, value)
        else:
            verdict = _check_bound(claim, value, metrics)
    except (TypeError, KeyError) as error:
        return Verdict(claim, FAIL, "—", f"cannot check: {error}")
    if verdict.verdict == FAIL and not _finite(value):
        return replace(verdict, diverged=True)
    return verdict


def _finite(value: Any) -> bool:
    """False when a number anywhere in ``value`` (a number, list or mapping) is NaN or infinite."""
    if isinstance(value, Mapping):
        return all(_finite(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return all(_finite(v) for v in value)
    if isinstance(value, float):
        return math.isfinite(value)
    return True


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
#
# One renderer for every verdict table: a chapter's page, the claims dashboard and recorded runs
# (through the Sphinx extension) and the experiments notebooks (VerdictTable). It writes HTML, so
# that a notebook's output and a page look the same; the book's stylesheet (book/_static/repro.css)
# colours the badges, which also read without colour: a symbol, a word, a border of their own.

BADGES = {PASS: ("✓", "pass"), FAIL: ("✗", "FAIL"), KNOWN_FAILURE: ("⚠", "known failure"),
          DIVERGED: ("∞", "diverged"), NOT_RUN: ("–", "not run")}


def badge_html(status: str, title: str = "") -> str:
    """A verdict's badge: a symbol hidden from screen readers, then the word, in a span of class
    ``repro-badge repro-<status>`` (``repro-known-failure`` for a known failure)."""
    icon, word = BADGES[status]
    hover = f' title="{html.escape(title)}"' if title else ""
    return (f'<span class="repro-badge repro-{status.replace(" ", "-")}"{hover}>'
            f'<span class="repro-badge-icon" aria-hidden="true">{icon}</span> {word}</span>')


def count_text(statuses: Mapping[str, int]) -> str:
    """``12 pass, 1 fail, 2 known failures, 3 not run``: known failures and divergences are named
    only when there are any."""
    parts = [f"{statuses.get(PASS, 0)} pass", f"{statuses.get(FAIL, 0)} fail"]
    if n := statuses.get(KNOWN_FAILURE, 0):
        parts.append(f"{n} known failure" + ("s" if n > 1 else ""))
    if n := statuses.get(DIVERGED, 0):
        parts.append(f"{n} diverged")
    return ", ".join([*parts, f"{statuses.get(NOT_RUN, 0)} not run"])


# ASCII and Unicode math in a statement or a paper's value, typeset with MathJax: each word (a run
# of characters without spaces) that parses as a formula becomes TeX, and so do the words around
# it joined by operators (``E|u|^2 <= alpha*D``). A word that does not parse stays text, so code
# names such as ``gap_tol`` and prose are left alone; TeX between dollars is kept as written.

_GREEK = {name: "\\" + name for name in (
    "alpha beta gamma delta epsilon zeta eta theta kappa lambda mu nu xi pi rho sigma tau phi chi "
    "psi omega Gamma Delta Theta Lambda Xi Pi Sigma Phi Psi Omega").split()}
_SYMBOLS = dict(zip("αβγδεζηθκλμνξπρστφχψωΓΔΘΛΞΠΣΦΨΩℓ∇∞∂", (
    r"\alpha \beta \gamma \delta \varepsilon \zeta \eta \theta \kappa \lambda \mu \nu \xi \pi \rho "
    r"\sigma \tau \phi \chi \psi \omega \Gamma \Delta \Theta \Lambda \Xi \Pi \sum \Phi \Psi "
    r"\Omega \ell \nabla \infty \partial").split()))
_SUPERSCRIPTS = {"²": "2", "³": "3", "¹": "1", "ᵀ": r"\top", "⁻": "-", "⁺": "+"}
_SUBSCRIPTS = dict(zip("₀₁₂₃₄₅₆₇₈₉ᵢⱼₖₘₙₜ", "0123456789ijkmnt"))
_NAMES = {"Tr": r"\operatorname{Tr}", "lim": r"\lim", "exp": r"\exp", "log": r"\log",
          "max": r"\max", "min": r"\min"}
_OPERATORS = {"→": r"\to", "->": r"\to", "≤": r"\le", "<=": r"\le", "≥": r"\ge", ">=": r"\ge",
              "<": "<", ">": ">", "=": "=", "≈": r"\approx", "±": r"\pm", "+-": r"\pm", "+": "+",
              "−": "-", "-": "-", "×": r"\times", "·": r"\cdot", "/": "/", "~": r"\sim"}
_NUMBER = re.compile(r"[-−]?\d+(?:\.\d+)?(?:[eE][-+−]?\d+)?")
_INNER = re.compile(r"([-+−=→,/])")          # operators inside braces or parentheses


def _number_tex(text: str) -> str:
    mantissa, _, exponent = text.replace("−", "-").lower().partition("e")
    if not exponent:
        return mantissa
    power = f"10^{{{int(exponent)}}}"
    if float(mantissa) in (1.0, -1.0):
        return ("-" if mantissa.startswith("-") else "") + power
    return f"{mantissa} \\times {power}"


def _closing(s: str, i: int, opening: str, closing: str) -> int:
    """The index of the bracket that closes the one at ``s[i]``, or -1."""
    depth = 0
    for j in range(i, len(s)):
        depth += (s[j] == opening) - (s[j] == closing)
        if depth == 0:
            return j
    return -1


def _inner(s: str) -> tuple[str, bool] | None:
    """Formula inside braces or parentheses: words joined by operators with no spaces."""
    pieces, levels = [], []
    for k, piece in enumerate(_INNER.split(s)):
        if k % 2:
            pieces.append(_OPERATORS.get(piece, piece))
        elif piece:
            parsed = _formula(piece)
            if parsed is None:
                return None
            pieces.append(parsed[0])
            levels.append(parsed[1])
    return " ".join(pieces), True in levels or ("weak" if "weak" in levels else False)


def _script(s: str, i: int) -> tuple[str, int] | None:
    """The argument of ``_`` or ``^`` at ``s[i]``: a braced or parenthesized formula, ``T``
    (transpose), digits, a word or a symbol; and where it ends."""
    if i >= len(s):
        return None
    if s[i] in "{(":
        end = _closing(s, i, s[i], "}" if s[i] == "{" else ")")
        inner = _inner(s[i + 1:end]) if end > i else None
        if inner is None:
            return None
        return (inner[0] if s[i] == "{" else f"({inner[0]})"), end + 1
    if s[i] in _SYMBOLS:
        return _SYMBOLS[s[i]], i + 1
    word = re.match(r"\d+|[A-Za-z]+", s[i:])
    if not word:
        return None
    text = word.group()
    tex = text if len(text) == 1 or text.isdigit() else _GREEK.get(text, f"\\mathrm{{{text}}}")
    return tex, i + len(text)


def _formula(s: str) -> tuple[str, bool] | None:
    """TeX for a word without spaces and whether it shows math (sub- or superscripts, Greek,
    ``*`` products, ``|x|``), or None when the word is not a formula. A word marked as math by
    Unicode sub- or superscripts alone (``g₂``, ``UUᵀ``) reads well as text and counts as math
    (``"weak"``) only next to an operator or another formula."""
    parts, mathy, weak, i = [], False, False, 0
    while i < len(s):
        if parts and s[i] in "*/" and i + 1 < len(s):       # a product or a quotient
            mathy = mathy or s[i] == "*"
            parts.append("/" if s[i] == "/" else "")
            i += 1
        number = _NUMBER.match(s, i) if i == 0 or not s[i - 1].isalpha() else None
        word = re.match(r"[A-Za-z]+", s[i:])
        if number and (i == 0 or s[i] not in "-−"):
            atom, i = _number_tex(number.group()), number.end()
        elif word:
            text = word.group()
            i += len(text)
            if text in _GREEK:
                atom, mathy = _GREEK[text], True
            elif text in _NAMES:
                atom = _NAMES[text]
            elif len(text) == 1:
                atom = r"\ell" if text == "l" and i < len(s) and s[i] in "_0123456789" else text
                digits = re.match(r"\d+", s[i:])
                if digits:                                    # u0, w1, l4: an index
                    atom, mathy, i = f"{atom}_{{{digits.group()}}}", True, i + len(digits.group())
            elif text.isupper() and len(text) <= 3:
                atom = text                                   # UU, GG: a product of matrices
            else:
                return None
        elif s[i] in _SYMBOLS:
            atom, mathy, i = _SYMBOLS[s[i]], True, i + 1
        elif s[i] in "|(":
            end = s.find("|", i + 1) if s[i] == "|" else _closing(s, i, "(", ")")
            inner = (_formula if s[i] == "|" else _inner)(s[i + 1:end]) if end > i + 1 else None
            if inner is None:
                return None
            atom = rf"\lvert {inner[0]}\rvert" if s[i] == "|" else f"({inner[0]})"
            mathy = mathy or inner[1] is True or s[i] == "|"
            weak, i = weak or inner[1] == "weak", end + 1
        else:
            return None
        while i < len(s):                                    # sub- and superscripts
            if s[i] in "_^":
                script = _script(s, i + 1)
                if script is None:
                    return None
                tex = r"\top" if s[i] == "^" and script[0] == "T" else script[0]
                atom, i = f"{atom}{s[i]}{{{tex}}}", script[1]
            elif s[i] in _SUBSCRIPTS or s[i] in _SUPERSCRIPTS:
                table, mark = (_SUBSCRIPTS, "_") if s[i] in _SUBSCRIPTS else (_SUPERSCRIPTS, "^")
                j = i
                while j < len(s) and s[j] in table:
                    j += 1
                atom = f"{atom}{mark}{{{' '.join(table[c] for c in s[i:j])}}}"
                i, weak = j, True
                continue
            else:
                break
            mathy = True
        parts.append(atom)
    if not parts or parts[-1] in ("", "/"):
        return None
    return " ".join(p for p in parts if p), True if mathy else "weak" if weak else False


def _split_punctuation(word: str) -> tuple[str, str, str]:
    """(opening punctuation, the word, closing punctuation); a parenthesis is split off only
    when the word does not close it itself."""
    lead, trail = "", ""
    while word and word[0] in "(['\"“‘" and (word[0] != "(" or word.count("(") > word.count(")")):
        lead, word = lead + word[0], word[1:]
    while word and word[-1] in ",.;:!?)]'\"”’%" and (
            word[-1] != ")" or word.count(")") > word.count("(")):
        word, trail = word[:-1], word[-1] + trail
    return lead, word, trail


def _math_span(tex: str) -> str:
    return f'<span class="math notranslate nohighlight">\\({html.escape(tex)}\\)</span>'


def _text_html(text: str) -> str:
    text = text.replace("<=", "≤").replace(">=", "≥").replace("+-", "±")
    return html.escape(text)


def rich_html(text: str) -> str:
    """``text`` as HTML, with TeX between dollars and the formulas it writes in ASCII or Unicode
    (see above) as MathJax math."""
    out = []
    for k, piece in enumerate(re.split(r"\$([^$]+)\$", text)):
        out.append(_math_span(piece) if k % 2 else _prose_html(piece))
    return "".join(out)


def _prose_html(text: str) -> str:
    words = re.split(r"(\s+)", text)
    kinds = []                 # (kind, tex, lead, trail, math strength) per word; spaces: None
    for k, word in enumerate(words):
        if k % 2:
            kinds.append(None)
            continue
        lead, core, trail = _split_punctuation(word)
        parsed = _formula(core) if core and core not in _OPERATORS else None
        if word in _OPERATORS:
            kinds.append(("op", _OPERATORS[word], "", "", None))
        elif parsed and parsed[1]:
            kinds.append(("math", parsed[0], lead, trail, parsed[1]))
        elif parsed and (len(core) == 1 or core in _NAMES or _NUMBER.fullmatch(core)):
            kinds.append(("operand", parsed[0], lead, trail, None))
        else:
            kinds.append(("text", word, "", "", None))
    out, k = [], 0
    while k < len(words):
        kind = kinds[k]
        if kind is None or kind[0] not in ("math", "operand"):
            out.append(words[k] if kind is None else _text_html(words[k]))
            k += 1
            continue
        run = [k]                              # words joined into one formula
        j = k
        while not kinds[j][3] and j + 2 < len(words):
            following = kinds[j + 2]
            if following[0] == "op" or (following[0] in ("math", "operand") and not following[2]):
                run.append(j + 2)
                j += 2
            else:
                break
        while kinds[run[-1]][0] == "op":
            run.pop()
        strong = any(kinds[r][0] == "math" and kinds[r][4] is True for r in run)
        if not strong and not (len(run) > 1 and any(kinds[r][0] == "math" for r in run)):
            out.append(_text_html(words[k]))
            k += 1
            continue
        lead, formula = html.escape(kinds[run[0]][2]), " ".join(kinds[r][1] for r in run)
        trail = html.escape(kinds[run[-1]][3])
        math_html = lead + _math_span(formula) + trail
        # no line break between a formula and the punctuation that holds it
        out.append(f'<span class="repro-nobr">{math_html}</span>' if lead or trail else math_html)
        k = run[-1] + 1
    return "".join(out)


_ABBREVIATIONS = ("e.g.", "i.e.", "i.i.d.", "Eq.", "Fig.", "Sec.", "Thm.", "Cor.", "App.", "cf.",
                  "vs.", "al.", "resp.")


def _statement_html(statement: str, limit: int = 240) -> str:
    """The statement; a long one shows its first sentence, the rest a click away."""
    if len(statement) > limit:
        for match in re.finditer(r"(?<=[.!?:])\s+(?=[A-Z])", statement):
            head = statement[:match.start()]
            if head.endswith(_ABBREVIATIONS):
                continue
            if len(head) < len(statement) - 40:
                return (f'<details class="repro-statement"><summary>{rich_html(head)}</summary>'
                        f'{rich_html(statement[match.end():])}</details>')
            break
    return f'<span class="repro-statement">{rich_html(statement)}</span>'


def _paper_html(claim: Claim) -> str:
    check = claim.describe_check()
    if claim.paper_tex:
        body = _math_span(claim.paper_tex)
    elif claim.paper:
        body = rich_html(claim.paper)
    else:
        body = f'<span class="repro-check">{_text_html(check)}</span>'
    return (f'<td class="repro-paper" data-label="paper" title="checked as: '
            f'{html.escape(check)}">{body}</td>')


def _why_html(detail: str) -> str:
    if len(detail) <= 90:
        return f'<span class="repro-why">{_text_html(detail)}</span>'
    return (f'<details class="repro-why"><summary>why</summary>{_text_html(detail)}</details>')


def _measured_html(v: Verdict, label: str) -> str:
    """What the run measured (mean ± sd (n=..) where the metric has seeds); several values show
    the first, the others a click away; a failure says why."""
    status = v.status
    shown = v.measured.strip()
    failing = status in (FAIL, KNOWN_FAILURE, DIVERGED)
    if shown in ("", "—"):
        body = (_why_html(f"not measured: {v.detail}") if failing and v.detail
                else '<span class="repro-none">—</span>')
        return (f'<td class="repro-measured" data-label="{label}" '
                f'title="{html.escape(v.detail)}">{body}</td>')
    parts = shown.split("; ")
    if len(parts) > 1 and len(shown) > 70:
        rest = "".join(f"<span>{_text_html(p)}</span>" for p in parts[1:])
        body = (f'<details class="repro-more"><summary>{_text_html(parts[0])} '
                f'<span class="repro-more-count">(+{len(parts) - 1} more)</span></summary>'
                f'{rest}</details>')
    else:
        body = _text_html(shown)
    if failing and v.detail:
        body += _why_html(v.detail)
    return (f'<td class="repro-measured" data-label="{label}" title="{html.escape(v.detail)}">'
            f"{body}</td>")


def verdicts_html(verdicts: Sequence[Verdict], measured: str = "this run") -> str:
    """The verdicts as one HTML table on a single line (so that markdown keeps it whole): the
    claim's statement (its place in the paper and its id beneath), the paper's value, what the run
    ``measured``, and the badge. Each row's class names its status (``repro-row-fail``)."""
    head = "".join(f'<th scope="col">{c}</th>' for c in ("claim", "paper", measured, "verdict"))
    rows = []
    for v in verdicts:
        status = v.status
        where = f"{html.escape(v.claim.where)} · " if v.claim.where else ""
        rows.append(
            f'<tr class="repro-row-{status.replace(" ", "-")}">'
            f'<td class="repro-claim">{_statement_html(v.claim.statement)}'
            f'<span class="repro-claim-id">{where}<code>{html.escape(v.claim.id)}</code></span>'
            f"</td>{_paper_html(v.claim)}{_measured_html(v, measured)}"
            f'<td class="repro-verdict">{badge_html(status, v.detail)}</td></tr>')
    return (f'<div class="repro-verdicts-wrap"><table class="repro-verdicts"><thead><tr>{head}'
            f'</tr></thead><tbody>{"".join(rows)}</tbody></table></div>')


def status_counts(verdicts: Sequence[Verdict]) -> dict[str, int]:
    return {s: sum(v.status == s for v in verdicts) for s in STATUSES}


class VerdictTable:
    """A list of verdicts that shows itself as a table in a notebook and in a terminal."""

    columns = ("claim", "paper", "this run", "verdict")

    def __init__(self, verdicts: list[Verdict], preset: str):
        self.verdicts = verdicts
        self.preset = preset

    def rows(self) -> list[tuple[str, str, str, str]]:
        return [
            (v.claim.id, v.claim.paper or v.claim.describe_check(), v.measured, v.status)
            for v in self.verdicts
        ]

    def counts(self) -> dict[str, int]:
        return {k: sum(v.verdict == k for v in self.verdicts) for k in (PASS, FAIL, NOT_RUN)}

    def statuses(self) -> dict[str, int]:
        return status_counts(self.verdicts)

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

    def _repr_pretty_(self, printer, cycle) -> None:
        printer.text(str(self))          # IPython's plain-text view: the terminal table

    def _repr_markdown_(self) -> str:
        head = "| claim | paper | this run | verdict |\n|---|---|---|---|\n"
        body = "".join(
            f"| {v.claim.statement} (`{v.claim.id}`) "
            f"| {v.claim.paper or v.claim.describe_check()} | {v.measured} "
            f"| **{BADGES[v.status][0]} {BADGES[v.status][1]}** |\n"
            for v in self.verdicts
        )
        return head + body + f"\nPreset `{self.preset}`: {count_text(self.statuses())}.\n"

    def _repr_html_(self) -> str:
        """The book's verdict table (``verdicts_html``) and a line of counts."""
        return (verdicts_html(self.verdicts)
                + f'<p class="repro-verdict-summary">Preset <code>{html.escape(self.preset)}'
                  f"</code>: {count_text(self.statuses())}.</p>")


def chapter_claims(slug: str) -> ChapterClaims:
    from repro.machinery.chapters import find_chapter

    return ChapterClaims.load(find_chapter(slug).claims_path)


def show_verdicts(slug: str, metrics: Mapping, preset: str) -> VerdictTable:
    """Check a chapter's claims against ``metrics``; returned last in a cell, it renders a table."""
    return VerdictTable(check_all(chapter_claims(slug), metrics, preset), preset)

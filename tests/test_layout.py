"""Repository-wide structure checks (fast; source and notebook JSON are parsed, nothing is run).

- The science modules (everything under lib/repro outside lib/repro/machinery) never import the
  machinery.
- Every module of lib/repro says where it is used ("Used in:" or "Used by:" in its docstring);
  a package's ``__init__.py`` is the map of its modules and is exempt.
- Every role package re-exports what its modules export (each name in a submodule's ``__all__``,
  or each public class / function a submodule without ``__all__`` defines, is reachable from the
  package, under its own name or a documented alias in the package's ``__all__``), and its
  registry lists only classes / functions that the package exports.
- No chapter notebook defines, at the top level of a code cell, a ``def`` / ``class`` whose name
  a science module of ``repro`` exports in ``__all__``, nor a dict named LABEL / COLOR (the plot
  styles live in ``repro.plot``), except in the cells tagged ``solution`` of an exercises
  notebook (the students write those). The chapters are being moved to the new layout: this
  check fails, naming notebook, cell and name, until that is done.

Known gaps of the library are listed in ``KNOWN_GAPS`` (strict xfail: each one fails loudly once
fixed, so that its entry is removed).
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import sys
from pathlib import Path

import nbformat
import pytest

import repro

ROOT = Path(__file__).resolve().parents[1]
LIB = ROOT / "lib"
PACKAGE = LIB / "repro"
MACHINERY = PACKAGE / "machinery"
ROLES = ("optim", "problems", "models", "metrics", "mtl", "solvers", "data", "train")
REGISTRIES = {"optim": "OPTIMIZERS", "problems": "PROBLEMS", "models": "MODELS",
              "mtl": "AGGREGATORS", "solvers": "SOLVERS", "data": "DATASETS"}
STYLE_DICTS = ("LABEL", "COLOR", "LABELS", "COLORS")

# Library gaps found by these checks and reported to the owner of lib/, as "kind:where" ->
# reason; each is a strict xfail (it fails loudly once fixed, so that its entry is removed).
# Empty: every gap found while writing these checks has been fixed.
KNOWN_GAPS: dict[str, str] = {}


def known(key: str, value):
    """``value`` as a pytest param, a strict xfail if ``key`` is a known gap."""
    if key in KNOWN_GAPS:
        return pytest.param(value, id=key.split(":", 1)[1],
                            marks=pytest.mark.xfail(strict=True, reason=KNOWN_GAPS[key]))
    return pytest.param(value, id=key.split(":", 1)[1])


def module_name(path: Path) -> str:
    parts = path.relative_to(LIB).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


LIB_FILES = sorted(PACKAGE.rglob("*.py"))
SCIENCE_FILES = [p for p in LIB_FILES if MACHINERY not in p.parents]


# --- the science never imports the machinery ------------------------------------------------------

def machinery_imports(path: Path) -> list[str]:
    """Each import of repro.machinery in the file at ``path`` (absolute, relative, or through
    importlib.import_module / __import__ with a literal name), as "line N: what"."""
    tree = ast.parse(path.read_text(), filename=str(path))
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]

    def is_machinery(module: str) -> bool:
        return module == "repro.machinery" or module.startswith("repro.machinery.")

    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [f"line {node.lineno}: import {a.name}" for a in node.names
                      if is_machinery(a.name)]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            targets = [module] + [f"{module}.{a.name}" for a in node.names]
            if any(is_machinery(t) for t in targets):
                found.append(f"line {node.lineno}: from {'.' * node.level}{node.module or ''} "
                             f"import {', '.join(a.name for a in node.names)}")
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            first = node.args[0]
            if (called in ("import_module", "__import__") and isinstance(first, ast.Constant)
                    and isinstance(first.value, str) and is_machinery(first.value)):
                found.append(f"line {node.lineno}: {called}({first.value!r})")
    return found


@pytest.mark.parametrize("path", SCIENCE_FILES, ids=lambda p: str(p.relative_to(LIB)))
def test_science_does_not_import_the_machinery(path):
    found = machinery_imports(path)
    assert not found, f"{path.relative_to(ROOT)} imports the machinery: {found}"


def test_machinery_import_checker_sees_every_form(tmp_path, monkeypatch):
    fake = tmp_path / "repro" / "optim" / "fake.py"
    fake.parent.mkdir(parents=True)
    fake.write_text(
        "import repro.machinery\n"
        "import repro.machinery.claims as c\n"
        "from repro.machinery import finish\n"
        "from repro import machinery\n"
        "from ..machinery.runner import run\n"
        "import importlib\n"
        "importlib.import_module('repro.machinery.book')\n"
        "def later():\n"
        "    from repro.machinery.chapters import all_chapters\n"
        "import repro.machinery_like\n"
        "from repro.metrics import hessian\n"
        "from . import gd\n")
    monkeypatch.setattr(sys.modules[__name__], "LIB", tmp_path)
    found = machinery_imports(fake)
    assert [f.split(":")[0] for f in found] == [f"line {n}" for n in (1, 2, 3, 4, 5, 7, 9)]


# --- every module says where it is used -------------------------------------------------------

DOC_CASES = [known(f"docstring:{p.relative_to(LIB).as_posix()}", p) for p in LIB_FILES
             if p.name != "__init__.py"]


@pytest.mark.parametrize("path", DOC_CASES)
def test_module_docstring_says_where_it_is_used(path):
    doc = ast.get_docstring(ast.parse(path.read_text()))
    assert doc, f"{path.relative_to(ROOT)} has no docstring"
    assert "Used in:" in doc or "Used by:" in doc, \
        f"{path.relative_to(ROOT)}: its docstring does not say where it is used " \
        "(Used in: / Used by:)"


def test_package_maps_name_their_modules():
    # the exempt __init__.py files: each role package's docstring names each of its public modules
    for role in ROLES:
        pkg = importlib.import_module(f"repro.{role}")
        doc = pkg.__doc__ or ""
        for info in pkgutil.iter_modules(pkg.__path__):
            if not info.name.startswith("_"):
                assert f"``{info.name}``" in doc, f"repro.{role}'s docstring omits {info.name}"


# --- role packages re-export their modules; registries list exports -------------------------------

def submodules(role: str):
    pkg = importlib.import_module(f"repro.{role}")
    return [f"repro.{role}.{info.name}" for info in pkgutil.iter_modules(pkg.__path__)]


def exported_by(module) -> dict[str, object]:
    """What a module exports: its ``__all__``, or the public classes and functions it defines."""
    if hasattr(module, "__all__"):
        return {name: getattr(module, name) for name in module.__all__}
    return {name: obj for name, obj in vars(module).items()
            if not name.startswith("_") and (inspect.isclass(obj) or inspect.isfunction(obj))
            and obj.__module__ == module.__name__}


REEXPORT_CASES = [known(f"reexport:{name}", name) for role in ROLES for name in submodules(role)]


@pytest.mark.parametrize("name", REEXPORT_CASES)
def test_role_package_reexports_its_module(name):
    package = importlib.import_module(name.rpartition(".")[0])
    module = importlib.import_module(name)
    public = {n: getattr(package, n) for n in package.__all__}
    missing = [n for n, obj in exported_by(module).items()
               if not (n in public and public[n] is obj)
               and not any(v is obj for v in public.values())]
    assert not missing, f"{package.__name__} does not re-export {missing} of {name}"


@pytest.mark.parametrize("role", sorted(REGISTRIES))
def test_registry_lists_only_exported_classes_and_functions(role):
    package = importlib.import_module(f"repro.{role}")
    registry_name = REGISTRIES[role]
    assert registry_name in package.__all__
    registry = getattr(package, registry_name)
    assert isinstance(registry, dict) and registry
    public = [getattr(package, n) for n in package.__all__]
    for key, value in registry.items():
        assert isinstance(key, str) and key == key.lower(), key
        assert inspect.isclass(value) or inspect.isfunction(value), \
            f"{registry_name}[{key!r}] is neither a class nor a function: {value!r}"
        assert any(value is obj for obj in public), \
            f"{registry_name}[{key!r}] = {value.__name__} is not exported by repro.{role}"


def test_every_role_package_is_checked():
    found = {info.name for info in pkgutil.iter_modules(repro.__path__) if info.ispkg}
    assert found - {"machinery"} == set(ROLES)


# --- notebooks do not redefine the library ----------------------------------------------------

def science_exports() -> set[str]:
    """Every name in the ``__all__`` of a science module of repro (outside the machinery)."""
    names = set(repro.__all__)
    for path in SCIENCE_FILES:
        module = importlib.import_module(module_name(path))
        names |= set(getattr(module, "__all__", ()))
    return names - {"__version__"}


def _python(source: str) -> str:
    """A cell's source as plain Python (IPython magics and shell escapes transformed away)."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager
    except ImportError:  # pragma: no cover - IPython comes with the notebook tools
        return "\n".join("# " + line if line.lstrip().startswith(("%", "!")) else line
                         for line in source.splitlines())
    return TransformerManager().transform_cell(source)


def _top_level(statements):
    """The statements that bind names in the notebook's namespace: the cell's own, and those in
    the blocks of top-level if / for / while / with / try (not inside a def or a class)."""
    for node in statements:
        yield node
        if isinstance(node, (ast.If, ast.For, ast.While, ast.With, ast.AsyncFor, ast.AsyncWith)):
            yield from _top_level(node.body + node.orelse if hasattr(node, "orelse") else node.body)
        elif isinstance(node, ast.Try) or type(node).__name__ == "TryStar":
            yield from _top_level(node.body + node.orelse + node.finalbody
                                  + [s for h in node.handlers for s in h.body])


def _is_dict(value) -> bool:
    return isinstance(value, (ast.Dict, ast.DictComp)) or (
        isinstance(value, ast.Call) and isinstance(value.func, ast.Name)
        and value.func.id == "dict")


def redefinitions(path: Path, exported: set[str]) -> list[str]:
    """Each top-level definition in the notebook at ``path`` of a name the library exports, or of a
    LABEL / COLOR dict, as "notebook, cell i: what"."""
    nb = nbformat.read(path, as_version=4)
    exercises = path.name == "exercises.ipynb"
    where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    found = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if exercises and "solution" in cell.get("metadata", {}).get("tags", []):
            continue
        try:
            tree = ast.parse(_python(cell.source))
        except SyntaxError as err:
            found.append(f"{where}, cell {index}: does not parse ({err.msg}, line {err.lineno})")
            continue
        for node in _top_level(tree.body):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                if node.name in exported:
                    kind = "class" if isinstance(node, ast.ClassDef) else "def"
                    found.append(f"{where}, cell {index}: {kind} {node.name} (the library exports "
                                 f"{node.name}: use it)")
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    if (isinstance(target, ast.Name) and target.id in STYLE_DICTS
                            and node.value is not None and _is_dict(node.value)):
                        found.append(f"{where}, cell {index}: {target.id} dict (use the styles "
                                     "of repro.plot)")
    return found


NOTEBOOKS = sorted((ROOT / "chapters").glob("*/*.ipynb"))


def assert_clean(path: Path) -> None:
    found = redefinitions(path, science_exports())
    assert not found, "notebook defines what the library exports:\n" + "\n".join(found)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT / "chapters")))
def test_notebook_does_not_redefine_the_library(path):
    assert_clean(path)


def _fake_notebook(path: Path, cells: list[tuple[str, list[str]]]) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_markdown_cell("# def slope(xs, ys): not code"))
    for source, tags in cells:
        cell = nbformat.v4.new_code_cell(source)
        if tags:
            cell.metadata["tags"] = tags
        nb.cells.append(cell)
    nbformat.write(nb, path)
    return path


def test_notebook_checker_on_a_fake_notebook(tmp_path):
    exported = science_exports()
    assert {"slope", "mean", "sem", "random_orthogonal", "balanced_factors", "psd_power",
            "set_grad", "derive", "Grid", "WideningValley", "label"} <= exported
    assert "finish" not in exported                                   # machinery is not science
    cells = [
        ("%matplotlib inline\nimport numpy as np\n\n\ndef slope(xs, ys):\n"
         "    return float(np.polyfit(np.log(xs), np.log(ys), 1)[0])", []),        # cell 1
        ("def my_slope(xs, ys):\n    def mean(v):\n        return v\n    return 0", []),  # 2
        ('LABEL = {"gd": "GD"}\nCOLOR = dict(gd="tab:gray")\nLABELS = "x"', []),      # 3
        ("if True:\n    class Grid:\n        pass\nelse:\n    def sem(x):\n        pass", []),  # 4
        ("def mean(xs):\n    return 0", ["solution"]),                                 # 5
        ("!ls\nx = 1", ["test"]),                                                      # 6
    ]
    experiments = _fake_notebook(tmp_path / "experiments.ipynb", cells)
    found = redefinitions(experiments, exported)
    assert found == [
        f"{experiments}, cell 1: def slope (the library exports slope: use it)",
        f"{experiments}, cell 3: LABEL dict (use the styles of repro.plot)",
        f"{experiments}, cell 3: COLOR dict (use the styles of repro.plot)",
        f"{experiments}, cell 4: class Grid (the library exports Grid: use it)",
        f"{experiments}, cell 4: def sem (the library exports sem: use it)",
        f"{experiments}, cell 5: def mean (the library exports mean: use it)",
    ]
    # in an exercises notebook, the solution cells are the students' own: exempt
    exercises = _fake_notebook(tmp_path / "exercises.ipynb", cells)
    assert [f.split(": ", 1)[0] for f in redefinitions(exercises, exported)] == [
        f"{exercises}, cell {i}" for i in (1, 3, 3, 4, 4)]
    clean = _fake_notebook(tmp_path / "derivation.ipynb",
                           [("from repro.stats import slope\nk = slope([1, 2], [1, 4])", [])])
    assert redefinitions(clean, exported) == []
    broken = _fake_notebook(tmp_path / "broken.ipynb", [("def f(:\n    pass", [])])
    assert "does not parse" in redefinitions(broken, exported)[0]
    # and the test's assertion fails with that message
    with pytest.raises(AssertionError, match=r"experiments\.ipynb, cell 1: def slope"):
        assert_clean(experiments)
    assert_clean(clean)


def defined_functions(path: Path) -> set[str]:
    """The functions and classes a notebook defines at top level (solution cells included: a
    helper an exercise answer shares with another chapter belongs in the library too)."""
    names = set()
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type == "code":
            for node in _top_level(ast.parse(_python(cell.source)).body):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    names.add(node.name)
    return names


def test_no_helper_is_defined_in_two_chapters():
    """A function that two chapters need is the library's: one chapter may define a name in
    several of its notebooks (a derivation and the exercise that asks for it), two may not."""
    chapters_of: dict[str, set[str]] = {}
    for path in NOTEBOOKS:
        for name in defined_functions(path):
            chapters_of.setdefault(name, set()).add(path.parent.name)
    shared = {name: sorted(folders) for name, folders in chapters_of.items() if len(folders) > 1}
    assert not shared, "defined in the notebooks of more than one chapter (move to the library " \
                       "or give each its chapter's own name): " + repr(shared)

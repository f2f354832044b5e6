"""A pre-flight check without a GPU: run chapters on a fake CUDA device and report what a real
one would refuse.

    .venv/bin/python benchmarks/fake_cuda.py sgd-stability-loss-surface-geometry
    .venv/bin/python benchmarks/fake_cuda.py 14 -p cifar=False   # -p: for every chapter given
    .venv/bin/python benchmarks/fake_cuda.py 06 12 --show   # with the notebooks' own output

Under the fake device every tensor carries a tag: ``D`` (on a GPU it would live on the device) or
``C`` (it would live on the host), and all computation happens on the CPU. What CUDA would refuse
is reported as a hit: an operation that combines a device tensor with a CPU tensor (0-d CPU
scalars are allowed, as on CUDA), ``.numpy()`` of a device tensor, a CPU generator drawing onto
the device, and a device index into a CPU tensor. Tensors that no Python call made (inside C++
code or ``torch.func`` transforms other than ``vmap``) carry no tag and are ignored.

For each chapter the command resolves its parameters as ``repro run`` does (the preset, then the
``-p`` overrides), runs the code cells of its ``experiments.ipynb`` in a process of its own with
those values set after the parameters cell and ``REPRO_DEVICE=cuda``, leaves out the cell that calls
``finish(`` (no metrics, no run folder) and prints OK or each distinct hit with its notebook cell
and line. Exit status 0 when every chapter ran without a hit, 1 otherwise, 2 for bad input. It
sees where tensors live, not how long anything takes, nor numerics that only CUDA kernels have.

Used by: tests/test_fake_cuda.py; by hand before a GPU run (benchmarks/gpu_paper.py).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.overrides import TorchFunctionMode

ROOT = Path(__file__).resolve().parents[1]
CUDA = torch.device("cuda")
CPU = torch.device("cpu")

DEVICE, HOST = "D", "C"  # the tags
_TAG = "_fake_cuda_tag"
CELL = "<cell "  # the file name under which a notebook cell is compiled: "<cell 3>"


class DeviceMix(RuntimeError):
    """What CUDA would have raised (only under ``strict``; otherwise a hit is recorded)."""


# --- tags ---------------------------------------------------------------------------------------

def tag_of(tensor) -> str | None:
    return getattr(tensor, _TAG, None) if isinstance(tensor, torch.Tensor) else None


def set_tag(tensor, tag: str | None):
    if isinstance(tensor, torch.Tensor):
        try:
            object.__setattr__(tensor, _TAG, tag)
        except Exception:  # a tensor type that takes no attributes: it stays untagged
            pass
    return tensor


def _is_cuda(device) -> bool:
    """Whether a ``device=`` argument (a string, torch.device, index or tensor) means the GPU."""
    if device is None:
        return False
    if isinstance(device, torch.Tensor):
        return tag_of(device) == DEVICE
    if isinstance(device, int):  # a bare index is a CUDA device
        return True
    try:
        return torch.device(device).type == "cuda"
    except Exception:
        return False


def _on_host(device):
    """The device to compute on: the CPU in place of the GPU."""
    return CPU if _is_cuda(device) else device


def _tensors(value, found: list | None = None) -> list:
    """Every tensor in ``value``, through lists, tuples and dict values."""
    found = [] if found is None else found
    if isinstance(value, torch.Tensor):
        found.append(value)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _tensors(item, found)
    elif isinstance(value, dict):
        for item in value.values():
            _tensors(item, found)
    return found


# --- the mode -----------------------------------------------------------------------------------

_LIKE = {torch.zeros_like, torch.ones_like, torch.empty_like, torch.full_like, torch.rand_like,
         torch.randn_like, torch.randint_like}
# Functions that make a tensor: its tag is the device= argument's, else (for the *_like ones and
# Tensor.new_*) their source's, else the host's.
_FACTORIES = _LIKE | {
    torch.zeros, torch.ones, torch.empty, torch.full, torch.arange, torch.eye, torch.linspace,
    torch.logspace, torch.tensor, torch.as_tensor, torch.rand, torch.randn, torch.randint,
    torch.randperm, torch.normal, torch.scalar_tensor, torch.empty_strided, torch.tril_indices,
    torch.triu_indices}
_NEW = {torch.Tensor.new_zeros, torch.Tensor.new_ones, torch.Tensor.new_empty,
        torch.Tensor.new_full, torch.Tensor.new_tensor}
_NUMPY = {torch.Tensor.numpy, torch.Tensor.__array__}
# Methods that read a tensor on the host (a synchronisation on CUDA, but allowed) or only look at
# its metadata, and copies between devices: never a device mix.
_HOST_OK = {
    torch.Tensor.item, torch.Tensor.tolist, torch.Tensor.__float__, torch.Tensor.__int__,
    torch.Tensor.__bool__, torch.Tensor.__index__, torch.Tensor.__format__, torch.Tensor.__repr__,
    torch.Tensor.__len__, torch.Tensor.__hash__, torch.Tensor.size, torch.Tensor.dim,
    torch.Tensor.numel, torch.Tensor.__reduce_ex__, torch.Tensor.copy_, torch.Tensor.set_,
    torch.Tensor.__setstate__, torch.Tensor.storage, torch.Tensor.untyped_storage,
    torch.Tensor.data_ptr, torch.Tensor.is_pinned, torch.Tensor.requires_grad_,
    torch.Tensor.retain_grad, torch.Tensor.register_hook}
# Properties whose result lives where the tensor does.
_SAME_PLACE = ("data", "grad", "T", "mT", "H", "mH", "real", "imag")
_EXEMPT = ("copy_", "__setitem__", "set_")  # cross-device writes CUDA allows


@dataclass(frozen=True)
class Hit:
    kind: str    # what CUDA would refuse: "device mix in add", "numpy conversion of ..."
    where: str   # the innermost notebook cell and line, "cell 7, line 12", or "" outside one
    detail: str  # the tensors' tags and shapes, for a device mix


def _where() -> str:
    """The innermost frame of a notebook cell in the current stack, as "cell N, line L"."""
    for frame in reversed(traceback.extract_stack()):
        if frame.filename.startswith(CELL):
            return f"cell {frame.filename[len(CELL):-1]}, line {frame.lineno}"
    return ""


class FakeCuda(TorchFunctionMode):
    """Tags tensors and records (or, ``strict``, raises) what CUDA would refuse, in ``hits``."""

    def __init__(self, strict: bool = False):
        super().__init__()
        self.strict = strict
        self.hits: list[Hit] = []

    def report(self, kind: str, detail: str = "") -> None:
        self.hits.append(Hit(kind, _where(), detail))
        if self.strict:
            raise DeviceMix(f"{kind} {detail}".strip())

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        name = getattr(func, "__name__", str(func))
        if name == "__get__":  # a property: tensor.device, .is_cuda, .grad, ...
            return self._property(func, args, kwargs)
        if func is torch.Tensor.pin_memory:  # no pinned memory without CUDA; the copy is enough
            return args[0]
        if func in _NUMPY:
            if tag_of(args[0]) == DEVICE:
                self.report(f"numpy conversion of a device tensor ({name})")
            return func(*args, **kwargs)
        if func is torch.Tensor.cpu:
            out = func(*args, **kwargs)
            if out is args[0] and tag_of(out) == DEVICE:  # a new tensor, so the source keeps D
                out = out.to(CPU, copy=True) if out.requires_grad else out.clone()
            return set_tag(out, HOST)
        if func is torch.Tensor.cuda:
            source = args[0]
            return set_tag(source if tag_of(source) == DEVICE else source.to(CPU, copy=True),
                           DEVICE)
        if func is torch.Tensor.to:
            return self._to(func, args, kwargs)
        if func is torch.Tensor.__iter__:  # rows keep their tensor's place
            return iter([set_tag(row, tag_of(args[0])) for row in args[0].unbind(0)])
        if func is torch.Tensor.__deepcopy__:
            out = func(*args, **kwargs)
            return set_tag(out, tag_of(args[0])) if tag_of(args[0]) else out
        if func in _HOST_OK:
            return func(*args, **kwargs)
        if func is torch.Tensor.__getitem__:
            return self._getitem(func, args, kwargs)
        if func is torch.Tensor.__setitem__:
            if tag_of(args[0]) == HOST and any(tag_of(t) == DEVICE for t in _tensors(args[1])):
                self.report("a device index into a CPU tensor (assignment)")
            return func(*args, **kwargs)
        if func in _FACTORIES or func in _NEW or name.startswith("new_"):
            return self._factory(func, name, args, kwargs)
        return self._operation(func, name, args, kwargs)

    def _property(self, func, args, kwargs):
        prop = getattr(getattr(func, "__self__", None), "__name__", "")
        on_device = bool(args) and tag_of(args[0]) == DEVICE
        if prop == "device" and on_device:
            return CUDA
        if prop == "is_cuda" and on_device:
            return True
        out = func(*args, **kwargs)
        if prop in _SAME_PLACE and args and tag_of(args[0]) and tag_of(out) is None:
            set_tag(out, tag_of(args[0]))
        return out

    def _getitem(self, func, args, kwargs):
        base, index = args[0], args[1]
        # a 0-d boolean is a mask CUDA accepts from anywhere
        indices = [t for t in _tensors(index) if t.dim() > 0 or t.dtype != torch.bool]
        if tag_of(base) == HOST and any(tag_of(t) == DEVICE for t in indices):
            self.report("a device index into a CPU tensor")
        out = func(*args, **kwargs)
        return set_tag(out, tag_of(base)) if tag_of(base) else out

    def _factory(self, func, name, args, kwargs):
        if "device" in kwargs:
            target = DEVICE if _is_cuda(kwargs["device"]) else HOST
            kwargs["device"] = _on_host(kwargs["device"])
        elif func in _LIKE or func in _NEW or name.startswith("new_"):
            target = tag_of(args[0]) if args else None
        elif func in (torch.tensor, torch.as_tensor):
            source = args[0] if args else kwargs.get("data")
            target = (tag_of(source) or HOST) if isinstance(source, torch.Tensor) else HOST
        else:
            target = HOST
        generator = kwargs.get("generator")
        if generator is not None and target == DEVICE and generator.device.type != "cuda":
            self.report(f"{name}: a CPU generator drawing onto the device")
        out = func(*args, **kwargs)
        # as_tensor may hand back its argument: give the new place to a copy, not to the source
        if func in (torch.tensor, torch.as_tensor):
            if any(out is t for t in _tensors(args[:1])) and tag_of(out) != target:
                out = out.clone()
        return set_tag(out, target) if isinstance(out, torch.Tensor) else out

    def _operation(self, func, name, args, kwargs):
        requested = None  # the place a device= argument asks for
        if "device" in kwargs:
            requested = DEVICE if _is_cuda(kwargs["device"]) else HOST
            kwargs["device"] = _on_host(kwargs["device"])
        generator = kwargs.get("generator")
        if (generator is not None and args and tag_of(args[0]) == DEVICE
                and generator.device.type != "cuda"):
            self.report(f"{name}: a CPU generator drawing onto a device tensor")
        inputs = _tensors(args) + _tensors(list(kwargs.values()))
        # 0-d CPU tensors combine with device tensors on CUDA, as Python numbers do
        tags = {tag_of(t) for t in inputs if not (tag_of(t) == HOST and t.dim() == 0)} - {None}
        if DEVICE in tags and HOST in tags and name not in _EXEMPT:
            shapes = [(tag_of(t), tuple(t.shape)) for t in inputs if tag_of(t)]
            self.report(f"device mix in {name}", str(shapes))
        out = func(*args, **kwargs)
        if name.endswith("_") and args and tag_of(args[0]):  # in place: the target keeps its tag
            return out
        result = DEVICE if DEVICE in tags else HOST if HOST in tags else requested
        if result is not None:
            for tensor in _tensors(out):
                if tag_of(tensor) is None or not any(tensor is t for t in inputs):
                    set_tag(tensor, result)
        return out

    def _to(self, func, args, kwargs):
        source, rest = args[0], list(args[1:])
        target = None
        if rest and isinstance(rest[0], torch.Tensor):  # to(other): other's place and dtype
            target = tag_of(rest[0]) or HOST
            out = source.to(dtype=rest[0].dtype, copy=kwargs.get("copy", False))
        else:
            device = kwargs.pop("device", None)
            if rest and (isinstance(rest[0], (str, torch.device))
                         or (isinstance(rest[0], int) and not isinstance(rest[0], bool))):
                device = rest.pop(0)
            if device is not None:
                target = DEVICE if _is_cuda(device) else HOST
            kwargs.pop("non_blocking", None)
            out = func(source, *rest, **kwargs)  # the dtype and copy= only, on the CPU
        if target is None:
            return set_tag(out, tag_of(source)) if tag_of(source) and out is not source else out
        if out is source and tag_of(source) != target:  # a move makes a new tensor
            out = source.to(CPU, copy=True)
        return set_tag(out, target)


# --- the patches outside the mode: modules, parameters, vmap, fork_rng --------------------------

def _tag_module(module, tag: str) -> None:
    for parameter in module.parameters():
        set_tag(parameter, tag)
        if parameter.grad is not None:
            set_tag(parameter.grad, tag)
    for buffer in module.buffers():
        set_tag(buffer, tag)


def _patches() -> dict:
    """(owner, attribute) -> the replacement, each built on the original it replaces."""
    import torch.func
    import torch.random

    module_to = torch.nn.Module.to
    parameter_new = torch.nn.Parameter.__new__
    fork_rng = torch.random.fork_rng
    vmap = torch.func.vmap

    def to(self, *args, **kwargs):
        # Module.to moves parameters in place: to the GPU it only changes their tags (and dtype)
        with torch._C.DisableTorchFunction():
            device, dtype, _, _ = torch._C._nn._parse_to(*args, **kwargs)
        if device is not None and device.type == "cuda":
            out = module_to(self, dtype=dtype) if dtype is not None else self
            _tag_module(self, DEVICE)
            return out
        out = module_to(self, *args, **kwargs)
        if device is not None:
            _tag_module(self, HOST)
        return out

    def cuda(self, device=None):
        _tag_module(self, DEVICE)
        return self

    def cpu(self):
        _tag_module(self, HOST)
        return self

    def new_parameter(cls, data=None, requires_grad=True):
        out = parameter_new(cls, data, requires_grad)
        if data is not None and tag_of(data):
            set_tag(out, tag_of(data))
        return out

    def fork_rng_on_host(devices=None, enabled=True, **kwargs):
        # no CUDA generators to save: only the CPU's
        return fork_rng(devices=[], enabled=enabled, **kwargs)

    def tagged_vmap(fn, *vmap_args, **vmap_kwargs):
        # vmap's outputs are made in C++, untagged: they live where its inputs do
        batched = vmap(fn, *vmap_args, **vmap_kwargs)

        def call(*args, **kwargs):
            out = batched(*args, **kwargs)
            tags = {tag_of(t) for t in _tensors(list(args) + list(kwargs.values()))} - {None}
            tag = DEVICE if DEVICE in tags else HOST if HOST in tags else None
            if tag is not None:
                for tensor in _tensors(out):
                    if tag_of(tensor) is None:
                        set_tag(tensor, tag)
            return out
        return call

    return {(torch.nn.Module, "to"): to, (torch.nn.Module, "cuda"): cuda,
            (torch.nn.Module, "cpu"): cpu, (torch.nn.Parameter, "__new__"): new_parameter,
            (torch.random, "fork_rng"): fork_rng_on_host, (torch.func, "vmap"): tagged_vmap,
            (torch, "vmap"): tagged_vmap}


_installed: list = []  # (mode, originals, REPRO_DEVICE before) while installed


def install(strict: bool = False) -> FakeCuda:
    """Patch torch and enter the fake device (``REPRO_DEVICE=cuda``); ``uninstall()`` undoes it."""
    if _installed:
        raise RuntimeError("the fake CUDA device is already installed")
    patches = _patches()
    originals = {key: key[0].__dict__[key[1]] for key in patches}
    for (owner, attribute), replacement in patches.items():
        setattr(owner, attribute, replacement)
    device_before = os.environ.get("REPRO_DEVICE")
    os.environ["REPRO_DEVICE"] = "cuda"
    mode = FakeCuda(strict)
    mode.__enter__()
    _installed.append((mode, originals, device_before))
    return mode


def uninstall() -> None:
    """Leave the fake device and put back what ``install`` replaced; nothing when not installed."""
    if not _installed:
        return
    mode, originals, device_before = _installed.pop()
    mode.__exit__(None, None, None)
    for (owner, attribute), original in originals.items():
        setattr(owner, attribute, original)
    if device_before is None:
        os.environ.pop("REPRO_DEVICE", None)
    else:
        os.environ["REPRO_DEVICE"] = device_before


@contextlib.contextmanager
def fake_cuda(strict: bool = False):
    """``with fake_cuda() as mode: ...``; then ``mode.hits``."""
    mode = install(strict)
    try:
        yield mode
    finally:
        uninstall()


# --- the command line ---------------------------------------------------------------------------

@dataclass
class Outcome:
    hits: list[Hit]
    error: str | None  # a failing cell's error, with its cell and line
    seconds: float


def run_notebook(notebook: Path, values: dict, show: bool = False) -> Outcome:
    """Run the code cells of ``notebook`` under the fake device, ``values`` set after the cell
    tagged ``parameters``; the cell that calls ``finish(`` is left out. The cells' printed output
    is dropped unless ``show``."""
    import nbformat

    cells = [c for c in nbformat.read(notebook, as_version=4).cells if c.cell_type == "code"]
    namespace = {"__name__": "__main__"}
    error = None
    start = time.perf_counter()
    cwd = Path.cwd()
    os.chdir(notebook.parent)  # as `repro run` runs it: relative paths from the chapter
    try:
        with fake_cuda() as mode:
            for number, cell in enumerate(cells):
                if "finish(" in cell.source:
                    continue
                printed = (contextlib.nullcontext() if show
                           else contextlib.redirect_stdout(io.StringIO()))
                try:
                    with printed:
                        exec(compile(cell.source, f"{CELL}{number}>", "exec"), namespace)
                except Exception as exc:  # the rest of the notebook depends on this cell
                    frames = [f for f in traceback.extract_tb(exc.__traceback__)
                              if f.filename.startswith(CELL)]
                    line = f", line {frames[-1].lineno}" if frames else ""
                    error = f"cell {number}{line}: {type(exc).__name__}: {exc}"
                    break
                if "parameters" in cell.metadata.get("tags", []):
                    namespace.update(values)
    finally:
        os.chdir(cwd)
        import matplotlib.pyplot as plt

        plt.close("all")
    return Outcome(mode.hits, error, time.perf_counter() - start)


def _summary(outcome: Outcome) -> list[str]:
    counts = Counter((hit.kind, hit.where) for hit in outcome.hits)
    first = {}
    for hit in outcome.hits:
        first.setdefault((hit.kind, hit.where), hit.detail)
    lines = []
    for (kind, where), count in counts.items():
        detail = f" {first[kind, where]}" if first[kind, where] else ""
        lines.append(f"  {count}x {kind} at {where or '(outside the notebook)'}{detail}")
    if outcome.error:
        lines.append(f"  failed at {outcome.error}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Run chapters' experiments notebooks on a fake CUDA device (on the CPU) and "
                    "report every device mix a GPU would refuse.")
    parser.add_argument("chapters", nargs="+", metavar="SLUG",
                        help="chapter slug, folder name or number")
    parser.add_argument("-p", dest="overrides", action="append", default=[],
                        metavar="name=value", help="a parameter, for every chapter given")
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--show", action="store_true", help="print the notebooks' own output")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(ROOT / "lib"))
    from repro.machinery.chapters import BadInput, find_chapter

    overrides = {}
    for item in args.overrides:
        name, sep, text = item.partition("=")
        if not sep or not name:
            print(f"bad -p {item!r}: write name=value", file=sys.stderr)
            return 2
        overrides[name.strip()] = text
    try:
        # a number may be written as in the folder names: 06
        chapters = [find_chapter(str(int(n)) if n.isdigit() else n) for n in args.chapters]
        plan = [(chapter, chapter.resolve(args.preset, overrides)) for chapter in chapters]
    except BadInput as exc:
        print(exc, file=sys.stderr)
        return 2

    if len(plan) > 1:
        # one process per chapter: a notebook changes process-wide state (torch's default dtype,
        # matplotlib's settings) that the next chapter must not inherit
        codes = [subprocess.run([sys.executable, __file__, chapter.slug, "--preset", args.preset,
                                 *[f"-p{k}={v}" for k, v in overrides.items()],
                                 *(["--show"] if args.show else [])]).returncode
                 for chapter, _ in plan]
        return max(codes)

    import matplotlib

    matplotlib.use("Agg")
    # one thread, as the notebooks take on a CPU: with two, MKL's batched LU stopped on chapter
    # 8's kernel regression under the fake device (bad pivots), which no device would do
    torch.set_num_threads(1)
    clean = True
    with tempfile.TemporaryDirectory(prefix="fake-cuda-") as scratch:
        for chapter, values in plan:
            # a notebook that writes its metrics early writes them here, not into the repository
            values = {**values, "metrics_path": str(Path(scratch) / "metrics.json")}
            outcome = run_notebook(chapter.experiments, values, args.show)
            ok = not outcome.hits and outcome.error is None
            clean &= ok
            print(f"{chapter.slug}: {'OK' if ok else 'FAILED'} ({outcome.seconds:.0f} s)",
                  flush=True)
            for line in _summary(outcome):
                print(line, flush=True)
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())

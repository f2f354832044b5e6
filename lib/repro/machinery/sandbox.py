"""Where a student's code runs when it is graded: a bubblewrap sandbox with resource limits.

``Sandbox.command(argv)`` wraps a command (the Jupyter kernel) so that it runs

- with no network (a network namespace of its own: only an unconnected loopback);
- with a private, writable home folder as the only place it can write besides a small ``/tmp``;
- with the Python environment (the interpreter, the virtual environment, the library) and
  ``/usr`` read-only, and nothing else of the machine: no ``/etc``, no ``/home``, no ``/root``,
  no repository, no other submission;
- in process, IPC and UTS namespaces of its own, as an unprivileged user with no capabilities;
- under rlimits: address space, processes, file size, open files, CPU seconds.

``bubblewrap`` (Debian package ``bubblewrap``) is the sandbox: it uses the kernel's namespaces
the way Flatpak does. ``unsandboxed`` keeps the limits but not the isolation; it exists for the
teacher who passes ``--no-sandbox`` knowingly.

Used by: ``repro.machinery.grading``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from repro.machinery.chapters import BadInput

HOME = "/home/student"  # the submission's folder, as the student's code sees it
RUN = "/home/run"  # the kernel's connection file and sockets, beside it
NOBODY = 65534


@dataclass(frozen=True)
class Limits:
    memory_bytes: int = 4 << 30  # address space of each process
    processes: int = 256
    file_bytes: int = 256 << 20  # largest file it may write
    open_files: int = 1024
    cpu_seconds: int | None = None  # set from the submission's time budget

    def prlimit(self) -> list[str]:
        args = ["prlimit", f"--as={self.memory_bytes}", f"--nproc={self.processes}",
                f"--fsize={self.file_bytes}", f"--nofile={self.open_files}"]
        if self.cpu_seconds:
            args.append(f"--cpu={self.cpu_seconds}")
        return args + ["--"]


def python_paths(python: str = sys.executable) -> list[Path]:
    """The folders the interpreter needs: its prefixes and every folder on its ``sys.path``."""
    code = "import sys, json; print(json.dumps([sys.prefix, sys.base_prefix, *sys.path]))"
    done = subprocess.run([python, "-I", "-c", code], capture_output=True, text=True,
                          check=True, env={"PATH": os.environ.get("PATH", "/usr/bin")})
    folders = [Path(p) for p in json.loads(done.stdout) if p]
    # a virtual environment's python is a link into the base interpreter's folder
    folders.append(Path(python).resolve().parent.parent)
    return _outermost([p.resolve() for p in folders if p.exists()])


def _outermost(paths: list[Path]) -> list[Path]:
    keep: list[Path] = []
    for p in sorted(set(paths), key=lambda p: len(p.parts)):
        if p.is_dir() and not any(p.is_relative_to(k) for k in keep):
            keep.append(p)
    return [p for p in keep if not p.is_relative_to("/usr")]


def bubblewrap() -> str | None:
    """The path of a working ``bwrap``, or None (absent, or the kernel forbids namespaces)."""
    path = shutil.which("bwrap")
    if path is None:
        return None
    probe = subprocess.run([path, "--unshare-all", "--ro-bind", "/usr", "/usr",
                            "--symlink", "usr/bin", "/bin", "--symlink", "usr/lib", "/lib",
                            "--symlink", "usr/lib64", "/lib64", "--", "/usr/bin/true"],
                           capture_output=True, text=True)
    return path if probe.returncode == 0 else None


def no_sandbox_reason() -> str:
    if shutil.which("bwrap") is None:
        return ("bubblewrap is not installed (Debian/Ubuntu: apt-get install bubblewrap; "
                "Fedora: dnf install bubblewrap)")
    return ("bubblewrap cannot create namespaces here (unprivileged user namespaces are off: "
            "sysctl kernel.unprivileged_userns_clone=1, or run grading as root)")


@dataclass(frozen=True)
class Sandbox:
    """A bubblewrap sandbox around one submission's private ``home`` and ``run`` folders.

    The caller makes both folders writable by the sandbox's user (``prepare``).
    """

    home: Path  # writable, seen inside as HOME
    run: Path  # writable, seen inside as RUN: the kernel's connection file and sockets
    limits: Limits = Limits()
    isolate: bool = True  # False: --no-sandbox (limits only)
    python: str = sys.executable

    def inside(self, path: Path) -> str:
        """Where a file of ``home`` or ``run`` is, as the sandboxed code sees it."""
        if not self.isolate:
            return str(path)
        for folder, seen in ((self.home, HOME), (self.run, RUN)):
            if Path(path).is_relative_to(folder):
                return str(Path(seen) / Path(path).relative_to(folder))
        raise ValueError(f"{path} is not in the sandbox")

    def prepare(self) -> None:
        for folder in (self.home, self.run):
            folder.mkdir(parents=True, exist_ok=True)
            if self.isolate and os.geteuid() == 0:
                for path in (folder, *folder.rglob("*")):
                    os.chown(path, NOBODY, NOBODY, follow_symlinks=False)

    def environment(self) -> dict[str, str]:
        home = HOME if self.isolate else str(self.home)
        return {
            "PATH": f"{Path(self.python).parent}:/usr/bin:/bin",
            "HOME": home, "MPLCONFIGDIR": f"{home}/.matplotlib", "MPLBACKEND": "agg",
            "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1",
            "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",  # submissions run side by side
            "REPRO_DEVICE": "cpu", "JUPYTER_PLATFORM_DIRS": "1",
            "PYDEVD_DISABLE_FILE_VALIDATION": "1",
        }

    def command(self, argv: list[str]) -> list[str]:
        if not self.isolate:
            return [*self.limits.prlimit(), *argv]
        bwrap = bubblewrap()
        if bwrap is None:
            raise BadInput(f"cannot sandbox the submissions: {no_sandbox_reason()}")
        if os.geteuid() == 0:
            # as root, bubblewrap keeps the real user id 0, whose processes the kernel exempts
            # from the process limit; setpriv makes the code run as nobody instead
            args = [bwrap, "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts",
                    "--unshare-cgroup-try", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
            drop = ["/usr/bin/setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}",
                    "--clear-groups", "--inh-caps=-all", "--bounding-set=-all"]
        else:
            args = [bwrap, "--unshare-all", "--disable-userns", "--cap-drop", "ALL"]
            drop = []
        args += ["--die-with-parent", "--new-session", "--clearenv",
                "--ro-bind", "/usr", "/usr", "--symlink", "usr/bin", "/bin",
                "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
                "--symlink", "usr/sbin", "/sbin", "--proc", "/proc", "--dev", "/dev",
                "--perms", "1777", "--size", str(256 << 20), "--tmpfs", "/tmp"]
        binds = [("--ro-bind", folder, folder) for folder in python_paths(self.python)]
        binds += [("--bind", self.home, Path(HOME)), ("--bind", self.run, Path(RUN))]
        made: set[Path] = {Path("/"), Path("/tmp")}
        for flag, source, target in binds:
            # bubblewrap makes missing parents private to root; the sandbox's user must pass
            for parent in reversed(target.parents):
                if parent not in made:
                    args += ["--perms", "0755", "--dir", str(parent)]
                    made.add(parent)
            args += [flag, str(source), str(target)]
        args += ["--chdir", HOME]
        for key, value in self.environment().items():
            args += ["--setenv", key, value]
        return [*self.limits.prlimit(), *args, "--", *drop, *argv]

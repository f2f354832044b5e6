"""benchmarks/gpu_paper.py, the one command of the GPU run, kept working without a GPU: its plan
resolves every chapter's paper preset, and its CPU smoke mode runs the whole path (the timed loop
slices, one chapter's paper preset at a tiny size, the table) without recording anything."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from _benchmarks import load_benchmark

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_paper.py"


def _load_plan():
    return load_benchmark("gpu_paper")


def test_dry_run_resolves_every_paper_preset_of_the_plan():
    done = subprocess.run([sys.executable, str(SCRIPT), "--dry-run"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    plan = _load_plan()
    for entry in plan.PLAN:
        assert entry.slug in done.stdout
    assert "every preset's parameters resolve" in done.stdout
    # nothing external: the runs that need CIFAR-10 or QM9 leave those sections out
    by_slug = {e.slug: e for e in plan.PLAN}
    assert by_slug["anticorrelated-noise-injection"].overrides == {"cifar": "False"}
    assert by_slug["nash-mtl-bargaining"].overrides == {"qm9": "False"}


def test_cpu_smoke_run_writes_the_table_and_records_nothing(tmp_path):
    out, runs = tmp_path / "out", tmp_path / "runs"
    records = ROOT / "data" / "records" / "subgradient-robust-matrix-recovery"
    before = sorted(p.name for p in records.rglob("*")) if records.exists() else []
    archive = tmp_path / "OUT" / "gpu_paper.tgz"
    done = subprocess.run([sys.executable, str(SCRIPT), "--cpu", "--out", str(out), "--runs",
                           str(runs), "--loop-steps", "2", "--budget", "400", "--pack",
                           str(archive)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    import tarfile

    with tarfile.open(archive) as tar:    # the whole run in one file, for a machine that
        packed = set(tar.getnames())      # sends back a few files only
    assert {"gpu-paper/gpu_paper.md", "gpu-paper/gpu_paper.json",
            "gpu-paper/runs/subgradient-robust-matrix-recovery/metrics.json"} <= packed
    result = json.loads((out / "gpu_paper.json").read_text())
    assert result["meta"]["mode"] == "smoke run on the CPU"
    assert result["loops"] and not [r for r in result["loops"] if "error" in r]
    [run] = [r for r in result["runs"] if r["slug"] == "subgradient-robust-matrix-recovery"]
    assert run["status"].startswith("ok") and run["record"] == "not recorded: smoke run"
    assert (out / "runs" / run["slug"] / "metrics.json").is_file()
    table = (out / "gpu_paper.md").read_text()
    assert "steps/s" in table and "subgradient-robust-matrix-recovery" in table
    after = sorted(p.name for p in records.rglob("*")) if records.exists() else []
    assert after == before


def test_a_packed_run_comes_back_into_data_records_and_benchmarks(tmp_path):
    plan = _load_plan()
    out = tmp_path / "gpu-paper"
    for slug, value in (("chapter-a", 1), ("chapter-b", 2)):
        folder = out / "records" / slug / "paper"
        folder.mkdir(parents=True)
        (folder / "metrics.json").write_text(json.dumps({"value": value}))
        (folder / "provenance.json").write_text(json.dumps({"device": "cuda"}))
    (out / "records" / "half-written" / "paper").mkdir(parents=True)   # no provenance: skipped
    (out / "gpu_paper.md").write_text("# the table\n")
    archive = tmp_path / "OUT" / "gpu_paper.tgz"
    plan.pack(out, archive)
    book = tmp_path / "book"
    old = book / "data" / "records" / "chapter-a" / "paper"
    old.mkdir(parents=True)
    (old / "stale.json").write_text("{}")                  # an older record of the same run
    (book / "benchmarks").mkdir()
    assert plan.unpack(archive, root=book) == 0
    assert sorted(p.name for p in old.iterdir()) == ["metrics.json", "provenance.json"]
    assert json.loads((book / "data/records/chapter-b/paper/metrics.json").read_text()) == {
        "value": 2}
    assert not (book / "data" / "records" / "half-written").exists()
    assert (book / "benchmarks" / "gpu_paper.md").read_text() == "# the table\n"


def test_unpack_refuses_what_is_not_a_packed_run(tmp_path, capsys):
    import tarfile

    plan = _load_plan()
    book = tmp_path / "book"
    (book / "benchmarks").mkdir(parents=True)
    assert plan.unpack(tmp_path / "missing.tgz", root=book) == 2
    (tmp_path / "junk.tgz").write_bytes(b"not an archive")
    assert plan.unpack(tmp_path / "junk.tgz", root=book) == 2
    evil = tmp_path / "evil.tgz"
    payload = tmp_path / "payload"
    payload.write_text("x")
    with tarfile.open(evil, "w:gz") as tar:
        tar.add(payload, arcname="gpu-paper/../../outside")
    assert plan.unpack(evil, root=book) == 2
    assert not (tmp_path / "outside").exists() and not (book / "data").exists()
    assert len(capsys.readouterr().err.strip().splitlines()) == 3   # one line each


def test_the_offline_wheels_and_the_gpu_image_cover_what_the_library_needs():
    # what the library, `repro run` / `repro record` and the Dask engine import, and all they
    # pull in, for the image's Python (3.12): each must be on the image or among the wheels
    import re
    from importlib import metadata

    import tomllib
    from packaging.markers import default_environment
    from packaging.requirements import Requirement

    def norm(name):
        return re.sub(r"[-_.]+", "-", name).lower()

    def names(path, drop_line=None):
        found, dropped = set(), set()
        for line in (ROOT / path).read_text().splitlines():
            if drop_line and line.startswith(drop_line):
                dropped |= {norm(n) for n in line[len(drop_line):].split()}
            elif line.strip() and not line.startswith("#"):
                found.add(norm(line.split("==")[0]))
        return found, dropped

    image, _ = names("benchmarks/gpu_image.txt")
    wheels, not_needed = names("benchmarks/gpu_requirements.txt",
                               "# not needed at these pins:")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    roots = [Requirement(r).name for r in project["dependencies"]] + ["distributed"]
    roots = [r for r in roots if norm(r) not in ("torch", "otter-grader")]   # otter: grading
    env = {**default_environment(), "python_version": "3.12", "python_full_version": "3.12.3"}
    closure, todo = set(), [(r, "") for r in roots]
    while todo:
        name, extra = todo.pop()
        if (norm(name), extra) in closure:
            continue
        closure.add((norm(name), extra))
        for text in metadata.distribution(name).requires or []:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({**env, "extra": extra}):
                todo += [(req.name, "")] + [(req.name, e) for e in req.extras]
    needed = {n for n, _ in closure}
    missing = {n for n in needed - image - wheels - not_needed
               if n not in ("torch", "triton") and not n.startswith("nvidia-")}
    assert not missing, f"add to benchmarks/gpu_requirements.txt: {sorted(missing)}"
    assert not wheels & image, "a wheel shadows the image's own package"

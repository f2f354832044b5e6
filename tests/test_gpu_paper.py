"""benchmarks/gpu_paper.py, the one command of the GPU run, kept working without a GPU: its plan
resolves every chapter's paper preset, and its CPU smoke mode runs the whole path (the timed loop
slices, one chapter's paper preset at a tiny size, the table) without recording anything."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_paper.py"


def _load_plan():
    import importlib.util

    spec = importlib.util.spec_from_file_location("gpu_paper", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_paper"] = module
    spec.loader.exec_module(module)
    return module


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
    done = subprocess.run([sys.executable, str(SCRIPT), "--cpu", "--out", str(out), "--runs",
                           str(runs), "--loop-steps", "2", "--budget", "400"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
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

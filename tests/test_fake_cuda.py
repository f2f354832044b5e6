"""benchmarks/fake_cuda.py, the pre-flight check without a GPU: its fake device reports what CUDA
would refuse (a device mix, numpy of a device tensor, a CPU generator drawing onto the device, a
device index into a CPU tensor), stays silent on the library's own ways of crossing between host
and device, and leaves torch as it found it; its command runs a small chapter clean."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import repro
from _benchmarks import load_benchmark
from repro.devices import to_device
from repro.optim import make

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "fake_cuda.py"


def _load():
    return load_benchmark("fake_cuda")


fake = _load()


@pytest.fixture
def mode():
    """The fake device for one test; afterwards torch must be as it was."""
    before = (torch.nn.Module.to, torch.nn.Parameter.__new__, torch.vmap, torch.func.vmap,
              torch.random.fork_rng, os.environ.get("REPRO_DEVICE"))
    with fake.fake_cuda() as m:
        yield m
    after = (torch.nn.Module.to, torch.nn.Parameter.__new__, torch.vmap, torch.func.vmap,
             torch.random.fork_rng, os.environ.get("REPRO_DEVICE"))
    assert after == before
    assert not torch.overrides._is_torch_function_mode_enabled()
    assert torch.ones(2).to("cpu").device.type == "cpu"


def _kinds(mode) -> list[str]:
    return [hit.kind for hit in mode.hits]


def test_a_cpu_tensor_combined_with_a_device_tensor(mode):
    on_device = torch.ones(3, device="cuda")
    assert on_device.device.type == "cuda" and on_device.is_cuda
    on_device + torch.ones(3)
    assert _kinds(mode) == ["device mix in add"]


def test_numpy_of_a_device_tensor(mode):
    torch.zeros(2, device="cuda").numpy()
    assert _kinds(mode) == ["numpy conversion of a device tensor (numpy)"]


def test_a_cpu_generator_drawing_onto_the_device(mode):
    torch.randn(4, generator=torch.Generator().manual_seed(0), device="cuda")
    assert _kinds(mode) == ["randn: a CPU generator drawing onto the device"]


def test_a_device_index_into_a_cpu_tensor(mode):
    torch.arange(5.0)[torch.tensor([0, 2], device="cuda")]
    assert _kinds(mode) == ["a device index into a CPU tensor"]


def test_strict_raises_where_cuda_would(mode):
    mode.strict = True
    with pytest.raises(fake.DeviceMix, match="device mix in mul"):
        torch.ones(2, device="cuda") * torch.ones(2)


def test_silent_on_the_library_patterns(mode):
    device = repro.device()
    assert device.type == "cuda"  # REPRO_DEVICE, set by the fake device
    generator = torch.Generator().manual_seed(0)
    # a draw on a CPU generator, then moved (plainly, and through pinned memory)
    x = torch.randn(16, 3, generator=generator).to(device)
    noise = to_device(torch.randn(16, 1, generator=generator), device)
    assert x.device.type == "cuda" and noise.device.type == "cuda"
    # a model on the device, trained a step by a repro optimizer that draws on a CPU generator
    model = torch.nn.Linear(3, 1).to(device)
    assert all(p.is_cuda for p in model.parameters())
    optimizer = make("anti_pgd", model.parameters(), lr=0.1, sigma=0.01, generator=generator)
    loss = ((model(x) - noise) ** 2).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    # results read on the host; 0-d CPU scalars combined with device tensors
    values = model.weight.detach().cpu().numpy()
    scaled = x * torch.tensor(2.0) + loss.detach().cpu()
    assert values.shape == (1, 3) and scaled.is_cuda
    assert mode.hits == []


def _command(*args, timeout=60):
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


def test_the_command_runs_a_small_chapter_clean():
    done = _command("06", "-p", "seeds=2", "-p", "n=50", "-p", "d=5", "-p", "steps=50",
                    "-p", "digit_steps=50")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "logistic-regression-large-step-perceptron: OK" in done.stdout


@pytest.mark.parametrize("args", [("no-such-chapter",), ("06", "-p", "no_such=1")])
def test_the_command_refuses_bad_input_in_one_line(args):
    done = _command(*args, timeout=30)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1

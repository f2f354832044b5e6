"""repro.train.classifier: the training loop on a batched ensemble, its epoch-end hook and its
divergence check."""

import pytest
import torch

from repro import Diverged, generator
from repro.models import MLP, EnsembleMLP
from repro.optim import GD, AntiPGD, stop_noise
from repro.train import train


def tiny_classification(seed=0, n=64):
    g = generator(seed)
    x = torch.randn(n, 4, generator=g)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0).long()
    return {"x": x, "y": y, "x_test": x[:16], "y_test": y[:16]}


def test_train_loop_on_a_batched_ensemble_with_noise_stop():
    model = EnsembleMLP(3, [4, 8, 3], generator=generator(0))
    opt = AntiPGD(model.parameters(), lr=0.5, sigma=0.01, generator=generator(1))
    hist = train(model, opt, tiny_classification(), epochs=6, batch_size=16,
                 on_epoch_end=lambda e: e == 2 and stop_noise(opt),
                 eval_every=3, generator=generator(2), progress=False)
    assert hist["epoch"] == [3, 6]
    assert all(len(v) == 3 for v in hist["train_loss"] + hist["test_accuracy"])
    assert opt.param_groups[0]["sigma"] == 0.0
    assert hist["train_loss"][-1] != hist["train_loss"][0]


def test_train_loop_raises_diverged():
    model = MLP([4, 8, 3], generator=generator(0))
    with pytest.raises(Diverged, match="step"):
        train(model, GD(model.parameters(), lr=1e30), tiny_classification(), epochs=5,
              progress=False)


def test_epoch_end_hook_runs_after_each_epochs_steps_before_the_evaluation():
    model = MLP([4, 8, 3], generator=generator(0))
    opt = GD(model.parameters(), lr=0.1)
    seen = []

    def hook(epoch):
        seen.append(epoch)
        opt.param_groups[0]["lr"] = 0.0 if epoch == 1 else 0.1

    hist = train(model, opt, tiny_classification(), epochs=3, batch_size=32, on_epoch_end=hook,
                 generator=generator(2), progress=False)
    assert seen == [1, 2, 3] and hist["epoch"] == [1, 2, 3]
    # epoch 2 ran with lr = 0 (set by the hook after epoch 1): nothing moved between the two
    # evaluations after epochs 1 and 2
    assert hist["train_loss"][1] == hist["train_loss"][0]
    assert hist["train_loss"][2] != hist["train_loss"][1]


def test_divergence_read_every_k_steps_names_the_first_bad_step():
    model = MLP([4, 8, 3], generator=generator(0))
    with pytest.raises(Diverged, match="at step 1:"):
        train(model, GD(model.parameters(), lr=1e30), tiny_classification(), epochs=50,
              check_every=20, eval_every=100, progress=False)


def test_bf16_is_a_cuda_option_the_cpu_runs_in_full_precision():
    runs = {}
    for precision in ("float32", "bf16"):
        model = EnsembleMLP(2, [4, 8, 3], generator=generator(0))
        opt = GD(model.parameters(), lr=0.1)
        if precision == "bf16":
            with pytest.warns(UserWarning, match="CUDA option"):
                runs[precision] = train(model, opt, tiny_classification(), epochs=3,
                                        progress=False, precision=precision)
        else:
            runs[precision] = train(model, opt, tiny_classification(), epochs=3,
                                    progress=False, precision=precision)
    assert runs["bf16"]["train_loss"] == runs["float32"]["train_loss"]
    model = MLP([4, 8, 3], generator=generator(0))
    with pytest.raises(ValueError, match="precision"):
        train(model, GD(model.parameters(), lr=0.1), tiny_classification(), epochs=1,
              progress=False, precision="fp16")


def test_a_compiled_training_step_trains_as_the_eager_one():
    # torch.compile (inductor, a C++ kernel on the CPU) of the forward and backward passes: the
    # same history as eager to rounding, mini-batches of two sizes (64 = 24 + 24 + 16) included
    runs = {}
    for mode in (None, "default"):
        model = EnsembleMLP(2, [4, 8, 3], generator=generator(0))
        opt = AntiPGD(model.parameters(), lr=0.3, sigma=0.01, generator=generator(1))
        runs[mode] = train(model, opt, tiny_classification(), epochs=4, batch_size=24,
                           generator=generator(2), progress=False, compile_mode=mode)
    for key in ("train_loss", "test_loss", "train_accuracy"):
        torch.testing.assert_close(torch.tensor(runs["default"][key]),
                                   torch.tensor(runs[None][key]), rtol=1e-5, atol=1e-6)
    assert runs[None]["train_loss"][-1] < runs[None]["train_loss"][0]   # it did train
    model = MLP([4, 8, 3], generator=generator(0))
    with pytest.raises(ValueError, match="compile_mode"):
        train(model, GD(model.parameters(), lr=0.1), tiny_classification(), epochs=1,
              progress=False, compile_mode="fast")

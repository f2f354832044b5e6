"""The networks the chapters train (networks only: their losses are in ``repro.losses``, their
training loops in ``repro.train``).

- ``linear``  ``DeepLinear``: a depth-N factorisation W = W_N ... W_1, batched over seeds;
              ``default_scale`` for its initialisation
- ``mlp``     ``MLP``, ``EnsembleMLP``: multilayer perceptrons; the ensemble holds S independent
              models in batched tensors so that S seeds train in one pass
- ``resnet``  ``resnet18``: the CIFAR-10 ResNet-18 (3x3 stem, no max-pool, BatchNorm)
- ``vae``     ``VAE``: a small MLP variational autoencoder whose decoder is a generator G(z)
- ``mpnn``    ``MPNN``: the message-passing network of the QM9 experiment (needs torch_geometric)
- ``resmlp``  ``ResMLP``: a residual MLP whose skip connections can be switched off
- ``modular_mlp`` ``ModularMLP``: the bias-free quadratic two-layer net on one-hot pairs of
              modular arithmetic, with a neuron mask for pruning, batched over runs
- ``two_layer`` ``TwoLayerNet``: f(x) = alpha / N^gamma sum_j a_j phi(w_j . x), NTK or mean-field
              scaling, output scale, frozen readouts, batched over runs
- ``linearized`` ``linearize``, ``linearize_module``: a model linearised around its initial
              parameters (torch.func.jvp), the lazy limit of a network

Each constructor takes an optional ``torch.Generator``: with one, every initial weight is drawn
from it (same seed, same weights). ``MODELS`` maps a short name to each.
"""

from repro.models.linear import DeepLinear, default_scale
from repro.models.linearized import linearize, linearize_module
from repro.models.mlp import MLP, EnsembleMLP
from repro.models.modular_mlp import ModularMLP
from repro.models.mpnn import MPNN
from repro.models.resmlp import ResMLP
from repro.models.resnet import BasicBlock, ResNet, resnet18
from repro.models.two_layer import TwoLayerNet
from repro.models.vae import VAE

MODELS = {"deep_linear": DeepLinear, "mlp": MLP, "ensemble_mlp": EnsembleMLP,
          "resnet18": resnet18, "vae": VAE, "mpnn": MPNN, "resmlp": ResMLP,
          "two_layer": TwoLayerNet, "modular_mlp": ModularMLP}

__all__ = ["MODELS", "MLP", "MPNN", "VAE", "BasicBlock", "DeepLinear", "EnsembleMLP", "ModularMLP",
           "ResMLP", "ResNet", "TwoLayerNet", "default_scale", "linearize", "linearize_module",
           "resnet18"]

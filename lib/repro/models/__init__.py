"""The networks the chapters train.

- ``MLP``, ``EnsembleMLP``   multilayer perceptrons; the ensemble holds S independent models in
  batched tensors (a leading model dimension) so that S seeds train in one pass.
- ``resnet18``               the CIFAR-10 ResNet-18 (3x3 stem, no max-pool, BatchNorm).
- ``DeepLinear``             a depth-N linear factorisation W = W_N ... W_1 with a chosen
  initialisation scale, batched over seeds.
- ``VAE``                    a small MLP variational autoencoder whose decoder is a generator
  G(z) for generative compressed sensing.

Each constructor takes an optional ``torch.Generator``: with one, every initial weight is drawn
from it (same seed, same weights).
"""

from repro.models.linear import DeepLinear
from repro.models.mlp import MLP, EnsembleMLP, per_model_cross_entropy
from repro.models.resnet import BasicBlock, ResNet, resnet18
from repro.models.vae import VAE, train_vae, vae_loss

__all__ = ["MLP", "EnsembleMLP", "per_model_cross_entropy", "resnet18", "ResNet", "BasicBlock",
           "DeepLinear", "VAE", "train_vae", "vae_loss"]

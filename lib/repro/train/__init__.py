"""Training loops, one per kind of model.

- ``classifier``       ``train``, ``evaluate``: a classifier or a batched ensemble, full or
                       mini-batch, any optimizer, with an epoch-end hook; ``precision_context``
                       and ``PRECISIONS`` (bf16 autocast on CUDA), ``COMPILE_MODES``
                       (``torch.compile`` of the training step)
- ``matrix``           ``fit_matrix``: a batch of matrices (``DeepLinear``) on a per-run loss and
                       an optional penalty, recording per-run quantities
- ``vae``              ``train_vae``: a VAE with Adam
- ``multitask_graph``  ``fit``, ``train_step``: a graph network with a multi-task aggregator (QM9)
"""

from repro.train.classifier import (
    COMPILE_MODES,
    PRECISIONS,
    evaluate,
    precision_context,
    train,
)
from repro.train.matrix import fit_matrix
from repro.train.multitask_graph import FitResult, evaluate_mae, qm9_delta_m, train_step
from repro.train.multitask_graph import fit as fit_multitask_graph
from repro.train.vae import train_vae

__all__ = ["COMPILE_MODES", "PRECISIONS", "FitResult", "evaluate", "evaluate_mae", "fit_matrix",
           "fit_multitask_graph", "precision_context", "qm9_delta_m", "train", "train_step",
           "train_vae"]

"""The data sets the chapters train on, one loader per module, as dicts of torch tensors.

Every classification loader returns ``dict(x=..., y=..., x_test=..., y_test=...)`` with ``x``
float32 and ``y`` int64, on ``device`` (default: ``repro.device()``).

- ``mnist1d``   ``mnist1d``: generated locally from an explicit seed (never downloaded), cached
- ``digits``    ``digits``: scikit-learn's bundled 8x8 digits
- ``cifar10``   ``cifar10``: a local copy of ``cifar-10-batches-py``, or ``download=True``
- ``mnist``     ``mnist``, ``read_idx``: the four IDX files from a local folder, or
                ``download=True``
- ``qm9``       ``load_qm9``, ``split_and_scale``: a local copy in PyTorch Geometric's layout
- ``modular``   ``modular_arithmetic``: (a + b) mod p tables with a recorded mask of corrupted
                training labels; ``modular_table``, ``one_hot_pairs``
- ``download``  the checked, atomic download used by ``download=True``
- ``label_noise`` ``symmetric_label_noise``, ``with_label_noise`` (symmetric noise with a mask of
                the flipped labels), ``subset``

A missing data set raises ``DatasetMissing`` with one line that says where we looked.
``DATASETS`` maps a short name to each loader.
"""

from repro.data._common import DatasetMissing
from repro.data.cifar10 import (
    CIFAR10_MD5,
    CIFAR10_MEAN,
    CIFAR10_STD,
    CIFAR10_URL,
    cifar10,
)
from repro.data.digits import digits
from repro.data.label_noise import subset, symmetric_label_noise, with_label_noise
from repro.data.mnist import MNIST_FILES, MNIST_URL, mnist, read_idx
from repro.data.mnist1d import mnist1d
from repro.data.modular import modular_arithmetic, modular_table, one_hot_pairs
from repro.data.qm9 import (
    MEV,
    TARGET_NAMES,
    TARGETS,
    CompleteGraph,
    QM9Splits,
    TorchGeometricMissing,
    default_root,
    load_qm9,
    prepare_graphs,
    require_torch_geometric,
    split_and_scale,
    transform,
)

DATASETS = {"mnist1d": mnist1d, "digits": digits, "cifar10": cifar10, "mnist": mnist,
            "qm9": load_qm9, "modular": modular_arithmetic}

__all__ = ["CIFAR10_MD5", "CIFAR10_MEAN", "CIFAR10_STD", "CIFAR10_URL", "DATASETS", "MEV",
           "TARGETS", "TARGET_NAMES", "CompleteGraph", "DatasetMissing", "MNIST_FILES",
           "MNIST_URL", "QM9Splits", "TorchGeometricMissing", "cifar10", "default_root", "digits",
           "load_qm9", "mnist", "mnist1d", "modular_arithmetic", "modular_table",
           "one_hot_pairs", "prepare_graphs", "read_idx",
           "require_torch_geometric", "split_and_scale", "subset", "symmetric_label_noise",
           "transform", "with_label_noise"]

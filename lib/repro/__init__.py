"""repro: the shared library of the book.

Modules by role, each importable on its own:

- ``repro.optim``     optimizers with the ``torch.optim.Optimizer`` interface (PGD, Anti-PGD, ...)
- ``repro.problems``  test problems with closed forms (widening valley, quadratic regression, ...)
- ``repro.metrics``   Hessian trace (exact, Hutchinson), top Hessian eigenvalue
- ``repro.models``    the small networks the chapters train
- ``repro.data``      mnist1d (generated), scikit-learn digits, CIFAR-10 (local copy or download)
- ``repro.claims``    claims.yaml: loading and checking against a run's metrics
- ``repro.runner``    executing notebooks with papermill into run folders
- ``repro.cli``       the ``repro`` command
"""

from repro._common import Diverged, check_finite, device, generator

__version__ = "0.1.0"
__all__ = ["Diverged", "check_finite", "device", "generator", "__version__"]

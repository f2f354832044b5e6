"""repro: the shared library of the book. Import paths stay short: each role package re-exports
its contents (``repro.optim.AntiPGD``, ``repro.metrics.hutchinson_trace``), and each role has a
registry of what it holds (``repro.optim.OPTIMIZERS``, ``repro.mtl.AGGREGATORS``, ...).

For chapter authors (science; never imports the machinery)
-----------------------------------------------------------
========================  ========================================================================
``repro.optim``           optimizers: GD, PGD / Anti-PGD (noise injection), per-run GD / momentum /
                          AdaGrad / Adam; ``OPTIMIZERS``, ``make``
``repro.problems``        problems with closed forms: widening valley, diagonal-net regression,
                          l_p regression, matrix sensing, matrix completion, compressed sensing,
                          the multi-task toy; ``PROBLEMS``
``repro.models``          networks: DeepLinear, MLP / EnsembleMLP, ResNet-18, VAE, MPNN; ``MODELS``
``repro.losses``          per-run cross-entropy, the VAE's negative ELBO
``repro.penalties``       explicit penalties: nuclear norm, nuclear / Frobenius ratio
``repro.metrics``         curvature (Hessian, trace, Hutchinson, top eigenvalue), spectra
                          (singular values, effective rank), accuracy, Delta_m, reconstruction error
``repro.mtl``             multi-task aggregators: LS, MGDA, PCGrad, CAGrad, Nash-MTL and the Nash
                          solver; ``AGGREGATORS``, ``make``
``repro.solvers``         one-instance answers: min nuclear norm (cvxpy), Lasso in a DCT basis,
                          CSGM and CS-BGM; ``SOLVERS``
``repro.data``            mnist1d (generated), digits (bundled), CIFAR-10, MNIST, QM9 (local
                          copies); ``DATASETS``
``repro.train``           training loops: classifiers, batches of matrices, a VAE, multi-task graphs
``repro.sweep``           a grid of parameters x seeds, batched where the model allows, as a table
``repro.seeds``           ``generator(seed)``, ``derive(seed, *digits)``, named ``Streams``
``repro.stats``           mean, standard error, log-log slope, paired differences over seeds
``repro.linalg``          random orthogonal / orthonormal matrices, balanced factors, PSD powers
``repro.plot``            the style registry of method labels and colours, figure helpers
``repro.checks``          argument validators, ``check_finite`` and ``Diverged``
``repro.devices``         ``device()``: the GPU when there is one
``repro.paths``           the repository root, the data and cache folders
========================  ========================================================================

Machinery (the book, the runs, the classroom; ``repro.machinery``)
------------------------------------------------------------------
Chapters and their parameters, claims and verdicts, the runner, records of paper-scale runs, the
book build and its Sphinx extension, assignments and grading, the ``repro`` command. A notebook
touches it once, in its last cell: ``repro.machinery.finish(metrics, metrics_path, preset)``.
"""

from repro.checks import Diverged, check_finite
from repro.devices import device
from repro.seeds import generator

__version__ = "0.1.0"
__all__ = ["Diverged", "__version__", "check_finite", "device", "generator"]

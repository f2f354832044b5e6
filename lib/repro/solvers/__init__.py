"""Methods that answer one problem instance rather than train a model: convex programs, the
Lasso, and the MAP estimators of compressed sensing with a generative prior.

- ``nuclear_norm``  ``min_nuclear_norm``, ``min_nuclear_norm_completion``: the convex answer that
                    gradient descent on a factorisation is compared with (cvxpy)
- ``lasso_dct``     ``lasso_dct``, ``dct_basis``: l1 in a DCT basis (scikit-learn)
- ``generative``    ``csgm``, ``cs_bgm``, ``map_estimate``: CSGM (Bora et al., 2017) and CS-BGM
                    (Zhang et al., 2022), batched over problems and restarts

``SOLVERS`` maps a short name to each.
"""

from repro.solvers.generative import MAPResult, cs_bgm, csgm, map_estimate
from repro.solvers.lasso_dct import dct_basis, lasso_dct
from repro.solvers.nuclear_norm import (
    completion_operator,
    min_nuclear_norm,
    min_nuclear_norm_completion,
)

SOLVERS = {"min_nuclear_norm": min_nuclear_norm,
           "min_nuclear_norm_completion": min_nuclear_norm_completion,
           "lasso_dct": lasso_dct, "csgm": csgm, "cs_bgm": cs_bgm}

__all__ = ["SOLVERS", "MAPResult", "completion_operator", "cs_bgm", "csgm", "dct_basis",
           "lasso_dct", "map_estimate", "min_nuclear_norm", "min_nuclear_norm_completion"]

"""What the chapters measure, by family.

- ``curvature``       ``hvp``, ``hessian``, ``hessian_trace``, ``hutchinson_trace``,
                      ``top_eigenvalue``: the Hessian of a loss, exact or by products, batched over
                      the models of an ensemble
- ``network_curvature`` ``hessian_operator``, ``hessian_top_eigenvalues``,
                      ``hessian_trace_estimate``, ``hessian_spectral_density``: a network's Hessian
                      over a data set, from curvlinops (Lanczos, Hutch++, spectral density)
- ``spectra``         ``singular_values``, ``nuclear_norm``, ``effective_rank``
- ``classification``  ``per_model_accuracy``
- ``multitask``       ``delta_m``, ``mean_rank`` (the metrics of Nash-MTL's tables)
- ``reconstruction``  ``per_pixel_mse``
"""

from repro.metrics.classification import per_model_accuracy
from repro.metrics.curvature import (
    hessian,
    hessian_trace,
    hutchinson_trace,
    hvp,
    top_eigenvalue,
)
from repro.metrics.multitask import delta_m, mean_rank
from repro.metrics.network_curvature import (
    hessian_operator,
    hessian_spectral_density,
    hessian_top_eigenvalues,
    hessian_trace_estimate,
)
from repro.metrics.reconstruction import per_pixel_mse
from repro.metrics.spectra import effective_rank, nuclear_norm, singular_values

__all__ = ["delta_m", "effective_rank", "hessian", "hessian_operator", "hessian_spectral_density",
           "hessian_top_eigenvalues", "hessian_trace", "hessian_trace_estimate",
           "hutchinson_trace", "hvp", "mean_rank", "nuclear_norm", "per_model_accuracy",
           "per_pixel_mse", "singular_values", "top_eigenvalue"]

"""What the chapters measure, by family.

- ``curvature``       ``hvp``, ``hessian``, ``hessian_trace``, ``hutchinson_trace``,
                      ``top_eigenvalue``: the Hessian of a loss, exact or by products, batched over
                      the models of an ensemble
- ``network_curvature`` ``hessian_operator``, ``hessian_top_eigenvalues``,
                      ``hessian_trace_estimate``, ``hessian_spectral_density``: a network's Hessian
                      over a data set, from curvlinops (Lanczos, Hutch++, spectral density)
- ``stability``       ``sgd_stability_radius``, ``sgd_stability_threshold``,
                      ``gd_stability_threshold``, ``sgd_moment_map``: mean-square linear stability
                      of SGD at an interpolating minimum
- ``spectra``         ``singular_values``, ``nuclear_norm``, ``effective_rank``
- ``coherence``       ``per_example_hessians``, ``coherence_matrix``, ``coherence_measure``,
                      ``theorem1_step_size``, ``predicts_instability``: per-example Hessians, their
                      coherence and Dexter et al.'s sufficient condition for SGD instability
- ``mean_square_stability`` ``second_moment_operator``, ``mean_square_spectral_radius``,
                      ``critical_step_size``, ``sampling_coefficients``, ``sample_batches``: exact
                      mean-square stability of linearised minibatch SGD
- ``fourier_probes``  ``ipr``, ``fourier_spectrum``, ``fourier_ipr``, ``neuron_ipr``,
                      ``ipr_pruning_mask``, ``random_pruning_mask``: how periodic a neuron's
                      weights are, and pruning the least periodic neurons
- ``knots``           ``find_knots``, ``count_per_gap``, ``off_data``, ``relu_kinks``, ``Knots``:
                      the knots (slope changes) of a 1-D piecewise linear function, by a stated
                      threshold-and-merge rule, counted per interval between data points
- ``ntk``             ``empirical_ntk``, ``run_batched_ntk``, ``centered_alignment``,
                      ``kernel_regression``, ``kernel_regression_mse``: the empirical neural tangent
                      kernel (torch.func), its centred alignment with the labels, regression with it
- ``classification``  ``per_model_accuracy``
- ``multitask``       ``delta_m``, ``mean_rank`` (the metrics of Nash-MTL's tables)
- ``reconstruction``  ``per_pixel_mse``
- ``gfs_sharpness``   ``scalar_gfs_point``, ``scalar_gfs_sharpness``, ``gradient_flow_solution``:
                      the sharpness of the gradient-flow solution, in closed form for scalar
                      networks and by a numerical rollout of the flow for any model
- ``landscape``       ``random_direction``, ``filter_normalize``, ``slice_1d``, ``slice_2d``,
                      ``interpolate``, ``functional_loss``, ``slice_eigenvalue_ratio``: loss
                      landscapes along filter-normalised directions, batched over the grid
"""

from repro.metrics.classification import per_model_accuracy
from repro.metrics.coherence import (
    coherence_matrix,
    coherence_measure,
    per_example_hessians,
    predicts_instability,
    theorem1_step_size,
)
from repro.metrics.curvature import (
    hessian,
    hessian_trace,
    hutchinson_trace,
    hvp,
    top_eigenvalue,
)
from repro.metrics.fourier_probes import (
    fourier_ipr,
    fourier_spectrum,
    ipr,
    ipr_pruning_mask,
    neuron_ipr,
    random_pruning_mask,
)
from repro.metrics.gfs_sharpness import (
    FlowResult,
    gradient_flow_solution,
    scalar_gfs_point,
    scalar_gfs_sharpness,
)
from repro.metrics.knots import Knots, count_per_gap, find_knots, off_data, relu_kinks
from repro.metrics.landscape import (
    filter_normalize,
    functional_loss,
    interpolate,
    random_direction,
    slice_1d,
    slice_2d,
    slice_eigenvalue_ratio,
)
from repro.metrics.mean_square_stability import (
    SAMPLINGS,
    critical_step_size,
    mean_square_spectral_radius,
    sample_batches,
    sampling_coefficients,
    second_moment_operator,
)
from repro.metrics.multitask import delta_m, mean_rank
from repro.metrics.network_curvature import (
    hessian_operator,
    hessian_spectral_density,
    hessian_top_eigenvalues,
    hessian_trace_estimate,
)
from repro.metrics.ntk import (
    centered_alignment,
    empirical_ntk,
    kernel_regression,
    kernel_regression_mse,
    run_batched_ntk,
)
from repro.metrics.reconstruction import per_pixel_mse
from repro.metrics.spectra import effective_rank, nuclear_norm, singular_values
from repro.metrics.stability import (
    gd_stability_threshold,
    sgd_moment_map,
    sgd_stability_radius,
    sgd_stability_threshold,
)

__all__ = ["centered_alignment", "empirical_ntk", "kernel_regression", "kernel_regression_mse",
           "run_batched_ntk",
           "fourier_ipr", "fourier_spectrum", "ipr", "ipr_pruning_mask", "neuron_ipr",
           "random_pruning_mask",
           "FlowResult", "gradient_flow_solution", "scalar_gfs_point", "scalar_gfs_sharpness",
           "filter_normalize", "functional_loss", "interpolate", "random_direction", "slice_1d",
           "slice_2d", "slice_eigenvalue_ratio",
           "SAMPLINGS", "coherence_matrix", "coherence_measure", "critical_step_size",
           "mean_square_spectral_radius", "per_example_hessians", "predicts_instability",
           "sample_batches", "sampling_coefficients", "second_moment_operator",
           "theorem1_step_size", "Knots", "count_per_gap", "find_knots", "off_data", "relu_kinks",
           "delta_m", "effective_rank", "hessian", "hessian_operator",
           "hessian_spectral_density",
           "hessian_top_eigenvalues", "hessian_trace", "hessian_trace_estimate",
           "hutchinson_trace", "hvp", "mean_rank", "nuclear_norm", "per_model_accuracy",
           "per_pixel_mse", "gd_stability_threshold", "sgd_moment_map",
           "sgd_stability_radius", "sgd_stability_threshold", "singular_values", "top_eigenvalue"]

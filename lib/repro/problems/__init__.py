"""Test problems with closed forms, one family per module.

- ``valley``              ``WideningValley``: L(u, v) = v^2 |u|^2 / 2 (Orvieto et al., 2022, Sec. 3)
- ``diagonal_net``        ``QuadraticRegression``: a diagonal linear network w * w on a sparse
                          teacher
- ``lp_regression``       ``LpRegression``: l_p linear regression (Arora et al., 2018)
- ``matrix_sensing``      ``MatrixSensing``, ``SymmetricSensing``: low-rank PSD recovery from
                          linear measurements (Gunasekar et al., 2017)
- ``completion``          ``MatrixCompletion``: a low-rank matrix from some of its entries
- ``compressed_sensing``  ``CompressedSensing``, ``gaussian_matrix``, ``pad_problems``: y = A x
- ``multitask_toy``       ``ToyTwoObjectives``: the two-objective toy of Nash-MTL's Fig. 1
- ``planted_quadratic``   ``PlantedQuadratic``: rank-one per-example quadratics whose Hessians
                          have a planted alignment (coherence), Dexter et al. (2024)
- ``separable``           ``SeparableData``: linearly separable classification with a planted
                          margin and the logistic loss (Tyurin, 2024)
- ``robust_sensing``      ``RobustSensing``: symmetric sensing with gross outliers at several
                          fractions, the l1 loss and its subgradient (Ma and Fattahi, 2023)
- ``relu_regression_1d`` ``ReluRegression1D``: a handful of points on the line, the squared loss of
                          batched models (Shevchenko et al., 2022)
- ``scalar_network``      ``ScalarNetwork``: f(w) = prod_i w_i with the squared loss (Kreisler et
                          al., 2023)
- ``single_index``        ``SingleIndexTeacher``: Gaussian inputs, y = h(beta . x / sqrt(d)), the
                          quadratic teacher of Kumar et al. (2024)

Every problem takes its parameters with any leading batch dimensions (typically one seed
dimension) and returns one loss per batch element, so a sum of the losses trains independent runs
at once. Data are drawn from an explicit seed. ``PROBLEMS`` maps a short name to each class.
"""

from repro.problems.completion import MatrixCompletion
from repro.problems.compressed_sensing import (
    CompressedSensing,
    gaussian_matrix,
    pad_problems,
)
from repro.problems.diagonal_net import QuadraticRegression
from repro.problems.lp_regression import LpRegression
from repro.problems.matrix_sensing import MatrixSensing, SymmetricSensing
from repro.problems.multitask_toy import ToyTwoObjectives
from repro.problems.planted_quadratic import PlantedQuadratic
from repro.problems.relu_regression_1d import ReluRegression1D
from repro.problems.robust_sensing import RobustSensing
from repro.problems.scalar_network import ScalarNetwork
from repro.problems.separable import SeparableData
from repro.problems.single_index import SingleIndexTeacher
from repro.problems.valley import WideningValley

PROBLEMS = {
    "planted_quadratic": PlantedQuadratic,
    "widening_valley": WideningValley,
    "quadratic_regression": QuadraticRegression,
    "lp_regression": LpRegression,
    "matrix_sensing": MatrixSensing,
    "symmetric_sensing": SymmetricSensing,
    "matrix_completion": MatrixCompletion,
    "compressed_sensing": CompressedSensing,
    "multitask_toy": ToyTwoObjectives,
    "relu_regression_1d": ReluRegression1D,
    "robust_sensing": RobustSensing,
    "scalar_network": ScalarNetwork,
    "separable": SeparableData,
}

__all__ = ["PROBLEMS", "CompressedSensing", "LpRegression", "MatrixCompletion", "MatrixSensing",
           "PlantedQuadratic", "QuadraticRegression", "ReluRegression1D",
           "RobustSensing", "ScalarNetwork", "SeparableData", "SymmetricSensing",
           "SingleIndexTeacher",
           "ToyTwoObjectives", "WideningValley", "gaussian_matrix", "pad_problems"]

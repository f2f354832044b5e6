"""Test problems with closed forms: the widening valley, quadratically parameterised regression,
lp linear regression, and low-rank matrix sensing and completion.

Every problem takes its parameters with any leading batch dimensions (typically one seed dimension)
and returns one loss per batch element, so a sum of the losses trains independent runs at once.
Data are drawn from an explicit seed.
"""

from repro.problems.lp import LpRegression
from repro.problems.matrix import MatrixCompletion, SymmetricSensing
from repro.problems.regression import QuadraticRegression
from repro.problems.sensing import MatrixSensing
from repro.problems.valley import WideningValley

__all__ = ["LpRegression", "MatrixCompletion", "MatrixSensing", "QuadraticRegression",
           "SymmetricSensing", "WideningValley"]

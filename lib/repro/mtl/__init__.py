"""Multi-task gradient aggregators, one per module, and the Nash bargaining solver.

An aggregator maps task gradients G of shape (..., K, P) to one direction (..., P) (``base``).

- ``ls``           ``LinearScalarization``: the sum of the task gradients
- ``mgda``         ``MGDA``: the minimum-norm point of their convex hull (Sener and Koltun, 2018)
- ``pcgrad``       ``PCGrad``: conflicting components projected away (Yu et al., 2020)
- ``cagrad``       ``CAGrad``: the best worst-case improvement near the mean (Liu et al., 2021)
- ``nash_mtl``     ``NashMTL``: the Nash bargaining solution (Navon et al., 2022)
- ``nash_solver``  ``nash_solve``, ``nash_two_tasks``: G G^T alpha = 1 / alpha, by Newton's method
- ``base``         ``Aggregator``, ``gram``, ``task_gradients``, ``set_grad``, ``set_grad_batched``

``AGGREGATORS`` maps a short name to each class; ``make(name, **kwargs)`` builds one.
"""

from repro.mtl.base import Aggregator, gram, set_grad, set_grad_batched, task_gradients
from repro.mtl.cagrad import CAGrad
from repro.mtl.ls import LinearScalarization
from repro.mtl.mgda import MGDA
from repro.mtl.nash_mtl import NashMTL
from repro.mtl.nash_solver import (
    NashSolution,
    NashSolverError,
    NashUnbounded,
    nash_residual,
    nash_solve,
    nash_two_tasks,
)
from repro.mtl.pcgrad import PCGrad

AGGREGATORS = {"ls": LinearScalarization, "mgda": MGDA, "pcgrad": PCGrad, "cagrad": CAGrad,
               "nash": NashMTL}


def make(name: str, **kwargs) -> Aggregator:
    """An aggregator by its short name: ls, mgda, pcgrad, cagrad, nash."""
    try:
        cls = AGGREGATORS[name]
    except KeyError:
        raise ValueError(f"unknown aggregator {name!r}; choose from "
                         f"{sorted(AGGREGATORS)}") from None
    return cls(**kwargs)


__all__ = ["AGGREGATORS", "Aggregator", "CAGrad", "LinearScalarization", "MGDA", "NashMTL",
           "NashSolution", "NashSolverError", "NashUnbounded", "PCGrad", "gram", "make",
           "nash_residual", "nash_solve", "nash_two_tasks", "set_grad", "set_grad_batched",
           "task_gradients"]

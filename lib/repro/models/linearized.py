"""A model linearised around its initial parameters theta_0, evaluated with ``torch.func.jvp``:

    f_lin(theta, x) = f(theta_0, x) + J(theta_0, x) (theta - theta_0),

the first-order Taylor expansion in the parameters. Trained by gradient descent on the squared
loss it is kernel regression with the NTK at initialisation, K_0 = J J^T, which never changes: the
"lazy" limit of a network (Jacot et al., 2018; Chizat et al., 2019). The product J v costs one
forward-mode pass; no Jacobian is formed, and the result is differentiable in theta, so the same
autograd loop that trains the network trains its linearisation.

``linearize(f, params0)`` works on a functional model f(params, x); ``linearize_module(model)``
wraps a module (its parameters at the time of the call are theta_0; its buffers are held fixed)
and returns the callable f_lin(params, x) together with a copy of theta_0 to start from.

Used in: chapter 8 (grokking as the transition from lazy to rich training: the linearised network
never groks).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import nn
from torch.func import functional_call, jvp

__all__ = ["linearize", "linearize_module"]


def linearize(f: Callable, params0: Mapping[str, torch.Tensor]) -> Callable:
    """f_lin(params, x) = f(params0, x) + d/dt f(params0 + t (params - params0), x) at t = 0."""
    theta0 = {k: v.detach() for k, v in params0.items()}

    def f_lin(params: Mapping[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        delta = {k: params[k] - theta0[k] for k in theta0}
        out, tangent = jvp(lambda p: f(p, x), (theta0,), (delta,))
        return out + tangent

    return f_lin


def linearize_module(model: nn.Module) -> tuple[Callable, dict[str, torch.Tensor]]:
    """(f_lin, params): the module linearised at its current parameters, and a trainable copy of
    them (leaf tensors that require grad) at which f_lin equals the module."""
    buffers = {k: v.detach() for k, v in model.named_buffers()}
    theta0 = {k: v.detach().clone() for k, v in model.named_parameters()}

    def f(p, x):
        return functional_call(model, {**p, **buffers}, (x,))

    params = {k: v.clone().requires_grad_(True) for k, v in theta0.items()}
    return linearize(f, theta0), params

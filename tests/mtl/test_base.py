"""repro.mtl.base: task gradients, the Gram matrix, writing a direction into the gradients."""

import torch

from repro.mtl import gram, set_grad, set_grad_batched, task_gradients


def test_task_gradients_and_set_grad():
    w = torch.tensor([1.0, 2.0], requires_grad=True)
    b = torch.tensor([3.0], requires_grad=True)
    losses = [(w * w).sum(), 5 * b.sum() + w[0]]       # gradients (2w, 0) and ((1, 0), 5)
    G = task_gradients(losses, [w, b])
    torch.testing.assert_close(G, torch.tensor([[2.0, 4.0, 0.0], [1.0, 0.0, 5.0]]))
    set_grad([w, b], torch.tensor([7.0, 8.0, 9.0]))
    torch.testing.assert_close(w.grad, torch.tensor([7.0, 8.0]))
    torch.testing.assert_close(b.grad, torch.tensor([9.0]))


def test_gram_is_g_g_transpose_batched():
    G = torch.randn(3, 4, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    M = gram(G)
    assert M.shape == (3, 4, 4)
    for b in range(3):
        torch.testing.assert_close(M[b], G[b] @ G[b].T)


def test_set_grad_batched_writes_each_runs_direction_into_its_slice():
    S = 3
    w = torch.zeros(S, 2, 2, requires_grad=True)
    b = torch.zeros(S, 3, requires_grad=True)
    D = torch.arange(S * 7, dtype=torch.float32).reshape(S, 7)     # (S, P), P = 4 + 3
    set_grad_batched([w, b], D)
    for s in range(S):
        # run s alone: set_grad of its own direction into its own slices
        ws, bs = torch.zeros(2, 2, requires_grad=True), torch.zeros(3, requires_grad=True)
        set_grad([ws, bs], D[s])
        torch.testing.assert_close(w.grad[s], ws.grad)
        torch.testing.assert_close(b.grad[s], bs.grad)
    torch.testing.assert_close(w.grad.reshape(S, 4), D[:, :4])
    torch.testing.assert_close(b.grad, D[:, 4:])
    D[0, 0] = -1.0
    assert w.grad[0, 0, 0] == 0.0                               # a copy, not a view of D

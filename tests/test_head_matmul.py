"""The LM head's transposed product (`harness/head_matmul.py`): same logits, gradients and copies."""
from __future__ import annotations

import copy

import torch

from conftest import build_tiny_model
from rzoo.harness.engines import head_matmul


def test_routed_head_equals_linear_and_copies_rebind(tokenizer):
    model = build_tiny_model(tokenizer)
    head = model.get_output_embeddings()
    reference = copy.deepcopy(head)
    speedup = head_matmul.install(model, margin=float("inf"))  # forced: whatever the timing here
    assert speedup is not None
    assert head_matmul.install(model, margin=0.0) == speedup  # measured once: the first answer stands
    for shape in [(1, 1), (3, 1), (2, 5), (4, 4), (3, 7)]:  # 1, 3, 10, 16 rows (routed) and 21 (linear)
        x = torch.randn(*shape, head.in_features, requires_grad=True)
        y = torch.randn(*shape, head.in_features, requires_grad=True)
        with torch.no_grad():
            y.copy_(x)
        out, ref = head(x), reference(y)
        assert out.shape == ref.shape
        torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
        out.square().sum().backward()
        ref.square().sum().backward()
        torch.testing.assert_close(x.grad, y.grad, rtol=1e-4, atol=1e-5)
    clone = copy.deepcopy(model)
    clone_head = clone.get_output_embeddings()
    assert clone_head.forward.__self__ is clone_head  # the copy's forward uses the copy's weight
    with torch.no_grad():
        clone_head.weight.zero_()
    assert clone_head(torch.randn(3, head.in_features)).abs().max() == 0
    assert head(torch.randn(3, head.in_features)).abs().max() > 0


def test_not_installed_where_no_plain_cpu_head():
    assert head_matmul.install(torch.nn.Linear(4, 4)) is None  # no output embeddings to route


def test_uninstall_restores_linear(tokenizer):
    model = build_tiny_model(tokenizer)
    head = model.get_output_embeddings()
    head_matmul.install(model, margin=float("inf"))
    assert "forward" in vars(head)
    head_matmul.uninstall(model)
    assert "forward" not in vars(head) and head.forward.__func__ is torch.nn.Linear.forward


def test_a_head_not_routed_is_not_timed_again(tokenizer, monkeypatch):
    model = build_tiny_model(tokenizer)
    assert head_matmul.install(model, margin=0.0) is None  # never faster by a factor of infinity
    monkeypatch.setattr(head_matmul, "_best_of", lambda fn, repeats=3: (_ for _ in ()).throw(AssertionError("re-timed")))
    assert head_matmul.install(model) is None
    assert "forward" not in vars(model.get_output_embeddings())

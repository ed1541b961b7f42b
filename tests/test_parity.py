"""Every installed backend against the reference backend (the float64 NumPy backend where
installed, else PyTorch), for every model, on real Fashion-MNIST batches: the same logits,
loss, gradients, SGD and Adam updates, tie-breaking, and 100 training steps."""

from __future__ import annotations

import pytest

import crossframe
from crossframe.common import parity

MODELS = ("softmax", "mlp", "cnn", "lenet", "resnet")
REFERENCE = parity.reference_backend()
OTHERS = [b for b in crossframe.available_backends() if b != REFERENCE]


@pytest.fixture(scope="module")
def parity_data(fashion_dir):
    """2,000 training images in batches of 20: 100 steps for the training check."""
    return crossframe.load_data("fashion-mnist", data_dir=fashion_dir, limit_train=2000, limit_val=100,
                                batch_size=20, download=False)


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("other", OTHERS)
def test_backend_matches_the_reference(other, model, parity_data):
    plan = parity_data.train_plan(0)
    batches = list(plan)
    checks = parity.check_backend(other, model, batches[:2], reference=REFERENCE, train_batches=batches)
    assert len(batches) == 100
    print("\n" + parity.format_table(checks))
    failed = [c for c in checks if not c.passed]
    assert not failed, "\n" + parity.format_table(failed)


def test_the_tool_fails_when_backends_differ(parity_data, monkeypatch):
    """The check must be able to fail: a "backend" whose logits are off by 1e-3 is caught."""
    batches = list(parity_data.train_plan(0))[:2]

    def make(name, model, **kw):
        clf = crossframe.classifier("torch", model, **kw)
        if name == "skewed":
            forward = clf.forward
            clf.forward = lambda X: forward(X) + 1e-3
        return clf

    monkeypatch.setattr(parity, "classifier", make)
    same = parity.check_backend("torch", "softmax", batches, reference="torch")
    assert all(c.passed for c in same)
    checks = parity.check_backend("skewed", "softmax", batches, reference="torch")
    logits = next(c for c in checks if c.check == "logits")
    assert not logits.passed and logits.value == pytest.approx(1e-3, rel=1e-3)

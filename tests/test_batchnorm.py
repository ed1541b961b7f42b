"""BatchNorm in every backend: PyTorch's semantics (train vs eval, running statistics, the
counter), the buffers in the exchange format (files, evaluate, resume), and a framework's
default-configured layer failing the parity check."""

from __future__ import annotations

import re

import numpy as np
import pytest

import crossframe
from crossframe.common import parity
from crossframe.common.batchnorm import check_batch
from crossframe.common.checkpoint import load_params
from crossframe.common.errors import UserError
from crossframe.common.models import build_spec
from helpers import assert_same_arrays, custom_dataset, run_cli

VAL = 1000
TOLERANCE = 1  # image out of VAL: 0.1 percentage points


@pytest.fixture(scope="module")
def small(fashion_dir):
    return crossframe.load_data("fashion-mnist", data_dir=fashion_dir, limit_train=130, limit_val=40, batch_size=64,
                                download=False)


def test_the_model_state_holds_pytorchs_buffers():
    spec = build_spec("lenet-bn")
    assert list(spec.buffer_shapes())[:3] == ["bn1.running_mean", "bn1.running_var", "bn1.num_batches_tracked"]
    assert spec.buffer_shapes()["bn3.running_var"] == (120,) and spec.buffer_shapes()["bn1.num_batches_tracked"] == ()
    assert not set(spec.buffer_shapes()) & set(spec.param_shapes())  # gradients and optimizer state: trainable only
    torch = pytest.importorskip("torch")
    net = crossframe.classifier("torch", "lenet-bn", device="cpu").net
    assert set(net.state_dict()) == set(spec.param_shapes()) | set(spec.buffer_shapes())  # PyTorch's own names
    assert net.state_dict()["bn1.num_batches_tracked"].dtype == torch.int64


def test_train_and_eval_mode_follow_pytorch(backend, small):
    """Two training steps from the same start: the running statistics and counters, the eval-mode
    logits (running statistics) and validation loss match PyTorch's; ``gradients`` and
    ``forward(train=True)`` change no buffer."""
    torch_clf = crossframe.classifier("torch", "lenet-bn", lr=0.1, momentum=0.9, device="cpu")
    clf = crossframe.classifier(backend, "lenet-bn", lr=0.1, momentum=0.9, device="cpu")
    X, y = small.train.X[:32], small.train.y[:32]
    before = clf.get_buffers()
    clf.gradients((X, y))
    clf.forward(X, train=True)
    assert_same_arrays(clf.get_buffers(), before)
    for c in (torch_clf, clf):
        for batch in small.train_plan(0):
            c.training_step(batch)
    got, expected = clf.get_buffers(), torch_clf.get_buffers()
    for name, value in expected.items():
        if name.endswith("num_batches_tracked"):
            assert got[name].dtype == np.int64 and int(got[name]) == int(value) == 3, name
        else:
            np.testing.assert_allclose(got[name], value, rtol=1e-5, atol=1e-6, err_msg=name)
    eval_logits = clf.to_numpy(clf.forward(X))
    np.testing.assert_allclose(eval_logits, torch_clf.to_numpy(torch_clf.forward(X)), atol=1e-4)
    loss = float(clf.validation_step((X, y))["loss"])
    assert loss == pytest.approx(float(clf.to_numpy(clf.loss(eval_logits, y))), rel=1e-5)
    train_logits = clf.to_numpy(clf.forward(X, train=True))
    assert np.abs(train_logits - eval_logits).max() > 1e-3  # batch statistics are not the running ones


def test_a_batch_of_one_is_refused_where_a_variance_needs_two_values(backend):
    clf = crossframe.classifier(backend, "lenet-bn", device="cpu")
    X = np.zeros((1, 1, 28, 28), np.float32)
    with pytest.raises(UserError, match=r"a training batch of 1 image\(s\) gives BatchNorm bn3, bn4 of model "
                                        r"'lenet-bn' a single value per channel"):
        clf.training_step((X, np.array([3])))
    check_batch(build_spec("resnet-bn"), 1)  # after convolutions alone: H * W values per channel
    assert int(clf.validation_step((X, np.array([3])))["correct"]) in (0, 1)  # eval mode takes one image


# --------------------------------------------------------------------------- files, evaluate, resume


@pytest.fixture(scope="module")
def torch_trained(fashion_dir, tmp_path_factory):
    """``lenet-bn`` trained one epoch on 2,000 images by PyTorch and saved; its validation accuracy."""
    pytest.importorskip("torch")
    data = crossframe.load_data("fashion-mnist", data_dir=fashion_dir, limit_train=2000, limit_val=VAL,
                                download=False)
    clf = crossframe.classifier("torch", "lenet-bn", lr=0.1, momentum=0.9, device="cpu")
    history = crossframe.Trainer(1, progress=False).fit(clf, data)
    path = tmp_path_factory.mktemp("lenet-bn") / "params.npz"
    clf.save(path)
    return path, data, round(history[0]["val_acc"] * VAL)


def test_params_npz_holds_the_running_statistics(torch_trained, tmp_path):
    path, _, _ = torch_trained
    arrays = load_params(path)
    spec = build_spec("lenet-bn")
    assert set(arrays) == set(spec.param_shapes()) | set(spec.buffer_shapes())
    assert arrays["bn1.num_batches_tracked"].dtype == np.int64 and int(arrays["bn1.num_batches_tracked"]) == 32
    assert arrays["bn3.running_var"].dtype == np.float32 and not np.allclose(arrays["bn3.running_var"], 1)
    clf = crossframe.classifier("numpy", "lenet-bn")
    clf.load(path)
    clf.save(tmp_path / "again.safetensors")
    assert_same_arrays(load_params(tmp_path / "again.safetensors"), arrays)


def test_every_backend_evaluates_a_torch_trained_lenet_bn_alike(backend, torch_trained):
    path, data, expected = torch_trained
    clf = crossframe.classifier(backend, "lenet-bn", device="cpu")
    clf.load(path)
    _, acc = clf.evaluate(data.val_plan()).read()
    assert abs(round(acc * VAL) - expected) <= TOLERANCE, (backend, round(acc * VAL), expected)
    assert expected > 0.3 * VAL  # trained (chance is 10 %); after 32 steps the running statistics trail the weights


def test_the_evaluate_command_reads_the_buffers(torch_trained, fashion_dir):
    path, _, expected = torch_trained
    result = run_cli("evaluate", "--backend", "numpy", "--model", "lenet-bn", "--params", path,
                     "--data-dir", fashion_dir, "--limit-val", VAL)
    assert result.returncode == 0, result.stderr
    correct = int(re.search(r"\((\d+)/1,000 correct\)", result.stdout).group(1))
    assert abs(correct - expected) <= TOLERANCE


@pytest.mark.parametrize("model", ["lenet-bn", "mlp-dropout"])
def test_resume_is_bit_for_bit(backend, model, tmp_path):
    """Buffers and dropout keys survive a resume: 1 + 1 epochs equal 2, every array bit for bit."""
    data = crossframe.load_data(custom_dataset(tmp_path / "data", n_train=160, n_test=32), batch_size=64)
    make = lambda: crossframe.classifier(backend, model, lr=0.05, momentum=0.9, seed=3, device="cpu")  # noqa: E731
    whole = make()
    crossframe.Trainer(2, progress=False).fit(whole, data)
    crossframe.Trainer(1, progress=False, out_dir=tmp_path / "run").fit(make(), data)
    resumed = make()
    crossframe.Trainer(2, progress=False, out_dir=tmp_path / "run").fit(resumed, data, resume=True)
    assert_same_arrays(whole.state_dict(), resumed.state_dict())
    assert_same_arrays(whole.get_optimizer_state(), resumed.get_optimizer_state())


# --------------------------------------------------------------------------- the check can fail


@pytest.fixture(scope="module")
def lenet_bn_reference(fashion_dir):
    data = parity.load_parity_data(data_dir=fashion_dir, download=False)
    batches = parity.training_batches(data, 3)
    return batches, parity.trace(parity.reference_backend(), "lenet-bn", batches, train_batches=batches)


def _checks(backend, batches, ref) -> dict[str, parity.Check]:
    got = parity.trace(backend, "lenet-bn", batches, train_batches=batches, step_gradients=ref.step_gradients)
    return {c.check: c for c in parity.compare(got, ref)}


def _failed(checks: dict[str, parity.Check], kind: str) -> list[str]:
    return [name for name, c in checks.items() if not c.passed and (kind in name)]


@pytest.mark.parametrize("variant", ["Flax's defaults", "configured, biased running variance"])
def test_flaxs_batchnorm_as_it_comes_fails_the_parity_check(lenet_bn_reference, monkeypatch, variant):
    """Flax's ``nn.BatchNorm`` with its defaults (momentum 0.99 on the old statistic, the fast
    variance) fails the running-statistics checks; configured to momentum 0.9 but without the
    unbiased correction, it fails the running variances (where n is small enough for the
    correction to show) and nothing else; crossframe's passes them all."""
    pytest.importorskip("flax")
    from flax import linen as nn

    from crossframe.backends.jax import models as jax_models
    from crossframe.common import models as spec

    batches, ref = lenet_bn_reference
    assert not [c for c in _checks("jax", batches, ref).values() if not c.passed]
    build = jax_models.build_layer
    flax_bn = (lambda layer: nn.BatchNorm(name=layer.name)) if variant == "Flax's defaults" else \
        (lambda layer: nn.BatchNorm(momentum=0.9, epsilon=1e-5, use_fast_variance=False, name=layer.name))
    monkeypatch.setattr(jax_models, "build_layer",
                        lambda layer, *options: flax_bn(layer) if isinstance(layer, spec.BatchNorm) else build(layer, *options))
    checks = _checks("jax", batches, ref)
    # the unbiased correction multiplies the batch variance by n / (n - 1): 20 / 19 for the dense bn3
    # and bn4 (batches of 20), within float32 rounding of 1 after a convolution (n = 20 * 28 * 28 for
    # bn1), where it shows or not depending on the size of the variance
    assert {f"buffer bn{i}.running_var (3 steps)" for i in (3, 4)} <= set(_failed(checks, "running_var"))
    if variant == "Flax's defaults":
        assert len(_failed(checks, "running_mean")) == 4
    else:
        assert not _failed(checks, "running_mean") and checks["train logits"].passed


def test_kerass_epsilon_fails_the_parity_check(lenet_bn_reference, monkeypatch):
    """The TF backend's BatchNorm with Keras's default epsilon (1e-3, PyTorch's 1e-5) fails the
    logits checks."""
    pytest.importorskip("tensorflow")
    from crossframe.backends.tf import models as tf_models

    batches, ref = lenet_bn_reference
    monkeypatch.setattr(tf_models, "EPS", 1e-3)
    checks = _checks("tf", batches, ref)
    assert not checks["train logits"].passed and not checks["logits"].passed

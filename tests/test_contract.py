"""The Classifier contract, for every installed backend.

Each test builds small random inputs, so it runs in milliseconds per model; the numbers
are compared with the float64 reference, not with another backend.
"""

from __future__ import annotations

import numpy as np
import pytest

import crossframe
from crossframe.common import reference as ref
from crossframe.common.classifier import Classifier

MODELS = ("softmax", "mlp", "cnn", "lenet", "resnet", "mlp-dropout", "lenet-bn", "resnet-bn")


def batch(rng, n=8, shape=(1, 28, 28), classes=10):
    return rng.normal(size=(n, *shape)).astype(np.float32), rng.integers(0, classes, size=n)


def make(backend, model="mlp", **kw) -> Classifier:
    return crossframe.classifier(backend, model, device="cpu", **kw)


@pytest.mark.parametrize("model", MODELS)
def test_starts_from_the_shared_initial_parameters(backend, model):
    clf = make(backend, model, seed=5)
    assert isinstance(clf, Classifier) and clf.backend == backend
    expected = crossframe.init_params(model, seed=5)
    got = clf.get_params()
    assert list(got) == list(expected)
    for name in expected:
        assert got[name].dtype == np.float32
        np.testing.assert_array_equal(got[name], expected[name])


@pytest.mark.parametrize("model", MODELS)
def test_forward_gives_logits_and_loss_matches_the_reference(backend, model, rng):
    clf = make(backend, model)
    X, y = batch(rng)
    logits = clf.to_numpy(clf.forward(X))
    assert logits.shape == (8, 10)
    np.testing.assert_array_equal(clf.to_numpy(clf(X)), logits)
    assert float(clf.loss(logits, y)) == pytest.approx(ref.cross_entropy(logits, y), rel=1e-6)


def test_accuracy_ties_pick_the_lowest_index(backend):
    clf = make(backend)
    logits = np.zeros((3, 10), np.float32)
    logits[1, [2, 7]] = 5.0
    per_row = clf.to_numpy(clf.accuracy(logits, np.array([0, 2, 1]), averaged=False))
    np.testing.assert_array_equal(per_row, [1, 1, 0])
    assert float(clf.accuracy(logits, np.array([0, 2, 1]))) == pytest.approx(2 / 3)


def test_training_step_updates_and_validation_step_does_not(backend, rng):
    clf = make(backend, "softmax", lr=0.01)
    X, y = batch(rng, n=16)
    before = clf.get_params()
    metrics = clf.validation_step((X, y))
    assert set(metrics) >= {"loss", "accuracy", "correct"}
    for name, value in clf.get_params().items():
        np.testing.assert_array_equal(value, before[name])
    logits = clf.to_numpy(clf.forward(X))
    assert isinstance(logits, np.ndarray)
    assert float(metrics["loss"]) == pytest.approx(ref.cross_entropy(logits, y), rel=1e-6)
    assert int(metrics["correct"]) == round(ref.accuracy(logits, y) * 16)

    train = clf.training_step((X, y))
    assert float(train["loss"]) == pytest.approx(float(metrics["loss"]), rel=1e-6)  # loss before the update
    assert float(clf.validation_step((X, y))["loss"]) < float(train["loss"])


def test_sgd_momentum_weight_decay_steps_equal_the_hand_computed_update(backend, rng):
    """Two steps of softmax regression, computed by hand in float64 with PyTorch's conventions:
    g = grad + wd * w;  b = mu * b + g (b = g at the first step);  w = w - lr * b."""
    lr, mu, wd = 0.1, 0.9, 0.01
    clf = make(backend, "softmax", lr=lr, momentum=mu, weight_decay=wd, seed=0)
    params = {k: v.astype(np.float64) for k, v in crossframe.init_params("softmax", seed=0).items()}
    buf = {k: np.zeros_like(v) for k, v in params.items()}
    for _ in range(2):
        X, y = batch(rng, n=32)
        flat = X.reshape(32, -1).astype(np.float64)
        dz = ref.cross_entropy_grad(flat @ params["fc.weight"].T + params["fc.bias"], y)
        grads = {"fc.weight": dz.T @ flat, "fc.bias": dz.sum(axis=0)}
        for k in params:
            g = grads[k] + wd * params[k]
            buf[k] = mu * buf[k] + g
            params[k] = params[k] - lr * buf[k]
        clf.training_step((X, y))
    for k, v in clf.get_params().items():
        np.testing.assert_allclose(v, params[k], atol=1e-6, rtol=0)
    state = clf.get_optimizer_state()
    np.testing.assert_allclose(state["momentum.fc.weight"], buf["fc.weight"], atol=1e-5)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_apply_gradients_makes_the_update_of_a_training_step(backend, rng, optimizer):
    """Fed the batch's own gradients, apply_gradients moves the parameters (and the optimizer
    state) as training_step does on that batch, to float32 rounding; bad gradients are refused."""
    kw = dict(lr=0.05, momentum=0.9, weight_decay=1e-3, optimizer=optimizer)
    stepped, applied = make(backend, "cnn", **kw), make(backend, "cnn", **kw)
    for _ in range(2):
        X_y = batch(rng)
        applied.apply_gradients(applied.gradients(X_y))
        stepped.training_step(X_y)
    for name, value in stepped.get_params().items():
        np.testing.assert_allclose(applied.get_params()[name], value, atol=1e-6, rtol=0, err_msg=name)
    for key, value in stepped.get_optimizer_state().items():
        np.testing.assert_allclose(applied.get_optimizer_state()[key], value, atol=1e-6, rtol=1e-5, err_msg=key)
    grads = applied.gradients(batch(rng))
    with pytest.raises(ValueError, match=r"gradient fc.weight has shape \(10, 3\), model 'cnn' needs \(10, 320\)"):
        applied.apply_gradients({**grads, "fc.weight": grads["fc.weight"][:, :3]})
    grads["fc.bias"][4] = np.nan
    with pytest.raises(ValueError, match=r"gradient fc.bias contain nan at index \(4,\)"):
        applied.apply_gradients(grads)


def test_set_params_then_get_params_round_trips(backend, rng):
    clf = make(backend, "cnn")
    params = {k: rng.normal(size=v.shape).astype(np.float32) for k, v in clf.get_params().items()}
    clf.set_params(params)
    for name, value in clf.get_params().items():
        np.testing.assert_array_equal(value, params[name])


def test_set_params_names_what_does_not_fit(backend):
    clf = make(backend, "cnn")
    params = clf.get_params()
    params["fc.weight"] = params["fc.weight"][:, :10]
    with pytest.raises(ValueError, match=r"parameter fc.weight has shape \(10, 10\), model 'cnn' needs \(10, 320\)"):
        clf.set_params(params)
    del params["fc.weight"]
    with pytest.raises(ValueError, match="missing fc.weight"):
        clf.set_params(params)


@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
def test_save_and_load_in_both_formats(backend, tmp_path, rng, suffix):
    clf = make(backend, "lenet", seed=1)
    clf.training_step(batch(rng))
    clf.save(tmp_path / f"p{suffix}")
    other = make(backend, "lenet", seed=2)
    other.load(tmp_path / f"p{suffix}")
    for name, value in other.get_params().items():
        np.testing.assert_array_equal(value, clf.get_params()[name])


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_optimizer_state_round_trip_continues_identically(backend, rng, optimizer):
    kw = dict(lr=0.05, momentum=0.9, weight_decay=1e-3, optimizer=optimizer)
    a = make(backend, "softmax", **kw)
    batches = [batch(rng) for _ in range(3)]
    a.training_step(batches[0])
    b = make(backend, "softmax", **kw)
    b.set_params(a.get_params())
    b.set_optimizer_state(a.get_optimizer_state())
    if a.to_numpy(a.forward(batches[0][0])).dtype == np.float64:
        # The exchange format is float32, so a backend computing in float64 (numpy) resumes
        # from its state rounded to float32: round `a` the same way, then both must continue
        # identically. A float32 backend skips this line: its round trip must lose nothing.
        a.set_params(a.get_params())
        a.set_optimizer_state(a.get_optimizer_state())
    for X_y in batches[1:]:
        a.training_step(X_y)
        b.training_step(X_y)
    for name, value in a.get_params().items():
        np.testing.assert_array_equal(b.get_params()[name], value)


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (np.array([0, 10]), r"label 10 at index 1 is outside the valid range \[0, 10\)"),
        (np.array([-1, 3]), r"label -1 at index 0 is outside the valid range \[0, 10\)"),
        (np.array([0.0, 1.0]), r"labels must be integer class indices"),
    ],
)
def test_bad_labels_get_the_same_error_everywhere(backend, rng, labels, message):
    clf = make(backend, "softmax")
    X, _ = batch(rng, n=2)
    for call in (
        lambda: clf.training_step((X, labels)),
        lambda: clf.validation_step((X, labels)),
        lambda: clf.loss(np.zeros((2, 10), np.float32), labels),
        lambda: clf.accuracy(np.zeros((2, 10), np.float32), labels),
    ):
        with pytest.raises(ValueError, match=message):
            call()


def test_nan_images_and_wrong_shapes_are_rejected(backend, rng):
    clf = make(backend, "mlp")
    X, y = batch(rng, n=2)
    X[1, 0, 3, 4] = np.nan
    with pytest.raises(ValueError, match=r"images contain nan at index \(1, 0, 3, 4\)"):
        clf.training_step((X, y))
    with pytest.raises(ValueError, match=r"model 'mlp' takes images of shape \(N, 1, 28, 28\); got \(2, 784\)"):
        clf.forward(np.zeros((2, 784), np.float32))
    with pytest.raises(ValueError, match=r"logits contain inf"):
        clf.loss(np.full((2, 10), np.inf, np.float32), y)


def test_hyperparameters_are_checked(backend):
    with pytest.raises(ValueError, match="unknown optimizer 'rmsprop'"):
        make(backend, optimizer="rmsprop")
    with pytest.raises(ValueError, match="learning rate must be a positive number"):
        make(backend, lr=0.0)
    with pytest.raises(ValueError, match=r"momentum must be in \[0, 1\)"):
        make(backend, momentum=1.5)

"""The shared dropout masks (common/dropout.py): murmur3 against its reference, every backend's
integer ops bit for bit against the NumPy version (dense and channels-last), the key's
parts, the compiled epochs' keys, and each framework's native dropout beside them."""

from __future__ import annotations

import dataclasses
import json
import struct

import numpy as np
import pytest

import crossframe
from crossframe.common import dropout as shared
from crossframe.common.dropout import StepPosition, key_words, numpy_keep_mask
from crossframe.common.errors import UserError

FRAMEWORKS = [b for b in crossframe.available_backends() if b != "numpy"]

# MurmurHash3_x86_32 of four little-endian uint32 words, by the reference implementation (the
# mmh3 package): (seed, words) -> hash
VECTORS = {
    (0, (0, 0, 0, 0)): 0x8134CDF8,
    (7, (1, 2, 3, 4)): 0x10669C32,
    (0xFFFFFFFF, (5, 0, 9, 123456)): 0x399612D9,
    (123, (2**32 - 1, 17, 2, 99)): 0x86B379A1,
}


def test_murmur3_is_the_reference_murmur3():
    for (seed, words), expected in VECTORS.items():
        got = shared.murmur3(shared.NUMPY_OPS, np.uint32(seed), [np.uint32(w) for w in words])
        assert int(got) == expected
    mmh3 = pytest.importorskip("mmh3", reason="mmh3 is not installed: the fixed vectors above stand in")
    rng = np.random.default_rng(0)
    for _ in range(20):
        seed, *words = (int(v) for v in rng.integers(0, 2**32, size=5))
        got = shared.murmur3(shared.NUMPY_OPS, np.uint32(seed), [np.uint32(w) for w in words])
        assert int(got) == mmh3.hash(struct.pack("<4I", *words), seed, signed=False)


def test_a_mask_entry_is_murmur3_of_its_key_and_index():
    key = key_words(3, StepPosition(2, 5))
    mask = numpy_keep_mask(key, 1, (4, 10), 0.3)
    for index in (0, 17, 39):
        bits = int(shared.murmur3(shared.NUMPY_OPS, np.uint32(3), [np.uint32(w) for w in (2, 5, 1, index)]))
        assert mask.ravel()[index] == ((bits >> 8) >= round(0.3 * 2**24))


def test_the_keep_rate_is_one_minus_p_and_every_part_of_the_key_matters():
    key = key_words(0, StepPosition(0, 0))
    mask = numpy_keep_mask(key, 1, (64, 256), 0.5)
    assert abs(mask.mean() - 0.5) < 0.01  # 16,384 draws: 4 standard deviations
    assert abs(numpy_keep_mask(key, 1, (64, 256), 0.2).mean() - 0.8) < 0.01
    others = [numpy_keep_mask(key_words(1, StepPosition(0, 0)), 1, (64, 256), 0.5),
              numpy_keep_mask(key_words(0, StepPosition(1, 0)), 1, (64, 256), 0.5),
              numpy_keep_mask(key_words(0, StepPosition(0, 1)), 1, (64, 256), 0.5),
              numpy_keep_mask(key, 2, (64, 256), 0.5)]
    for other in others:  # independent masks agree on about half the entries
        assert abs((other == mask).mean() - 0.5) < 0.02
    assert numpy_keep_mask(key, 1, (64, 256), 0.0).all()


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("shape", [(20, 256), (3, 5, 4, 6)])
def test_every_frameworks_masks_are_the_numpys_bit_for_bit(framework, shape):
    """Each backend's own integer ops (uint32 in JAX and TF, masked int64 in torch), on its device."""
    module = __import__(f"crossframe.backends.{framework}.dropout", fromlist=["keep_mask"])
    for seed, position, layer, p in [(0, StepPosition(0, 0), 1, 0.5), (2**32 - 1, StepPosition(7, 936), 2, 0.5),
                                     (42, StepPosition(3, 1), 9, 0.1)]:
        key = key_words(seed, position)
        expected = numpy_keep_mask(key, layer, shape, p)
        if framework == "torch":
            got = module.keep_mask(key, layer, shape, p, "cpu").numpy()
        else:
            got = np.asarray(module.keep_mask(key, layer, list(shape) if framework == "tf" else shape, p))
        assert got.dtype == bool and got.shape == shape
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("framework", [f for f in FRAMEWORKS if f in ("jax", "tf")])
def test_channels_last_dropout_draws_the_canonical_mask(framework):
    """A channels-last activation (N, H, W, C) is masked by the canonical (N, C, H, W) mask, transposed."""
    key = key_words(1, StepPosition(0, 3))
    x = np.ones((2, 4, 5, 3), np.float32)  # NHWC
    if framework == "jax":
        from crossframe.backends.jax.dropout import dropout

        out = np.asarray(dropout(x, 0.5, 1, key))
    else:
        import tensorflow as tf

        from crossframe.backends.tf.dropout import Dropout

        out = Dropout(crossframe.common.models.Dropout(0.5, 1))(tf.constant(x), training=True, key=tf.constant(key)).numpy()
    np.testing.assert_array_equal(out.transpose(0, 3, 1, 2) == 2.0, numpy_keep_mask(key, 1, (2, 3, 4, 5), 0.5))


@pytest.fixture(scope="module")
def small(fashion_dir):
    """200 training images in batches of 64: 3 full batches and a partial one."""
    return crossframe.load_data("fashion-mnist", data_dir=fashion_dir, limit_train=200, limit_val=10, batch_size=64,
                                download=False)


def test_the_classifier_counts_its_steps_and_the_trainer_sets_the_epoch(backend, small):
    """A fresh classifier is at (0, 0); every training step advances it; ``train_epoch(plan)``
    numbers the epoch's steps from (plan.epoch, 0); evaluation, gradients and train-mode
    forward passes leave it alone."""
    clf = crossframe.classifier(backend, "mlp-dropout", device="cpu")
    X, y = small.train.X[:16], small.train.y[:16]
    assert clf.step_position == StepPosition(0, 0)
    masks = clf.dropout_masks(16)
    clf.gradients((X, y))
    clf.forward(X, train=True)
    clf.validation_step((X, y))
    assert clf.step_position == StepPosition(0, 0)
    clf.training_step((X, y))
    assert clf.step_position == StepPosition(0, 1)
    assert not np.array_equal(clf.dropout_masks(16)[1], masks[1])
    plan = small.train_plan(4)
    clf.train_epoch(plan)
    assert clf.step_position == StepPosition(4, len(plan))


def test_a_compiled_epoch_draws_the_masks_of_the_step_loop(backend, small):
    """JAX's scanned epoch and TF's graph epoch compute their keys on the device; they must give
    the parameters of standalone steps at (0, 0), (0, 1) ... (which use the host's keys)."""
    data = small
    epoch, steps = (crossframe.classifier(backend, "mlp-dropout", lr=0.1, device="cpu") for _ in range(2))
    epoch.train_epoch(data.train_plan(0))
    for batch in data.train_plan(0):  # 3 full batches and a partial one
        steps.training_step(batch)
    for name, value in steps.get_params().items():
        np.testing.assert_allclose(epoch.get_params()[name], value, atol=1e-6, rtol=0, err_msg=name)
    wrong = crossframe.classifier(backend, "mlp-dropout", lr=0.1, device="cpu")
    wrong.train_epoch(dataclasses.replace(data.train_plan(0), epoch=1))  # the same batches, epoch 1's masks
    assert max(np.abs(wrong.get_params()[n] - v).max() for n, v in steps.get_params().items()) > 1e-3


@pytest.mark.parametrize("framework", FRAMEWORKS + ["numpy"])
def test_native_dropout_keeps_the_rate_draws_other_masks_and_repeats(framework, rng):
    """``--dropout-rng native``: the framework's own generator, seeded from the same key (so a run
    repeats and resumes), the same keep rate, other masks than the shared ones."""
    out = _native_dropout(framework, np.ones((64, 256), np.float32), key_words(0, StepPosition(0, 0)))
    assert set(np.unique(out)) <= {0.0, 2.0} and abs((out == 0).mean() - 0.5) < 0.01
    shared_mask = numpy_keep_mask(key_words(0, StepPosition(0, 0)), 1, (64, 256), 0.5)
    assert abs(((out != 0) == shared_mask).mean() - 0.5) < 0.02  # independent of the shared mask
    X = rng.normal(size=(32, 1, 28, 28)).astype(np.float32)
    native = [crossframe.classifier(framework, "mlp-dropout", device="cpu", dropout_rng="native") for _ in range(2)]
    logits = [clf.to_numpy(clf.forward(X, train=True)) for clf in native]
    np.testing.assert_array_equal(logits[0], logits[1])
    shared_clf = crossframe.classifier(framework, "mlp-dropout", device="cpu")
    assert np.abs(logits[0] - shared_clf.to_numpy(shared_clf.forward(X, train=True))).max() > 1e-2


def _native_dropout(framework: str, x: np.ndarray, key: np.ndarray) -> np.ndarray:
    """Layer 1's native dropout (p = 0.5) of ``x`` at ``key``, through the backend's own dropout code."""
    layer = crossframe.common.models.Dropout(0.5, 1)
    if framework == "torch":
        import torch

        from crossframe.backends.torch.dropout import Dropout

        module = Dropout(layer, native=True).train()
        module.key = key
        return module(torch.from_numpy(x)).numpy()
    if framework == "jax":
        import flax.linen as nn

        from crossframe.backends.jax.dropout import dropout

        class Native(nn.Module):
            @nn.compact
            def __call__(self, v):
                return dropout(v, layer.p, layer.layer, key, native=True)

        return np.asarray(Native().apply({}, x))
    if framework == "tf":
        import tensorflow as tf

        from crossframe.backends.tf.dropout import Dropout

        return Dropout(layer, native=True)(tf.constant(x), True, tf.constant(key)).numpy()
    from crossframe.backends.numpy.layers import Dropout, Mode

    return Dropout(layer, Mode(training=True, key=key, native_dropout=True)).forward({}, x)[0]


def test_dropout_rng_is_a_hyperparameter_recorded_in_config_json(tmp_path, fashion_dir):
    with pytest.raises(UserError, match="unknown dropout rng 'numpy'; choose one of: shared, native"):
        crossframe.classifier("numpy", "mlp-dropout", dropout_rng="numpy")
    clf = crossframe.classifier("numpy", "softmax", dropout_rng="native")
    data = crossframe.load_data("fashion-mnist", data_dir=fashion_dir, limit_train=64, limit_val=10, download=False)
    crossframe.Trainer(1, progress=False, out_dir=tmp_path / "run").fit(clf, data)
    assert json.loads((tmp_path / "run" / "config.json").read_text())["dropout_rng"] == "native"

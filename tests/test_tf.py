"""TensorFlow specifics: SGD and Adam steps by hand through the layout conversions, devices,
one trace per step function, independence from ``KERAS_BACKEND``, op determinism. Its ops are
held to the float64 reference with every other backend's in tests/test_ops.py."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow", reason="TensorFlow is not installed")

import crossframe  # noqa: E402
from crossframe.common.parity import relative_norm  # noqa: E402
from helpers import float32_dot_bound  # noqa: E402


def has_gpu() -> bool:
    return bool(tf.config.list_logical_devices("GPU"))


HAND = {
    "sgd": dict(optimizer="sgd", lr=0.1, momentum=0.9, weight_decay=1e-2),
    "adam": dict(optimizer="adam", lr=1e-3, weight_decay=1e-2),
}


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_optimizer_steps_follow_torch_optims_formulas_through_the_layout_conversions(rng, optimizer):
    """Two steps of the cnn, whose conv kernels are stored HWIO and whose fc kernel has its rows
    permuted, so every weight and buffer crosses a layout conversion, against torch.optim's
    update rules computed by hand in float64 on this backend's own gradients (the gradients
    themselves are held to the float64 reference by the parity checks):

    SGD:  g = grad + wd*w;  b = mu*b + g (b = g at the first step);  w = w - lr*b
    Adam: g = grad + wd*w;  m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g^2;
          w = w - lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)

    Adam normalises each gradient entry by its own size, so where ``grad + wd*w`` nearly
    cancels, the float32 rounding of that sum moves the step by up to lr/eps times it. To
    test the rule rather than that amplification, Adam's moments are held to the formula
    (relative norm, as the parity gradient check), and the new weights to the formula
    applied to the backend's own moments."""
    hp = HAND[optimizer]
    lr, wd, mu, (b1, b2), eps = hp["lr"], hp["weight_decay"], hp.get("momentum", 0.0), (0.9, 0.999), 1e-8
    clf = crossframe.classifier("tf", "cnn", seed=0, device="cpu", **hp)
    zeros = {k: np.zeros(v.shape) for k, v in clf.get_params().items()}
    buf, m, v = dict(zeros), dict(zeros), dict(zeros)
    for t in (1, 2):
        X = rng.normal(size=(16, 1, 28, 28)).astype(np.float32)
        y = rng.integers(0, 10, size=16)
        before, grads = clf.get_params(), clf.gradients((X, y))
        clf.training_step((X, y))
        state, after = clf.get_optimizer_state(), clf.get_params()
        for k in before:
            g = grads[k].astype(np.float64) + wd * before[k]
            if optimizer == "sgd":
                buf[k] = mu * buf[k] + g
                expected = before[k] - lr * buf[k]
                np.testing.assert_allclose(state[f"momentum.{k}"], buf[k], rtol=1e-5, atol=1e-7, err_msg=k)
            else:
                m[k], v[k] = b1 * m[k] + (1 - b1) * g, b2 * v[k] + (1 - b2) * g * g
                assert relative_norm(state[f"exp_avg.{k}"], m[k]) < 1e-5, k
                assert relative_norm(state[f"exp_avg_sq.{k}"], v[k]) < 1e-5, k
                m[k], v[k] = state[f"exp_avg.{k}"].astype(np.float64), state[f"exp_avg_sq.{k}"].astype(np.float64)
                expected = before[k] - lr / (1 - b1**t) * m[k] / (np.sqrt(v[k]) / np.sqrt(1 - b2**t) + eps)
            # float32 weights of at most 0.2: half an ulp is 7.5e-9 (the measured difference); 1e-7 is 7 ulps
            np.testing.assert_allclose(after[k], expected, atol=1e-7, rtol=0, err_msg=k)
        if optimizer == "adam":
            assert int(state["step"]) == t


def test_fc_kernel_after_a_channels_last_flatten_is_stored_permuted():
    """cnn flattens a (20, 4, 4) map: TensorFlow's kernel rows run in (H, W, C) order, the
    exchange format's columns in (C, H, W) order."""
    clf = crossframe.classifier("tf", "cnn", seed=0, device="cpu")
    canonical = clf.get_params()["fc.weight"]  # (10, 320)
    kernel = clf.params["fc.weight"].numpy()  # (320, 10)
    h, w, c = 1, 2, 3
    np.testing.assert_array_equal(kernel[(h * 4 + w) * 20 + c], canonical[:, (c * 4 + h) * 4 + w])


@pytest.mark.parametrize("kernel, stride, padding", [(5, 1, 0), (5, 1, 2), (3, 2, 1), (1, 2, 0)])
def test_conv2d_pads_then_convolves_as_the_spec_says(rng, kernel, stride, padding):
    """Conv2d (a tf.pad and a VALID convolution) within the float32 summation bound of a
    float64 convolution with the spec's explicit zero padding, bias included."""
    from crossframe.backends.tf.models import Conv2d
    from crossframe.common.models import Conv2d as ConvSpec

    conv = Conv2d(ConvSpec("conv", 4, 6, kernel, stride=stride, padding=padding))
    conv.kernel.assign(rng.normal(size=(kernel, kernel, 4, 6)).astype(np.float32))
    conv.bias.assign(rng.normal(size=6).astype(np.float32))
    x = rng.normal(size=(3, 11, 12, 4)).astype(np.float32)
    got = conv(tf.constant(x)).numpy()
    pads = [[0, 0], [padding, padding], [padding, padding], [0, 0]]

    def exact(images, weights, bias):
        out = tf.nn.conv2d(tf.constant(images, tf.float64), tf.constant(weights, tf.float64), stride, pads)
        return (out + tf.constant(bias, tf.float64)).numpy()

    want = exact(x, conv.kernel.numpy(), conv.bias.numpy())
    abs_sum = exact(np.abs(x), np.abs(conv.kernel.numpy()), np.abs(conv.bias.numpy()))
    assert got.shape == want.shape
    assert np.all(np.abs(got - want) <= float32_dot_bound(kernel * kernel * 4 + 1, abs_sum))


def test_device_gpu_without_a_gpu_is_a_clear_error():
    if has_gpu():
        pytest.skip("this machine has a GPU")
    with pytest.raises(ValueError, match="--device gpu was asked for, but TensorFlow sees no GPU"):
        crossframe.classifier("tf", "mlp", device="gpu")
    assert crossframe.classifier("tf", "softmax", device="auto").device == "/device:CPU:0"


def test_one_trace_per_step_function_over_an_epoch_with_a_partial_batch(fashion_2k, caplog):
    """2,000 images in batches of 64 end with a batch of 16; validation ends with one of 40.
    The batch dimension is None in the input signature, so each function traces once."""
    clf = crossframe.classifier("tf", "softmax", device="cpu")
    plan = fashion_2k.train_plan(0)
    assert plan.batch_sizes()[-1] == 16
    with caplog.at_level(logging.WARNING):
        for epoch in range(2):
            clf.train_epoch(fashion_2k.train_plan(epoch)).read()
            clf.evaluate(fashion_2k.val_plan()).read()
        for n in (5, 7, 9):  # public steps with other batch sizes, NumPy in
            clf.training_step((fashion_2k.train.X[:n], fashion_2k.train.y[:n]))
    assert clf.train_function.experimental_get_tracing_count() == 1
    assert clf.eval_function.experimental_get_tracing_count() == 1
    assert not [r for r in caplog.records if "retracing" in r.getMessage()]


def test_classifiers_made_in_a_row_do_not_warn_about_retracing(rng, caplog):
    """Each classifier traces its own step once; TensorFlow must not count six of them as retracing."""
    X, y = rng.normal(size=(4, 1, 28, 28)).astype(np.float32), rng.integers(0, 10, size=4)
    with caplog.at_level(logging.WARNING):
        for _ in range(6):
            crossframe.classifier("tf", "softmax", device="cpu").training_step((X, y))
    assert not [r for r in caplog.records if "retracing" in r.getMessage()]


# A script run with KERAS_BACKEND set: trains the cnn three steps with SGD and Adam and prints
# the parameters, the Keras backend in force, and what the optimizer and variables are.
_KERAS_SCRIPT = """
import json, sys
import numpy as np
import crossframe
import keras
import tensorflow as tf
rng = np.random.default_rng(0)
X = rng.normal(size=(8, 1, 28, 28)).astype(np.float32)
y = rng.integers(0, 10, size=8)
out = {"keras_backend": keras.config.backend()}
for optimizer in ("sgd", "adam"):
    clf = crossframe.classifier("tf", "cnn", optimizer=optimizer, lr=0.01, momentum=0.9, device="cpu")
    for _ in range(3):
        clf.training_step((X, y))
    out[optimizer] = {k: v.tolist() for k, v in clf.get_params().items()}
    out["plain_tf"] = (isinstance(clf.optimizer, tf.Module) and not isinstance(clf.optimizer, keras.Optimizer)
                       and all(type(v).__module__.startswith("tensorflow") for v in clf.params.values()))
json.dump(out, sys.stdout)
"""


def test_keras_backend_in_the_environment_changes_nothing():
    """Keras 3 follows KERAS_BACKEND; the TF backend uses no Keras, so jax, torch and the default
    give bit-identical parameters after three steps of each optimizer."""
    runs = {}
    procs = {}
    for keras_backend in ("tensorflow", "jax", "torch"):
        env = {**os.environ, "KERAS_BACKEND": keras_backend, "TF_CPP_MIN_LOG_LEVEL": "2"}
        procs[keras_backend] = subprocess.Popen([sys.executable, "-c", _KERAS_SCRIPT], env=env, text=True,
                                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    for keras_backend, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, stderr[-2000:]
        runs[keras_backend] = json.loads(stdout)
        assert runs[keras_backend]["keras_backend"] == keras_backend  # the variable did take effect in Keras
        assert runs[keras_backend]["plain_tf"]
    for keras_backend in ("jax", "torch"):
        for optimizer in ("sgd", "adam"):
            assert runs[keras_backend][optimizer] == runs["tensorflow"][optimizer], (keras_backend, optimizer)


def test_deterministic_flag_turns_on_op_determinism(fashion_dir, tmp_path):
    """Op determinism is process-wide and cannot be undone, so this runs in a fresh process.
    Its visible effect on crossframe's step: TensorFlow swaps the fused sparse cross-entropy
    kernel for log-softmax and a gather (deterministic on GPUs), so the traced graph changes."""
    code = (
        "import sys, crossframe\n"
        "from crossframe.common.cli import main\n"
        "fused = lambda: {op.type for op in crossframe.classifier('tf', 'softmax', device='cpu')\n"
        "                 .train_function.get_concrete_function().graph.get_operations()}\n"
        "print('fused before', 'SparseSoftmaxCrossEntropyWithLogits' in fused())\n"
        "rc = main(['train', '--backend', 'tf', '--model', 'softmax', '--epochs', '1', '--deterministic',\n"
        "           '--limit-train', '200', '--limit-val', '100', '--no-download', '--data-dir', sys.argv[1],\n"
        "           '--out', sys.argv[2]])\n"
        "print('fused after', 'SparseSoftmaxCrossEntropyWithLogits' in fused())\n"
        "sys.exit(rc)\n"
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run([sys.executable, "-c", code, str(fashion_dir), str(tmp_path)], env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "fused before True" in result.stdout and "fused after False" in result.stdout
    assert (tmp_path / "params.npz").exists()
    assert json.loads((tmp_path / "config.json").read_text())["deterministic"] is True
    # a resumed run, in a new process, turns the switch on again from config.json
    resumed = subprocess.run([sys.executable, "-m", "crossframe", "train", "--resume", str(tmp_path), "--epochs", "2",
                              "--no-progress"], env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert json.loads((tmp_path / "config.json").read_text())["resumed"][0]["deterministic"] is True


def test_deterministic_flag_is_refused_by_a_backend_without_the_switch(capsys):
    from crossframe.common.cli import main

    assert main(["train", "--backend", "torch", "--deterministic", "--no-download"]) == 2
    assert "--deterministic: backend 'torch' has no switch for deterministic ops" in capsys.readouterr().err


@pytest.mark.gpu
def test_gpu_training_matches_cpu_within_float32_rounding(rng):
    if not has_gpu():
        pytest.skip("no GPU: tf.config.list_logical_devices('GPU') is empty")
    X = rng.normal(size=(64, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, size=64)
    cpu = crossframe.classifier("tf", "cnn", device="cpu", lr=0.05, momentum=0.9)
    gpu = crossframe.classifier("tf", "cnn", device="gpu", lr=0.05, momentum=0.9)
    assert "GPU" in gpu.device
    for _ in range(5):
        cpu.training_step((X, y))
        gpu.training_step((X, y))
    for name, value in cpu.get_params().items():
        np.testing.assert_allclose(gpu.get_params()[name], value, atol=1e-4)
    # TensorFlow's GPU kernels return NaN for a label out of range; crossframe checks on the host
    with pytest.raises(ValueError, match=r"label 10 at index 1 is outside the valid range \[0, 10\)"):
        gpu.training_step((X[:2], np.array([0, 10])))

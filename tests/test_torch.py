"""PyTorch specifics: the device, the CPU's channels-last layout and fused optimizer. The SGD step by hand is in tests/test_contract.py, for every
backend; the ops are held to the float64 reference in tests/test_ops.py."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed")

import crossframe  # noqa: E402


def test_device_gpu_without_a_gpu_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(ValueError, match="--device gpu was asked for, but PyTorch sees no GPU"):
        crossframe.classifier("torch", "mlp", device="gpu")


@pytest.mark.gpu
def test_gpu_training_matches_cpu_within_float32_rounding(rng):
    if not torch.cuda.is_available():
        pytest.skip("no GPU: torch.cuda.is_available() is False")
    X = rng.normal(size=(64, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, size=64)
    cpu = crossframe.classifier("torch", "cnn", device="cpu", lr=0.05, momentum=0.9)
    gpu = crossframe.classifier("torch", "cnn", device="gpu", lr=0.05, momentum=0.9)
    assert gpu.device.startswith("cuda")
    for _ in range(5):
        cpu.training_step((X, y))
        gpu.training_step((X, y))
    for name, value in cpu.get_params().items():
        np.testing.assert_allclose(gpu.get_params()[name], value, atol=1e-4)


@pytest.mark.parametrize("model", ["cnn", "resnet"])
def test_channels_last_step_equals_the_nchw_step(rng, model):
    """On a CPU the convolution weights are channels-last (oneDNN's NHWC kernels, BENCHMARKS.md);
    the gradients and the parameters after an SGD step must be the NCHW network's within float32
    rounding: the parity suite's gradient tolerance against float64 holds between the two."""
    from crossframe.common.parity import TOLERANCES, relative_norm

    X = rng.normal(size=(32, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, size=32)
    fast = crossframe.classifier("torch", model, device="cpu", lr=0.05, momentum=0.9)
    nchw = crossframe.classifier("torch", model, device="cpu", lr=0.05, momentum=0.9)
    nchw.net.to(memory_format=torch.contiguous_format)
    convs = [p for p in fast.net.parameters() if p.dim() == 4]
    assert all(p.is_contiguous(memory_format=torch.channels_last) for p in convs)
    assert not all(p.is_contiguous() for p in convs)  # a 1-channel or 1x1 kernel is both
    assert all(p.is_contiguous() for p in nchw.net.parameters())
    got, want = fast.gradients((X, y)), nchw.gradients((X, y))
    for name, g in want.items():
        assert relative_norm(got[name], g) <= TOLERANCES["gradient"].value, name
    fast.training_step((X, y))
    nchw.training_step((X, y))
    for name, value in nchw.get_params().items():
        assert fast.get_params()[name].flags.c_contiguous
        np.testing.assert_allclose(fast.get_params()[name], value, atol=1e-6, rtol=0, err_msg=name)


def test_batchnorm_models_keep_the_nchw_format():
    """torch's channels-last BatchNorm rounds further from the float64 reference (classifier.py)."""
    clf = crossframe.classifier("torch", "resnet-bn", device="cpu")
    assert all(p.is_contiguous() for p in clf.net.parameters())


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw"])
def test_fused_optimizer_steps_equal_the_per_tensor_steps(rng, optimizer):
    """On a CPU the optimizer is torch.optim's fused kernel (classifier.py, ``_fused``); three of
    its updates from the same float32 gradients, parameters and state, stay within what two
    float32 evaluations of the rule may differ by: twice the rule's derived rounding bound
    (common/rounding.py), entry by entry, as the parity suite's optimizer check holds them."""
    from crossframe.backends.torch.optim import optimizer_for
    from crossframe.common.rounding import MARGIN, replay

    hp = {"lr": 0.05, "momentum": 0.9, "weight_decay": 0.01, "optimizer": optimizer}
    fused = crossframe.classifier("torch", "cnn", device="cpu", **hp)  # channels-last convolution weights
    per_tensor = crossframe.classifier("torch", "cnn", device="cpu", **hp)
    per_tensor.optimizer = optimizer_for(per_tensor.hparams.optimizer_spec(), per_tensor.net.parameters(),
                                         fused=False)
    assert fused.optimizer.defaults["fused"] and not per_tensor.optimizer.defaults["fused"]
    start = fused.get_params()
    steps = [{name: rng.normal(size=p.shape).astype(np.float32) for name, p in start.items()} for _ in range(3)]
    for grads in steps:
        fused.apply_gradients(grads)
        per_tensor.apply_gradients(grads)
    params, state = replay(fused.hparams.optimizer_spec(), start, steps)
    bounds = {**params, **state}
    got = {**fused.get_params(), **fused.get_optimizer_state()}
    want = {**per_tensor.get_params(), **per_tensor.get_optimizer_state()}
    for key, value in want.items():
        if key in bounds:
            assert np.all(np.abs(got[key] - value) <= 2 * MARGIN * bounds[key].error), key
        else:  # Adam's step counter
            np.testing.assert_array_equal(got[key], value)


def test_the_classic_baseline_trains_a_tutorials_model():
    """The bench's classic pipeline (common/bench/classic.py) runs torch's default layout and
    optimizer, not the backend's CPU choices: the ratio over it counts them."""
    from crossframe.common.bench.classic import tutorial_model

    clf = crossframe.classifier("torch", "cnn", device="cpu", lr=0.05, momentum=0.9)
    assert clf.optimizer.defaults["fused"]
    assert not all(p.is_contiguous() for p in clf.net.parameters())  # channels-last convolutions
    net, optimizer = tutorial_model(clf)
    assert all(p.is_contiguous() for p in net.parameters())
    assert not optimizer.defaults["fused"] and not optimizer.defaults["foreach"]
    assert isinstance(optimizer, torch.optim.SGD) and optimizer.defaults["momentum"] == 0.9

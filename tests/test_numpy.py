"""NumPy specifics: hand-written gradients against central finite differences, layers and
optimizers against PyTorch in float64, the dtype option, and training to torch's accuracy."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import crossframe
from crossframe.backends.numpy import NumpyClassifier, layers
from crossframe.backends.numpy.layers import Mode
from crossframe.backends.numpy.models import ResidualBlock, build_layer, build_network
from crossframe.backends.numpy.optim import Optimizer
from crossframe.common import models as spec
from crossframe.common.optim import SGD, Adam
from crossframe.common.errors import DeviceUnavailable, UserError

MODELS = ("softmax", "mlp", "cnn", "lenet", "resnet", "mlp-dropout", "lenet-bn", "resnet-bn")
TRAIN = Mode(training=True, key=np.array([5, 1, 2], np.uint32))  # a training pass's mode (no buffer updates)

# Central differences in float64 with step H = 1e-5. The rounding error of
# (f(x + H) - f(x - H)) / 2H is about eps64 * S / H, with S the sum of the absolute values of
# the terms f adds up (a loss near 1: 2e-11); the truncation error H**2 / 6 * |f'''| is smaller
# for these functions (measured: 2e-11 in all for the five models; H = 1e-4 crosses a ReLU kink
# in resnet, 1e-7 gives 2e-9 of rounding). The tolerance is 40 times the rounding estimate + 1e-10.
H = 1e-5


def fd_atol(terms) -> float:
    """The finite-difference tolerance for a function that sums ``terms``."""
    return 40 * np.finfo(np.float64).eps * float(np.sum(np.abs(terms))) / H + 1e-10


def central_difference(f, x: np.ndarray, entries) -> np.ndarray:
    """d f / d x at ``entries`` (index tuples), perturbing ``x`` in place and restoring it."""
    out = []
    for idx in entries:
        old = x[idx]
        x[idx] = old + H
        up = f()
        x[idx] = old - H
        down = f()
        x[idx] = old
        out.append((up - down) / (2 * H))
    return np.array(out)


def all_entries(x: np.ndarray):
    return list(np.ndindex(x.shape))


def some_entries(x: np.ndarray, rng, n: int = 8):
    """All entries of a small array, else ``n`` at random (finite differences cost two passes each)."""
    if x.size <= n:
        return all_entries(x)
    return [np.unravel_index(i, x.shape) for i in rng.choice(x.size, n, replace=False)]


# --------------------------------------------------------------------------- single layers

LAYERS = {
    "linear": (spec.Linear("fc", 6, 4), (3, 6)),
    "conv k3 pad1": (spec.Conv2d("conv", 2, 3, 3, padding=1), (2, 2, 5, 5)),
    "conv k3 stride2 pad1": (spec.Conv2d("conv", 2, 3, 3, stride=2, padding=1), (2, 2, 6, 6)),
    "conv k2 stride2 odd size": (spec.Conv2d("conv", 2, 2, 2, stride=2), (2, 2, 5, 5)),
    "conv k5 pad2": (spec.Conv2d("conv", 1, 2, 5, padding=2), (2, 1, 6, 6)),
    "conv 1x1 stride2": (spec.Conv2d("conv", 3, 2, 1, stride=2), (2, 3, 5, 5)),
    "maxpool": (spec.MaxPool2d(2), (2, 3, 4, 4)),
    "maxpool odd size": (spec.MaxPool2d(2), (2, 2, 5, 5)),
    "avgpool odd size": (spec.AvgPool2d(2), (2, 2, 5, 5)),
    "relu": (spec.ReLU(), (3, 7)),
    "sigmoid": (spec.Sigmoid(), (3, 7)),
    "flatten": (spec.Flatten(), (2, 2, 3, 3)),
    "global avg pool": (spec.GlobalAvgPool(), (2, 3, 4, 4)),
    "residual, identity shortcut": (
        spec.Residual("block", (spec.Conv2d("conv1", 2, 2, 3, padding=1), spec.ReLU(),
                                spec.Conv2d("conv2", 2, 2, 3, padding=1))), (2, 2, 4, 4)),
    "residual, projection": (
        spec.Residual("block", (spec.Conv2d("conv1", 2, 3, 3, stride=2, padding=1), spec.ReLU(),
                                spec.Conv2d("conv2", 3, 3, 3, padding=1)),
                      (spec.Conv2d("proj", 2, 3, 1, stride=2),)), (2, 2, 6, 6)),
    "linear without bias": (spec.Linear("fc", 6, 4, bias=False), (3, 6)),
    "conv without bias": (spec.Conv2d("conv", 2, 3, 3, padding=1, bias=False), (2, 2, 5, 5)),
    "batchnorm 1d eval": (spec.BatchNorm("bn", 4, 1), (5, 4)),
    "batchnorm 2d eval": (spec.BatchNorm("bn", 3, 2), (2, 3, 4, 4)),
    "batchnorm 1d train": (spec.BatchNorm("bn", 4, 1), (5, 4)),
    "batchnorm 2d train": (spec.BatchNorm("bn", 3, 2), (2, 3, 4, 4)),
    "dropout train": (spec.Dropout(0.5, layer=1), (4, 6)),
    "dropout eval": (spec.Dropout(0.5, layer=1), (4, 6)),
    "residual with batchnorm train": (
        spec.Residual("block", (spec.Conv2d("conv1", 2, 3, 3, stride=2, padding=1, bias=False),
                                spec.BatchNorm("bn1", 3, 2), spec.ReLU(),
                                spec.Conv2d("conv2", 3, 3, 3, padding=1, bias=False), spec.BatchNorm("bn2", 3, 2)),
                      (spec.Conv2d("proj", 2, 3, 1, stride=2),)), (3, 2, 6, 6)),
}


def layer_mode(name: str) -> Mode:
    return TRAIN if name.endswith("train") else Mode()


def layer_params(layer, rng) -> dict[str, np.ndarray]:
    model = spec.ModelSpec("layer", (1, 1, 1), 2, (layer,))
    return {name: rng.normal(size=shape) for name, shape in model.param_shapes().items()}


def layer_buffers(layer, rng) -> dict[str, np.ndarray]:
    """BatchNorm's buffers with running statistics away from their start (a variance in [0.5, 2])."""
    model = spec.ModelSpec("layer", (1, 1, 1), 2, (layer,))
    return {name: np.array(3) if name.endswith("tracked") else
            rng.uniform(0.5, 2, size=shape) if name.endswith("var") else rng.normal(size=shape)
            for name, shape in model.buffer_shapes().items()}


@pytest.mark.parametrize("name", list(LAYERS))
def test_layer_backward_matches_central_differences(name, rng):
    """Every input and parameter entry of a small layer: d sum(R * layer(x)) by hand and by FD
    (BatchNorm and Dropout in train and eval mode; a train-mode pass that updates no buffer)."""
    layer_spec, shape = LAYERS[name]
    layer = build_layer(layer_spec, "", layer_mode(name))
    params = layer_params(layer_spec, rng)
    buffers = layer_buffers(layer_spec, rng)
    params_and_buffers = {**params, **buffers}
    x = rng.normal(size=shape)
    out, cache = layer.forward(params_and_buffers, x)
    weights = rng.normal(size=out.shape)  # a random linear functional of the output
    dx, grads = layer.backward(params_and_buffers, cache, weights)
    f = lambda: float(np.sum(weights * layer.forward(params_and_buffers, x)[0]))  # noqa: E731
    atol = fd_atol(weights * out)
    np.testing.assert_allclose(dx.ravel(), central_difference(f, x, all_entries(x)), atol=atol, rtol=0)
    assert set(grads) == set(params)
    for pname, p in params.items():
        np.testing.assert_allclose(grads[pname].ravel(), central_difference(f, p, all_entries(p)),
                                   atol=atol, rtol=0, err_msg=pname)


def test_max_pool_ties_send_the_gradient_to_the_first_maximum():
    """As PyTorch does: a window of equal values (image background) passes its gradient to
    its first entry in row-major order, not to all of them."""
    pool = layers.MaxPool2d(spec.MaxPool2d(2))
    x = np.zeros((1, 1, 2, 2))
    out, cache = pool.forward({}, x)
    dx, _ = pool.backward({}, cache, np.ones_like(out))
    np.testing.assert_array_equal(dx[0, 0], [[1, 0], [0, 0]])


def _torch():
    return pytest.importorskip("torch", reason="PyTorch is not installed: no second implementation to compare with")


@pytest.mark.parametrize("name", [n for n in LAYERS if n.startswith(("conv", "maxpool", "avgpool", "residual",
                                                                      "batchnorm"))])
def test_layer_forward_equals_pytorch_in_float64(name, rng):
    """Finite differences prove the backward pass matches the forward pass; this proves the
    forward pass is PyTorch's (cross-correlation, padding, stride, floor mode; BatchNorm in train
    and eval mode, and the running statistics a training pass leaves), in float64."""
    torch = _torch()
    from crossframe.backends.torch.models import build_layer as torch_layer

    layer_spec, shape = LAYERS[name]
    params, buffers = layer_params(layer_spec, rng), layer_buffers(layer_spec, rng)
    x = rng.normal(size=shape)
    module = torch_layer(layer_spec).double().train(name.endswith("train"))
    prefix = getattr(layer_spec, "name", "") + "." if isinstance(layer_spec, spec.Residual) else ""
    canonical = lambda n: f"{prefix}{n}" if prefix else f"{layer_spec.name}.{n}"  # noqa: E731
    with torch.no_grad():
        for pname, p in [*module.named_parameters(), *module.named_buffers()]:
            p.copy_(torch.from_numpy(np.asarray({**params, **buffers}[canonical(pname)])))
        expected = module(torch.from_numpy(x)).numpy()
    arrays = {**params, **{k: v.copy() for k, v in buffers.items()}}
    mode = layer_mode(name)
    mode.updates = mode.training
    got, _ = build_layer(layer_spec, "", mode).forward(arrays, x)
    mode.updates = False
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)  # float64 rounding, summation order
    for bname, value in module.named_buffers():  # a training pass moved them as torch's did
        np.testing.assert_allclose(arrays[canonical(bname)], value.numpy(), rtol=1e-12, atol=1e-12, err_msg=bname)


# --------------------------------------------------------------------------- whole models

SMALL_INPUT = {"softmax": (1, 4, 4), "mlp": (1, 4, 4), "cnn": (1, 16, 16), "lenet": (1, 12, 12),
               "resnet": (1, 8, 8), "mlp-dropout": (1, 4, 4), "lenet-bn": (1, 12, 12), "resnet-bn": (1, 8, 8)}


@pytest.mark.parametrize("model", MODELS)
def test_model_gradients_match_central_differences(model, rng):
    """d(mean cross-entropy)/d(every parameter tensor), sampled entries, float64, 3 images (6 with BatchNorm), 3 classes,
    in train mode (BatchNorm on batch statistics, the first step's dropout masks)."""
    model_spec = spec.build_spec(model, input_shape=SMALL_INPUT[model], num_classes=3)
    clf = NumpyClassifier(model, input_shape=SMALL_INPUT[model], num_classes=3, seed=1)
    net = build_network(model_spec, Mode(training=True, key=clf.mask_key()))
    params = {k: v.astype(np.float64) for k, v in
              crossframe.init_params(model, seed=1, num_classes=3, input_shape=SMALL_INPUT[model]).items()}
    buffers = {k: v.astype(np.float64) if v.dtype.kind == "f" else v for k, v in clf.initial_buffers().items()}
    arrays = {**params, **buffers}
    n = 6 if model_spec.batchnorms() else 3  # BatchNorm over 3 images curves the loss enough to show in FD
    X = rng.normal(size=(n, *SMALL_INPUT[model]))
    y = np.array([0, 2, 1, 1, 0, 2][:n])
    logits, caches = net.forward(arrays, X)
    _, dlogits = layers.softmax_cross_entropy(logits, y)
    _, grads = net.backward(arrays, caches, dlogits / len(y), need_dx=False)
    assert list(grads) and set(grads) == set(params)
    loss = lambda: float(layers.cross_entropy(net.forward(arrays, X)[0], y).mean())  # noqa: E731
    atol = fd_atol(loss())
    for name, p in params.items():
        entries = some_entries(p, rng)
        analytic = np.array([grads[name][idx] for idx in entries])
        np.testing.assert_allclose(analytic, central_difference(loss, p, entries), atol=atol, rtol=0,
                                   err_msg=name)

    for name, g in clf.gradients((X, y)).items():  # the classifier's gradients are these, rounded
        np.testing.assert_array_equal(g, grads[name].astype(np.float32))


# --------------------------------------------------------------------------- optimizers


@pytest.mark.parametrize(
    ("numpy_opt", "torch_name", "kw"),
    [
        (SGD, "SGD", dict(lr=0.1, momentum=0.9, weight_decay=1e-3)),
        (SGD, "SGD", dict(lr=0.1)),
        (Adam, "Adam", dict(lr=1e-3, weight_decay=1e-3)),
        (Adam, "Adam", dict(lr=0.05)),
    ],
)
def test_optimizers_do_what_torch_optim_does_in_float64(rng, numpy_opt, torch_name, kw):
    """Four steps on the same gradients (magnitudes 1e-9 to 1, Adam's fragile range included)."""
    torch = _torch()
    start = {"w": rng.normal(size=(5, 7)), "b": rng.normal(size=3)}
    steps = [{k: rng.normal(size=v.shape) * 10.0 ** rng.integers(-9, 1, size=v.shape) for k, v in start.items()}
             for _ in range(4)]
    params = {k: v.copy() for k, v in start.items()}
    ours = Optimizer(numpy_opt(**kw), params)
    tensors = {k: torch.tensor(v, requires_grad=True) for k, v in start.items()}
    theirs = getattr(torch.optim, torch_name)(list(tensors.values()), **kw)
    for grads in steps:
        ours.step(grads)
        for k, t in tensors.items():
            t.grad = torch.from_numpy(grads[k])
        theirs.step()
        for k, t in tensors.items():
            # the same operations in the same order; torch's CPU kernels may fuse a multiply-add
            # (one rounding instead of two), so allow 4 float64 ulps of the parameter
            np.testing.assert_allclose(params[k], t.detach().numpy(), rtol=4 * np.finfo(np.float64).eps, atol=0)


# --------------------------------------------------------------------------- the classifier


def test_float64_by_default_and_float32_on_request(rng):
    X = rng.normal(size=(4, 1, 28, 28)).astype(np.float32)
    assert crossframe.classifier("numpy", "cnn").forward(X).dtype == np.float64
    f32 = NumpyClassifier("cnn", dtype="float32")
    assert f32.forward(X).dtype == np.float32 and f32.dtype == np.float32
    assert NumpyClassifier("cnn", dtype=np.float32).get_params()["fc.weight"].dtype == np.float32
    # float32 against float64: logits O(1) from sums of a few hundred products
    np.testing.assert_allclose(f32.forward(X), crossframe.classifier("numpy", "cnn").forward(X), atol=1e-5)
    with pytest.raises(UserError, match="computes in float64 or float32; got dtype float16"):
        NumpyClassifier("cnn", dtype="float16")


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_a_float32_round_trip_of_the_optimizer_state_loses_nothing(rng, optimizer):
    """In float32 the exchange format holds the whole state: a restored run continues bit for bit."""
    kw = dict(lr=0.05, momentum=0.9, weight_decay=1e-3, optimizer=optimizer, dtype="float32")
    batches = [(rng.normal(size=(8, 1, 28, 28)).astype(np.float32), rng.integers(0, 10, 8)) for _ in range(3)]
    a = NumpyClassifier("softmax", **kw)
    a.training_step(batches[0])
    b = NumpyClassifier("softmax", **kw)
    b.set_params(a.get_params())
    b.set_optimizer_state(a.get_optimizer_state())
    for batch in batches[1:]:
        a.training_step(batch)
        b.training_step(batch)
    for name, value in a.get_params().items():
        np.testing.assert_array_equal(b.get_params()[name], value)


def test_forward_on_many_images_runs_in_chunks_with_the_same_result(rng):
    from crossframe.backends.numpy import classifier as module

    clf = crossframe.classifier("numpy", "lenet")
    X = rng.normal(size=(module.FORWARD_CHUNK + 3, 1, 28, 28)).astype(np.float32)
    whole, _ = clf.net.forward(clf.params, X.astype(np.float64))
    np.testing.assert_allclose(clf.forward(X), whole, rtol=1e-13, atol=1e-13)


def test_device_gpu_is_a_clear_error():
    with pytest.raises(DeviceUnavailable, match="the NumPy backend runs on the CPU only"):
        crossframe.classifier("numpy", "mlp", device="gpu")
    assert crossframe.classifier("numpy", "mlp", device="auto").device == "cpu"


def test_residual_block_names_its_parameters_under_the_block():
    block = spec.build_spec("resnet").layers[4]
    assert isinstance(block, spec.Residual) and block.name == "block2"
    assert ResidualBlock(block).param_names == (
        "block2.conv1.weight", "block2.conv1.bias", "block2.conv2.weight", "block2.conv2.bias",
        "block2.proj.weight", "block2.proj.bias",
    )


# --------------------------------------------------------------------------- training


def test_mlp_reaches_torchs_accuracy_on_a_fashion_mnist_slice(fashion_dir):
    """One epoch of Adam on 2,000 images (63 steps, batch 32), same seed: the float64 NumPy
    backend and float32 PyTorch end within 0.5 percentage points on 1,000 test images (the
    issue's bar; float32 rounding moves the parameters by ~1e-6, a handful of images at most)."""
    _torch()
    data = crossframe.load_data("fashion-mnist", data_dir=fashion_dir, limit_train=2000, limit_val=1000,
                                batch_size=32, download=False)
    accuracy = {}
    for backend in ("numpy", "torch"):
        model = crossframe.classifier(backend, "mlp", optimizer="adam", lr=1e-3, seed=0)
        accuracy[backend] = crossframe.Trainer(1, progress=False).fit(model, data)[0]["val_acc"]
    assert accuracy["numpy"] > 0.70
    assert abs(accuracy["numpy"] - accuracy["torch"]) <= 0.005, accuracy


def test_cli_trains_with_the_numpy_backend(fashion_dir, tmp_path):
    out = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-m", "crossframe", "train", "--backend", "numpy", "--model", "cnn", "--epochs", "1",
         "--limit-train", "300", "--limit-val", "100", "--data-dir", str(fashion_dir), "--out", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("training cnn with numpy on cpu: fashion-mnist, 300 training / 100 validation")
    config = json.loads((out / "config.json").read_text())
    assert config["backend"] == "numpy" and "numpy" in config["versions"]
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 1

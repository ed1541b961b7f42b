"""JAX specifics: unchecked indexing, the parameter layout at the boundary, the pure jitted
steps and the device. The SGD step by hand (tests/test_contract.py), the scanned epoch against
the step-by-step loop (tests/test_trainer.py) and the ops (tests/test_ops.py) are tested with
every other backend's."""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax", reason="JAX is not installed")
pytest.importorskip("flax", reason="Flax is not installed")
pytest.importorskip("optax", reason="Optax is not installed")

import crossframe  # noqa: E402
from crossframe.backends.jax import eval_step, train_step  # noqa: E402
from crossframe.backends.jax.steps import train_epoch  # noqa: E402
from crossframe.backends.jax.models import build_network, from_flax_params, to_flax_params  # noqa: E402
from crossframe.common.models import MODELS, build_spec  # noqa: E402
from helpers import float32_dot_bound  # noqa: E402


def _has_gpu() -> bool:
    try:
        return bool(jax.devices("gpu"))
    except RuntimeError:
        return False


def test_unchecked_jax_indexes_bad_labels_silently_so_the_classifier_checks_them(rng):
    """Why the host-side check exists: the jitted step takes label -1 as the last class."""
    clf = crossframe.classifier("jax", "softmax", device="cpu")
    X = rng.normal(size=(2, 1, 28, 28)).astype(np.float32)
    metrics = eval_step(clf.state, (jax.numpy.asarray(X), jax.numpy.asarray([-1, 9])))
    assert np.isfinite(float(metrics["loss"]))
    with pytest.raises(ValueError, match=r"label -1 at index 0 is outside the valid range \[0, 10\)"):
        clf.validation_step((X, np.array([-1, 9])))


@pytest.mark.parametrize("model", MODELS)
def test_the_parameter_tree_is_the_one_flax_builds_and_the_layout_round_trips(model, rng):
    """Names and shapes as Flax's own init makes them; canonical -> Flax -> canonical is exact
    (the dense layer after a flatten has its columns permuted from C, H, W to H, W, C order)."""
    spec = build_spec(model)
    expected = jax.eval_shape(build_network(spec).init, jax.random.key(0), np.zeros((1, 1, 28, 28), np.float32))
    params = {k: rng.normal(size=shape).astype(np.float32) for k, shape in spec.param_shapes().items()}
    tree = to_flax_params(params, spec)
    assert jax.tree.map(np.shape, tree) == jax.tree.map(lambda a: a.shape, expected["params"])
    back = from_flax_params(tree, spec)
    assert list(back) == list(params)
    for name, value in params.items():
        np.testing.assert_array_equal(back[name], value)


def test_the_pure_steps_can_be_called_directly_and_donate_the_state(rng):
    clf = crossframe.classifier("jax", "mlp", device="cpu", lr=0.05)
    X = jax.numpy.asarray(rng.normal(size=(16, 1, 28, 28)).astype(np.float32))
    y = jax.numpy.asarray(rng.integers(0, 10, size=16).astype(np.int32))
    before = clf.state
    loss_before = float(eval_step(before, (X, y))["loss"])
    state, metrics = train_step(before, (X, y), clf.mask_key())  # the key: (seed, epoch, step) of its dropout masks
    assert float(metrics["loss"]) == pytest.approx(loss_before, rel=1e-6)
    assert before.params["fc1"]["kernel"].is_deleted()  # donated: its buffers now belong to ``state``
    clf.state = state
    assert float(clf.validation_step((np.asarray(X), np.asarray(y)))["loss"]) < loss_before


def test_the_epoch_program_compiles_once(fashion_2k):
    """The state from TrainState.create must look like the state a compiled epoch returns
    (every leaf on the device, the step counter too), or the second epoch compiles again:
    it once did, and cost the mlp's second epoch 0.9 s."""
    clf = crossframe.classifier("jax", "mlp", device="cpu", seed=5)
    clf.train_epoch(fashion_2k.train_plan(0))
    compiled = train_epoch._cache_size()
    clf.train_epoch(fashion_2k.train_plan(1))
    clf.train_epoch(fashion_2k.train_plan(2))
    assert train_epoch._cache_size() == compiled


def test_convolutional_epochs_on_a_cpu_scan_with_im2col_and_equal_the_loop(fashion_2k, monkeypatch):
    """On a CPU a cnn epoch is one scan over im2col convolutions (XLA:CPU's own are three times
    slower inside a scan; classifier.py). The scan is held to a loop over the jitted step of
    the same network: 300 examples, four batches of 64 and one of 44."""
    from crossframe.backends.jax import classifier as jax_classifier

    full = fashion_2k.train_plan(0)
    plan = type(full)(full.X, full.y, full.order[:300], 64)
    kw = dict(lr=0.05, momentum=0.9, device="cpu")
    scanned = crossframe.classifier("jax", "cnn", **kw)
    assert scanned.scans_epochs and scanned.net.im2col
    assert not crossframe.classifier("jax", "resnet", device="cpu").net.im2col
    monkeypatch.setattr(jax_classifier, "SCANNED_ON_CPU", frozenset({"mlp"}))
    looped = crossframe.classifier("jax", "cnn", **kw)
    assert not looped.scans_epochs and looped.net.im2col
    scanned_loss, _ = scanned.train_epoch(plan).read()
    looped_loss, _ = looped.train_epoch(plan).read()
    assert scanned_loss == pytest.approx(looped_loss, rel=1e-6)
    for name, value in looped.get_params().items():  # float32 rounding of parameters <= 0.5, as in test_trainer
        np.testing.assert_allclose(scanned.get_params()[name], value, atol=1e-6, rtol=0, err_msg=name)
    val = fashion_2k.val_plan()
    assert scanned.evaluate(val).read() == pytest.approx(looped.evaluate(val).read(), rel=1e-6)


def test_cnn_compiles_its_cpu_epoch_with_reductions_kept_from_ynnpack():
    """cnn's epoch program on a CPU takes the backend's compiler options (``XLA_OPTIONS_ON_CPU``):
    its max pooling's reductions compiled by XLA itself, where XLA's defaults hand them to
    YNNPACK; a model without options compiles with the defaults. That this program trains as
    the step-by-step loop does is the test above (the loop's steps are compiled with the defaults)."""
    import jax.numpy as jnp
    from crossframe.backends.jax import classifier as jax_classifier
    from crossframe.backends.jax import steps

    options = jax_classifier.XLA_OPTIONS_ON_CPU["cnn"]
    if not steps._known(options):
        pytest.skip(f"this jaxlib ({jax.__version__}) does not know the options {options}: the defaults apply")
    cnn, mlp = (crossframe.classifier("jax", model, device="cpu") for model in ("cnn", "mlp"))
    assert mlp._epochs == steps.epoch_programs() == (steps.train_epoch, steps.evaluate)
    X, y, order = jnp.zeros((128, 1, 28, 28)), jnp.zeros(128, jnp.int32), jnp.arange(128, dtype=jnp.int32)

    def reductions_in_ynnpack(program) -> int:
        text = program.lower(cnn.state, X, y, order, 64, jnp.zeros(3, jnp.uint32)).compile().as_text()
        return sum('"__ynn_fusion"' in line and "/reduce_" in line for line in text.splitlines())

    assert reductions_in_ynnpack(steps.train_epoch) > 0  # XLA's defaults: pooling's reductions in YNNPACK
    assert reductions_in_ynnpack(cnn._epochs.train_epoch) == 0


@pytest.mark.parametrize("model", ["cnn", "lenet"])
def test_an_im2col_step_equals_the_xla_convolutions_step(fashion_2k, monkeypatch, model):
    """The im2col network (CPU) against XLA's convolutions and max pooling (GPU) on real images,
    whose blank backgrounds tie max pooling's windows: the gradients within the parity suite's
    gradient tolerance against float64, the parameters after an SGD step within float32
    rounding, as for torch's channels-last step."""
    from crossframe.backends.jax import classifier as jax_classifier
    from crossframe.common.parity import TOLERANCES, relative_norm

    X, y = fashion_2k.train.X[:32], fashion_2k.train.y[:32]
    fast = crossframe.classifier("jax", model, device="cpu", lr=0.05, momentum=0.9)
    monkeypatch.setattr(jax_classifier, "IM2COL_ON_CPU", frozenset())
    xla = crossframe.classifier("jax", model, device="cpu", lr=0.05, momentum=0.9)
    assert fast.net.im2col and not xla.net.im2col
    got, want = fast.gradients((X, y)), xla.gradients((X, y))
    for name, g in want.items():
        assert relative_norm(got[name], g) <= TOLERANCES["gradient"].value, name
    fast.training_step((X, y))
    xla.training_step((X, y))
    for name, value in xla.get_params().items():
        np.testing.assert_allclose(fast.get_params()[name], value, atol=1e-6, rtol=0, err_msg=name)


@pytest.mark.parametrize("kernel, stride, padding", [(5, 1, 0), (5, 1, 2), (3, 2, 1), (1, 2, 0)])
def test_im2col_conv_is_a_convolution(rng, kernel, stride, padding):
    """im2col_conv and XLA's convolution both within the float32 summation bound of float64."""
    import jax
    import jax.numpy as jnp
    from crossframe.backends.jax.models import im2col_conv

    x = rng.normal(size=(3, 11, 12, 4)).astype(np.float32)
    w = rng.normal(size=(kernel, kernel, 4, 6)).astype(np.float32)
    pads = ((padding, padding), (padding, padding))
    got = np.asarray(im2col_conv(jnp.asarray(x), jnp.asarray(w), (stride, stride), pads))
    xla = np.asarray(jax.lax.conv_general_dilated(jnp.asarray(x), jnp.asarray(w), (stride, stride), pads,
                                                  dimension_numbers=("NHWC", "HWIO", "NHWC")))
    exact, abs_sum = (np.asarray(jax.lax.conv_general_dilated(
        np.asarray(a, np.float64), np.asarray(b, np.float64), (stride, stride), pads,
        dimension_numbers=("NHWC", "HWIO", "NHWC"))) for a, b in ((x, w), (np.abs(x), np.abs(w))))
    assert got.shape == xla.shape == exact.shape
    bound = float32_dot_bound(kernel * kernel * 4, abs_sum)
    assert np.all(np.abs(got - exact) <= bound) and np.all(np.abs(xla - exact) <= bound)


def test_max_pool_by_reshape_is_max_pooling_and_splits_ties(rng):
    """Exactly Flax's max pooling forward, and its gradient where no window ties; in a tied window
    the gradient is split equally where Flax's goes to one entry: the window's total is the same."""
    import flax.linen as nn
    import jax
    import jax.numpy as jnp
    from crossframe.backends.jax.models import max_pool_by_reshape

    x = rng.normal(size=(2, 9, 8, 3)).astype(np.float32)  # 9 rows: the last is dropped (floor)
    x[0, :2, :2, 0] = 0.5  # one tied window
    def ours(a):
        return max_pool_by_reshape(a, 2)

    def flax_pool(a):
        return nn.max_pool(a, (2, 2), strides=(2, 2))

    np.testing.assert_array_equal(np.asarray(ours(jnp.asarray(x))), np.asarray(flax_pool(jnp.asarray(x))))
    cot = rng.normal(size=(2, 4, 4, 3)).astype(np.float32)
    g_ours, g_flax = (np.asarray(jax.vjp(f, jnp.asarray(x))[1](jnp.asarray(cot))[0]) for f in (ours, flax_pool))
    untied = np.ones_like(x, bool)
    untied[0, :2, :2, 0] = False
    np.testing.assert_array_equal(g_ours[untied], g_flax[untied])
    np.testing.assert_array_equal(g_ours[0, :2, :2, 0], np.full((2, 2), cot[0, 0, 0, 0] / 4))
    assert g_flax[0, :2, :2, 0].sum() == cot[0, 0, 0, 0]


def test_device_gpu_without_a_gpu_is_a_clear_error():
    if _has_gpu():
        pytest.skip("this machine has a GPU")
    with pytest.raises(ValueError, match="--device gpu was asked for, but JAX sees no GPU"):
        crossframe.classifier("jax", "mlp", device="gpu")
    assert crossframe.classifier("jax", "mlp", device="auto").device == "cpu:0"


@pytest.mark.gpu
def test_gpu_training_matches_cpu_within_float32_rounding(rng):
    if not _has_gpu():
        pytest.skip("no GPU: jax.devices('gpu') finds none")
    X = rng.normal(size=(64, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, size=64)
    cpu = crossframe.classifier("jax", "cnn", device="cpu", lr=0.05, momentum=0.9)
    gpu = crossframe.classifier("jax", "cnn", device="gpu", lr=0.05, momentum=0.9)
    assert gpu.device.startswith(("cuda", "gpu", "rocm"))
    assert crossframe.classifier("jax", "cnn", device="auto").device == gpu.device
    with jax.default_matmul_precision("highest"):  # float32 products, not TF32, on the GPU
        for _ in range(5):
            cpu.training_step((X, y))
            gpu.training_step((X, y))
    for name, value in cpu.get_params().items():
        np.testing.assert_allclose(gpu.get_params()[name], value, atol=1e-4)

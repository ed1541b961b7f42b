"""Softmax, log-softmax, cross-entropy and its gradient, and accuracy: every backend's ops
(``impl="native"`` and ``"scratch"``) against the float64 reference, with hypothesis
generating the logits and labels. Runs for every backend whose ``ops`` module imports.

Every op takes float32 numbers (float16, bfloat16 and float64 inputs are converted first)
and the reference computes in float64 from the same float32 numbers, so the differences
below are the op's own float32 arithmetic, bounded by the rounding-error sums in
:func:`softmax_tol` and :func:`log_softmax_tol` (u = 2**-24, float32's unit roundoff):

- ``d = z - max``: one rounding, at most ``u * |d|``; ``exp(d)`` then carries a relative
  error ``u * |d|`` (up to 88u for the smallest normal float32 results), plus at most 4
  ulps (8u) for the exp itself, in any framework's implementation.
- ``S = sum(exp(d))`` over n classes: at most ``(n - 1) * u`` relative for ANY summation
  order (sequential is the worst case; pairwise and blocked sums do better), plus the
  terms' own errors, weighted by their share of S: at most ``u * (log(n) + 9)``.
- softmax ``exp(d) / S``: one more rounding; below float32's smallest normal number
  (1.2e-38) relative precision is gone and XLA flushes to zero; TensorFlow's default CPU
  softmax (oneDNN) flushes results below 2**-125 = 2 * TINY to zero: absolute ``2 * TINY``.
- log-softmax ``d - log(S)``: absolute errors ``u * |d|`` + ``u * |result|`` (the final
  rounding) + the relative error of S (log turns it into an absolute one) + 2 ulps of log(S).
- cross-entropy of a row is minus its label's log-softmax; the mean and sum add the
  rounding of a sum of N terms, ``N * u`` relative at worst.
- the gradient ``softmax - onehot``: the softmax bound plus one rounding of the
  subtraction (u for entries near -1); the mean's division by N rounds twice more.

Near zero loss (a very confident row) no float32 implementation keeps relative accuracy
(``log(1 + tiny)`` rounds to 0), so those rows get an absolute bound of one epsilon, as the
bound above says, and no relative assertion.
"""

from __future__ import annotations

import importlib

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import crossframe
from crossframe.common import reference as ref

U = 2.0**-24  # float32 unit roundoff: half an ulp of 1
EPS32 = float(np.finfo(np.float32).eps)  # 2**-23, one ulp of 1
TINY = float(np.finfo(np.float32).tiny)  # smallest normal float32
IMPLS = ("native", "scratch")
REDUCTIONS = ("mean", "sum", "none")

# Property tests: a modest number of generated cases per backend and impl, no deadline
# (the first call into a framework may compile or warm up).
PROPERTY = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _ops_modules() -> dict[str, object]:
    modules = {}
    for backend in crossframe.available_backends():
        try:
            modules[backend] = importlib.import_module(f"crossframe.backends.{backend}.ops")
        except ImportError:  # a backend that has no ops module yet
            continue
    return modules


OPS = _ops_modules()
CASES = [pytest.param(OPS[b], impl, id=f"{b}-{impl}") for b in OPS for impl in IMPLS]


# --------------------------------------------------------------------------- tolerances


def _shifted(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, np.float64)
    return z - z.max(axis=-1, keepdims=True)


def _sum_error(n: int) -> float:
    """Relative error bound of S = sum(exp(z - max)) over n classes (see the module docstring)."""
    return U * (n - 1) + U * (np.log(n) + 9)


def softmax_tol(z: np.ndarray) -> np.ndarray:
    """Elementwise bound on |softmax(z) - reference|, from the rounding of d, exp, S and the division."""
    d = np.abs(_shifted(z))
    rel = U * d + 8 * U + _sum_error(z.shape[-1]) + U
    return rel * ref.softmax(z) + 2 * TINY  # oneDNN flushes below 2**-125 (see the module docstring)


def log_softmax_tol(z: np.ndarray) -> np.ndarray:
    """Elementwise bound on |log_softmax(z) - reference| (absolute)."""
    d = np.abs(_shifted(z))
    return U * d + U * np.abs(ref.log_softmax(z)) + _sum_error(z.shape[-1]) + 2 * EPS32 * np.log(z.shape[-1])


def cross_entropy_tol(z: np.ndarray, y: np.ndarray, reduction: str):
    """Bound on |cross_entropy - reference|: per row, its label's log-softmax bound; a mean or sum
    adds the rounding of an N-term sum."""
    rows = log_softmax_tol(z)[np.arange(len(y)), y]
    if reduction == "none":
        return rows
    total = rows.sum() + U * len(y) * ref.cross_entropy(z, y, "sum")
    return total / len(y) if reduction == "mean" else total


def gradient_tol(z: np.ndarray, y: np.ndarray, reduction: str) -> np.ndarray:
    """Bound on |d loss / d z - reference|: the softmax bound plus the rounding of ``p - 1`` (u);
    the mean then divides by N, or multiplies by a rounded 1/N: two roundings of the result."""
    tol = softmax_tol(z) + U
    if reduction == "mean":
        return tol / len(z) + 2 * U * np.abs(ref.cross_entropy_grad(z, y, "mean"))
    return tol


def assert_within(got, expected, tol, what: str) -> None:
    got, expected = np.asarray(got, np.float64), np.asarray(expected, np.float64)
    assert got.shape == expected.shape, f"{what}: shape {got.shape}, expected {expected.shape}"
    assert np.all(np.isfinite(got)), f"{what}: not finite"
    excess = np.abs(got - expected) - tol
    worst = np.unravel_index(int(np.argmax(excess)), excess.shape) if excess.ndim else ()
    assert np.all(excess <= 0), (
        f"{what}: |{got[worst]} - {expected[worst]}| = {abs(got[worst] - expected[worst]):.3g} "
        f"exceeds the tolerance {np.broadcast_to(tol, got.shape)[worst]:.3g} at {worst}"
    )


def check_everything(ops, impl: str, z: np.ndarray, y: np.ndarray) -> None:
    """Every op against the reference on float32 logits ``z`` and labels ``y``."""
    assert_within(ops.softmax(z, impl=impl), ref.softmax(z), softmax_tol(z), "softmax")
    assert_within(ops.log_softmax(z, impl=impl), ref.log_softmax(z), log_softmax_tol(z), "log_softmax")
    for reduction in REDUCTIONS:
        assert_within(ops.cross_entropy(z, y, reduction, impl=impl), ref.cross_entropy(z, y, reduction),
                      cross_entropy_tol(z, y, reduction), f"cross_entropy {reduction}")
        grad_reduction = "sum" if reduction == "none" else reduction  # none: gradient of the summed losses
        assert_within(ops.cross_entropy_grad(z, y, reduction, impl=impl), ref.cross_entropy_grad(z, y, grad_reduction),
                      gradient_tol(z, y, grad_reduction), f"cross_entropy_grad {reduction}")


def logits(rng, batch: int, classes: int, scale: float) -> np.ndarray:
    return (rng.normal(size=(batch, classes)) * scale).astype(np.float32)


# --------------------------------------------------------------------------- fixed cases


@pytest.mark.parametrize(("ops", "impl"), CASES)
@pytest.mark.parametrize("scale", [1e-3, 1.0, 30.0, 1e4])
def test_all_ops_match_the_reference_across_logit_scales(ops, impl, scale, rng):
    check_everything(ops, impl, logits(rng, 64, 10, scale), rng.integers(0, 10, 64))


@pytest.mark.parametrize(("ops", "impl"), CASES)
@pytest.mark.parametrize(("batch", "classes"), [(1, 2), (1, 1000), (4096, 2), (4096, 10), (33, 1000)])
def test_all_ops_match_the_reference_for_batch_sizes_and_class_counts(ops, impl, batch, classes, rng):
    check_everything(ops, impl, logits(rng, batch, classes, 5.0), rng.integers(0, classes, batch))


@pytest.mark.parametrize(("ops", "impl"), CASES)
def test_very_confident_rows_are_exact_to_one_epsilon(ops, impl):
    """Loss ~ (n - 1) * exp(-30) = 8e-13: float32 gives 0 or a few e-13, within one epsilon
    absolutely; no relative claim (see the module docstring)."""
    z = np.zeros((3, 10), np.float32)
    z[:, 0] = [30.0, 50.0, 100.0]
    y = np.zeros(3, np.int64)
    losses = ops.cross_entropy(z, y, "none", impl=impl)
    assert np.all(losses >= 0) and np.all(np.abs(losses - ref.cross_entropy(z, y, "none")) <= EPS32)
    grad = ops.cross_entropy_grad(z, y, "sum", impl=impl)
    assert np.all(np.abs(grad - ref.cross_entropy_grad(z, y, "sum")) <= EPS32)


@pytest.mark.parametrize(("ops", "impl"), CASES)
@pytest.mark.parametrize(("row", "expected"), [([0.0, 150.0], 150.0), ([0.0, 1e4], 1e4), ([-1e4, 1e4], 2e4)])
def test_confidently_wrong_rows_stay_finite_and_exact(ops, impl, row, expected):
    """The true class's probability underflows to 0; log-softmax still gives the exact loss
    (the logit gap, exactly representable here: relative error one rounding)."""
    loss = ops.cross_entropy(np.array([row], np.float32), np.array([0]), impl=impl)
    assert np.isfinite(loss) and loss == pytest.approx(expected, rel=U)
    grad = ops.cross_entropy_grad(np.array([row], np.float32), np.array([0]), impl=impl)
    np.testing.assert_array_equal(grad, [[-1.0, 1.0]])  # softmax is exactly (0, 1) in float32


@pytest.mark.parametrize(("ops", "impl"), CASES)
def test_rows_that_differ_by_a_constant_give_the_same_softmax(ops, impl):
    """z - max is exact for these integers, so the two rows compute the same numbers."""
    a = ops.softmax(np.array([[100.0, 101.0, 102.0]], np.float32), impl=impl)
    b = ops.softmax(np.array([[-2.0, -1.0, 0.0]], np.float32), impl=impl)
    np.testing.assert_array_equal(a, b)
    assert_within(a, ref.softmax([[-2.0, -1.0, 0.0]]), softmax_tol(np.array([[-2.0, -1.0, 0.0]])), "softmax")
    la = ops.log_softmax(np.array([[100.0, 101.0, 102.0]], np.float32), impl=impl)
    lb = ops.log_softmax(np.array([[-2.0, -1.0, 0.0]], np.float32), impl=impl)
    assert_within(la, ref.log_softmax([[-2.0, -1.0, 0.0]]), log_softmax_tol(np.array([[100.0, 101.0, 102.0]])),
                  "log_softmax of the shifted row")
    assert_within(lb, ref.log_softmax([[-2.0, -1.0, 0.0]]), log_softmax_tol(np.array([[-2.0, -1.0, 0.0]])),
                  "log_softmax")


@pytest.mark.parametrize(("ops", "impl"), CASES)
@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float64"])
def test_other_float_types_are_computed_in_float32(ops, impl, dtype, rng):
    """float16 and bfloat16 convert to float32 exactly; float64 rounds once. Either way the op
    computes what it computes on the float32 numbers, and returns float32."""
    if dtype == "bfloat16":
        ml_dtypes = pytest.importorskip("ml_dtypes", reason="bfloat16 needs ml_dtypes (installed with JAX)")
        dtype = ml_dtypes.bfloat16
    z = (rng.normal(size=(16, 10)) * 4).astype(dtype)
    y = rng.integers(0, 10, 16)
    as32 = z.astype(np.float32)
    for name in ("softmax", "log_softmax"):
        out = getattr(ops, name)(z, impl=impl)
        assert out.dtype == np.float32
        np.testing.assert_array_equal(out, getattr(ops, name)(as32, impl=impl))
    losses = ops.cross_entropy(z, y, "none", impl=impl)
    assert losses.dtype == np.float32
    np.testing.assert_array_equal(losses, ops.cross_entropy(as32, y, "none", impl=impl))
    np.testing.assert_array_equal(ops.cross_entropy_grad(z, y, impl=impl), ops.cross_entropy_grad(as32, y, impl=impl))


# --------------------------------------------------------------------------- generated cases


@st.composite
def logit_cases(draw, max_batch: int = 64, max_classes: int = 1000):
    """(float32 logits, int labels): random rows at a scale from 1e-3 to 1e4, some of them
    made very confident, confidently wrong, or shifted by a large constant."""
    batch = draw(st.integers(1, max_batch))
    classes = draw(st.integers(2, max_classes))
    scale = 10.0 ** draw(st.floats(-3, 4))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    z = rng.normal(size=(batch, classes)) * scale
    y = rng.integers(0, classes, batch)
    kind = draw(st.sampled_from(["plain", "confident", "wrong", "shifted"]))
    if kind == "confident":
        z[np.arange(batch), y] += draw(st.floats(20, 200))
    elif kind == "wrong":
        z[np.arange(batch), y] -= draw(st.floats(20, 1e4))
    elif kind == "shifted":
        z += draw(st.floats(-1e4, 1e4))
    return z.astype(np.float32), y


@pytest.mark.parametrize(("ops", "impl"), CASES)
@PROPERTY
@given(case=logit_cases())
def test_generated_logits_match_the_reference(ops, impl, case):
    check_everything(ops, impl, *case)


@pytest.mark.parametrize(("ops", "impl"), CASES)
@PROPERTY
@given(z=hnp.arrays(np.float32, hnp.array_shapes(min_dims=2, max_dims=2, min_side=2, max_side=12),
                    elements=st.floats(-1e4, 1e4, width=32)),
       data=st.data())
def test_adversarial_logits_match_the_reference(ops, impl, z, data):
    """Arbitrary float32 values, chosen by hypothesis: exact ties, near-ties, huge gaps, zeros."""
    y = np.array(data.draw(st.lists(st.integers(0, z.shape[1] - 1), min_size=len(z), max_size=len(z))))
    check_everything(ops, impl, z, y)


@pytest.mark.parametrize(("ops", "impl"), CASES)
@PROPERTY
@given(case=logit_cases(max_batch=8, max_classes=20), shift=st.integers(-(2**10), 2**10))
def test_shift_invariance(ops, impl, case, shift):
    """softmax(z + c) = softmax(z) and log_softmax(z + c) = log_softmax(z) for a constant c.
    The logits are rounded to multiples of 1/8 so that z + c is exact in float32 and both rows
    hold the same d = z - max; each is held to the rounding bound of the reference at z."""
    z = (np.round(case[0].astype(np.float64) * 8) / 8).astype(np.float32)
    shifted = z + np.float32(shift)
    np.testing.assert_array_equal(shifted.astype(np.float64), z.astype(np.float64) + shift)  # exact
    assert_within(ops.softmax(shifted, impl=impl), ref.softmax(z), softmax_tol(z), "softmax(z + c)")
    assert_within(ops.log_softmax(shifted, impl=impl), ref.log_softmax(z), log_softmax_tol(z), "log_softmax(z + c)")


# --------------------------------------------------------------------------- accuracy


def _classifiers() -> dict[str, object]:
    return {b: crossframe.classifier(b, "softmax", device="cpu") for b in crossframe.available_backends()}


@pytest.fixture(scope="module")
def classifiers():
    return _classifiers()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(z=hnp.arrays(np.float32, st.tuples(st.integers(1, 20), st.just(10)), elements=st.integers(-2, 2).map(float)),
       data=st.data())
def test_accuracy_breaks_ties_by_the_lowest_index(classifiers, backend, z, data):
    """Logits from {-2, ..., 2}: most rows have tied maxima; the lowest index wins in every backend."""
    clf = classifiers[backend]
    y = np.array(data.draw(st.lists(st.integers(0, 9), min_size=len(z), max_size=len(z))))
    per_row = np.asarray(clf.to_numpy(clf.accuracy(z, y, averaged=False)), np.float64)
    np.testing.assert_array_equal(per_row, ref.accuracy(z, y, averaged=False))
    assert float(clf.to_numpy(clf.accuracy(z, y))) == pytest.approx(ref.accuracy(z, y), abs=U)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=st.integers(1, 40), batch_size=st.integers(1, 16), seed=st.integers(0, 2**16))
@example(n=5, batch_size=16, seed=0)  # one partial batch and no full one (TF's epoch graph once failed here)
def test_epoch_accuracy_and_loss_are_exact_with_a_last_partial_batch(classifiers, backend, n, batch_size, seed):
    """evaluate() weights each batch by its size: the epoch figures equal those of all n at once."""
    from crossframe.data.batching import EpochPlan

    clf = classifiers[backend]
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, n)
    plan = EpochPlan(X, y, rng.permutation(n), batch_size)
    loss, acc = clf.evaluate(plan).read()
    z = clf.to_numpy(clf.forward(X))
    assert acc == pytest.approx(ref.accuracy(z, y), abs=1e-12)
    # in float32: one rounding per batch added to the running sum, a few in each batch mean
    # (pairwise), a few where a batch's logits round differently from those of all n at once
    assert loss == pytest.approx(ref.cross_entropy(z, y), rel=EPS32 * (len(plan) + 8))


# --------------------------------------------------------------------------- bad input


BAD_INPUTS = [
    ("label above the range", [[0.0, 1.0, 2.0]], [3], r"label 3 at index 0 is outside the valid range [0, 3) (0 to 2)"),
    ("negative label", [[0.0, 1.0, 2.0], [1.0, 1.0, 1.0]], [0, -1],
     r"label -1 at index 1 is outside the valid range [0, 3) (0 to 2)"),
    ("float labels", [[0.0, 1.0, 2.0]], [1.0], "labels must be integer class indices in [0, 3); got dtype float64"),
    ("nan logits", [[0.0, np.nan, 2.0]], [0], "logits contain nan at index (0, 1); every value must be finite"),
    ("inf logits", [[0.0, 1.0, -np.inf]], [0], "logits contain -inf at index (0, 2); every value must be finite"),
]


@pytest.mark.parametrize(("what", "z", "y", "message"), BAD_INPUTS, ids=[case[0] for case in BAD_INPUTS])
def test_bad_input_gets_the_same_error_in_every_backend_and_impl(what, z, y, message):
    """crossframe checks labels and logits itself, before any framework sees them, so every
    backend raises the same ValueError (JAX would silently clamp an index, TF on a GPU give NaN)."""
    z, y = np.array(z, np.float32), np.array(y)
    calls = {"cross_entropy": lambda ops, impl: ops.cross_entropy(z, y, impl=impl),
             "cross_entropy_grad": lambda ops, impl: ops.cross_entropy_grad(z, y, impl=impl)}
    if "logits" in what:
        calls["softmax"] = lambda ops, impl: ops.softmax(z, impl=impl)
        calls["log_softmax"] = lambda ops, impl: ops.log_softmax(z, impl=impl)
    seen = set()
    for backend, ops in OPS.items():
        for impl in IMPLS:
            for name, call in calls.items():
                with pytest.raises(ValueError) as err:
                    call(ops, impl)
                seen.add(str(err.value))
    assert seen == {message}


@pytest.mark.parametrize(("ops", "impl"), CASES)
@PROPERTY
@given(batch=st.integers(1, 20), classes=st.integers(2, 50), data=st.data())
def test_any_label_outside_the_range_is_named_with_its_index(ops, impl, batch, classes, data):
    y = np.array(data.draw(st.lists(st.integers(0, classes - 1), min_size=batch, max_size=batch)))
    index = data.draw(st.integers(0, batch - 1))
    y[index] = data.draw(st.one_of(st.integers(-(2**40), -1), st.integers(classes, 2**40)))
    first = int(np.argmax((y < 0) | (y >= classes)))
    message = f"label {y[first]} at index {first} is outside the valid range [0, {classes}) (0 to {classes - 1})"
    with pytest.raises(ValueError) as err:
        ops.cross_entropy(np.zeros((batch, classes), np.float32), y, impl=impl)
    assert str(err.value) == message

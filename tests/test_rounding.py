"""The derived bounds of common/rounding.py: float32 evaluations stay inside them, and they are tight
enough to catch a wrong update. The optimizer checks of ``crossframe parity`` rest on these."""

from __future__ import annotations

import operator

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import crossframe
from crossframe.common.optim import SGD, Adam
from crossframe.common.rounding import TINY, Bounded, replay

SPECS = [
    SGD(lr=0.1, momentum=0.9, weight_decay=1e-3),
    SGD(lr=0.5),
    Adam(lr=1e-3, weight_decay=1e-3),
    Adam(lr=0.05),
]

# values of every size a parameter or gradient takes, zero and Adam's fragile |g| ~ eps included
magnitudes = st.sampled_from([0.0, 1e-12, 1e-9, 1e-8, 3e-8, 1e-6, 1e-4, 1e-2, 0.1, 0.5, 1.0])
signed = st.builds(lambda m, s, f: s * m * f, magnitudes, st.sampled_from([-1.0, 1.0]), st.floats(0.5, 2.0))


def _float32_arrays(draw, n: int):
    return np.array([draw(signed) for _ in range(n)], np.float64).astype(np.float32)


@st.composite
def problems(draw):
    """A parameter vector and three steps of gradients, exactly representable in float32."""
    n = 16
    return _float32_arrays(draw, n), [_float32_arrays(draw, n) for _ in range(3)]


def _evaluate(spec, p, steps, t_type):
    """The spec's rule on NumPy arrays of p's dtype; ``t_type(t)`` is the step count it sees
    (a Python int: the bias corrections in float64, as torch; np.float32: in float32, as Optax)."""
    state = {slot: np.zeros_like(p) for slot in spec.slots}
    for t, g in enumerate(steps, start=1):
        p, state = spec.update(p, g.astype(p.dtype), state, t_type(t))
    return p, state


@pytest.mark.parametrize("spec", SPECS, ids=repr)
@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(problem=problems())
def test_a_float32_evaluation_stays_within_the_bound(spec, problem):
    """NumPy in float32, with the bias corrections in float64 (torch's way) and in float32
    (Optax's way): every parameter and state entry within the bound, with no margin."""
    p0, steps = problem
    bound_params, bound_state = replay(spec, {"w": p0}, [{"w": g} for g in steps])
    exact, exact_state = _evaluate(spec, p0.astype(np.float64), steps, int)
    np.testing.assert_allclose(bound_params["w"].value, exact, rtol=1e-15, atol=0)  # the same rule
    for t_type in (int, np.float32):
        got, state = _evaluate(spec, p0, steps, t_type)
        assert got.dtype == np.float32
        assert np.all(np.abs(got - exact) <= bound_params["w"].error), (t_type, got - exact, bound_params["w"].error)
        for slot, value in state.items():
            assert np.all(np.abs(value - exact_state[slot]) <= bound_state[f"{slot}.w"].error), slot


@pytest.mark.parametrize("op", ["+", "-", "*", "/"])
@settings(max_examples=200, deadline=None, derandomize=True)
@given(a=st.floats(-2.0**100, 2.0**100, width=32), b=st.floats(-2.0**100, 2.0**100, width=32),
       c=st.floats(1e-3, 10.0))
def test_each_operation_bounds_its_float32_rounding(op, a, b, c):
    """(a op c) op b with a, b exact float32 inputs and c a float64 constant rounded to float32."""
    if op == "/" and b == 0:
        b = 1.0
    f = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv}[op]
    exact = f(f(np.float64(a), c), np.float64(b))
    bounded = f(f(Bounded(a), c), Bounded(b))
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        got = f(f(np.float32(a), np.float32(c)), np.float32(b))
    if np.isfinite(got):
        assert bounded.value == exact
        assert abs(np.float64(got) - exact) <= bounded.error


def test_square_roots_and_bias_corrections_are_bounded_down_to_zero():
    x = Bounded(np.array([0.0, 1e-40, 1e-20, 0.25, 3.0]), np.array([1e-45, 1e-45, 1e-28, 1e-9, 1e-9]))
    root = np.sqrt(x)
    np.testing.assert_array_equal(root.value, np.sqrt(x.value))
    assert np.all(root.error >= np.sqrt(x.value + x.error) - root.value)
    for beta in (0.9, 0.999):
        for t in (1, 2, 3, 100):
            correction = 1 - beta ** Bounded(t)
            got = np.float32(1) - np.float32(beta) ** np.float32(t)
            assert abs(np.float64(got) - (1 - beta**t)) <= correction.error
    with pytest.raises(NotImplementedError):
        Bounded(2.0) ** 3


@pytest.mark.parametrize("spec", SPECS, ids=repr)
def test_the_reference_backend_runs_the_same_rule_the_bound_replays(spec, rng):
    """The float64 NumPy backend's apply_gradients and the bound's float64 values agree to 1e-15:
    the bound is derived from the very operations the reference computes."""
    name = spec.name
    kw = dict(lr=spec.lr, weight_decay=spec.weight_decay, **({"momentum": spec.momentum} if name == "sgd" else {}))
    clf = crossframe.classifier("numpy", "softmax", optimizer=name, **kw)
    start = clf.get_params()
    steps = [{k: rng.normal(size=v.shape).astype(np.float32) * 1e-3 for k, v in start.items()} for _ in range(3)]
    for grads in steps:
        clf.apply_gradients(grads)
    params, state = clf.checkpoint_state()
    bound_params, bound_state = replay(clf.hparams.optimizer_spec(), start, steps)
    for key, value in {**params, **state}.items():
        if key in bound_params or key in bound_state:
            expected = {**bound_params, **bound_state}[key].value
            np.testing.assert_allclose(value, expected, rtol=1e-15, atol=1e-300, err_msg=key)


def test_the_bounds_are_tight_enough_to_mean_something():
    """For parameters of 0.01 to 0.3 and gradients of 1e-4 to 1e-2, three SGD steps are bounded by
    a few float32 ulps of the parameter, three Adam steps by well under 1e-6 (lr 1e-3): a rate off
    by 1e-4 would be seen."""
    rng = np.random.default_rng(0)
    p = (rng.uniform(0.01, 0.3, 1000) * rng.choice([-1, 1], 1000)).astype(np.float32)
    steps = [{"w": (rng.uniform(1e-4, 1e-2, 1000) * rng.choice([-1, 1], 1000)).astype(np.float32)} for _ in range(3)]
    sgd, _ = replay(SGD(lr=0.1, momentum=0.9, weight_decay=1e-3), {"w": p}, steps)
    ulps = sgd["w"].error / np.spacing(np.abs(sgd["w"].value).astype(np.float32))
    assert 1 <= ulps.max() <= 8, ulps.max()
    adam, _ = replay(Adam(lr=1e-3, weight_decay=1e-3), {"w": p}, steps)
    assert TINY < adam["w"].error.max() < 1e-6

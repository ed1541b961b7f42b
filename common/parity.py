"""Do two backends compute the same thing? Measured differences against written tolerances.

Each check runs the backend under test and a reference backend from the same initial
parameters on the same batch and reports the largest difference. The reference is the
float64 NumPy backend where it is installed, PyTorch otherwise. The test suite and the
``crossframe parity`` command call these same functions, so they cannot disagree.

The tolerances (float32 backends against a float64 reference, or two float32 backends):

=====================  =============  ==========================================================
check                  measure        tolerance and why
=====================  =============  ==========================================================
logits                 max abs        1e-5: float32 keeps ~7 digits; logits are O(1-10)
loss                   relative       1e-6: a mean over the batch of O(1) values
gradient (each param)  relative norm  1e-5: ||g - g_ref|| / ||g_ref||, summation order differs
sgd (2 steps)          max abs        1e-6: params after two SGD steps with momentum and decay
adam (2 steps)         max abs        1e-6: params after two Adam steps, against Adam computed
                                      in float64 from the backend's own gradients (see below)
accuracy ties          count          0: ties go to the lowest index everywhere
train (N steps)        max abs        TRAIN_TOLERANCE, see below
=====================  =============  ==========================================================

Why Adam is checked against its own gradients. Adam divides each coordinate's step by
that coordinate's root-mean-square gradient plus eps = 1e-8, so where a gradient is within
float32 rounding of zero (plain cancellation over the batch, or ``g + wd * p`` cancelling)
the step is ``lr * g / (|g| + eps)`` with ``g`` known only to ~1e-10: anything up to
``lr * 1e-10 / 1e-8 = 1e-2 * lr`` apart, whatever the backends. Measured after one Adam
step (lr 1e-3) on a Fashion-MNIST batch of 20: PyTorch against itself with the rows of the
batch permuted (the same mathematics, another summation order) 2.0e-6 for ``mlp``, 8.2e-6
for ``resnet``; JAX against PyTorch 1.1e-5 and 1.3e-5; while the gradients agree to
< 1e-6 in relative norm. A 1e-6 bound between two backends' Adam steps is beyond
float32. What the check can hold to 1e-6 is the optimizer's mathematics: the backend's
``gradients()`` before each step, pushed through the contract's Adam (L2 decay added to
the gradient, bias-corrected moments, eps outside the square root) in float64, must give
the parameters the backend's own two steps gave (measured: <= 1.7e-7 for PyTorch and JAX,
every model). The gradients themselves are compared with the reference's above, and the
N-step training check compares whole trajectories.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Iterable

import numpy as np

from .registry import available_backends, classifier

__all__ = [
    "ADAM", "SGD", "TOLERANCES", "TRAIN", "TRAIN_TOLERANCE", "Check", "adam_reference", "check_backend",
    "format_table", "max_abs", "max_param_diff", "reference_backend", "relative", "relative_norm",
]

# After N steps the float32 rounding differences of two backends are amplified by the
# training dynamics; the bound is checked at N = 100, SGD lr 0.01, momentum 0.5, batch 20.
# Measured (Fashion-MNIST, the first 2,000 training images), largest parameter difference:
#   JAX vs PyTorch:                         softmax 3.0e-8, mlp 1.5e-8, cnn 4.5e-8,
#                                           lenet 2.2e-8, resnet 7.5e-8
#   PyTorch vs PyTorch, rows of every       softmax 3.0e-8, mlp 1.5e-8, cnn 7.5e-8,
#   batch permuted (rounding alone):        lenet 2.2e-8, resnet 3.0e-8
# i.e. a few float32 ulps of parameters of size ~0.1 (ulp 7.5e-9): at this learning rate
# the dynamics barely amplify rounding over 100 steps. 1e-6 leaves a factor 13 above the
# largest of these for other kernels (other SIMD widths, a GPU) and still catches the
# smallest real mistakes measured: a learning rate 1% off moves the parameters by 4.6e-5
# (lenet) to 5.0e-3 (cnn) in 100 steps, a momentum of 0.505 for 0.5 by 4.4e-5 to 3.5e-3,
# torch-style dampening by 2.4e-3 or more (the former placeholder, 1e-4, let a 1% learning
# rate error in lenet pass).
TRAIN_TOLERANCE = 1e-6

TOLERANCES: dict[str, tuple[str, float]] = {
    "logits": ("max abs", 1e-5),
    "loss": ("relative", 1e-6),
    "gradient": ("relative norm", 1e-5),
    "sgd (2 steps)": ("max abs", 1e-6),
    "adam (2 steps)": ("max abs", 1e-6),
    "accuracy ties": ("count", 0.0),
    "train": ("max abs", TRAIN_TOLERANCE),
}

SGD = dict(optimizer="sgd", lr=0.1, momentum=0.9, weight_decay=1e-3)
ADAM = dict(optimizer="adam", lr=1e-3, weight_decay=1e-3)
TRAIN = dict(optimizer="sgd", lr=0.01, momentum=0.5)


@dataclass(frozen=True)
class Check:
    backend: str
    reference: str
    model: str
    check: str
    measure: str
    value: float
    tolerance: float

    @property
    def passed(self) -> bool:
        return bool(np.isfinite(self.value) and self.value <= self.tolerance)

    def to_dict(self) -> dict:
        return {**asdict(self), "passed": self.passed}


def reference_backend() -> str:
    """The float64 NumPy backend where installed, else PyTorch."""
    return "numpy" if "numpy" in available_backends() else "torch"


# --------------------------------------------------------------------------- measures


def max_abs(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)), initial=0.0))


def relative(a: float, b: float) -> float:
    return abs(float(a) - float(b)) / max(abs(float(b)), np.finfo(np.float64).tiny)


def relative_norm(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    denom = np.linalg.norm(b)
    return float(np.linalg.norm(a - b) / denom) if denom > 0 else float(np.linalg.norm(a))


def max_param_diff(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    return max(max_abs(a[name], b[name]) for name in b)


# --------------------------------------------------------------------------- checks


def check_backend(
    backend: str,
    model: str,
    batches: list[tuple[np.ndarray, np.ndarray]],
    *,
    reference: str | None = None,
    device: str = "cpu",
    seed: int = 0,
    train_batches: Iterable[tuple[np.ndarray, np.ndarray]] | None = None,
) -> list[Check]:
    """Every check for one backend and model. ``batches`` holds at least two (X, y) batches;
    ``train_batches`` (optional) are the batches of the N-step training check."""
    reference = reference or reference_backend()
    X, y = batches[0]
    make = lambda name, dev, **hp: classifier(name, model, seed=seed, device=dev, **hp)  # noqa: E731
    clf, ref = make(backend, device), make(reference, "cpu")

    def check(name: str, value: float, label: str | None = None) -> Check:
        measure, tolerance = TOLERANCES[name]
        return Check(backend, reference, model, label or name, measure, value, tolerance)

    logits, ref_logits = clf.to_numpy(clf.forward(X)), ref.to_numpy(ref.forward(X))
    checks = [
        check("logits", max_abs(logits, ref_logits)),
        check("loss", relative(clf.to_numpy(clf.loss(logits, y)), ref.to_numpy(ref.loss(ref_logits, y)))),
    ]
    grads, ref_grads = clf.gradients((X, y)), ref.gradients((X, y))
    checks += [check("gradient", relative_norm(grads[n], ref_grads[n]), f"gradient {n}") for n in ref_grads]
    a, b = make(backend, device, **SGD), make(reference, "cpu", **SGD)
    for step_batch in batches[:2]:
        a.training_step(step_batch)
        b.training_step(step_batch)
    checks.append(check("sgd (2 steps)", max_param_diff(a.get_params(), b.get_params())))
    checks.append(check("adam (2 steps)", _adam_against_own_gradients(make(backend, device, **ADAM), batches[:2])))
    checks.append(check("accuracy ties", _tie_mismatches(clf, ref)))
    if train_batches is not None:
        a, b = make(backend, device, **TRAIN), make(reference, "cpu", **TRAIN)
        steps = 0
        for step_batch in train_batches:
            a.training_step(step_batch)
            b.training_step(step_batch)
            steps += 1
        checks.append(check("train", max_param_diff(a.get_params(), b.get_params()), f"train ({steps} steps)"))
    return checks


def adam_reference(params: dict[str, np.ndarray], grads: list[dict[str, np.ndarray]], *, lr: float,
                   weight_decay: float = 0.0, betas=(0.9, 0.999), eps: float = 1e-8) -> dict[str, np.ndarray]:
    """``params`` after one Adam step per entry of ``grads``, in float64, with the contract's
    (PyTorch's) conventions: L2 decay added to the gradient, moments from zero, bias correction,
    eps outside the square root of the bias-corrected second moment."""
    b1, b2 = betas
    p = {name: np.asarray(value, np.float64) for name, value in params.items()}
    m = {name: np.zeros_like(value) for name, value in p.items()}
    v = {name: np.zeros_like(value) for name, value in p.items()}
    for t, g in enumerate(grads, start=1):
        for name in p:
            d = np.asarray(g[name], np.float64) + weight_decay * p[name]
            m[name] = b1 * m[name] + (1 - b1) * d
            v[name] = b2 * v[name] + (1 - b2) * d * d
            p[name] = p[name] - lr * (m[name] / (1 - b1**t)) / (np.sqrt(v[name] / (1 - b2**t)) + eps)
    return p


def _adam_against_own_gradients(clf, batches) -> float:
    """Max difference between ``clf``'s Adam steps and :func:`adam_reference` on its own gradients."""
    start, grads = clf.get_params(), []
    for step_batch in batches:
        grads.append(clf.gradients(step_batch))
        clf.training_step(step_batch)
    expected = adam_reference(start, grads, lr=ADAM["lr"], weight_decay=ADAM["weight_decay"])
    return max_param_diff(clf.get_params(), expected)


def _tie_mismatches(clf, ref) -> float:
    """Rows of tied logits where the two backends' per-example accuracy differs."""
    logits = np.zeros((4, clf.num_classes), np.float32)
    logits[1, [2, 5]] = 3.0
    logits[2, :] = -1.0
    logits[3, [clf.num_classes - 1, 0]] = 7.0
    labels = np.array([0, 2, 0, 0])
    a = np.asarray(clf.to_numpy(clf.accuracy(logits, labels, averaged=False)), np.float64)
    b = np.asarray(ref.to_numpy(ref.accuracy(logits, labels, averaged=False)), np.float64)
    expected = np.ones(4)  # lowest index wins: rows 0, 2, 3 pick class 0; row 1 picks class 2
    return float(np.sum(a != b) + np.sum(a != expected))


def format_table(checks: list[Check]) -> str:
    """A plain-text table: one row per check, with PASS or FAIL."""
    rows = [("backend", "model", "check", "measure", "value", "tolerance", "")]
    rows += [
        (c.backend, c.model, c.check, c.measure, f"{c.value:.3g}", f"{c.tolerance:.0e}" if c.tolerance else "0",
         "PASS" if c.passed else "FAIL")
        for c in checks
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)

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
adam (2 steps)         max abs        1e-6: params after two Adam steps
accuracy ties          count          0: ties go to the lowest index everywhere
train (N steps)        max abs        TRAIN_TOLERANCE, see below
=====================  =============  ==========================================================
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Iterable

import numpy as np

from .registry import available_backends, classifier

__all__ = [
    "ADAM", "SGD", "TOLERANCES", "TRAIN", "TRAIN_TOLERANCE", "Check", "check_backend", "format_table",
    "max_abs", "max_param_diff", "reference_backend", "relative", "relative_norm",
]

# After N steps the float32 rounding differences of two backends are amplified by the
# training dynamics; the bound is checked at N = 100, SGD lr 0.01, momentum 0.5.
TRAIN_TOLERANCE = 1e-4

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
    for name, hparams in (("sgd (2 steps)", SGD), ("adam (2 steps)", ADAM)):
        a, b = make(backend, device, **hparams), make(reference, "cpu", **hparams)
        for step_batch in batches[:2]:
            a.training_step(step_batch)
            b.training_step(step_batch)
        checks.append(check(name, max_param_diff(a.get_params(), b.get_params())))
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

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
sgd (2 steps)          max abs        1e-6: params after each of two SGD steps with momentum and decay
adam (2 steps)         max abs        1e-6: params after each of two Adam steps, where Adam is
                                      well-conditioned (ADAM_CONDITIONED, below)
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
# training dynamics; the bound is checked at N = 100, SGD lr 0.01, momentum 0.5, batch 20.
# Measured (max abs, 2026-11-25, tf branch): rounding alone leaves at most 1.5e-7 (every
# model, tf and torch against the float64 reference and against each other). But where an
# example sits within rounding of a ReLU or max-pool boundary, two float32 backends can take
# different sides, and from that step on the runs separate: 3.3e-4 on mlp (tf and torch
# against float64), 3.7e-4 on cnn (torch against tf and against float64). A wrong update
# rule moves the weights by far more: dropping the momentum changes them by 2.9e-3 (lenet)
# to 4.5e-2 (cnn) after these 100 steps. 1e-3 sits between the two.
TRAIN_TOLERANCE = 1e-3

TOLERANCES: dict[str, tuple[str, float]] = {
    "logits": ("max abs", 1e-5),
    "loss": ("relative", 1e-6),
    "gradient": ("relative norm", 1e-5),
    "sgd (2 steps)": ("max abs", 1e-6),
    "adam (2 steps)": ("max abs", 1e-6),
    "accuracy ties": ("count", 0.0),
    "train": ("max abs", TRAIN_TOLERANCE),
}

# The step checks start every step from the reference's parameters and optimizer state
# (set through the exchange format), so a step is judged on its own update, not on what
# earlier rounding did to its gradient. Adam divides each gradient entry by its own running
# size sqrt(v_hat); where that is near eps (1e-8) the step is ill-conditioned: a float32
# rounding delta of the gradient (about 1e-10 on these batches, where g + wd*p nearly
# cancels) moves it by up to lr * delta / eps = 1e-5, between any two float32
# implementations (measured on mlp: torch against the float64 reference 1.5e-5, tf against
# torch 1.2e-5). The Adam check compares the entries where sqrt(v_hat) >= ADAM_CONDITIONED;
# there the same rounding moves the step by at most lr * delta / ADAM_CONDITIONED = 1e-7.
# The label counts the entries left out.
ADAM_CONDITIONED = 1e-6

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


def max_param_diff(a: dict[str, np.ndarray], b: dict[str, np.ndarray], where: dict | None = None) -> float:
    """The largest difference over every parameter (over the entries ``where[name]`` is True)."""
    return max(max_abs(a[name][where[name]], b[name][where[name]]) if where else max_abs(a[name], b[name])
               for name in b)


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
        value, left_out = _step_difference(make(backend, device, **hparams), make(reference, "cpu", **hparams),
                                           batches[:2])
        checks.append(check(name, value, f"{name[:-1]}; {left_out} left out)" if left_out else name))
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


def _step_difference(clf, ref, batches) -> tuple[float, str]:
    """The largest parameter difference after each optimizer step, every step taken from the
    reference's parameters and optimizer state; for Adam over its well-conditioned entries.
    Also says how many entries were left out (at most, over the steps) of how many."""
    worst, left_out = 0.0, 0
    for t, batch in enumerate(batches, start=1):
        clf.set_params(ref.get_params())
        clf.set_optimizer_state(ref.get_optimizer_state())
        clf.training_step(batch)
        ref.training_step(batch)
        params = ref.get_params()
        keep = _adam_well_conditioned(ref.get_optimizer_state(), t) if ref.hparams.optimizer == "adam" else None
        worst = max(worst, max_param_diff(clf.get_params(), params, where=keep))
        if keep is not None:
            left_out = max(left_out, sum(int(np.sum(~k)) for k in keep.values()))
    total = sum(p.size for p in params.values())
    return worst, f"{left_out:,} of {total:,} ill-conditioned entries" if left_out else ""


def _adam_well_conditioned(state: dict[str, np.ndarray], t: int) -> dict[str, np.ndarray]:
    """Per parameter, the entries whose bias-corrected sqrt(v_hat) after step ``t`` is at least
    ADAM_CONDITIONED (beta2 = 0.999, torch.optim.Adam's default, which every backend uses)."""
    prefix = "exp_avg_sq."
    return {key[len(prefix):]: np.sqrt(np.asarray(v, np.float64) / (1 - 0.999**t)) >= ADAM_CONDITIONED
            for key, v in state.items() if key.startswith(prefix)}


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

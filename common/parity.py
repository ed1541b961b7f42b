"""Do two backends compute the same thing? Measured differences against written tolerances.

Each check runs the backend under test and a reference backend from the same initial
parameters on the same batches and reports the largest difference. The reference is the
float64 NumPy backend where it is installed, PyTorch otherwise. The test suite and the
``crossframe parity`` command call these same functions, so they cannot disagree.

The tolerances hold a float32 backend to the float64 reference (README.md, "Tolerances"):

=====================  =============  ==========================================================
check                  measure        tolerance and why
=====================  =============  ==========================================================
logits                 max abs        1e-5: float32 keeps ~7 digits; logits are O(1-10)
loss                   relative       1e-6: a mean over the batch of O(1) values
gradient (each param)  relative norm  1e-5: ||g - g_ref|| / ||g_ref||, summation order differs
sgd (2 steps)          max abs        1e-6: params after two SGD steps with momentum and decay
adam (2 steps)         max abs        1e-6: params after two Adam steps, where the gradients agree
accuracy ties          count          0: ties go to the lowest index everywhere
train (N steps)        relative norm  2e-2: the path after N = 100 SGD steps, see below
train loss (N steps)   max relative   1e-2: the loss of each of those steps, see below
=====================  =============  ==========================================================

Two checks cannot be plain float32 rounding bounds, and say so:

- Adam's update ``lr * m_hat / (sqrt(v_hat) + eps)`` is a scale-free function of the
  gradient history: it moves an entry by about ``lr`` whatever the gradient's size, so an
  entry whose gradient float32 knows only to 1% (a gradient near zero, or cancelled by its
  weight decay ``g = grad + wd * param``) gets an update float32 knows only to 1% of ``lr``,
  1e-5, and near ``|g| = eps`` the derivative reaches ``lr / eps = 1e5``. So the check
  compares the entries whose effective gradient ``g`` agrees with the reference's to
  ``ADAM_AGREEMENT`` (1e-4) relative at both steps: for them a bound of about
  ``2 * lr * 1e-4 = 2e-7`` follows, inside the tolerance. The others (a few in a thousand:
  float32 cannot pin them down) are counted in the report. An Adam bug (bias correction,
  eps inside the square root, AdamW's decay, a step count off by one) moves every entry by
  O(lr) and is caught.
- Training for N steps is not smooth: ReLU and max-pool decide by comparisons, and where
  a pre-activation or two window entries are within float32 rounding of each other,
  float32 and float64 decide differently for that one example, in that one step. Such a
  flip moves the weights it touches by about ``lr * |delta| * |x| / (batch * (1 - momentum))``
  (1e-4 for mlp), and training amplifies it: the largest single-parameter difference after
  100 steps is 1e-7 without a flip and up to 1.5e-3 with one. Every float32 implementation
  flips alike (the NumPy backend in float32 tracks torch to 3e-7 through the same flips:
  the cause is float32's rounding of the stored parameters, not summation order), so the
  largest difference is reported but is not what passes or fails. The check measures the
  whole path instead, ``||p - p_ref|| / ||p_ref - p_0||`` (the parameters' distance from the
  reference's, relative to how far the reference moved), and the loss of every step.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Callable, Iterable

import numpy as np

from .precision import on_gpu, tf32
from .registry import available_backends, classifier

__all__ = [
    "ADAM", "ADAM_AGREEMENT", "ADAM_MAX_LEFT_OUT", "SGD", "TOLERANCES", "TRAIN", "TRAIN_LOSS_TOLERANCE",
    "TRAIN_TOLERANCE", "Check", "ParityRun", "Trace", "check_backend", "compare", "format_model_table",
    "format_run", "format_summary", "format_table", "max_abs", "max_param_diff", "reference_backend",
    "relative", "relative_norm", "run", "trace", "training_batches",
]

# The path after N = 100 steps of SGD (lr 0.01, momentum 0.5, batch 20) on Fashion-MNIST:
# torch against the float64 reference measured 8e-7 to 3e-5 without a flip and 3.7e-3 to
# 7.9e-3 with one (mlp, cnn, resnet; seeds 0-2). Held at N = 100; longer runs drift further
# (2.3e-2 at N = 300). It catches what grows over a run (a repeated batch: 3e-2 to 4e-2);
# the two-step checks catch a wrong rate, momentum or decay at 1e-6.
TRAIN_TOLERANCE = 2e-2

# The loss of every training step (on its batch, before its update): a flip changes the
# losses after it by at most 1.3e-3 (measured as above), 2e-7 without one; a batch out of
# order or repeated changes a step's loss by 0.1 to 0.9, a learning rate off by 1% by 1e-2.
TRAIN_LOSS_TOLERANCE = 1e-2

# The Adam check compares the entries whose effective gradient grad + wd * param agrees with
# the reference's to this, relatively, at every step (see the module docstring).
ADAM_AGREEMENT = 1e-4
# ... and fails when more entries than this fraction disagree (float32 leaves out 0.1% to
# 0.8%, measured for the five models): gradients that disagree everywhere compare nothing.
ADAM_MAX_LEFT_OUT = 0.05

TOLERANCES: dict[str, tuple[str, float]] = {
    "logits": ("max abs", 1e-5),
    "loss": ("relative", 1e-6),
    "gradient": ("relative norm", 1e-5),
    "sgd (2 steps)": ("max abs", 1e-6),
    "adam (2 steps)": ("max abs", 1e-6),
    "accuracy ties": ("count", 0.0),
    "train": ("relative norm", TRAIN_TOLERANCE),
    "train loss": ("max relative", TRAIN_LOSS_TOLERANCE),
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
    device: str = "cpu"
    note: str = ""  # what else the reader should know about this figure

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


def _flat(params: dict[str, np.ndarray]) -> np.ndarray:
    return np.concatenate([np.asarray(v, np.float64).ravel() for v in params.values()])


# --------------------------------------------------------------------------- traces


@dataclass
class Trace:
    """Everything one backend computes for one model on the parity batches, as NumPy."""

    backend: str
    model: str
    device: str
    logits: np.ndarray
    loss: float
    gradients: dict[str, np.ndarray]
    sgd: dict[str, np.ndarray]
    adam: dict[str, np.ndarray]
    adam_gradients: list[dict[str, np.ndarray]]  # grad + wd * param before each Adam step, float64
    ties: np.ndarray
    start: dict[str, np.ndarray]
    train: dict[str, np.ndarray] | None = None
    train_losses: np.ndarray | None = None  # the loss of every training step, before its update


def trace(
    backend: str,
    model: str,
    batches: list[tuple[np.ndarray, np.ndarray]],
    *,
    device: str = "cpu",
    seed: int = 0,
    train_batches: Iterable[tuple[np.ndarray, np.ndarray]] | None = None,
) -> Trace:
    """Run ``backend`` through every parity computation. ``batches`` holds at least two
    (X, y) batches; ``train_batches`` (optional) are the batches of the N-step training run."""
    make = lambda **hp: classifier(backend, model, seed=seed, device=device, **hp)  # noqa: E731
    X, y = batches[0]
    clf = make()
    logits = clf.to_numpy(clf.forward(X))
    out = Trace(
        backend, model, clf.device, logits, float(clf.to_numpy(clf.loss(logits, y))), clf.gradients((X, y)),
        sgd=_steps(make(**SGD), batches[:2])[0], adam={}, adam_gradients=[], ties=_tie_accuracy(clf),
        start=clf.get_params(),
    )
    adam = make(**ADAM)
    for step_batch in batches[:2]:
        params, grads = adam.get_params(), adam.gradients(step_batch)
        out.adam_gradients.append({n: grads[n].astype(np.float64) + ADAM["weight_decay"] * params[n] for n in grads})
        adam.training_step(step_batch)
    out.adam = adam.get_params()
    if train_batches is not None:
        train_batches = list(train_batches)
        out.train, out.train_losses = _steps(make(**TRAIN), train_batches)
    return out


def _steps(clf, batches) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The parameters after a training step on each batch, and each step's loss."""
    losses = [clf.training_step(step_batch)["loss"] for step_batch in batches]
    return clf.get_params(), np.array([float(clf.to_numpy(loss)) for loss in losses])


def _tie_rows(num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows of tied logits and labels for which "lowest index wins" makes every row right."""
    logits = np.zeros((4, num_classes), np.float32)
    logits[1, [2, 5]] = 3.0
    logits[2, :] = -1.0
    logits[3, [num_classes - 1, 0]] = 7.0
    return logits, np.array([0, 2, 0, 0])


def _tie_accuracy(clf) -> np.ndarray:
    logits, labels = _tie_rows(clf.num_classes)
    return np.asarray(clf.to_numpy(clf.accuracy(logits, labels, averaged=False)), np.float64)


# --------------------------------------------------------------------------- checks


def compare(got: Trace, ref: Trace) -> list[Check]:
    """The checks of ``got`` against the reference trace ``ref`` (same model, same batches)."""

    def check(name: str, value: float, label: str | None = None, note: str = "") -> Check:
        measure, tolerance = TOLERANCES[name]
        return Check(got.backend, ref.backend, ref.model, label or name, measure, value, tolerance, got.device, note)

    checks = [check("logits", max_abs(got.logits, ref.logits)), check("loss", relative(got.loss, ref.loss))]
    checks += [check("gradient", relative_norm(got.gradients[n], ref.gradients[n]), f"gradient {n}")
               for n in ref.gradients]
    checks.append(check("sgd (2 steps)", max_param_diff(got.sgd, ref.sgd)))
    agree = {n: np.logical_and.reduce([np.abs(g[n] - r[n]) <= ADAM_AGREEMENT * np.abs(r[n])
                                       for g, r in zip(got.adam_gradients, ref.adam_gradients)]) for n in ref.adam}
    left_out, total = sum(int((~a).sum()) for a in agree.values()), sum(a.size for a in agree.values())
    value = max(max_abs(got.adam[n][agree[n]], ref.adam[n][agree[n]]) for n in ref.adam)
    note = (f"{left_out} of {total} entries left out, their gradients differing by more than "
            f"{ADAM_AGREEMENT:g}; over all entries {max_param_diff(got.adam, ref.adam):.2g}") if left_out else ""
    if left_out > ADAM_MAX_LEFT_OUT * total:  # the gradients disagree: nothing left to compare
        value, note = np.inf, note + f": more than {ADAM_MAX_LEFT_OUT:.0%}, so the check fails"
    checks.append(check("adam (2 steps)", value, note=note))
    expected = np.ones(len(ref.ties))  # lowest index wins: every tie row is right
    checks.append(check("accuracy ties", float(np.sum(got.ties != ref.ties) + np.sum(ref.ties != expected))))
    if got.train is not None and ref.train is not None:
        start = _flat(ref.start)
        path = np.linalg.norm(_flat(ref.train) - start)
        value = float(np.linalg.norm(_flat(got.train) - _flat(ref.train)) / path) if path > 0 else np.inf
        steps = len(ref.train_losses)
        checks.append(check("train", value, f"train ({steps} steps)",
                            note=f"largest single-parameter difference {max_param_diff(got.train, ref.train):.2g}"))
        losses = float(np.max(np.abs(got.train_losses - ref.train_losses) / np.abs(ref.train_losses)))
        checks.append(check("train loss", losses, f"train loss ({steps} steps)"))
    return checks


def check_backend(
    backend: str,
    model: str,
    batches: list[tuple[np.ndarray, np.ndarray]],
    *,
    reference: str | None = None,
    device: str = "cpu",
    seed: int = 0,
    train_batches: Iterable[tuple[np.ndarray, np.ndarray]] | None = None,
    reference_trace: Trace | None = None,
) -> list[Check]:
    """Every check for one backend and model. ``batches`` holds at least two (X, y) batches;
    ``train_batches`` (optional) are the batches of the N-step training check. The reference
    always runs on the CPU; pass its ``reference_trace`` to reuse it across backends."""
    if train_batches is not None:
        train_batches = list(train_batches)
    ref = reference_trace or trace(reference or reference_backend(), model, batches, seed=seed,
                                   train_batches=train_batches)
    return compare(trace(backend, model, batches, device=device, seed=seed, train_batches=train_batches), ref)


# --------------------------------------------------------------------------- a whole run


@dataclass
class ParityRun:
    """The result of ``crossframe parity``: every check, and the settings it ran under."""

    reference: str
    backends: list[str]
    models: list[str]
    device: str
    seed: int
    steps: int
    batch_size: int
    tf32: str
    precision: dict[str, str] = field(default_factory=dict)  # backend -> the TF32 setting in force
    checks: list[Check] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    def to_dict(self) -> dict:
        return {**{k: v for k, v in asdict(self).items() if k != "checks"},
                "passed": self.passed, "checks": [c.to_dict() for c in self.checks]}


def training_batches(data, steps: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The first ``steps`` training batches of ``data``, epoch after epoch, in the shared order."""
    batches: list[tuple[np.ndarray, np.ndarray]] = []
    epoch = 0
    while len(batches) < steps:
        for batch in data.train_plan(epoch):
            if len(batches) == steps:
                break
            batches.append(batch)
        epoch += 1
    return batches


def run(
    backends: list[str],
    models: list[str],
    data,
    *,
    steps: int = 100,
    device: str = "cpu",
    seed: int = 0,
    tf32_mode: str = "default",
    on_model: Callable[[ParityRun, str], None] | None = None,
) -> ParityRun:
    """Every check for every backend and model, on ``steps`` batches of ``data`` (at least 2).
    The reference runs once per model; ``on_model(run, model)`` is called as each model is done."""
    batches = training_batches(data, max(steps, 2))
    result = ParityRun(reference_backend(), list(backends), list(models), device, seed, steps,
                       data.batch_size, tf32_mode)
    for model in models:
        ref = trace(result.reference, model, batches, seed=seed, train_batches=batches[:steps])
        for backend in backends:
            with tf32(backend, tf32_mode) as setting:
                result.checks += compare(trace(backend, model, batches, device=device, seed=seed,
                                               train_batches=batches[:steps]), ref)
            result.precision[backend] = setting
        if on_model is not None:
            on_model(result, model)
    return result


# --------------------------------------------------------------------------- reports


def format_table(checks: list[Check]) -> str:
    """A plain-text table: one row per check, with PASS or FAIL."""
    rows = [("backend", "model", "check", "measure", "value", "tolerance", "")]
    rows += [(c.backend, c.model, c.check, c.measure, f"{c.value:.3g}", _tol(c), _verdict(c)) for c in checks]
    return _columns(rows)


def format_model_table(checks: list[Check]) -> str:
    """One model's checks as a table: a row per check, a column per backend, notes below."""
    backends = list(dict.fromkeys(c.backend for c in checks))
    cell = {(c.backend, c.check): c for c in checks}
    rows = [("check", "measure", "tolerance", *(f"{b} ({_device(checks, b)})" for b in backends))]
    for name in dict.fromkeys(c.check for c in checks):
        first = next(c for c in checks if c.check == name)
        rows.append((name, first.measure, _tol(first), *(
            f"{cell[b, name].value:.2g} {_verdict(cell[b, name])}" if (b, name) in cell else "-" for b in backends
        )))
    notes = [f"  {c.backend}, {c.check}: {c.note}" for c in checks if c.note]
    return "\n".join([_columns(rows), *notes])


def format_run(result: ParityRun, models: list[str] | None = None) -> str:
    """The tables of ``models`` (default: all) with a header saying what ran, and the verdict."""
    parts = []
    for model in models or result.models:
        checks = [c for c in result.checks if c.model == model]
        parts.append(f"{model}: {len(checks)} checks against {result.reference} "
                     f"({'float64, ' if result.reference == 'numpy' else ''}cpu)\n{format_model_table(checks)}")
    return "\n\n".join(parts)


def format_summary(result: ParityRun) -> str:
    """The settings, the TF32 switch of each backend (and whether it mattered), the verdict."""
    lines = [f"seed {result.seed}, {result.steps} training steps of batch {result.batch_size}, "
             f"device {result.device}, tf32 {result.tf32}"]
    for backend, setting in result.precision.items():
        devices = {c.device for c in result.checks if c.backend == backend}
        effect = "in effect" if any(on_gpu(d) for d in devices) else \
            f"no effect on {', '.join(sorted(devices))}: TF32 exists only on GPUs"
        lines.append(f"  {backend}: {setting} ({effect})")
    failed = [c for c in result.checks if not c.passed]
    lines.append(f"all {len(result.checks)} checks passed" if not failed else
                 f"{len(failed)} of {len(result.checks)} checks FAILED")
    return "\n".join(lines)


def _device(checks: list[Check], backend: str) -> str:
    return next(c.device for c in checks if c.backend == backend)


def _tol(c: Check) -> str:
    return f"{c.tolerance:.0e}" if c.tolerance else "0"


def _verdict(c: Check) -> str:
    return "PASS" if c.passed else "FAIL"


def _columns(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)


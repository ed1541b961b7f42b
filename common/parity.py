"""Do two backends compute the same thing? Measured differences against written tolerances.

Each check runs the backend under test and the reference (the float64 NumPy backend) from
the same initial parameters on the same inputs and measures ONE thing:

- ``logits``, ``loss``, ``gradient <param>``: one forward and backward pass on the same batch;
- ``sgd (3 steps)``, ``adam (3 steps)``: the backend's own optimizer fed the same float32
  parameters and the same float32 gradients (the reference's, rounded) for 3 steps, through
  ``Classifier.apply_gradients``; the updated parameters and optimizer state are held to a
  bound derived from the update rule's operations (common/rounding.py), entry by entry;
- ``accuracy ties``: rows of tied logits (the lowest index wins everywhere);
- ``train (N steps)``, ``train loss (N steps)``: N ordinary training steps, each on the
  backend's own gradients: the end-to-end path, a statistical check (see below).

Models with BatchNorm or dropout add (``logits`` is then the eval mode's, ``gradient`` the
train mode's):

- ``train logits``: a train-mode pass on the first batch (batch statistics, the first step's
  dropout masks), from the initial parameters;
- ``dropout mask (layer k)``: the first step's keep mask of each dropout layer, computed by
  the backend's own integer ops: bit for bit;
- after the first ``OPTIMIZER_STEPS`` steps of the training run: ``buffer <bn>.running_mean``
  and ``buffer <bn>.running_var`` of every BatchNorm layer, ``batches tracked`` (every
  counter equals the number of steps, exactly) and ``eval logits`` (the first batch in eval
  mode, on the running statistics).

Two checks take other tolerances in a model with BatchNorm. ``gradient before BatchNorm``:
the weights of a layer whose output a BatchNorm normalises; BatchNorm's backward pass
subtracts the per-channel mean of the gradient, so their gradient is a difference of nearly
equal sums (most pixels of an image are its background, the same value), and float32 keeps
fewer of its digits. ``train with BatchNorm`` and ``train loss with BatchNorm``: the loss does
not depend on the scale of those weights, so nothing pulls float32's rounding of them back and
the path drifts further; two batches swapped in the middle of the 100 steps still fail the
per-step losses (in the first few steps, where every batch's loss is near chance's, no training
check can tell a swap from drift).

The tolerances and how each was obtained are in :data:`TOLERANCES` and README.md
("Tolerances"): derived where the operations bound the error (the optimizer checks, ties),
measured broadly elsewhere (seeds 0-4, the five models, 1 and 2 threads, XLA on and off,
AVX-512 and AVX2) with a stated margin above the worst value seen
(``benchmarks/parity_sweep.py``, BENCHMARKS.md).

Training for N steps is not smooth: ReLU and max-pool decide by comparisons, and where a
pre-activation or two window entries are within float32 rounding of each other, float32
and float64 decide differently for that one example in that one step. Such a flip moves
the weights it touches by about ``lr * |delta| * |x| / (batch * (1 - momentum))`` and
training amplifies it. Every float32 implementation flips alike (the cause is float32's
rounding of the stored parameters, not summation order), so the largest single-parameter
difference is reported but is not what passes or fails: the check measures the whole path,
``||p - p_ref|| / ||p_ref - p_0||``, and the loss of every step.

The test suite and the ``crossframe parity`` command call these same functions.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field, fields
from functools import cache, partial
from typing import Callable, Iterable

import numpy as np

from .settings import Hyperparameters
from .precision import tf32
from .registry import available_backends, classifier
from .rounding import MARGIN, replay

__all__ = [
    "BATCH_SIZE", "OPTIMIZER_CHECKS", "OPTIMIZER_STEPS", "STEPS", "TOLERANCES", "TRAIN", "Check", "ParityRun",
    "Tolerance", "Trace", "check_backend", "compare", "compare_replicas", "load_parity_data", "max_abs", "max_param_diff",
    "reference_backend", "relative", "relative_norm", "run", "trace", "training_batches",
]

STEPS = 100  # training steps of the end-to-end check, the command's default
BATCH_SIZE = 20  # the command's default batch size
OPTIMIZER_STEPS = 3  # updates of each optimizer check, on the same given gradients
# How many examples the gradient check may leave out of its batch to explain a difference as
# ReLU or max-pool decisions that float32 makes differently from float64 (see _gradient_checks).
MAX_FLIPPED = 2

# The optimizer checks: every update rule's parts in use (momentum, L2 and decoupled decay,
# Adam's moments and bias corrections) at rates where one step moves a parameter by 1e-3 to 1e-2.
OPTIMIZER_CHECKS: dict[str, dict] = {
    "sgd": dict(optimizer="sgd", lr=0.1, momentum=0.9, weight_decay=1e-3),
    "adam": dict(optimizer="adam", lr=1e-3, weight_decay=1e-3),
    "adamw": dict(optimizer="adamw", lr=1e-3, weight_decay=1e-2),
}
TRAIN = dict(optimizer="sgd", lr=0.01, momentum=0.5)
# the label of a check of N devices against one: "2 vs 1 device: gradient fc1.weight", of kind "replicas gradient"
REPLICAS_LABEL = "{n} vs 1 device: "


@dataclass(frozen=True)
class Tolerance:
    """A check's measure, its tolerance, and how the tolerance was obtained (README, "Tolerances")."""

    measure: str
    value: float
    obtained: str


TOLERANCES: dict[str, Tolerance] = {
    "logits": Tolerance("max abs", 1e-5, "measured"),
    "loss": Tolerance("relative", 1e-6, "measured"),
    "gradient": Tolerance("relative norm", 3e-5, "measured"),
    **{name: Tolerance("max |Δ| / bound", 1.0, "derived") for name in OPTIMIZER_CHECKS},
    "accuracy ties": Tolerance("count", 0.0, "exact"),
    "train": Tolerance("relative norm", 2e-2, "measured"),
    "train loss": Tolerance("max relative", 1e-2, "measured"),
    "train logits": Tolerance("max abs", 1e-5, "measured"),
    "dropout mask": Tolerance("entries differing", 0.0, "exact"),
    "gradient before BatchNorm": Tolerance("relative norm", 1e-4, "measured"),
    "buffer": Tolerance("relative norm", 1e-4, "measured"),
    "batches tracked": Tolerance("counters differing", 0.0, "exact"),
    "eval logits": Tolerance("max abs", 1e-4, "measured"),
    "train with BatchNorm": Tolerance("relative norm", 1e-1, "measured"),
    "train loss with BatchNorm": Tolerance("max relative", 5e-2, "measured"),
    # N devices against the same backend on one device (``crossframe parity --devices N``): the
    # same float32 operations, the batch's sums split into N partial sums (README, "Tolerances")
    "replicas gradient": Tolerance("relative norm", 1e-5, "measured"),
    **{f"replicas {name}": Tolerance("max |Δ| / (2 bound)", 1.0, "derived") for name in OPTIMIZER_CHECKS},
    "replicas train": Tolerance("relative norm", 2e-2, "measured"),
    "replicas train loss": Tolerance("max relative", 1e-2, "measured"),
}


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

    @property
    def ratio(self) -> float:
        """value / tolerance: how much of its tolerance the check used (a tolerance of 0: 0 or inf)."""
        if self.tolerance:
            return float(self.value / self.tolerance)
        return 0.0 if self.value == 0 else float("inf")

    def to_dict(self) -> dict:
        return {**asdict(self), "ratio": self.ratio, "passed": self.passed}


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
    """Everything one backend computes for one model on the parity inputs, as NumPy."""

    backend: str
    model: str
    device: str  # where it ran: the classifier's device, and how many share each batch
    logits: np.ndarray
    loss: float
    gradients: dict[str, np.ndarray]
    step_gradients: list[dict[str, np.ndarray]]  # the float32 gradients of every optimizer check's steps
    optimizers: dict[str, tuple[dict[str, np.ndarray], dict[str, np.ndarray]]]  # (params, state) after them
    ties: np.ndarray
    start: dict[str, np.ndarray]
    train: dict[str, np.ndarray] | None = None
    train_losses: np.ndarray | None = None  # the loss of every training step, before its update
    # the gradients on the batch without the examples at the given positions (computed on demand)
    gradients_without: Callable[[tuple[int, ...]], dict[str, np.ndarray]] | None = field(default=None, repr=False)
    train_logits: np.ndarray | None = None  # the first batch in train mode (BatchNorm or dropout models)
    masks: dict[int, np.ndarray] = field(default_factory=dict)  # the first step's keep mask per dropout layer
    after_steps: "AfterSteps | None" = None  # BatchNorm's state early in the training run
    before_batchnorm: tuple[str, ...] = ()  # parameters of the layers whose output a BatchNorm normalises
    devices: int = 1  # how many replicas shared each batch (data parallel)


@dataclass
class AfterSteps:
    """A BatchNorm model's state after the first ``steps`` steps of the training run."""

    steps: int
    buffers: dict[str, np.ndarray]  # at the backend's own precision (float64 for the reference)
    eval_logits: np.ndarray  # the first batch in eval mode


def trace(
    backend: str,
    model: str,
    batches: list[tuple[np.ndarray, np.ndarray]],
    *,
    device: str = "cpu",
    seed: int = 0,
    train_batches: Iterable[tuple[np.ndarray, np.ndarray]] | None = None,
    step_gradients: list[dict[str, np.ndarray]] | None = None,
    devices: int = 1,
) -> Trace:
    """Run ``backend`` through every parity computation on ``batches`` (the first is the batch of
    the forward and backward checks). ``step_gradients`` are the gradients fed to the optimizer
    checks; by default (the reference) this backend's own on the first ``OPTIMIZER_STEPS``
    batches, at the initial parameters. ``train_batches`` (optional): the N-step training run.
    ``devices``: how many replicas share each batch (data parallel, common/parallel.py)."""
    make = lambda **hp: classifier(backend, model, seed=seed, device=device, devices=devices, **hp)  # noqa: E731
    X, y = batches[0]
    clf = make()
    logits = clf.to_numpy(clf.forward(X))
    gradients = clf.gradients((X, y))
    if step_gradients is None:
        if len(batches) < OPTIMIZER_STEPS:
            raise ValueError(f"the optimizer checks need {OPTIMIZER_STEPS} batches; got {len(batches)}")
        step_gradients = [gradients] + [clf.gradients(b) for b in batches[1:OPTIMIZER_STEPS]]
    out = Trace(
        backend, model, clf.device if devices == 1 else f"{clf.device}, {devices} devices", logits, float(clf.to_numpy(clf.loss(logits, y))), gradients,
        step_gradients=step_gradients,
        optimizers={name: _updates(make(**hp), step_gradients) for name, hp in OPTIMIZER_CHECKS.items()},
        ties=_tie_accuracy(clf), start=clf.get_params(), gradients_without=_gradients_without(clf, X, y),
        devices=devices,
    )
    if clf.spec.buffer_shapes() or clf.spec.dropouts():
        out.train_logits = clf.to_numpy(clf.forward(X, train=True))
        out.masks = clf.dropout_masks(len(y))
        out.before_batchnorm = clf.spec.before_batchnorm()
    if train_batches is not None:
        out.train, out.train_losses, out.after_steps = _steps(make(**TRAIN), list(train_batches), X)
    return out


def _gradients_without(clf, X: np.ndarray, y: np.ndarray) -> Callable[[tuple[int, ...]], dict[str, np.ndarray]]:
    """The classifier's gradients on ``(X, y)`` without some of its examples, each set computed once."""

    @cache
    def without(left_out: tuple[int, ...]) -> dict[str, np.ndarray]:
        keep = np.setdiff1d(np.arange(len(y)), left_out)
        return clf.gradients((X[keep], y[keep]))

    return without


def _updates(clf, step_gradients) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The parameters and optimizer state after one update from each of ``step_gradients``,
    at the backend's own precision (float64 for the reference)."""
    for grads in step_gradients:
        clf.apply_gradients(grads)
    return clf.checkpoint_state()


def _steps(clf, batches, X) -> tuple[dict[str, np.ndarray], np.ndarray, AfterSteps | None]:
    """The parameters after a training step on each batch, each step's loss, and (BatchNorm
    models) the buffers and eval-mode logits of ``X`` after the first ``OPTIMIZER_STEPS`` steps."""
    losses, after = [], None
    early = min(OPTIMIZER_STEPS, len(batches))
    for i, step_batch in enumerate(batches, start=1):
        losses.append(clf.training_step(step_batch)["loss"])
        if i == early and clf.spec.buffer_shapes():
            arrays = clf.checkpoint_state()[0]
            after = AfterSteps(i, {name: arrays[name] for name in clf.spec.buffer_shapes()},
                               clf.to_numpy(clf.forward(X)))
    return clf.get_params(), np.array([float(clf.to_numpy(loss)) for loss in losses]), after


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
    """The checks of ``got`` against the reference trace ``ref`` (same model, same inputs)."""

    def check(name: str, value: float, label: str | None = None, note: str = "") -> Check:
        tolerance = TOLERANCES[name]
        return Check(got.backend, ref.backend, ref.model, label or name, tolerance.measure, value, tolerance.value,
                     got.device, note)

    checks = [check("logits", max_abs(got.logits, ref.logits)), check("loss", relative(got.loss, ref.loss))]
    values, note = _gradient_checks(got, ref, lambda n: _gradient_kind(ref, n))
    for i, (n, value) in enumerate(values.items()):
        kind = _gradient_kind(ref, n)
        checks.append(check(kind, value, f"{kind} {n}", note if i == 0 else ""))  # the note once, on the first
    for name, hp in OPTIMIZER_CHECKS.items():
        value, note = _optimizer_margin(name, hp, got, ref)
        checks.append(check(name, value, f"{name} ({len(ref.step_gradients)} steps)", note))
    expected = np.ones(len(ref.ties))  # lowest index wins: every tie row is right
    checks.append(check("accuracy ties", float(np.sum(got.ties != ref.ties) + np.sum(ref.ties != expected))))
    if ref.train_logits is not None:
        checks.append(check("train logits", max_abs(got.train_logits, ref.train_logits)))
    for layer, mask in ref.masks.items():
        checks.append(check("dropout mask", float(np.sum(got.masks[layer] != mask)), f"dropout mask (layer {layer})",
                            note=f"keeps {mask.mean():.4f} of {mask.size} entries"))
    if got.after_steps is not None and ref.after_steps is not None:
        checks += _batchnorm_checks(got.after_steps, ref.after_steps, check)
    if got.train is not None and ref.train is not None:
        start = _flat(ref.start)
        path = np.linalg.norm(_flat(ref.train) - start)
        value = float(np.linalg.norm(_flat(got.train) - _flat(ref.train)) / path) if path > 0 else np.inf
        steps = len(ref.train_losses)
        kind = "train with BatchNorm" if ref.after_steps is not None else "train"
        checks.append(check(kind, value, f"{kind} ({steps} steps)",
                            note=f"largest single-parameter difference {max_param_diff(got.train, ref.train):.2g}"))
        losses = float(np.max(np.abs(got.train_losses - ref.train_losses) / np.abs(ref.train_losses)))
        kind = "train loss with BatchNorm" if ref.after_steps is not None else "train loss"
        checks.append(check(kind, losses, f"{kind} ({steps} steps)"))
    return checks


def compare_replicas(got: Trace, single: Trace) -> list[Check]:
    """The checks of a backend's trace on N devices, ``got``, against the same backend's on one
    device, ``single`` (same model, same inputs): the gradient of each parameter, the state after
    each optimizer check and the training run. Only the order of the batch's sums differs."""
    reference = f"{single.backend} on 1 device"
    prefix = REPLICAS_LABEL.format(n=got.devices)

    def check(name: str, value: float, label: str, note: str = "") -> Check:
        tolerance = TOLERANCES[f"replicas {name}"]
        return Check(got.backend, reference, single.model, prefix + label, tolerance.measure, value,
                     tolerance.value, got.device, note)

    values, note = _gradient_checks(got, single, lambda n: "replicas gradient")
    checks = [check("gradient", value, f"gradient {n}", note if i == 0 else "")
              for i, (n, value) in enumerate(values.items())]
    for name, hp in OPTIMIZER_CHECKS.items():
        value, note = _optimizer_margin(name, hp, got, single, evaluations=2)
        checks.append(check(name, value, f"{name} ({len(single.step_gradients)} steps)", note))
    if got.train is not None and single.train is not None:
        path = np.linalg.norm(_flat(single.train) - _flat(single.start))
        value = float(np.linalg.norm(_flat(got.train) - _flat(single.train)) / path) if path > 0 else np.inf
        steps = len(single.train_losses)
        checks.append(check("train", value, f"train ({steps} steps)",
                            note=f"largest single-parameter difference {max_param_diff(got.train, single.train):.2g}"))
        losses = float(np.max(np.abs(got.train_losses - single.train_losses) / np.abs(single.train_losses)))
        checks.append(check("train loss", losses, f"train loss ({steps} steps)"))
    return checks


def _batchnorm_checks(got: AfterSteps, ref: AfterSteps, check) -> list[Check]:
    """The running statistics (relative norm per buffer), the counters (exact) and the eval-mode
    logits after the first steps of the training run."""
    steps = f"({ref.steps} steps)"
    checks = [check("buffer", relative_norm(got.buffers[name], value), f"buffer {name} {steps}")
              for name, value in ref.buffers.items() if not name.endswith(".num_batches_tracked")]
    counters = [name for name in ref.buffers if name.endswith(".num_batches_tracked")]
    wrong = [name for name in counters if int(got.buffers[name]) != int(ref.buffers[name]) or
             int(ref.buffers[name]) != ref.steps]
    checks.append(check("batches tracked", float(len(wrong)), f"batches tracked {steps}",
                        note=f"{', '.join(wrong)} differ" if wrong else f"{len(counters)} counters at {ref.steps}"))
    checks.append(check("eval logits", max_abs(got.eval_logits, ref.eval_logits), f"eval logits {steps}"))
    return checks


def _gradient_checks(got: Trace, ref: Trace, kind: Callable[[str], str]) -> tuple[dict[str, float], str]:
    """Each parameter's ``||g - g_ref|| / ||g_ref||`` on the batch, and a note.

    The gradient of a network with ReLU or max-pool is discontinuous where a pre-activation is
    zero or two window entries tie, and every batch has pre-activations within float32's
    rounding of such a point: float32 can make a decision there the other way than float64
    does, in one example, and that example's gradient then differs at O(1) (measured: a stem
    ReLU of resnet, seed 1, AVX2, 9e-3 for the example and 2.2e-3 for the batch), while the
    logits, a continuous function, agree to 1e-7. Where the batch's gradients disagree, the
    check leaves out the example (and then, at most ``MAX_FLIPPED`` in all) whose removal
    brings them closest, both backends computing on the same smaller batch: if the rest then
    agree, the difference was such a decision, and the note names the examples. A wrong
    gradient computation differs in every example and still fails. ``kind(name)``: the
    tolerance a parameter's gradient is held to.
    """
    tolerance = {n: TOLERANCES[kind(n)].value for n in ref.gradients}

    def measure(g: dict[str, np.ndarray], r: dict[str, np.ndarray]) -> dict[str, float]:
        """Each parameter's relative difference, as a share of its tolerance."""
        return {n: relative_norm(g[n], r[n]) / tolerance[n] for n in r}

    def as_values(shares: dict[str, float]) -> dict[str, float]:
        return {n: share * tolerance[n] for n, share in shares.items()}

    shares = measure(got.gradients, ref.gradients)
    if max(shares.values()) <= 1 or got.gradients_without is None or ref.gradients_without is None:
        return as_values(shares), ""
    left_out: tuple[int, ...] = ()
    reduced = shares
    while max(reduced.values()) > 1 and len(left_out) < MAX_FLIPPED:
        examples = [i for i in range(len(ref.logits)) if i not in left_out]
        tries = {i: measure(got.gradients_without(tuple(sorted(left_out + (i,)))),
                            ref.gradients_without(tuple(sorted(left_out + (i,))))) for i in examples}
        best = min(tries, key=lambda i: max(tries[i].values()))
        left_out, reduced = left_out + (best,), tries[best]
    values = as_values(shares)
    if max(reduced.values()) > 1:
        return values, (f"leaving out up to {MAX_FLIPPED} examples does not bring the gradients within the "
                        "tolerance: not a float32 decision at a ReLU or max-pool tie")
    return as_values(reduced), (f"example{'s' * (len(left_out) > 1)} {', '.join(map(str, sorted(left_out)))} of the batch "
                     f"left out: a ReLU or max-pool decision float32 makes the other way (with "
                     f"{'them' if len(left_out) > 1 else 'it'}, the largest difference is {max(values.values()):.2g})")


def _gradient_kind(ref: Trace, name: str) -> str:
    """``gradient before BatchNorm`` for the parameters of a layer a BatchNorm normalises, else ``gradient``."""
    return "gradient before BatchNorm" if name in ref.before_batchnorm else "gradient"


def _optimizer_margin(name: str, hp: dict, got: Trace, ref: Trace, evaluations: int = 1) -> tuple[float, str]:
    """The largest ``|got - ref| / (evaluations * MARGIN * bound)`` over every parameter and state
    entry after the optimizer check's steps, the bound derived from the update rule
    (common/rounding.py). ``evaluations``: how many of the two are float32 evaluations, each
    within ``MARGIN * bound`` of the exact update (1 against the float64 reference, 2 between
    two float32 runs)."""
    spec = Hyperparameters(model=ref.model, **hp).optimizer_spec()
    params, state = replay(spec, ref.start, ref.step_gradients)
    bounds = {**params, **state}
    (got_params, got_state), (ref_params, ref_state) = got.optimizers[name], ref.optimizers[name]
    got_all, ref_all = {**got_params, **got_state}, {**ref_params, **ref_state}
    worst, where, largest = 0.0, "", 0.0
    for key, ref_value in ref_all.items():
        diff = np.abs(np.asarray(got_all[key], np.float64) - np.asarray(ref_value, np.float64))
        if key not in bounds:  # a counter (Adam's step): exact
            if np.any(diff):
                return np.inf, f"{key} is {got_all[key]}, the reference's {ref_value}"
            continue
        bound = evaluations * MARGIN * bounds[key].error
        ratio = diff / bound
        i = int(np.argmax(ratio))
        if ratio.flat[i] >= worst:
            worst, where = float(ratio.flat[i]), f"{key}: |Δ| {diff.flat[i]:.2g}, bound there {bound.flat[i]:.2g}"
        largest = max(largest, float(bound.max()))
    diffs = max(max_abs(got_all[k], ref_all[k]) for k in ref_all)
    return worst, f"largest |Δ| {diffs:.2g}; closest to its bound {where}; largest bound {largest:.2g}"


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
    """Every check for one backend and model. ``batches`` holds at least ``OPTIMIZER_STEPS``
    (X, y) batches; ``train_batches`` (optional) are the batches of the N-step training check.
    The reference always runs on the CPU; pass its ``reference_trace`` to reuse it across backends."""
    if train_batches is not None:
        train_batches = list(train_batches)
    ref = reference_trace or trace(reference or reference_backend(), model, batches, seed=seed,
                                   train_batches=train_batches)
    return compare(trace(backend, model, batches, device=device, seed=seed, train_batches=train_batches,
                         step_gradients=ref.step_gradients), ref)


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
    devices: int = 1  # replicas per backend (data parallel)
    precision: dict[str, str] = field(default_factory=dict)  # backend -> the TF32 setting in force
    checks: list[Check] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def worst(self) -> Check | None:
        """The check that used the largest share of its tolerance."""
        return max(self.checks, key=lambda c: c.ratio, default=None)

    def to_dict(self) -> dict:
        worst = self.worst
        return {**{k: v for k, v in asdict(self).items() if k != "checks"},
                "passed": self.passed, "worst": worst.to_dict() if worst else None,
                "checks": [c.to_dict() for c in self.checks]}

    @classmethod
    def from_dict(cls, record: dict) -> "ParityRun":
        """The run :meth:`to_dict` wrote (``crossframe parity --devices N`` reads each backend's)."""
        names = {f.name for f in fields(cls)} - {"checks"}
        checks = [Check(**{f.name: c[f.name] for f in fields(Check)}) for c in record["checks"]]
        return cls(**{k: v for k, v in record.items() if k in names}, checks=checks)

    @classmethod
    def merged(cls, runs: list["ParityRun"]) -> "ParityRun":
        """One run of every backend of ``runs`` (the same settings, a backend each)."""
        first = runs[0]
        return dataclasses.replace(first, backends=[b for r in runs for b in r.backends],
                                   precision={k: v for r in runs for k, v in r.precision.items()},
                                   checks=[c for r in runs for c in r.checks])


def load_parity_data(dataset: str = "fashion-mnist", *, steps: int = STEPS, batch_size: int = BATCH_SIZE,
                     seed: int = 0, data_dir=None, download: bool = True):
    """The data of ``crossframe parity``: just enough training images for its batches (the test
    suite loads it here too, so that it checks the command's own batches)."""
    from ..data import load_data

    limit = min(max(steps, OPTIMIZER_STEPS) * batch_size, 60_000)
    return load_data(dataset, data_dir=data_dir, batch_size=batch_size, seed=seed, limit_train=limit, limit_val=1,
                     download=download)


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
    steps: int = STEPS,
    device: str = "cpu",
    seed: int = 0,
    tf32_mode: str = "default",
    on_model: Callable[[ParityRun, str], None] | None = None,
    devices: int = 1,
) -> ParityRun:
    """Every check for every backend and model, on ``steps`` batches of ``data``. The reference
    runs once per model; ``on_model(run, model)`` is called as each model is done. ``devices``
    > 1: each backend runs data-parallel on that many replicas, checked against the reference
    and against the same backend on one device (:func:`compare_replicas`)."""
    batches = training_batches(data, max(steps, OPTIMIZER_STEPS))
    result = ParityRun(reference_backend(), list(backends), list(models), device, seed, steps,
                       data.batch_size, tf32_mode, devices=devices)
    for model in models:
        ref = trace(result.reference, model, batches, seed=seed, train_batches=batches[:steps])
        for backend in backends:
            with tf32(backend, tf32_mode) as setting:
                run_on = partial(trace, backend, model, batches, device=device, seed=seed,
                                 train_batches=batches[:steps], step_gradients=ref.step_gradients)
                got = run_on(devices=devices)
                result.checks += compare(got, ref)
                if devices > 1:
                    result.checks += compare_replicas(got, run_on(devices=1))
            result.precision[backend] = setting
        if on_model is not None:
            on_model(result, model)
    return result

"""The contract every backend implements: ``Classifier``, named after d2l's.

A backend subclass builds its network from ``self.spec`` (common/models.py), loads the
shared initial parameters, and implements the abstract methods below in its framework's
own idiom. Everything framework-neutral — hyperparameter checks, the parameter exchange
format, save/load, and the default epoch loops the Trainer drives — lives here, once.

Metrics returned by ``training_step`` / ``validation_step`` are the framework's own 0-d
values (tensors or arrays), not Python floats: reading them forces a device sync, so the
epoch loops below only add them up on the device and the Trainer reads the totals once.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Iterable, Iterator

import numpy as np

from . import checkpoint
from .parallel import check_parallel
from .batchnorm import check_batch, check_buffers, initial_buffers, split_state
from .checks import check_finite, check_image_shape, check_label_vector, check_logits_shape
from .dropout import StepPosition, key_words
from .init import init_params
from .models import Dropout, ModelSpec, build_spec, output_shape
from .settings import Hyperparameters


@dataclass
class EpochTotals:
    """Sums over one pass, kept as the framework's own values until :meth:`read`.

    ``loss_sum`` is the sum of per-batch mean losses weighted by batch size and
    ``correct`` the number of right answers, so ``loss_sum / count`` and
    ``correct / count`` are exact epoch averages, the last partial batch included.
    """

    loss_sum: Any = 0.0
    correct: Any = 0
    count: int = 0
    batch_losses: list = field(default_factory=list)

    def add(self, metrics: dict[str, Any], size: int) -> None:
        self.loss_sum = self.loss_sum + metrics["loss"] * size
        self.correct = self.correct + metrics["correct"]
        self.count += size
        self.batch_losses.append(metrics["loss"])

    def read(self) -> tuple[float, float]:
        """(mean loss, accuracy) as Python floats: the one device sync of an epoch."""
        if self.count == 0:
            return float("nan"), float("nan")
        return float(self.loss_sum) / self.count, float(self.correct) / self.count

    @classmethod
    def stacked(cls, losses: np.ndarray, correct: np.ndarray, plan) -> "EpochTotals":
        """The totals of one program that ran every batch of ``plan`` and returned each batch's mean
        loss and correct count stacked (read back once, when the program is done)."""
        losses = np.asarray(losses, dtype=np.float64)
        return cls(loss_sum=float(np.dot(losses, plan.batch_sizes())), correct=int(np.sum(correct)),
                   count=plan.num_examples, batch_losses=losses)

    def batch_loss_values(self) -> np.ndarray:
        """The per-batch mean losses as float64 NumPy (one device read per batch: use sparingly)."""
        if isinstance(self.batch_losses, list):
            return np.array([float(v) for v in self.batch_losses], dtype=np.float64)
        return np.asarray(self.batch_losses, dtype=np.float64)


# ``on_progress(done, totals)``: ``done`` batches of the epoch are finished, ``totals`` holds their
# sums. A loop calls it after every step; an epoch run as one program, once at the end.
ProgressCallback = Callable[[int, EpochTotals], None]


class Classifier(abc.ABC):
    """An image classifier with one framework behind it.

    Subclasses set ``backend`` and implement the abstract methods; ``__init__`` must end
    with the network holding ``init_params(...)`` for the given seed and BatchNorm's
    ``initial_buffers()``, and the optimizer from ``configure_optimizers()`` ready.
    """

    backend: ClassVar[str]

    #: what runs it on several devices (README, "More than one device"); None: one device only
    parallel_engine: ClassVar[str | None] = None

    def __init__(self, model: str, **hparams: Any) -> None:
        """``hparams``: the :class:`~crossframe.common.settings.Hyperparameters` other than the model
        (num_classes, input_shape, lr, momentum, weight_decay, optimizer, seed, device)."""
        self.hparams = Hyperparameters.of(model, **hparams)
        self.spec: ModelSpec = build_spec(model, input_shape=self.hparams.input_shape,
                                          num_classes=self.hparams.num_classes)
        if self.hparams.devices > 1:
            from .registry import meta  # here: the registry imports this module

            check_parallel(self.backend, meta(self.backend).parallel, self.spec, self.hparams.devices)
        # the (epoch, step) of the next training step: the key of its dropout masks (common/dropout.py)
        self.step_position = StepPosition()

    # ------------------------------------------------------------------ the contract

    @abc.abstractmethod
    def forward(self, X, *, train: bool = False):
        """Logits for a batch of images (N, C, H, W); NumPy or native in, native out.

        Eval mode by default: BatchNorm normalises with its running statistics and dropout is
        the identity. ``train=True`` computes what the next training step computes (batch
        statistics, the masks of ``step_position``) and changes nothing: no running statistic
        is updated and the position does not advance."""

    def __call__(self, X):
        return self.forward(X)

    @abc.abstractmethod
    def loss(self, Y_hat, Y):
        """Mean cross-entropy of integer labels ``Y`` under logits ``Y_hat``."""

    @abc.abstractmethod
    def accuracy(self, Y_hat, Y, averaged: bool = True):
        """Fraction of rows whose argmax is the label (ties: lowest index), or per-row 0/1."""

    @abc.abstractmethod
    def configure_optimizers(self):
        """The framework's own optimizer object for ``self.hparams``."""

    def training_step(self, batch) -> dict[str, Any]:
        """One optimizer update on ``(X, y)``; returns ``{"loss", "accuracy", "correct"}``.

        In train mode: BatchNorm uses the batch's statistics and updates its running ones;
        dropout draws the masks of ``step_position``, which then advances by one step.
        The inputs are checked and converted here (``_images``, ``_labels``); the update itself
        is the backend's ``_train_step``."""
        X, y = batch
        X, y = self._images(X), self._labels(y)
        check_batch(self.spec, int(y.shape[0]))
        return self._counted_train_step(X, y)

    def validation_step(self, batch) -> dict[str, Any]:
        """Loss and accuracy on ``(X, y)`` without an update; same keys as training_step."""
        X, y = batch
        return self._eval_step(self._images(X), self._labels(y))

    @abc.abstractmethod
    def gradients(self, batch) -> dict[str, np.ndarray]:
        """d(mean loss)/d(parameter) on ``(X, y)``, exchange format, without an update: in train
        mode, as ``forward(X, train=True)`` (the next step's masks; no state changes)."""

    def apply_gradients(self, grads: dict[str, np.ndarray]) -> None:
        """One optimizer update from ``grads`` (exchange format) instead of a batch's own gradients.

        The update ``training_step`` makes after its backward pass, on given gradients: the
        parity checks feed every backend's optimizer the same float32 parameters and gradients
        this way, so that they measure the optimizer alone (common/parity.py)."""
        grads = checkpoint.check_params(grads, self.spec, what="gradients")
        for name, g in grads.items():
            check_finite(g, what=f"gradient {name}")
        self._apply_gradients(grads)

    @abc.abstractmethod
    def get_params(self) -> dict[str, np.ndarray]:
        """The parameters in the exchange format: canonical names, layout, float32 NumPy."""

    @abc.abstractmethod
    def set_params(self, params: dict[str, np.ndarray]) -> None:
        """Load parameters given in the exchange format (checked against the spec)."""

    @abc.abstractmethod
    def get_buffers(self) -> dict[str, np.ndarray]:
        """BatchNorm's buffers in the exchange format (``spec.buffer_shapes()``: running statistics
        float32, ``num_batches_tracked`` int64); empty for a model without BatchNorm."""

    @abc.abstractmethod
    def set_buffers(self, buffers: dict[str, np.ndarray]) -> None:
        """Load buffers given in the exchange format (checked against the spec)."""

    @abc.abstractmethod
    def get_optimizer_state(self) -> dict[str, np.ndarray]:
        """The optimizer's state in a framework-neutral form (see common/checkpoint.py)."""

    @abc.abstractmethod
    def set_optimizer_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore a state produced by :meth:`get_optimizer_state` of any backend."""

    @staticmethod
    @abc.abstractmethod
    def to_numpy(x) -> np.ndarray:
        """A native array or tensor (on any device, tracked by autodiff or not) as NumPy."""

    @property
    @abc.abstractmethod
    def device(self) -> str:
        """Where the computation runs, in the framework's words (``cpu``, ``cuda:0`` ...)."""

    @staticmethod
    @abc.abstractmethod
    def framework_versions() -> dict[str, str]:
        """The versions of the libraries this backend runs on, for config.json and reports."""

    # ------------------------------------------------------------------ shared behaviour

    @property
    def model(self) -> str:
        return self.spec.name

    @property
    def world_size(self) -> int:
        """How many replicas really share each batch, as the engine reports it (1 on one device)."""
        return 1

    @property
    def num_classes(self) -> int:
        return self.spec.num_classes

    def initial_params(self) -> dict[str, np.ndarray]:
        """The shared starting point for this model and seed (the same in every backend)."""
        return init_params(
            self.spec.name, seed=self.hparams.seed, num_classes=self.num_classes, input_shape=self.spec.input_shape
        )

    def initial_buffers(self) -> dict[str, np.ndarray]:
        """BatchNorm's buffers before training, as PyTorch starts them (common/batchnorm.py)."""
        return initial_buffers(self.spec)

    def state_dict(self) -> dict[str, np.ndarray]:
        """Parameters and buffers together, in the exchange format: what a parameter file holds
        (named after PyTorch's ``state_dict``, which holds the same under the same names)."""
        return {**self.get_params(), **self.get_buffers()}

    def load_state_dict(self, arrays: dict[str, np.ndarray]) -> None:
        """Load what :meth:`state_dict` gave, from any backend (a model without BatchNorm: parameters only)."""
        params, buffers = split_state(arrays, self.spec)
        self.set_params(params)
        self.set_buffers(buffers)

    def save(self, path) -> None:
        """Write the parameters and buffers (exchange format) to ``path``: ``.npz`` or ``.safetensors``."""
        checkpoint.save_params(path, self.state_dict())

    def load(self, path) -> None:
        """Read parameters and buffers saved by any backend from ``path``."""
        self.load_state_dict(checkpoint.load_params(path))

    def checkpoint_state(self) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """(parameters and buffers, optimizer state) at the precision the backend computes in,
        for a checkpoint that resumes exactly. For float32 backends this is the exchange format;
        a float64 backend keeps float64 here (its ``get_params`` rounds to float32)."""
        return self.state_dict(), self.get_optimizer_state()

    def restore_state(self, params: dict[str, np.ndarray], optimizer_state: dict[str, np.ndarray] | None) -> None:
        """Load what :meth:`checkpoint_state` gave (``None``: keep the fresh optimizer)."""
        self.load_state_dict(params)
        if optimizer_state is not None:
            self.set_optimizer_state(optimizer_state)

    def check_params(self, params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """``params`` as float32 arrays if names and shapes match this model's spec."""
        return checkpoint.check_params(params, self.spec)

    def check_buffers(self, buffers: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """``buffers`` in the exchange format if names, shapes and values fit this model's BatchNorm layers."""
        return check_buffers(buffers, self.spec)

    # ------------------------------------------------------------------ dropout masks

    def mask_key(self) -> np.ndarray:
        """(seed, epoch, step) of the next training step as uint32 words: its dropout masks' key."""
        return key_words(self.hparams.seed, self.step_position)

    def dropout_masks(self, batch_size: int) -> dict[int, np.ndarray]:
        """The keep masks (booleans, canonical layout) the next training step draws for a batch of
        ``batch_size``, per dropout layer (``Dropout.layer``), computed by the backend's own ops."""
        shapes = dropout_input_shapes(self.spec)
        return {layer.layer: np.asarray(self.to_numpy(self._keep_mask(layer, (batch_size, *shapes[layer.layer]))),
                                        dtype=bool) for layer in self.spec.dropouts()}

    @abc.abstractmethod
    def _keep_mask(self, layer, shape: tuple[int, ...]):
        """The shared keep mask (common/dropout.py) of dropout ``layer`` (a spec) for an input of
        canonical ``shape``, at ``mask_key()``, in the framework's own arrays and integer ops."""

    # ------------------------------------------------------------------ epoch loops
    # The Trainer calls these. The defaults run one step per batch and keep the sums on
    # the device; a backend overrides them where its framework can do better (JAX runs
    # a whole epoch as one compiled program).

    def device_batches(self, plan) -> Iterable[tuple[Any, Any]]:
        """The batches of an EpochPlan in the backend's own arrays (default: NumPy)."""
        return iter(plan)

    def train_epoch(self, plan, on_progress: ProgressCallback | None = None) -> EpochTotals:
        """One pass of optimizer updates over ``plan``'s batches, in ``plan``'s order; its steps are
        ``(plan.epoch, 0)``, ``(plan.epoch, 1)`` ... (``step_position``: the dropout masks' key)."""
        self._begin_epoch(plan)
        return self._run(plan, self._counted_train_step, on_progress)

    def _begin_epoch(self, plan) -> None:
        """Check that every batch of ``plan`` can train (BatchNorm needs 2 values per channel) and
        put ``step_position`` at the epoch's first step."""
        check_batch(self.spec, min(plan.batch_sizes(), default=2))
        self.step_position = StepPosition(int(plan.epoch), 0)

    def _counted_train_step(self, X, y) -> dict[str, Any]:
        """``_train_step`` at ``step_position``, then the position advances by one step."""
        metrics = self._train_step(X, y)
        self.step_position = self.step_position.advanced()
        return metrics

    def evaluate(self, plan, on_progress: ProgressCallback | None = None) -> EpochTotals:
        """Loss and accuracy over ``plan`` without updates."""
        return self._run(plan, self._eval_step, on_progress)

    def _run(self, plan, step, on_progress: ProgressCallback | None) -> EpochTotals:
        totals = EpochTotals()
        for i, (X, y, size) in enumerate(_with_sizes(self.device_batches(plan), plan), start=1):
            totals.add(step(X, y), size)
            if on_progress is not None:
                on_progress(i, totals)
        return totals

    def _stacked_totals(self, plan, losses, correct, on_progress: ProgressCallback | None) -> EpochTotals:
        """The totals of an epoch run as one program (its per-batch losses and correct counts, native)."""
        totals = EpochTotals.stacked(self.to_numpy(losses), self.to_numpy(correct), plan)
        if on_progress is not None:
            on_progress(len(plan), totals)
        return totals

    @abc.abstractmethod
    def _train_step(self, X, y) -> dict[str, Any]:
        """training_step without input checks, on native arrays already on the device, with the
        dropout masks of ``mask_key()`` (the caller advances ``step_position``)."""

    @abc.abstractmethod
    def _apply_gradients(self, grads: dict[str, np.ndarray]) -> None:
        """apply_gradients without input checks: ``grads`` float32 NumPy in the exchange format."""

    @abc.abstractmethod
    def _eval_step(self, X, y) -> dict[str, Any]:
        """validation_step without input checks, on native arrays already on the device."""

    # ------------------------------------------------------------------ inputs on the device
    # Checked here, the same way for every backend (common/checks.py): frameworks differ on bad
    # input (JAX would index a label of -1 as the last class), so crossframe checks itself.

    def _images(self, X):
        """Images (NumPy or native) checked (finite, the model's shape) and on the device."""
        X = self._as_float(X, "images")
        check_image_shape(tuple(X.shape), self.spec.input_shape, self.model)
        return self._to_device_array(X)

    def _logits(self, Y_hat):
        """Logits (NumPy or native) checked (finite, (N, num_classes)) and on the device."""
        Y_hat = self._as_float(Y_hat, "logits")
        check_logits_shape(tuple(Y_hat.shape), self.num_classes)
        return self._to_device_array(Y_hat)

    def _labels(self, Y):
        """Labels checked on the host (a vector of integers in ``[0, num_classes)``) and on the device."""
        return self._to_device_array(check_label_vector(self.to_numpy(Y), self.num_classes))

    def _resident(self, array: np.ndarray):
        """``array`` (a dataset split) on the device, copied once per array and reused by every epoch."""
        cache = self.__dict__.setdefault("_on_device", {})
        key = id(array)
        if key not in cache or cache[key][0] is not array:  # the id of a freed array may be reused
            cache[key] = (array, self._to_device_array(array))
        return cache[key][1]

    @abc.abstractmethod
    def _as_float(self, x, what: str):
        """``x`` (NumPy or native) as the backend's float array after the finiteness check; a
        native array stays native (checked on its device, read back only to name a bad value)."""

    @abc.abstractmethod
    def _to_device_array(self, array):
        """A NumPy or native array on the device: floats as they are, integer labels as the
        framework indexes with them."""


def dropout_input_shapes(spec: ModelSpec) -> dict[int, tuple[int, ...]]:
    """The canonical input shape (without the batch) of each dropout layer, by its mask key."""
    shapes, shape = {}, spec.input_shape
    for layer in spec.layers:  # dropout sits in the top-level layers of every model
        if isinstance(layer, Dropout):
            shapes[layer.layer] = shape
        shape = output_shape((layer,), shape)
    return shapes


def _with_sizes(batches: Iterable, plan) -> Iterator[tuple[Any, Any, int]]:
    """Attach each batch's size from the plan (known on the host, so no device sync)."""
    for (X, y), size in zip(batches, plan.batch_sizes()):
        yield X, y, size

"""Which backends exist, which can run here, and how to make a classifier of one.

A backend is the package ``crossframe.backends.<name>``; it exposes ``CLASSIFIER``, its
:class:`~crossframe.common.classifier.Classifier` subclass. Its framework is imported the
first time the backend is used, never by ``import crossframe``.
"""

from __future__ import annotations

import functools
import importlib
from types import ModuleType

from .classifier import Classifier
from .errors import BackendUnavailable, UserError

BACKENDS: tuple[str, ...] = ("torch", "jax", "tf", "numpy")

# The top-level modules each backend needs, and the pip extra that installs them.
_FRAMEWORK_MODULES = {
    "torch": ("torch",),
    "jax": ("jax", "flax", "optax"),
    "tf": ("tensorflow",),
    "numpy": ("numpy",),
}
_INSTALL_HINT = {
    "torch": 'pip install "crossframe[torch]" (on a CPU-only machine first: pip install torch --index-url https://download.pytorch.org/whl/cpu)',
    "jax": 'pip install "crossframe[jax]"',
    "tf": 'pip install "crossframe[tf]"',
    "numpy": "pip install numpy",
}
_FRAMEWORK_NAMES = {"torch": "PyTorch", "jax": "JAX, Flax and Optax", "tf": "TensorFlow", "numpy": "NumPy"}


def check_backend_name(name: str) -> str:
    if name not in BACKENDS:
        raise UserError(f"unknown backend {name!r}; choose one of: {', '.join(BACKENDS)}")
    return name


def load_backend(name: str) -> ModuleType:
    """Import ``crossframe.backends.<name>``; a missing framework names the pip extra to install."""
    check_backend_name(name)
    try:
        return importlib.import_module(f"{__package__.rpartition('.')[0]}.backends.{name}")
    except ModuleNotFoundError as err:
        missing = (err.name or "").split(".")[0]
        if missing in _FRAMEWORK_MODULES[name]:
            raise BackendUnavailable(
                f"backend {name!r} needs {_FRAMEWORK_NAMES[name]}, which is not installed here "
                f"({missing} is missing): {_INSTALL_HINT[name]}"
            ) from None
        if err.name == f"{__package__.rpartition('.')[0]}.backends.{name}":
            raise BackendUnavailable(f"backend {name!r} is not part of this crossframe version") from None
        raise


@functools.cache
def _importable(name: str) -> bool:
    try:
        load_backend(name)
    except BackendUnavailable:
        return False
    return True


def available_backends() -> tuple[str, ...]:
    """The backends whose framework imports here, in the order of ``BACKENDS``."""
    return tuple(name for name in BACKENDS if _importable(name))


def classifier(
    backend: str,
    model: str,
    *,
    num_classes: int = 10,
    input_shape: tuple[int, int, int] = (1, 28, 28),
    lr: float = 0.01,
    momentum: float = 0.0,
    weight_decay: float = 0.0,
    optimizer: str = "sgd",
    seed: int = 0,
    device: str = "auto",
    dropout_rng: str = "shared",
) -> Classifier:
    """A ``Classifier`` of ``model`` in ``backend``, starting from ``init_params(model, seed=seed)``."""
    cls = load_backend(backend).CLASSIFIER
    return cls(
        model,
        num_classes=num_classes,
        input_shape=input_shape,
        lr=lr,
        momentum=momentum,
        weight_decay=weight_decay,
        optimizer=optimizer,
        seed=seed,
        device=device,
        dropout_rng=dropout_rng,
    )


_DETERMINISTIC: set[str] = set()  # the backends switched to deterministic ops in this process


def enable_determinism(backend: str) -> None:
    """Make ``backend``'s framework compute deterministically, process-wide, through the
    backend's own ``enable_determinism()``; a backend without that switch refuses."""
    switch = getattr(load_backend(backend), "enable_determinism", None)
    if switch is None:
        raise UserError(f"--deterministic: backend {backend!r} has no switch for deterministic ops; drop the flag")
    switch()
    _DETERMINISTIC.add(backend)


def determinism_enabled(backend: str) -> bool:
    """Whether ``enable_determinism(backend)`` ran in this process (run folders record it)."""
    return backend in _DETERMINISTIC

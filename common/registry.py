"""Which backends exist, which can run here, and how to make a classifier of one.

A backend is a folder ``crossframe/backends/<name>/`` holding a ``meta.py`` (plain data, read
without importing anything: the framework's name, the modules it imports, the command that
installs them, where it stands in lists, its devices, Keras' name for the same framework) and
a package whose ``CLASSIFIER`` is its :class:`~crossframe.common.classifier.Classifier`
subclass. The backends are found by looking for those folders, so adding one touches only
its own folder (README, "Layout"). Its framework is imported the first time the backend is
used, never by ``import crossframe``.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import runpy
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType

from .classifier import Classifier
from .settings import Hyperparameters
from .errors import BackendUnavailable, UserError

PACKAGE = __package__.rpartition(".")[0]  # crossframe


@dataclass(frozen=True)
class BackendMeta:
    """A backend's ``meta.py``."""

    name: str
    framework: str
    modules: tuple[str, ...]
    install: str
    order: int
    devices: tuple[str, ...]
    keras_backend: str | None
    parallel: str | None = None  # how it runs on several devices: common/parallel.py's launch
    parallel_env: tuple[tuple[str, str], ...] = ()  # set before its framework starts, {n}: the device count


@functools.cache
def discover() -> dict[str, BackendMeta]:
    """Every backend folder (a ``meta.py`` in a folder of ``crossframe.backends``' path), in order."""
    found: dict[str, BackendMeta] = {}
    for root in importlib.import_module(f"{PACKAGE}.backends").__path__:
        for meta in sorted(Path(root).glob("*/meta.py")):
            name = meta.parent.name
            if name.isidentifier() and name not in found:
                values = runpy.run_path(str(meta))
                found[name] = BackendMeta(name, values["FRAMEWORK"], tuple(values["MODULES"]), values["INSTALL"],
                                          int(values["ORDER"]), tuple(values["DEVICES"]), values["KERAS_BACKEND"],
                                          values.get("PARALLEL"), tuple(values.get("PARALLEL_ENV", {}).items()))
    return dict(sorted(found.items(), key=lambda item: (item[1].order, item[0])))


def backend_names() -> tuple[str, ...]:
    """Every backend of this crossframe, installed or not, in order."""
    return tuple(discover())


def __getattr__(name: str):
    if name == "BACKENDS":  # the names, looked up when asked for (crossframe.BACKENDS)
        return backend_names()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def meta(name: str) -> BackendMeta:
    return discover()[check_backend_name(name)]


def check_backend_name(name: str) -> str:
    if name not in discover():
        raise UserError(f"unknown backend {name!r}; choose one of: {', '.join(backend_names())}")
    return name


def load_backend(name: str) -> ModuleType:
    """Import ``crossframe.backends.<name>``; a missing framework names the pip extra to install."""
    info = meta(name)
    try:
        return importlib.import_module(f"{PACKAGE}.backends.{name}")
    except ModuleNotFoundError as err:
        missing = (err.name or "").split(".")[0]
        if missing in info.modules:
            raise BackendUnavailable(
                f"backend {name!r} needs {info.framework} ({', '.join(info.modules)}), which is not installed here "
                f"({missing} is missing): {info.install}"
            ) from None
        if err.name == f"{PACKAGE}.backends.{name}":
            raise BackendUnavailable(f"backend {name!r} is not part of this crossframe version") from None
        raise


def device_module(name: str) -> ModuleType:
    """``crossframe.backends.<name>.device``: its device choice and its switches (TF32,
    deterministic ops, peak device memory; ``None`` where the framework has none)."""
    load_backend(name)
    return importlib.import_module(f"{PACKAGE}.backends.{name}.device")


@functools.cache
def _importable(name: str) -> bool:
    try:
        load_backend(name)
    except BackendUnavailable:
        return False
    return True


def available_backends() -> tuple[str, ...]:
    """The backends whose framework imports here (importing them), in order."""
    return tuple(name for name in discover() if _importable(name))


def installed_backends() -> tuple[str, ...]:
    """The backends whose framework is installed, found without importing any framework."""
    return tuple(name for name, info in discover().items() if all(_findable(m) for m in info.modules))


def _findable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # ValueError: set to None in sys.modules, i.e. blocked
        return False


def classifier(backend: str, model: str, **hparams) -> Classifier:
    """A ``Classifier`` of ``model`` in ``backend``, starting from ``init_params(model, seed=seed)``;
    ``hparams`` are :class:`~crossframe.common.settings.Hyperparameters` (lr, momentum, seed, ...)."""
    return load_backend(backend).CLASSIFIER(model, **hparams)


def classifier_for(backend: str, hparams: Hyperparameters) -> Classifier:
    """A ``Classifier`` in ``backend`` with these Hyperparameters."""
    settings = asdict(hparams)
    return classifier(backend, settings.pop("model"), **settings)


_DETERMINISTIC: set[str] = set()  # the backends switched to deterministic ops in this process


def enable_determinism(backend: str) -> None:
    """Make ``backend``'s framework compute deterministically, process-wide, through its device
    module's ``enable_determinism()``; a backend without that switch (``None``) refuses."""
    switch = device_module(backend).enable_determinism
    if switch is None:
        raise UserError(f"--deterministic: backend {backend!r} has no switch for deterministic ops; drop the flag")
    switch()
    _DETERMINISTIC.add(backend)


def determinism_enabled(backend: str) -> bool:
    """Whether ``enable_determinism(backend)`` ran in this process (run folders record it)."""
    return backend in _DETERMINISTIC

"""crossframe: one image classifier in PyTorch, JAX and TensorFlow behind one API,
with a float64 NumPy reference beside them and tests that prove they agree.

Importing crossframe imports no framework: a backend's framework is imported the first
time that backend is used. The names below are imported on first use too (PEP 562), so
``python -m crossframe`` starts in milliseconds and a Ctrl-C during the slow imports that
follow reaches the command line's handler, which says "interrupted" in one line.

>>> import crossframe
>>> data = crossframe.load_data("fashion-mnist", limit_train=2000)      # doctest: +SKIP
>>> model = crossframe.classifier("torch", "mlp", lr=0.01, momentum=0.5)  # doctest: +SKIP
>>> history = crossframe.Trainer(max_epochs=1).fit(model, data)           # doctest: +SKIP
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

#: public name -> the module that defines it
_EXPORTS = {
    "BACKENDS": ".common.registry",
    "MODELS": ".common.models",
    "Classifier": ".common.classifier",
    "DataModule": ".data",
    "Trainer": ".common.trainer",
    "available_backends": ".common.registry",
    "classifier": ".common.registry",
    "init_params": ".common.init",
    "load_data": ".data",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    if name != "BACKENDS":  # looked up each time: the backends are found on disk (common/registry.py)
        globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})

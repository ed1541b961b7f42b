"""crossframe: one image classifier in PyTorch, JAX and TensorFlow behind one API,
with a float64 NumPy reference beside them and tests that prove they agree.

Importing crossframe imports no framework: a backend's framework is imported the first
time that backend is used.

>>> import crossframe
>>> data = crossframe.load_data("fashion-mnist", limit_train=2000)      # doctest: +SKIP
>>> model = crossframe.classifier("torch", "mlp", lr=0.01, momentum=0.5)  # doctest: +SKIP
>>> history = crossframe.Trainer(max_epochs=1).fit(model, data)           # doctest: +SKIP
"""

from __future__ import annotations

from .common.classifier import Classifier
from .common.init import init_params
from .common.models import MODELS
from .common.registry import BACKENDS, available_backends, classifier
from .common.trainer import Trainer
from .data import DataModule, load_data

__version__ = "0.1.0"

__all__ = [
    "BACKENDS",
    "MODELS",
    "Classifier",
    "DataModule",
    "Trainer",
    "available_backends",
    "classifier",
    "init_params",
    "load_data",
]

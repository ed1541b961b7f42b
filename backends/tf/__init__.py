"""The TensorFlow backend: ``tf.Module``s built from the shared specs, ``tf.GradientTape``, XLA-compiled steps."""

from .classifier import TFClassifier
from .device import enable_determinism

CLASSIFIER = TFClassifier

__all__ = ["CLASSIFIER", "TFClassifier", "enable_determinism"]

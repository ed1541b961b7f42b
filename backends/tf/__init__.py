"""The TensorFlow backend: ``tf.Module``s built from the shared specs, ``tf.GradientTape``, XLA-compiled steps."""

from .quiet import import_tensorflow

import_tensorflow()  # before the modules below import it: TensorFlow's start-up lines stay off stderr

from .classifier import TFClassifier  # noqa: E402

CLASSIFIER = TFClassifier

__all__ = ["CLASSIFIER", "TFClassifier"]

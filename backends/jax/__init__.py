"""The JAX backend: Flax Linen modules built from the shared specs, Optax, pure jitted steps."""

from .classifier import JaxClassifier
from .steps import eval_step, train_step

CLASSIFIER = JaxClassifier

__all__ = ["CLASSIFIER", "JaxClassifier", "eval_step", "train_step"]

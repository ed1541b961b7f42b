"""The PyTorch backend: ``nn.Module``s built from the shared specs, ``torch.optim``, ``F.cross_entropy``."""

from .classifier import TorchClassifier

CLASSIFIER = TorchClassifier

__all__ = ["CLASSIFIER", "TorchClassifier"]

"""The NumPy backend: the float64 reference, with every forward and backward pass written by hand."""

from .classifier import NumpyClassifier

CLASSIFIER = NumpyClassifier

__all__ = ["CLASSIFIER", "NumpyClassifier"]

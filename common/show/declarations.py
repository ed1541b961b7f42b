"""What each backend declares in its ``concepts.py``: where it implements each concept.

A backend's ``backends/<name>/concepts.py`` is plain data and imports nothing, so it is
read with ``runpy.run_path`` without importing the backend's package (whose ``__init__``
imports the framework). It holds:

- ``CONCEPTS``: for every concept of :mod:`.catalog`, one of
  - a list of references ``"module:qualname"`` (the module relative to the backend's
    folder; ``"module:__doc__"`` is that module's docstring, shown as a note);
  - for a concept that depends on the model, a dict from a layer type of common/models.py
    (``"Conv2d"``, ``"Residual"`` ...) to such a list, ``"*"`` for every model;
  - a string: why the framework needs no code of its own for it (shown as
    "not needed in <FRAMEWORK>: <why>").
"""

from __future__ import annotations

import functools
import runpy
from dataclasses import dataclass
from typing import Union

from ..models import ModelSpec, Residual
from ..registry import meta
from .locate import package_folder

EVERY_MODEL = "*"
Declaration = Union[str, list, dict]


@dataclass(frozen=True)
class Declarations:
    backend: str
    framework: str
    concepts: dict[str, Declaration]

    @property
    def package(self) -> str:
        return f"backends.{self.backend}"


@functools.lru_cache(maxsize=None)
def declarations(backend: str) -> Declarations:
    """``backends/<backend>/concepts.py``, read without importing the backend."""
    found = runpy.run_path(str(package_folder(f"backends.{backend}") / "concepts.py"))
    return Declarations(backend, meta(backend).framework, found["CONCEPTS"])  # the name from its meta.py


def refs_for(declaration: Declaration, spec: ModelSpec | None) -> list[str] | str:
    """The references a declaration gives for ``spec`` (in the order the spec's layers first
    appear, each once), or its reason string. ``spec`` None: every layer type's."""
    if isinstance(declaration, str):
        return declaration
    if isinstance(declaration, list):
        return list(declaration)
    keys = [EVERY_MODEL, *(layer_types(spec) if spec is not None else declaration)]
    return list(dict.fromkeys(ref for key in keys for ref in declaration.get(key, ())))


def layer_types(spec: ModelSpec) -> list[str]:
    """The names of the layer types ``spec`` uses, inside residual blocks too, in order of appearance."""
    found: dict[str, None] = {}

    def walk(layers) -> None:
        for layer in layers:
            found[type(layer).__name__] = None
            if isinstance(layer, Residual):
                walk(layer.body + layer.shortcut)

    walk(spec.layers)
    return list(found)

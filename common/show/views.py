"""A concept's code in every backend asked for: what ``show`` prints and the page lays out."""

from __future__ import annotations

import ast
from dataclasses import dataclass

from .. import models
from .catalog import Concept
from .declarations import declarations, refs_for
from .locate import Snippet, locate


@dataclass(frozen=True)
class Column:
    """One backend's side of a concept: its code, or why its framework needs none."""

    backend: str
    framework: str
    snippets: tuple[Snippet, ...] = ()
    not_needed: str | None = None

    @property
    def notes(self) -> tuple[Snippet, ...]:
        return tuple(s for s in self.snippets if s.is_note)

    @property
    def code(self) -> tuple[Snippet, ...]:
        return tuple(s for s in self.snippets if not s.is_note)

    @property
    def reason(self) -> str | None:
        return None if self.not_needed is None else f"not needed in {self.framework}: {self.not_needed}"


@dataclass(frozen=True)
class ConceptView:
    concept: Concept
    model: str | None  # the model whose layers were shown (concepts that take one)
    shared: tuple[Snippet, ...]
    columns: tuple[Column, ...]


def concept_view(concept: Concept, backends: list[str], model: str) -> ConceptView:
    """``concept`` in each of ``backends``; ``model`` chooses the layers where the concept takes one."""
    spec = models.build_spec(model) if concept.takes_model else None
    shared = [*concept.shared, *(model_spec_refs(model) if concept.name == "model" else ())]
    columns = []
    for backend in backends:
        declared = declarations(backend)
        refs = refs_for(declared.concepts[concept.name], spec)
        if isinstance(refs, str):
            columns.append(Column(backend, declared.framework, not_needed=refs))
        else:
            columns.append(Column(backend, declared.framework, tuple(locate(declared.package, r) for r in refs)))
    return ConceptView(concept, model if concept.takes_model else None,
                       tuple(locate("", ref) for ref in shared), tuple(columns))


def model_spec_refs(model: str) -> list[str]:
    """The spec of ``model`` in common/models.py: its builder and the private helpers it calls
    (``_resnet`` builds its blocks with ``_block``)."""
    builder = models._BUILDERS[model].__name__  # the spec's own table of builders
    snippet = locate("", f"common.models:{builder}")
    called = {node.func.id for node in ast.walk(ast.parse(snippet.text))
              if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)}
    helpers = sorted(name for name in called if name.startswith("_") and name in vars(models))
    return [f"common.models:{name}" for name in [builder, *helpers]]


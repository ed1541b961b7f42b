"""The source of a function, class, method or constant, found in the module's file with ``ast``.

Why ``ast`` and not ``inspect.getsource``: ``inspect`` needs the object, so showing the JAX
code would import JAX (and TensorFlow's import alone takes seconds); and a backend whose
framework is not installed could not be shown at all. ``ast`` reads the same installed file
(located with ``importlib.util.find_spec``, so it is the code that runs, never a copy) and
gives the same lines, decorators included, without importing anything.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import textwrap
from dataclasses import dataclass
from pathlib import Path

PACKAGE = __package__.split(".")[0]  # crossframe
MODULE_DOCSTRING = "__doc__"  # "module:__doc__" names a module's docstring: a note, not code


@dataclass(frozen=True)
class Snippet:
    """What a reference ("module:qualname") names: its code (dedented) or, for a module's docstring, its text."""

    ref: str
    path: str  # relative to the crossframe package: backends/torch/classifier.py
    line: int  # the first line shown, 1-based
    text: str
    is_note: bool = False

    @property
    def qualname(self) -> str:
        return self.ref.partition(":")[2]

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"

    @property
    def title(self) -> str:
        return "module docstring" if self.is_note else self.qualname


def package_root() -> Path:
    """The folder of the installed crossframe package (the repository root in an editable install),
    from ``importlib.util.find_spec``: the files that are imported, without importing any backend."""
    return Path(importlib.util.find_spec(PACKAGE).submodule_search_locations[0])


def package_folder(package: str) -> Path:
    """The folder of ``crossframe.<package>`` (``backends.torch``; ``""``: crossframe itself). Found
    from crossframe's own folder, not the subpackage's spec: ``find_spec`` of a backend would
    import nothing heavy either, but it answers None for a backend blocked in ``sys.modules``,
    whose code a reader may still want to read."""
    folder = package_root().joinpath(*package.split(".")) if package else package_root()
    if not folder.is_dir():
        raise LookupError(f"no package {PACKAGE}.{package} in {package_root()}")
    return folder


def locate(package: str, ref: str) -> Snippet:
    """The code ``ref`` ("module:qualname", the module relative to ``crossframe.<package>``) names."""
    module, sep, qualname = ref.partition(":")
    if not (sep and module and qualname):
        raise LookupError(f"{ref!r} is not of the form 'module:qualname'")
    file = package_folder(package) / (module.replace(".", "/") + ".py")
    if not file.is_file():
        raise LookupError(f"{ref!r}: there is no {file}")
    lines, tree = _parse(file)
    path = file.relative_to(package_root()).as_posix()
    full_ref = f"{package}.{ref}" if package else ref
    if qualname == MODULE_DOCSTRING:
        doc = ast.get_docstring(tree)
        if doc is None:
            raise LookupError(f"{path} has no module docstring")
        return Snippet(full_ref, path, tree.body[0].lineno, doc, is_note=True)
    node = _find(tree, qualname.split("."))
    if node is None:
        raise LookupError(f"{path} defines no {qualname}")
    start = _first_line(node, lines)
    return Snippet(full_ref, path, start, textwrap.dedent("".join(lines[start - 1:node.end_lineno])).rstrip() + "\n")


@functools.lru_cache(maxsize=None)
def _parse(file: Path) -> tuple[list[str], ast.Module]:
    source = file.read_text(encoding="utf-8")
    return source.splitlines(keepends=True), ast.parse(source, filename=str(file))


def _find(scope: ast.AST, parts: list[str]) -> ast.AST | None:
    """The definition (def, class or assignment) called ``parts[0]`` in ``scope``, then inside it."""
    for node in getattr(scope, "body", ()):
        if parts[0] in _names(node):
            return node if len(parts) == 1 else _find(node, parts[1:])
    return None


def _names(node: ast.AST) -> tuple[str, ...]:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return (node.name,)
    if isinstance(node, ast.Assign):
        return tuple(t.id for t in node.targets if isinstance(t, ast.Name))
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return (node.target.id,)
    return ()


def _first_line(node: ast.AST, lines: list[str]) -> int:
    """The first decorator's line, or the comment block right above (the why of a constant),
    leaving out section rules (``# ----- epoch loops``)."""
    start = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", ()))])
    while start > 1:
        above = lines[start - 2].strip()
        if not above.startswith("#") or "---" in above:
            break
        start -= 1
    return start

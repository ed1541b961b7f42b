"""A concept's code as ``crossframe show`` prints it on the terminal: each piece headed by file and line."""

from __future__ import annotations

import textwrap

from .catalog import CONCEPTS
from .declarations import declarations
from .locate import Snippet
from .views import ConceptView


def render_text(view: ConceptView, *, color: bool = False) -> str:
    """The shared code, then each backend's, one after another; ``color``: Pygments' terminal colours."""
    c = view.concept
    title = f"{c.name}{f' ({view.model})' if view.model else ''}: {c.title}"
    parts = [f"{title}\n{'=' * len(title)}\n" + textwrap.fill(c.summary, 100)]
    if view.shared:
        parts.append("\n\n".join(["## shared (common/)", *(_snippet(s, color) for s in view.shared)]))
    for column in view.columns:
        head = f"## {column.backend} ({column.framework})"
        body = [textwrap.fill(column.reason, 100)] if column.reason else [_snippet(s, color) for s in column.snippets]
        parts.append("\n\n".join([head, *body]))
    return "\n\n\n".join(parts) + "\n"


def render_list(backends: list[str]) -> str:
    """Every concept: its name, aliases and title, and the backends that need no code for it."""
    width = max(len(c.name) for c in CONCEPTS)
    lines = []
    for c in CONCEPTS:
        none = [b for b in backends if isinstance(declarations(b).concepts[c.name], str)]
        extra = ([f"also: {', '.join(c.aliases)}"] if c.aliases else []) + \
                ([f"not needed in {', '.join(declarations(b).framework for b in none)}"] if none else [])
        args = " MODEL" if c.takes_model else ""
        lines.append(f"  {(c.name + args).ljust(width + 6)}  {c.title}" + (f" ({'; '.join(extra)})" if extra else ""))
    return "concepts (crossframe show CONCEPT):\n" + "\n".join(lines) + "\n"


def _snippet(snippet: Snippet, color: bool) -> str:
    head = f"-- {snippet.where}  {snippet.title}"
    if snippet.is_note:
        return f"{head}\n{textwrap.indent(snippet.text, '   ')}"
    return f"{head}\n{_highlight(snippet.text) if color else snippet.text}".rstrip()


def _highlight(code: str) -> str:
    from pygments import highlight
    from pygments.formatters import TerminalFormatter
    from pygments.lexers import PythonLexer

    return highlight(code, PythonLexer(), TerminalFormatter())

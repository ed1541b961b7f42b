"""The page of ``crossframe show --html FILE``: one static, self-contained HTML file.

Every concept is a section, every backend a column in it, the code highlighted by Pygments
with its CSS inline; the curves of a compare run are an inline ``data:`` image. A
Content-Security-Policy in the page forbids loading anything, so a page that works
anywhere works offline.
"""

from __future__ import annotations

import base64
import html
import re

from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer

from ..bench.compare import diff_rows, results_rows
from .catalog import CONCEPTS, Concept
from .locate import Snippet
from .results import CompareResults, ParityResults
from .style import CSS
from .views import Column, ConceptView, concept_view


_LEADING_SPACES = re.compile(r'^(?:<span class="w">( +)</span>|( +))')


class _HangingFormatter(HtmlFormatter):
    """Pygments' HTML, each line a block whose wrapped continuation sits 4 columns right of the
    line's own indentation: in a narrow column a long line wraps without hiding the block structure."""

    def wrap(self, source):
        return super().wrap(self._lines(source))

    @staticmethod
    def _lines(source):
        for is_line, text in source:
            if is_line:
                plain = re.sub(r"<[^>]+>", "", text)
                indent = len(plain) - len(plain.lstrip(" "))
                # the indentation never wraps: a wrap right after it would leave an empty line
                text = _LEADING_SPACES.sub(r'<span class="indent">\1\2</span>', text.rstrip("\n"), count=1)
                text = f'<span class="ln" style="--i:{indent}">{text}</span>'
            yield is_line, text


_FORMATTER = _HangingFormatter(cssclass="code")
_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def render_page(views: list[ConceptView], *, model: str, version: str, compare: CompareResults | None = None,
                parity: ParityResults | None = None) -> str:
    """The whole page: a header with a link to every concept, the compare and parity results
    when given, then one section per concept with a column per backend."""
    frameworks = [c.framework for c in views[0].columns]
    nav = [("results", "compare results")] * bool(compare) + [("parity", "parity checks")] * bool(parity)
    nav += [(_section_id(v), v.concept.name) for v in views]
    parts = [
        f'<header id="top"><h1>crossframe show: {_e(model)} in {_e(_join(frameworks))}</h1>',
        f"<p>The same ideas side by side, each column the code of one backend, read from the installed "
        f"crossframe {_e(version)} (never a copy), each piece headed by its file and line.</p>",
        "<nav>" + "".join(f'<a href="#{i}">{_e(label)}</a>' for i, label in nav) + "</nav></header>",
    ]
    if compare:
        parts.append(_compare_section(compare))
    if parity:
        parts.append(_parity_section(parity))
    parts += [_concept_section(v, compare, parity, model) for v in views]
    parts.append("<footer>Written by <code>crossframe show --html</code>. The code is read from the "
                 "installed modules each time, so it is the code that ran.</footer>")
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{_POLICY}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>crossframe show: {_e(model)}</title>\n"
        f"<style>{CSS}\n{_FORMATTER.get_style_defs('.code')}\n</style>\n</head>\n<body>\n"
        + "\n".join(parts) + "\n</body>\n</html>\n"
    )


def _concept_section(view: ConceptView, compare: CompareResults | None, parity: ParityResults | None,
                     model: str) -> str:
    c = view.concept
    sid = _section_id(view)
    title = f"{c.title}{f' ({view.model})' if view.model else ''}"
    out = [f'<section class="concept" id="{sid}">',
           f'<div class="section-head"><h2><a href="#{sid}">{_e(title)}</a> <code>{_e(c.name)}</code></h2>'
           '<a class="top" href="#top">top</a></div>',
           f'<p class="summary">{_e(c.summary)}</p>']
    if view.shared:
        out.append('<div class="shared">' + "".join(_snippet(s) for s in view.shared) + "</div>")
    out.append('<div class="columns">')
    for column in view.columns:
        out.append(_column(view, column, compare if c.run_figures else None, parity if c.parity else None, model))
    out.append("</div></section>")
    return "\n".join(out)


def _column(view: ConceptView, column: Column, compare: CompareResults | None, parity: ParityResults | None,
            model: str) -> str:
    cid = f"{view.concept.name}-{column.backend}"
    out = [f'<article class="column b-{column.backend}" id="{cid}" data-backend="{column.backend}">',
           f'<h3><a href="#{cid}">{_e(column.framework)}</a><small>backends/{column.backend}</small></h3>']
    run = compare.run_of(column.backend) if compare else None
    if run is not None:
        out.append(f'<p class="run">{_e(_run_figures(run))}</p>')
    out += [_note(s) for s in column.notes]
    if column.reason:
        out.append(f'<p class="not-needed">{_e(column.reason)}</p>')
    out += [_snippet(s) for s in column.code]
    if parity is not None:
        out.append(_parity_cell(parity, column.backend, view.concept.parity, model))
    out.append("</article>")
    return "\n".join(out)


def _snippet(s: Snippet) -> str:
    return (f'<figure><figcaption><span class="where">{_e(s.where)}</span> '
            f'<span class="name">{_e(s.title)}</span></figcaption>'
            f"{highlight(s.text, PythonLexer(), _FORMATTER)}</figure>")


def _note(s: Snippet) -> str:
    """A module docstring: its first paragraph, the rest folded away."""
    paragraphs = [_paragraph(p) for p in re.split(r"\n\s*\n", s.text.strip())]
    more = f"<details><summary>more</summary>{''.join(paragraphs[1:])}</details>" if len(paragraphs) > 1 else ""
    return f'<div class="note" title="{_e(s.where)}">{paragraphs[0]}{more}</div>'


def _paragraph(text: str) -> str:
    if all(line.startswith(" ") for line in text.splitlines()):  # a literal block
        return f"<pre>{_e(text)}</pre>"
    escaped = _e(" ".join(line.strip() for line in text.splitlines()))
    escaped = re.sub(r":\w+:`~?\.?([^`]+)`", r"<code>\1</code>", escaped)  # Sphinx roles
    return "<p>" + re.sub(r"``(.+?)``", r"<code>\1</code>", escaped) + "</p>"


def _run_figures(run: dict) -> str:
    if run["status"] != "ok":
        return f"in the compare run: {run['status']}: {run['error']}"
    final = run["final"]
    return (f"in the compare run: val acc {final['val_acc']:.4f}, {run['seconds_per_epoch']:.2f} s/epoch, "
            f"{run['samples_per_second']:,.0f} samples/s")


def _parity_cell(parity: ParityResults, backend: str, kinds: tuple[str, ...], model: str) -> str:
    if backend == parity.reference:
        return '<div class="parity"><p class="meta">parity: the reference every other backend is checked against</p></div>'
    checks = parity.checks(backend, kinds, model)
    if not checks:
        return '<div class="parity"><p class="meta">parity: not checked in this report</p></div>'
    rows = [[c["check"] + ("" if c["model"] == model else f" ({c['model']})"), f"{c['value']:.2g}",
             f"{c['tolerance']:.0e}" if c["tolerance"] else "0", _verdict(c["passed"])] for c in checks]
    return '<div class="parity">' + _table(["parity check", "value", "tolerance", ""], rows, numeric=(1, 2)) + "</div>"


def _compare_section(compare: CompareResults) -> str:
    report = compare.report
    c = report["config"]
    out = ['<section class="results" id="results">',
           f'<div class="section-head"><h2>crossframe compare: {_e(c["model"])} on {_e(c["dataset"])}</h2>'
           '<a class="top" href="#top">top</a></div>',
           f'<p class="meta">{c["train_examples"]:,} training / {c["val_examples"]:,} validation images, '
           f'{c["epochs"]} epochs, batch {c["batch_size"]}, {_e(c["optimizer"])} lr {c["lr"]}; '
           f'<code>{_e(report.get("command", ""))}</code></p>']
    headers, rows = results_rows(report)
    out.append(_table(headers, rows, numeric=range(1, len(headers) - 1)))
    if report.get("reference_backend"):
        headers, rows = diff_rows(report)
        out.append(f'<p class="meta">largest absolute parameter difference from {_e(report["reference_backend"])} '
                   "after each epoch</p>" + _table(headers, rows, numeric=range(1, len(headers))))
    if compare.curves_png:
        data = base64.b64encode(compare.curves_png).decode("ascii")
        out.append(f'<img alt="loss and accuracy per epoch, one line per backend" src="data:image/png;base64,{data}">')
    out.append("</section>")
    return "\n".join(out)


def _parity_section(parity: ParityResults) -> str:
    run = parity.run
    failed = [c for c in run["checks"] if not c["passed"]]
    verdict = (f'<span class="pass">all {len(run["checks"])} checks passed</span>' if not failed else
               f'<span class="fail">{len(failed)} of {len(run["checks"])} checks FAILED</span>')
    settings = ", ".join(f"{key} {run[key]}" for key in ("seed", "steps", "batch_size", "device", "tf32") if key in run)
    return ('<section id="parity"><div class="section-head"><h2>crossframe parity</h2>'
            '<a class="top" href="#top">top</a></div>'
            f'<p class="meta">{_e(", ".join(run.get("backends", [])))} against {_e(parity.reference or "?")} '
            f'on {_e(", ".join(run.get("models", [])))}: {verdict}; {_e(settings)}. Each concept below shows '
            "the checks that test it, beside the code.</p></section>")


class _Html(str):
    """Markup to put in a table cell as it is (everything else is escaped)."""


def _table(headers: list[str], rows: list[list], *, numeric) -> str:
    numeric = set(numeric)

    def cell(tag: str, i: int, value) -> str:
        text = value if isinstance(value, _Html) else _e("—" if value is None else value)
        attribute = ' class="num"' if i in numeric else ""
        return f"<{tag}{attribute}>{text}</{tag}>"

    head = "<tr>" + "".join(cell("th", i, h) for i, h in enumerate(headers)) + "</tr>"
    body = "".join("<tr>" + "".join(cell("td", i, v) for i, v in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><thead>{head}</thead><tbody>{body}</tbody></table>"


def _verdict(passed: bool) -> _Html:
    return _Html('<span class="pass">PASS</span>' if passed else '<span class="fail">FAIL</span>')


def _section_id(view: ConceptView) -> str:
    return f"concept-{view.concept.name}"


def _join(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def page_for(backends: list[str], model: str, *, first: Concept | None = None,
             compare: CompareResults | None = None, parity: ParityResults | None = None) -> tuple[str, int]:
    """The page of every concept for ``backends`` and ``model`` (``first`` at the top), and how
    many concepts it holds: what ``show --html`` and ``compare`` write."""
    from ... import __version__

    concepts = [first, *(c for c in CONCEPTS if c is not first)] if first else list(CONCEPTS)
    views = [concept_view(c, backends, model) for c in concepts]
    return render_page(views, model=model, version=__version__, compare=compare, parity=parity), len(views)

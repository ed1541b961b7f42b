"""``crossframe show``: every backend's code for a concept, printed or as one HTML page, read
from the installed files through each backend's ``concepts.py`` (common/show/)."""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import re
import shutil
import subprocess
import tempfile
import textwrap
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import html5lib
import pytest

from crossframe.common.cli import main
from crossframe.common.models import MODELS, Layer
from crossframe.common.registry import BACKENDS
from crossframe.common.show.catalog import CONCEPTS, find_concept
from crossframe.common.show.declarations import EVERY_MODEL, declarations, refs_for
from crossframe.common.show.locate import locate, package_folder
from crossframe.common.show.views import concept_view
from helpers import one_line_error, run_cli

ROOT = Path(__file__).resolve().parents[1]
COMPARE_DIR = ROOT / "benchmarks" / "results" / "compare-mlp"  # a real compare run, committed
PARITY_JSON = ROOT / "benchmarks" / "results" / "parity-cpu" / "parity.json"
CHROMIUM = Path("/usr/bin/chromium")
FRAMEWORKS = ("torch", "jax", "flax", "optax", "tensorflow", "keras")
LAYER_TYPES = {t.__name__ for t in Layer.__args__}


# --------------------------------------------------------------------------- the registry


@pytest.mark.parametrize("name", BACKENDS)  # every backend shipped, installed here or not
def test_every_registered_concept_points_at_code(name):
    """Each backend declares every concept, and each reference names a definition that exists."""
    backend = name
    declared = declarations(backend)
    assert set(declared.concepts) == {c.name for c in CONCEPTS}
    for name, declaration in declared.concepts.items():
        if isinstance(declaration, str):
            assert len(declaration) > 20, (backend, name)  # a reason a reader can follow
            continue
        if isinstance(declaration, dict):
            assert set(declaration) <= LAYER_TYPES | {EVERY_MODEL}, (backend, name)
        refs = refs_for(declaration, None)
        assert refs, (backend, name)
        for ref in refs:
            snippet = locate(declared.package, ref)  # raises LookupError when it points at nothing
            assert snippet.text.strip() and snippet.path.startswith(f"backends/{backend}/")


@pytest.mark.parametrize("name", BACKENDS)
def test_a_concepts_file_imports_nothing(name):
    """It is read without importing the backend (whose package imports the framework)."""
    tree = ast.parse((package_folder(f"backends.{name}") / "concepts.py").read_text())
    assert not [node for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))]


def test_the_shared_code_of_every_concept_exists():
    for concept in CONCEPTS:
        for model in MODELS if concept.takes_model else ["cnn"]:
            view = concept_view(concept, list(BACKENDS), model)
            assert all(s.path.startswith("common/") for s in view.shared)


def test_a_reference_that_points_at_nothing_is_an_error():
    with pytest.raises(LookupError, match="defines no TorchClassifier._no_such_step"):
        locate("backends.torch", "classifier:TorchClassifier._no_such_step")
    with pytest.raises(LookupError, match="there is no"):
        locate("backends.torch", "no_such_module:f")


def test_ast_finds_the_lines_inspect_finds():
    """The ast locator against inspect, on every function and class the NumPy backend and the shared
    code register (importing them costs no framework): same code, decorators included."""
    checked = 0
    for concept in CONCEPTS:
        view = concept_view(concept, ["numpy"], "resnet")
        for snippet in (*view.shared, *view.columns[0].snippets):
            module, _, qualname = snippet.ref.partition(":")
            obj = importlib.import_module(f"crossframe.{module}")
            for part in qualname.split("."):
                obj = getattr(obj, part)
            if snippet.is_note:
                assert snippet.text == inspect.cleandoc(obj)  # the module's __doc__
            elif inspect.isfunction(obj) or inspect.isclass(obj):
                assert snippet.text.rstrip().endswith(textwrap.dedent(inspect.getsource(obj)).rstrip()), snippet.ref
                _, line = inspect.getsourcelines(obj)
                assert snippet.line <= line
                checked += 1
    assert checked > 20


# --------------------------------------------------------------------------- the terminal


def _sections(stdout: str) -> dict[str, str]:
    """The printed text of each backend, by its heading (``## torch (PyTorch)``)."""
    parts = re.split(r"^## (\S+) \(.*\)$", stdout, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2]))


def test_show_training_step_prints_the_four_backends_step_code(env_blocking):
    """With every framework made unimportable: the code is read, never imported."""
    result = run_cli("show", "training_step", env=env_blocking(*FRAMEWORKS))
    assert result.returncode == 0, result.stderr
    sections = _sections(result.stdout)
    assert list(sections) == ["shared", "torch", "jax", "tf", "numpy"]
    idioms = {"torch": "loss.backward()", "jax": "jax.value_and_grad(loss_fn", "tf": "tape.gradient(loss",
              "numpy": "self.optimizer.step(grads)"}
    for backend, idiom in idioms.items():
        assert idiom in sections[backend], backend
        # each piece is headed by its file and line, and the line is where its definition starts
        for path, line, name in re.findall(r"^-- (\S+):(\d+)  (\S+)$", sections[backend], flags=re.M):
            if name == "module":
                continue
            first = (ROOT / path).read_text().splitlines()[int(line) - 1].strip()
            assert first.startswith(("def ", "class ", "@")) or "=" in first, (path, line, first)
            assert f" {name.rpartition('.')[2]}" in (ROOT / path).read_text()
        assert re.search(rf"^-- backends/{backend}/classifier.py:\d+  \w+Classifier._train_step$", sections[backend],
                         flags=re.M), backend
    assert "def training_step(self, batch)" in sections["shared"]


def test_a_backend_that_needs_no_code_says_why(capsys):
    assert main(["show", "compiled_epoch", "--backends", "torch,jax,tf,numpy"]) == 0
    sections = _sections(capsys.readouterr().out)
    assert sections["torch"].strip().startswith("not needed in PyTorch: PyTorch runs eagerly")
    assert sections["numpy"].strip().startswith("not needed in NumPy: NumPy has no compiler")
    assert "jax.lax.scan(body, state" in sections["jax"] and "for i in tf.range(steps)" in sections["tf"]
    assert main(["show", "layout", "--backends", "torch"]) == 0
    assert "not needed in PyTorch: PyTorch's layout is the canonical one" in capsys.readouterr().out


def test_show_model_shows_the_layers_that_model_uses():
    numpy = lambda model: [s.qualname for s in concept_view(find_concept("model"), ["numpy"], model).columns[0].code]
    assert {"Conv2d", "MaxPool2d", "ReLU", "Flatten", "Linear"} <= set(numpy("cnn"))
    assert not {"AvgPool2d", "Sigmoid", "ResidualBlock"} & set(numpy("cnn"))
    assert {"AvgPool2d", "Sigmoid"} <= set(numpy("lenet")) and "ResidualBlock" in numpy("resnet")
    assert numpy("mlp").count("_windows") == 0 and numpy("lenet").count("_windows") == 1  # each piece once
    shared = lambda model: [s.qualname for s in concept_view(find_concept("model"), [], model).shared]
    assert shared("cnn") == ["_cnn"] and shared("resnet") == ["_resnet", "_block"]


def test_the_backward_pass_is_written_out_in_numpy_only(capsys):
    assert main(["show", "backward", "cnn"]) == 0
    sections = _sections(capsys.readouterr().out)
    for backend, framework in (("torch", "PyTorch"), ("jax", "JAX"), ("tf", "TensorFlow")):
        assert sections[backend].strip().startswith(f"not needed in {framework}: "), backend
    for name in ("Conv2d.backward", "MaxPool2d.backward", "ReLU.backward", "Linear.backward", "Sequential.backward"):
        assert f"  {name}\n" in sections["numpy"], name
    assert "Sigmoid.backward" not in sections["numpy"]  # cnn has no sigmoid


def test_list_names_every_concept(capsys):
    assert main(["show", "--list"]) == 0
    out = capsys.readouterr().out
    for concept in CONCEPTS:
        assert re.search(rf"^  {concept.name}\b", out, flags=re.M), concept.name
    assert "not needed in PyTorch, JAX, TensorFlow" in out  # backward


def test_aliases_find_their_concept():
    assert find_concept("step").name == "training_step" and find_concept("cross-entropy").name == "cross_entropy"


@pytest.mark.parametrize(("args", "message"), [
    (["show", "gradient_descent"], "unknown concept 'gradient_descent'; choose one of: model, loss, cross_entropy"),
    (["show", "model", "vgg"], "unknown model 'vgg'; choose one of: softmax, mlp, cnn, lenet, resnet"),
    (["show", "loss", "mlp"], "loss is the same for every model; only model, backward take a MODEL"),
    (["show"], "name a concept (crossframe show --list lists them)"),
    (["show", "loss", "--compare", "x"], "--compare and --parity put their figures into the page: add --html FILE"),
    (["show", "--html", "p.html", "--compare", "no-such-dir"], "no-such-dir/compare.json: no such file"),
    (["show", "--backends", "mxnet", "loss"], "unknown 'mxnet': choose from torch, jax, tf, numpy"),
    (["show", "--html", "no-such-dir/p.html"], "--html no-such-dir/p.html: cannot write it (No such file or directory)"),
])
def test_mistakes_get_one_line_and_exit_2(args, message, tmp_path):
    line = one_line_error(run_cli(*args, cwd=tmp_path))
    assert message in line


def test_results_that_are_not_crossframe_s_are_refused_in_one_line(tmp_path):
    (tmp_path / "compare.json").write_text('{"schema": "something-else/1"}')
    (tmp_path / "parity.json").write_text('{"checks": [{"backend": "torch"}]}')
    line = one_line_error(run_cli("show", "--html", tmp_path / "p.html", "--compare", tmp_path))
    assert "compare.json: not a compare report of this crossframe (its schema is 'something-else/1'" in line
    line = one_line_error(run_cli("show", "--html", tmp_path / "p.html", "--parity", tmp_path / "parity.json"))
    assert "parity.json: not a parity report (each check needs backend, check, measure, model" in line
    assert not (tmp_path / "p.html").exists()


# --------------------------------------------------------------------------- the page


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Path:
    """``crossframe show model cnn --html page.html`` with a real compare folder and parity file."""
    path = tmp_path_factory.mktemp("show") / "page.html"
    result = run_cli("show", "model", "cnn", "--html", path, "--compare", COMPARE_DIR, "--parity", PARITY_JSON)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"wrote {path}: 10 concepts, a column each for torch, jax, tf, numpy (cnn)"
    return path


class _Elements(HTMLParser):
    """Every start tag with its attributes, and the text of each <style>."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.styles: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_style = tag == "style"

    def handle_endtag(self, tag):
        self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self.styles.append(data)


def _elements(text: str) -> _Elements:
    parser = _Elements()
    parser.feed(text)
    return parser


def test_the_page_is_valid_html_and_loads_nothing(page):
    text = page.read_text(encoding="utf-8")
    html5lib.HTMLParser(strict=True).parse(text)  # raises on any parse error
    found = _elements(text)
    ids = Counter(attrs["id"] for _, attrs in found.tags if "id" in attrs)
    assert not [i for i, n in ids.items() if n > 1], "duplicate ids"
    links = [attrs["href"] for tag, attrs in found.tags if "href" in attrs]
    assert links and all(href.startswith("#") and href[1:] in ids for href in links), "a link goes nowhere"
    loaded = [(tag, key, value) for tag, attrs in found.tags for key, value in attrs.items()
              if key in ("src", "srcset", "href", "poster", "data", "action") and not value.startswith(("#", "data:"))]
    assert loaded == [] and not [t for t, a in found.tags if t in ("link", "script", "iframe", "object")]
    assert "url(" not in "".join(found.styles) and "@import" not in "".join(found.styles)
    policy = next(a["content"] for t, a in found.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy")
    assert policy.startswith("default-src 'none'")


def test_the_page_has_every_concept_for_every_backend(page):
    text = page.read_text(encoding="utf-8")
    found = _elements(text)
    columns = {attrs["id"] for tag, attrs in found.tags if tag == "article"}
    assert columns == {f"{c.name}-{b}" for c in CONCEPTS for b in BACKENDS}
    nav = [attrs["href"] for tag, attrs in found.tags if tag == "a" and attrs.get("href", "").startswith("#concept-")]
    assert nav[0] == "#concept-model" and set(nav) >= {f"#concept-{c.name}" for c in CONCEPTS}
    for concept in CONCEPTS:
        section = text[text.index(f'<section class="concept" id="concept-{concept.name}">'):]
        section = section[:section.index("</section>")]
        for column in concept_view(concept, list(BACKENDS), "cnn").columns:
            body = section[section.index(f'id="{concept.name}-{column.backend}"'):]
            body = body[:body.index("</article>")]
            if column.reason:
                assert _escape(column.reason) in body
            for snippet in column.code:  # headed by file and line, the code highlighted
                assert f'<span class="where">{snippet.where}</span>' in body
            assert ('class="code"' in body) == bool(column.code)


def test_the_page_puts_the_compare_and_parity_figures_beside_the_code(page):
    text = page.read_text(encoding="utf-8")
    report = json.loads((COMPARE_DIR / "compare.json").read_text())
    section = text[text.index('id="results"'):text.index("</section>")]
    for backend, run in report["backends"].items():
        assert f"<td>{backend}</td>" in section and f'{run["final"]["val_acc"]:.4f}' in section
    assert 'src="data:image/png;base64,iVBOR' in section  # curves.png, inline
    step = text[text.index('id="training_step-jax"'):]
    step = step[:step.index("</article>")]
    assert f'val acc {report["backends"]["jax"]["final"]["val_acc"]:.4f}' in step
    assert "train (100 steps)" in step and '<span class="pass">PASS</span>' in step
    numpy_step = text[text.index('id="training_step-numpy"'):]
    assert "the reference every other backend is checked against" in numpy_step[:numpy_step.index("</article>")]


def _escape(text: str) -> str:
    import html

    return html.escape(text, quote=True)


# --------------------------------------------------------------------------- in a browser

_LAYOUT_SCRIPT = """<script>
const rect = e => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.width, r.height]; };
const columns = [...document.querySelectorAll("#concept-model .column")].map(
  e => ({backend: e.dataset.backend, box: rect(e), head: rect(e.querySelector("h3"))}));
const out = document.createElement("pre");
out.id = "layout";
out.textContent = JSON.stringify({viewport: window.innerWidth, columns: columns});
document.body.appendChild(out);
</script>"""


def _chromium(*args: str) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--window-size=1280,900", *args],
            capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no headless browser: {CHROMIUM} is not installed "
                                                  "(apt-get install chromium)")
def test_a_browser_renders_four_legible_columns_at_1280_px(tmp_path):
    """``crossframe show model cnn --html`` in Debian's chromium: the DOM after layout says where the
    columns are (a script added to a copy of the page, its Content-Security-Policy taken out so that
    the script may run); the screenshot shows them painted there."""
    page = tmp_path / "page.html"
    assert run_cli("show", "model", "cnn", "--html", page).returncode == 0
    measured = tmp_path / "measured.html"
    text = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", page.read_text())
    measured.write_text(text.replace("</body>", _LAYOUT_SCRIPT + "</body>"))

    dom = _chromium("--dump-dom", measured.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    layout = json.loads(re.search(r'<pre id="layout">(.*?)</pre>', dom.stdout).group(1).replace("&quot;", '"'))
    columns = layout["columns"]
    assert [c["backend"] for c in columns] == list(BACKENDS)
    for c in columns:
        assert c["box"][2] >= 280, f"{c['backend']} column is {c['box'][2]:.0f} px wide"
    assert len({round(c["box"][1]) for c in columns}) == 1, "the columns are not side by side"
    for left, right in zip(columns, columns[1:]):
        assert left["box"][0] + left["box"][2] <= right["box"][0]
    assert columns[-1]["box"][0] + columns[-1]["box"][2] <= layout["viewport"]

    shot = tmp_path / "show-model-cnn-1280.png"
    result = _chromium(f"--screenshot={shot}", page.as_uri())
    assert result.returncode == 0 and shot.is_file(), result.stderr[-2000:]
    print(f"screenshot: {shot}")
    import matplotlib.image

    pixels = matplotlib.image.imread(shot)  # (900, 1280, 3 or 4), floats in [0, 1]
    assert pixels.shape[:2] == (900, 1280)
    # each column's heading is painted in its own colour where the DOM says it is, white between
    colours = []
    for c in columns:
        x, y, w, h = c["head"]
        band = pixels[int(y + 2):int(y + h - 2), int(x + w * 0.45):int(x + w * 0.55), :3].reshape(-1, 3)
        colour = Counter(map(tuple, (band * 255).round().astype(int))).most_common(1)[0][0]
        colours.append(colour)
    assert len(set(colours)) == 4 and (255, 255, 255) not in colours, colours
    for left, right in zip(columns, columns[1:]):
        gap_x = int((left["box"][0] + left["box"][2] + right["box"][0]) / 2)
        y = int(left["head"][1] + left["head"][3] / 2)
        assert tuple((pixels[y, gap_x, :3] * 255).round().astype(int)) == (255, 255, 255)

"""Packaging: one import name, no framework on import, both install modes."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import crossframe

ROOT = Path(__file__).resolve().parents[1]


def test_public_names():
    assert crossframe.BACKENDS == ("torch", "jax", "tf", "numpy")
    assert set(crossframe.available_backends()) <= set(crossframe.BACKENDS)
    for name in ("classifier", "init_params", "load_data", "Trainer", "Classifier", "DataModule"):
        assert hasattr(crossframe, name)


def test_importing_crossframe_imports_no_framework():
    code = (
        "import sys, crossframe, crossframe.data, crossframe.common.cli\n"
        "print(sorted(m for m in ('torch', 'jax', 'flax', 'optax', 'tensorflow', 'keras') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_the_wheel_installs_everything_under_crossframe(tmp_path):
    """``pip install .`` installs this wheel: every module must live under crossframe/."""
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True, timeout=300, cwd=tmp_path,
    )
    (wheel,) = tmp_path.glob("crossframe-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names}
    assert top == {"crossframe", next(t for t in top if t.endswith(".dist-info"))}
    for module in ("crossframe/__init__.py", "crossframe/common/classifier.py", "crossframe/data/idx.py",
                   "crossframe/backends/torch/classifier.py", "crossframe/common/commands/train.py"):
        assert module in names
    assert not any(name.startswith("crossframe/tests/") for name in names)


FAKE_BACKEND = {  # a new backend as README's "Layout" says to add one: a folder with these files
    "meta.py": ('FRAMEWORK = "Fake"\nMODULES = ("numpy",)\nINSTALL = "pip install numpy"\nORDER = 9\n'
                'DEVICES = ("cpu",)\nKERAS_BACKEND = None\n'),
    "__init__.py": ("from crossframe.backends.numpy import NumpyClassifier\n\n\n"
                    "class FakeClassifier(NumpyClassifier):\n    backend = 'fake'\n\n\nCLASSIFIER = FakeClassifier\n"),
    "device.py": "from crossframe.backends.numpy.device import *  # noqa: F401,F403\n",
}


def test_a_backend_added_the_documented_way_is_found_everywhere(tmp_path, monkeypatch):
    """A folder under crossframe.backends' path holding meta.py, the package and device.py is a
    backend: listed, installed, importable, in the bench's list and the CLI's choices, with no other edit."""
    import crossframe.backends
    from crossframe.common import precision, registry
    from crossframe.common.bench.bench import REFERENCES
    from crossframe.common.cli import build_parser

    folder = tmp_path / "fake"
    folder.mkdir()
    for name, text in FAKE_BACKEND.items():
        (folder / name).write_text(text)
    monkeypatch.setattr(crossframe.backends, "__path__", [*crossframe.backends.__path__, str(tmp_path)])
    registry.discover.cache_clear()
    try:
        assert registry.backend_names()[-1] == "fake" and "fake" in crossframe.BACKENDS
        assert "fake" in registry.installed_backends()  # the bench's and compare's default list
        assert "fake" in registry.available_backends()
        clf = crossframe.classifier("fake", "softmax", seed=3)
        assert clf.backend == "fake" and clf.device == "cpu"
        assert precision.describe("fake") == "no TF32 switch (computes on the CPU)"
        args = build_parser().parse_args(["train", "--backend", "fake"])
        assert args.backend == "fake"
        assert all("fake" not in name for name in REFERENCES)  # no Keras reference for it: KERAS_BACKEND None
    finally:
        registry.discover.cache_clear()
        for module in [m for m in sys.modules if m.startswith("crossframe.backends.fake")]:
            del sys.modules[module]

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

"""Helpers shared by the command-line tests: run ``crossframe`` in a subprocess, make small
custom datasets, read run folders. (Fixtures live in conftest.py; plain functions here.)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from crossframe.data.testing import random_arrays, write_dataset

CLI_TIMEOUT = 300  # seconds; a wedged child fails the test instead of hanging CI


def run_cli(*args, **kw) -> subprocess.CompletedProcess:
    """``python -m crossframe ARGS`` as a user runs it: exit code, stdout and stderr."""
    return subprocess.run([sys.executable, "-m", "crossframe", *map(str, args)], capture_output=True, text=True,
                          timeout=CLI_TIMEOUT, **kw)


def start_cli(*args, **kw) -> subprocess.Popen:
    """``python -m crossframe ARGS`` in the background (for tests that signal or kill it)."""
    return subprocess.Popen([sys.executable, "-m", "crossframe", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def run_main(capsys, *args) -> subprocess.CompletedProcess:
    """``crossframe ARGS`` in this process (no interpreter start: for the many quick cases),
    as a CompletedProcess like :func:`run_cli`'s. An exception that escapes ``main`` fails the test."""
    from crossframe.common.cli import main

    capsys.readouterr()
    try:
        code = main([str(a) for a in args])
    except SystemExit as exit:  # argparse's errors
        code = exit.code
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(["crossframe", *map(str, args)], code, out, err)


def one_line_error(result: subprocess.CompletedProcess, code: int = 2) -> str:
    """Assert the process exited with ``code`` and wrote exactly one line on stderr; return it."""
    lines = result.stderr.splitlines()
    assert result.returncode == code, (result.returncode, result.stderr)
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{result.stderr}"
    assert lines[0].startswith("crossframe"), lines[0]
    return lines[0]


def custom_dataset(folder: Path, *, n_train: int = 256, n_test: int = 128, size=(28, 28), gz: bool = True,
                   **arrays) -> Path:
    """A small MNIST-format dataset folder (random images, every class present).

    Keyword arguments replace one of the four arrays (``train_images=...``) before writing.
    """
    data = random_arrays(np.random.default_rng(0), n_train=n_train, n_test=n_test, size=size)
    data.update(arrays)
    write_dataset(folder, data, gz=gz)
    return folder


def read_metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def load_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as f:
        return {name: f[name] for name in f.files}


def assert_same_arrays(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    """Bit for bit: the same names, shapes, dtypes and bytes."""
    assert sorted(a) == sorted(b)
    for name in a:
        assert a[name].dtype == b[name].dtype and a[name].shape == b[name].shape, name
        assert a[name].tobytes() == b[name].tobytes(), f"{name} differs"


def dataset_child(spec, body: str) -> list[str]:
    """argv of a Python child process that knows ``spec`` (a DatasetSpec with decompressed
    SHA-256 sums) as a dataset, then runs ``body`` (which sees ``spec`` and ``sys``)."""
    hashes = json.dumps({key: fs.sha256 for key, fs in spec.files.items()})
    prelude = (
        "import json, sys\n"
        "from crossframe.data import KNOWN_DATASETS\n"
        "from crossframe.data.catalog import DatasetSpec, mnist_files\n"
        f"spec = DatasetSpec({spec.name!r}, mnist_files(sha256=json.loads({hashes!r})), (), tuple('0123456789'))\n"
        "KNOWN_DATASETS[spec.name] = spec\n"
    )
    return [sys.executable, "-c", prelude + body]


def float32_dot_bound(terms: int, abs_products: np.ndarray) -> np.ndarray:
    """The classic bound on a float32 sum of ``terms`` products in any order, FMA or not:
    gamma_n * sum |a_i b_i| with gamma_n = n u / (1 - n u), u = 2**-24 (Higham, 3.1). A test of
    a float32 result against float64 by this bound holds on any machine."""
    u = 2.0 ** -24
    return terms * u / (1 - terms * u) * abs_products

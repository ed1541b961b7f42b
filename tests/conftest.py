"""Shared fixtures. Backend-parametrised tests run for every backend installed here, so a
new backend joins the suite by being installed; tests that need a GPU carry the ``gpu``
marker and skip where no framework sees one."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import crossframe

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
MNIST_T10K_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "mnist-t10k"


def pytest_generate_tests(metafunc):
    if "backend" in metafunc.fixturenames:
        metafunc.parametrize("backend", crossframe.available_backends())


@pytest.fixture(scope="session")
def fashion_dir() -> Path:
    if not (FASHION_DIR / "train-images-idx3-ubyte.gz").exists():
        pytest.skip(f"Fashion-MNIST is not installed in {FASHION_DIR} (apt-get install dataset-fashion-mnist)")
    return FASHION_DIR


@pytest.fixture(scope="session")
def fashion_2k(fashion_dir):
    """The first 2,000 training and 1,000 test images of Fashion-MNIST."""
    return crossframe.load_data("fashion-mnist", data_dir=fashion_dir, limit_train=2000, limit_val=1000,
                                download=False)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture(autouse=True)
def _no_network_datasets(monkeypatch, tmp_path_factory):
    """Point the dataset cache at an empty folder so no test reads or fills the user's cache, and
    the download mirrors at a closed local port so no test can reach the network by accident."""
    monkeypatch.setenv("CROSSFRAME_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
    monkeypatch.setenv("CROSSFRAME_MIRROR", "http://127.0.0.1:9/")
    monkeypatch.delenv("CROSSFRAME_DATA", raising=False)


@pytest.fixture
def env_blocking(tmp_path):
    """``env_blocking("crossframe.backends.jax")``: an environment in which Python processes
    started with it fail to import those modules, as if they were not installed (a
    ``sitecustomize`` on PYTHONPATH sets them to None in ``sys.modules``)."""

    def make(*modules: str) -> dict[str, str]:
        folder = tmp_path / "blocked-imports"
        folder.mkdir(exist_ok=True)
        (folder / "sitecustomize.py").write_text(
            "import sys\n" + "".join(f"sys.modules[{m!r}] = None\n" for m in modules))
        path = os.pathsep.join(p for p in (str(folder), os.environ.get("PYTHONPATH")) if p)
        return {**os.environ, "PYTHONPATH": path}

    return make

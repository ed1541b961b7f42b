"""Shared fixtures. Backend-parametrised tests run for every backend installed here, so a
new backend joins the suite by being installed; tests that need a GPU carry the ``gpu``
marker and skip where no framework sees one."""

from __future__ import annotations

import functools
import os
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import crossframe
from crossframe.data import KNOWN_DATASETS
from crossframe.data import locate as locate_mod
from crossframe.data.testing import random_arrays, spec_for, write_dataset

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


# ------------------------------------------------------------------ a local dataset mirror

class _Handler(SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep the test output clean
        pass

    def do_GET(self):
        self.server.requests.append(self.path)
        if self.path.startswith("/slow/"):
            time.sleep(3)
        time.sleep(self.server.delay)
        try:
            super().do_GET()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (the timeout test): nothing to report


@pytest.fixture
def server(tmp_path):
    """An HTTP server on 127.0.0.1 serving tmp_path/www; ``.url(mirror)`` gives a base URL.

    ``.httpd.delay`` (seconds) slows every response; ``.requests`` lists the paths asked for.
    """
    root = tmp_path / "www"
    root.mkdir()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Handler, directory=str(root)))
    httpd.daemon_threads = True
    httpd.requests, httpd.delay = [], 0.0
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    port = httpd.server_address[1]
    yield SimpleNamespace(root=root, httpd=httpd, requests=httpd.requests,
                          url=lambda mirror: f"http://127.0.0.1:{port}/{mirror}/")
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def served_fake(tmp_path, monkeypatch, server):
    """A synthetic dataset 'fake' whose checksums the catalog knows, served on mirror 'good',
    with an empty cache (tmp_path/cache) and no system copy."""
    arrays = random_arrays(np.random.default_rng(0), n_train=200, n_test=50, size=(28, 28))
    files = write_dataset(server.root / "good", arrays)
    spec = spec_for("fake", files)
    monkeypatch.setitem(KNOWN_DATASETS, "fake", spec)
    cache = tmp_path / "cache"
    monkeypatch.setenv("CROSSFRAME_CACHE", str(cache))
    monkeypatch.setattr(locate_mod, "SYSTEM_DATASETS_DIR", tmp_path / "no-system")
    return SimpleNamespace(spec=spec, arrays=arrays, files=files, cache=cache, folder=cache / "fake")


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

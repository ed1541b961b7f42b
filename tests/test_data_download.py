"""The downloader against a local HTTP server (127.0.0.1, port 0) that the tests fill."""

from __future__ import annotations

import functools
import gzip
import json
import os
import subprocess
import sys
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from crossframe.common.errors import DataError
from crossframe.data import KNOWN_DATASETS, load_data
from crossframe.data import locate as locate_mod
from crossframe.data.catalog import MNIST_FILENAMES
from crossframe.data.checksums import verify_file
from crossframe.data.download import download_dataset, mirrors_for
from crossframe.data.idx import idx_bytes
from crossframe.data.testing import random_arrays, spec_for, write_dataset

NAMES = sorted(MNIST_FILENAMES.values())


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
    """An HTTP server on 127.0.0.1 serving tmp_path/www; ``.url(mirror)`` gives a base URL."""
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
def fake(tmp_path, monkeypatch, server):
    """A synthetic dataset 'fake' whose checksums the catalog knows, served on mirror 'good'."""
    arrays = random_arrays(np.random.default_rng(0), n_train=200, n_test=50, size=(28, 28))
    files = write_dataset(server.root / "good", arrays)
    spec = spec_for("fake", files)
    monkeypatch.setitem(KNOWN_DATASETS, "fake", spec)
    cache = tmp_path / "cache"
    monkeypatch.setenv("CROSSFRAME_CACHE", str(cache))
    monkeypatch.setattr(locate_mod, "SYSTEM_DATASETS_DIR", tmp_path / "no-system")
    return SimpleNamespace(spec=spec, arrays=arrays, files=files, cache=cache, folder=cache / "fake")


def cache_listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_good_download_lands_verified_in_the_cache(fake, server, monkeypatch):
    monkeypatch.setenv("CROSSFRAME_MIRROR", server.url("good"))
    dm = load_data("fake", batch_size=32, progress=False)
    assert cache_listing(fake.folder) == NAMES  # nothing else: no temp file
    for key, fs in fake.spec.files.items():
        assert verify_file(fake.folder / fs.filename, fs, "fake") is True
        expected = {"path": str(fake.folder / fs.filename), "origin": "download", "verified": True}
        assert dm.source[key] == expected
    assert len(dm.train) == 200 and dm.input_shape == (1, 28, 28)
    assert sorted(server.requests) == sorted(f"/good/{n}" for n in NAMES)
    # Next time it comes from the cache, without a request.
    again = load_data("fake", progress=False)
    assert again.source["train_images"]["origin"] == "cache"
    assert len(server.requests) == 4


def test_only_missing_files_are_downloaded(fake, server, monkeypatch):
    monkeypatch.setenv("CROSSFRAME_MIRROR", server.url("good"))
    fake.folder.mkdir(parents=True)
    raw = gzip.decompress(fake.files["test_labels"].read_bytes())
    (fake.folder / "t10k-labels-idx1-ubyte").write_bytes(raw)
    load_data("fake", progress=False)
    assert "/good/t10k-labels-idx1-ubyte.gz" not in server.requests and len(server.requests) == 3


def corrupt_mirror(server, fake, mirror: str, how: str) -> None:
    """Serve the fake dataset on ``mirror`` with train-images damaged."""
    write_dataset(server.root / mirror, fake.arrays)
    target = server.root / mirror / "train-images-idx3-ubyte.gz"
    if how == "changed":  # a valid gzip of different pixels: only the checksum can tell
        images = fake.arrays["train_images"].copy()
        images[0, 0, 0] ^= 1
        target.write_bytes(gzip.compress(idx_bytes(images)))
    else:  # cut short: the gzip stream is truncated
        target.write_bytes(target.read_bytes()[:1000])


def test_corrupted_file_from_every_mirror(fake, server):
    corrupt_mirror(server, fake, "bad1", "changed")
    corrupt_mirror(server, fake, "bad2", "truncated")
    mirrors = [server.url("bad1"), server.url("bad2")]
    with pytest.raises(DataError) as e:
        download_dataset("fake", mirrors=mirrors, progress=False)
    msg = str(e.value)
    assert "train-images-idx3-ubyte.gz" in msg
    assert f"{server.url('bad1')}train-images-idx3-ubyte.gz: " in msg and "checksum mismatch" in msg
    assert f"{server.url('bad2')}train-images-idx3-ubyte.gz: " in msg and "truncated or corrupt" in msg
    assert fake.spec.files["train_images"].sha256 in msg
    assert cache_listing(fake.folder) == []  # no bad file, no temp file
    assert not fake.folder.exists()


def test_corrupted_download_through_load_data(fake, server, monkeypatch):
    corrupt_mirror(server, fake, "bad", "changed")
    monkeypatch.setenv("CROSSFRAME_MIRROR", server.url("bad"))
    with pytest.raises(DataError, match="(?s)not found.*download: failed.*checksum mismatch"):
        load_data("fake", progress=False)
    assert cache_listing(fake.folder) == []


def test_first_mirror_404_second_good(fake, server, monkeypatch):
    (server.root / "empty").mkdir()
    monkeypatch.setenv("CROSSFRAME_MIRROR", f"{server.url('empty')} {server.url('good')}")
    dm = load_data("fake", progress=False)
    assert dm.source["test_images"]["verified"] is True
    assert server.requests[:2] == ["/empty/train-images-idx3-ubyte.gz", "/good/train-images-idx3-ubyte.gz"]
    assert cache_listing(fake.folder) == NAMES


def test_all_mirrors_404_lists_each_failure(fake, server):
    with pytest.raises(DataError) as e:
        download_dataset("fake", mirrors=[server.url("a"), server.url("b")], progress=False)
    assert str(e.value).count("HTTP 404") == 2


def test_connection_timeout(fake, server):
    t0 = time.monotonic()
    with pytest.raises(DataError, match="timed out after 0.3 s"):
        download_dataset("fake", mirrors=[server.url("slow")], timeout=0.3, progress=False)
    assert time.monotonic() - t0 < 2.5


_CHILD = """
import json, sys
from crossframe.data.catalog import DatasetSpec, mnist_files
from crossframe.data.locate import locate
spec = DatasetSpec("fake", mnist_files(sha256=json.loads(sys.argv[1])), (), tuple("0123456789"))
print(locate(spec, progress=False).origin)
"""


def test_two_processes_download_the_same_dataset_at_once(fake, server):
    server.httpd.delay = 0.3  # each file takes a while: the two processes overlap
    hashes = json.dumps({k: fs.sha256 for k, fs in fake.spec.files.items()})
    env = dict(os.environ, CROSSFRAME_CACHE=str(fake.cache), CROSSFRAME_MIRROR=server.url("good"))
    procs = [subprocess.Popen([sys.executable, "-c", _CHILD, hashes], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert cache_listing(fake.folder) == NAMES
    for fs in fake.spec.files.values():
        assert verify_file(fake.folder / fs.filename, fs, "fake") is True
    # The lock plus the re-check under it: each file was fetched once, not once per process.
    assert sorted(server.requests) == sorted(f"/good/{n}" for n in NAMES)


def test_mirror_precedence(monkeypatch):
    spec = KNOWN_DATASETS["mnist"]
    monkeypatch.delenv("CROSSFRAME_MIRROR", raising=False)
    assert mirrors_for(spec) == list(spec.mirrors)
    assert mirrors_for(spec)[0] == "https://ossci-datasets.s3.amazonaws.com/mnist/"
    monkeypatch.setenv("CROSSFRAME_MIRROR", "http://a/x, http://b/")
    assert mirrors_for(spec) == ["http://a/x", "http://b/"]
    assert mirrors_for(spec, ["http://c/"]) == ["http://c/"]


def test_no_checksum_no_download(tmp_path, server):
    from crossframe.data.catalog import DatasetSpec, mnist_files

    spec = DatasetSpec("unsure", mnist_files(), (server.url("good"),), tuple("01"))
    with pytest.raises(DataError, match="always verified"):
        download_dataset(spec, tmp_path / "c" / "unsure", progress=False)
    assert server.requests == []

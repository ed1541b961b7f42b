"""The downloader against a local HTTP server (127.0.0.1, port 0, conftest.py) that the tests fill."""

from __future__ import annotations

import gzip
import os
import subprocess
import time
from pathlib import Path

import pytest
from crossframe.common.errors import DataError
from crossframe.data import KNOWN_DATASETS, load_data
from crossframe.data.catalog import MNIST_FILENAMES
from crossframe.data.checksums import verify_file
from crossframe.data.download import download_dataset, mirrors_for
from crossframe.data.idx import idx_bytes
from crossframe.data.testing import write_dataset
from helpers import dataset_child

NAMES = sorted(MNIST_FILENAMES.values())


@pytest.fixture
def fake(served_fake):
    """The dataset 'fake' served on mirror 'good' (conftest.py)."""
    return served_fake


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


_LOCATE = "from crossframe.data.locate import locate\nprint(locate(spec, progress=False).origin)\n"


def test_two_processes_download_the_same_dataset_at_once(fake, server):
    server.httpd.delay = 0.3  # each file takes a while: the two processes overlap
    env = dict(os.environ, CROSSFRAME_CACHE=str(fake.cache), CROSSFRAME_MIRROR=server.url("good"))
    procs = [subprocess.Popen(dataset_child(fake.spec, _LOCATE), env=env, stdout=subprocess.PIPE,
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

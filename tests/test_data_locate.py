"""Finding dataset files (search order, partial folders, offline message) and checksums."""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from crossframe.common.errors import DataError
from crossframe.data import KNOWN_DATASETS, checksums, dataset_status, load_data
from crossframe.data import locate as locate_mod
from crossframe.data.catalog import FASHION_MNIST, MNIST
from crossframe.data.checksums import ChecksumError, verify_file
from crossframe.data.locate import locate
from crossframe.data.testing import random_arrays, spec_for, write_dataset

MNIST_T10K = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "mnist-t10k"
DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture
def roots(tmp_path, monkeypatch):
    """Every search location under tmp_path; none of them exists yet."""
    r = SimpleNamespace(data_dir=tmp_path / "ddir", env=tmp_path / "env", cache=tmp_path / "cache",
                        system=tmp_path / "system")
    monkeypatch.setenv("CROSSFRAME_CACHE", str(r.cache))
    monkeypatch.delenv("CROSSFRAME_DATA", raising=False)
    monkeypatch.setattr(locate_mod, "SYSTEM_DATASETS_DIR", r.system)
    return r


@pytest.fixture
def fake(tmp_path, monkeypatch):
    """A small synthetic dataset registered as the known dataset 'fake'."""
    arrays = random_arrays(np.random.default_rng(0))
    src = write_dataset(tmp_path / "src", arrays)
    spec = spec_for("fake", src)
    monkeypatch.setitem(KNOWN_DATASETS, "fake", spec)
    return SimpleNamespace(spec=spec, arrays=arrays, src=src)


def put(files: dict[str, Path], folder: Path, keys=None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for key, p in files.items():
        if keys is None or key in keys:
            shutil.copy(p, folder / p.name)
    return folder


# ------------------------------------------------------------------------ search order

def test_lookup_order(roots, fake, monkeypatch):
    # data_dir with a <name>/ subfolder, $CROSSFRAME_DATA with the files directly in it.
    for folder in (roots.data_dir / "fake", roots.env, roots.cache / "fake", roots.system / "fake"):
        put(fake.src, folder)
    monkeypatch.setenv("CROSSFRAME_DATA", str(roots.env))

    got = locate("fake", roots.data_dir, download=False)
    assert (got.folder, got.origin) == (roots.data_dir / "fake", "data_dir")
    got = locate("fake", None, download=False)
    assert (got.folder, got.origin) == (roots.env, "$CROSSFRAME_DATA")
    monkeypatch.delenv("CROSSFRAME_DATA")
    got = locate("fake", None, download=False)
    assert (got.folder, got.origin) == (roots.cache / "fake", "cache")
    shutil.rmtree(roots.cache / "fake")
    got = locate("fake", None, download=False)
    assert (got.folder, got.origin) == (roots.system / "fake", "system")
    assert set(got.files) == {"train_images", "train_labels", "test_images", "test_labels"}
    shutil.rmtree(roots.system / "fake")
    with pytest.raises(DataError, match="not found"):
        locate("fake", None, download=False)


def test_raw_and_gz_files_are_both_accepted(roots, fake):
    folder = roots.data_dir
    folder.mkdir()
    for key, p in fake.src.items():
        if key.startswith("train"):
            shutil.copy(p, folder / p.name)
        else:
            (folder / p.name[:-3]).write_bytes(gzip.decompress(p.read_bytes()))
    got = locate("fake", folder, download=False)
    assert got.files["train_images"].name.endswith(".gz")
    assert not got.files["test_images"].name.endswith(".gz")
    dm = load_data("fake", data_dir=folder, download=False)
    assert all(s["verified"] is True for s in dm.source.values())


def test_partial_folder_skipped_when_a_later_one_is_complete(roots, fake):
    put(fake.src, roots.data_dir, keys={"train_images", "train_labels"})
    put(fake.src, roots.system / "fake")
    with pytest.warns(UserWarning, match="only some"):
        got = locate("fake", roots.data_dir, download=False)
    assert got.origin == "system"


def test_partial_folder_with_nothing_later_is_reported(roots, fake):
    put(fake.src, roots.data_dir, keys={"train_images", "train_labels"})
    with pytest.raises(DataError) as e:
        locate("fake", roots.data_dir, download=False)
    msg = str(e.value)
    assert f"{roots.data_dir} (data_dir): only part of the files" in msg
    assert "missing t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz" in msg


def test_missing_data_dir_warns(roots, fake):
    put(fake.src, roots.system / "fake")
    with pytest.warns(UserWarning, match="does not exist"):
        assert locate("fake", roots.data_dir / "typo", download=False).origin == "system"


@pytest.mark.parametrize("download", [False, True])
def test_offline_without_a_copy_says_what_and_where(roots, download):
    # conftest points $CROSSFRAME_MIRROR at a closed local port: the download fails fast.
    roots.system.mkdir()
    with pytest.raises(DataError) as e:
        load_data("fashion-mnist", data_dir=roots.data_dir, download=download)
    msg = str(e.value)
    for f in FASHION_MNIST.file_list():
        assert f.filename in msg
    for folder in (roots.data_dir, roots.cache, roots.system):
        assert str(folder) in msg
    assert "$CROSSFRAME_DATA: not set" in msg
    assert "sudo apt-get install dataset-fashion-mnist" in msg
    assert str(roots.cache / "fashion-mnist") in msg  # where to put them
    assert ("download: failed" in msg) == download
    assert ("download=False" in msg) != download
    assert not roots.cache.exists() or not list(roots.cache.rglob("*.gz*"))


def test_unknown_dataset_name_lists_the_valid_ones(roots):
    with pytest.raises(DataError) as e:
        load_data("fashion-mnits")
    assert all(name in str(e.value) for name in ("fashion-mnist", "mnist", "kmnist"))


# ------------------------------------------------------------------------ checksums

def test_real_debian_fashion_mnist_verifies(roots, monkeypatch):
    if not all((DEBIAN_FASHION / f.filename).exists() for f in FASHION_MNIST.file_list()):
        pytest.skip(f"{DEBIAN_FASHION} is absent (sudo apt-get install dataset-fashion-mnist)")
    monkeypatch.setattr(locate_mod, "SYSTEM_DATASETS_DIR", DEBIAN_FASHION.parent)
    got = locate("fashion-mnist", download=False)
    assert (got.folder, got.origin) == (DEBIAN_FASHION, "system")
    for key, path in got.files.items():
        assert verify_file(path, FASHION_MNIST.files[key], "fashion-mnist") is True
    rows = {r["name"]: r for r in dataset_status()}
    assert rows["fashion-mnist"]["verified"] is True
    assert rows["fashion-mnist"]["location"] == str(DEBIAN_FASHION)


def mnist_t10k() -> Path:
    if not (MNIST_T10K / "t10k-images-idx3-ubyte.gz").exists():
        pytest.skip(f"the real MNIST test set is absent from {MNIST_T10K}")
    return MNIST_T10K


def test_recompressed_real_mnist_still_verifies(tmp_path):
    src = mnist_t10k() / "t10k-images-idx3-ubyte.gz"
    recompressed = tmp_path / src.name
    recompressed.write_bytes(gzip.compress(gzip.decompress(src.read_bytes()), compresslevel=1))
    assert hashlib.sha256(recompressed.read_bytes()).digest() != hashlib.sha256(src.read_bytes()).digest()
    assert verify_file(recompressed, MNIST.files["test_images"], "mnist") is True
    raw = tmp_path / "t10k-images-idx3-ubyte"
    raw.write_bytes(gzip.decompress(src.read_bytes()))
    assert verify_file(raw, MNIST.files["test_images"], "mnist") is True


@pytest.mark.parametrize("gz", [True, False], ids=["gz", "raw"])
def test_one_changed_byte_fails_naming_file_and_hashes(tmp_path, gz):
    src = mnist_t10k() / "t10k-labels-idx1-ubyte.gz"
    data = bytearray(gzip.decompress(src.read_bytes()))
    data[100] = (data[100] + 1) % 10  # still a valid label: only the checksum can tell
    bad = tmp_path / (src.name if gz else src.name[:-3])
    bad.write_bytes(gzip.compress(bytes(data)) if gz else bytes(data))
    with pytest.raises(ChecksumError) as e:
        verify_file(bad, MNIST.files["test_labels"], "mnist")
    msg = str(e.value)
    assert str(bad) in msg
    assert MNIST.files["test_labels"].sha256 in msg
    assert hashlib.sha256(bytes(data)).hexdigest() in msg


def test_mismatch_does_not_fall_through_to_another_copy(roots, fake):
    put(fake.src, roots.system / "fake")  # a good copy later in the search order
    folder = put(fake.src, roots.data_dir)
    bad = folder / "train-labels-idx1-ubyte.gz"
    labels = fake.arrays["train_labels"].copy()
    labels[0] = (labels[0] + 1) % 10
    bad.write_bytes(gzip.compress(b"\0\0\x08\x01" + len(labels).to_bytes(4, "big") + labels.tobytes()))
    with pytest.raises(ChecksumError) as e:
        load_data("fake", data_dir=roots.data_dir, download=False)
    assert str(bad) in str(e.value)


def test_gz_only_checksums(tmp_path, roots, monkeypatch):
    """As for KMNIST: only the published .gz hash is known."""
    src = write_dataset(tmp_path / "src", random_arrays(np.random.default_rng(1)))
    spec = spec_for("gzonly", src, gz_only=True)
    monkeypatch.setitem(KNOWN_DATASETS, "gzonly", spec)
    fs = spec.files["test_images"]
    assert verify_file(src["test_images"], fs, "gzonly") is True
    raw = tmp_path / fs.raw_filename
    raw.write_bytes(gzip.decompress(src["test_images"].read_bytes()))
    assert verify_file(raw, fs, "gzonly") is None  # unverified, not rejected
    recompressed = tmp_path / fs.filename
    recompressed.write_bytes(gzip.compress(raw.read_bytes(), compresslevel=1, mtime=1))
    with pytest.raises(ChecksumError, match="gunzip it to use it unverified"):
        verify_file(recompressed, fs, "gzonly")

    folder = roots.data_dir
    folder.mkdir()
    for p in src.values():
        (folder / p.name[:-3]).write_bytes(gzip.decompress(p.read_bytes()))
    dm = load_data("gzonly", data_dir=folder, download=False)
    assert all(s["verified"] is None for s in dm.source.values())
    row = next(r for r in dataset_status(data_dir=folder) if r["name"] == "gzonly")
    assert row["verified"] is None and row["location"] == str(folder)


def test_hash_is_memoized_by_path_size_mtime(tmp_path, fake, monkeypatch):
    calls = []
    real = checksums.sha256_decompressed
    monkeypatch.setattr(checksums, "sha256_decompressed", lambda p: calls.append(p) or real(p))
    path = shutil.copy(fake.src["train_images"], tmp_path / "x.gz")
    fs = fake.spec.files["train_images"]
    assert verify_file(path, fs, "fake") and verify_file(path, fs, "fake")
    assert len(calls) == 1
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert verify_file(path, fs, "fake")
    assert len(calls) == 2


def test_dataset_status(roots, fake):
    put(fake.src, roots.system / "fake")
    put(fake.src, roots.system / "fashion-mnist")  # wrong files under fashion-mnist's names
    rows = {r["name"]: r for r in dataset_status()}
    assert list(rows)[:3] == ["fashion-mnist", "mnist", "kmnist"]
    assert rows["fake"]["verified"] is True and rows["fake"]["origin"] == "system"
    assert rows["fashion-mnist"]["verified"] is False
    assert "checksum mismatch" in rows["fashion-mnist"]["detail"]
    assert rows["mnist"]["location"] is None and rows["mnist"]["verified"] is None
    assert not roots.cache.exists()  # nothing downloaded

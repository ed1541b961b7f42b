"""Bad input through the command line: exit code 2, one line on stderr saying what and where,
no traceback, and nothing trained or written.

The dataset cases are raised by data/ (NumPy only) before any backend sees the data, so one
backend covers them all; the cases a backend takes part in (``--device gpu``) run for every
installed backend, and so do the training-time cases in test_resume.py and test_evaluate.py.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

import crossframe
from crossframe.common.errors import DeviceUnavailable
from crossframe.data.catalog import MNIST_FILENAMES
from helpers import custom_dataset, one_line_error, run_cli

# The dataset cases fail before any backend sees the data: the one with the cheapest import will do.
ANY_BACKEND = "numpy" if "numpy" in crossframe.available_backends() else crossframe.available_backends()[0]


def train(dataset, out, *extra, backend=ANY_BACKEND):
    return run_cli("train", "--backend", backend, "--dataset", dataset, "--epochs", "1", "--out", out,
                   "--no-progress", *extra)


def _labels(n, dtype=np.uint8):
    return (np.arange(n) % 10).astype(dtype)


def _with(n, index, value, dtype):
    labels = _labels(n, dtype)
    labels[index] = value
    return labels


def _pixels(n, split_value, at=(3, 4, 5), size=28):
    images = np.random.default_rng(1).integers(0, 256, (n, size, size)).astype(np.float32)
    images[at] = split_value
    return images


def _damage(folder, name, how):
    path = folder / name
    data = path.read_bytes()
    if how == "magic":
        path.write_bytes(b"\x07" + data[1:])
    elif how == "truncate":
        path.write_bytes(data[: len(data) // 2])


# Each case: how to make the folder (given tmp folder), extra flags, the words the one line must hold.
FILE_CASES = {
    "wrong magic number": (
        lambda d: _damage(custom_dataset(d, gz=False), "train-images-idx3-ubyte", "magic"), (),
        ["train-images-idx3-ubyte: bad IDX magic number 07000803"]),
    "truncated file": (
        lambda d: _damage(custom_dataset(d, gz=False), "t10k-images-idx3-ubyte", "truncate"), (),
        ["t10k-images-idx3-ubyte: truncated: the header says shape (128, 28, 28)", "fetch it again"]),
    "truncated gzip stream": (
        lambda d: _damage(custom_dataset(d), "train-images-idx3-ubyte.gz", "truncate"), (),
        ["train-images-idx3-ubyte.gz: the gzip stream is truncated or corrupt"]),
    "image and label counts differ": (
        lambda d: custom_dataset(d, train_labels=_labels(255)), (),
        ["train-images-idx3-ubyte.gz holds 256 images but", "train-labels-idx1-ubyte.gz holds 255 labels"]),
    "images too small for the model": (
        lambda d: custom_dataset(d, size=(8, 8)), ("--model", "cnn"),
        ["data: model 'cnn' cannot take inputs of shape (1, 8, 8)",
         "; models that take its 1x8x8 images: softmax, mlp, resnet"]),
    "empty folder": (
        lambda d: d.mkdir(), (),
        ["a custom dataset folder needs the four MNIST-format IDX files; missing " + ", ".join(MNIST_FILENAMES.values())]),
    "a file missing": (
        lambda d: (custom_dataset(d) / "t10k-labels-idx1-ubyte.gz").unlink(), (),
        ["missing t10k-labels-idx1-ubyte.gz (each may be .gz or decompressed)"]),
    "negative label": (
        lambda d: custom_dataset(d, train_labels=_with(256, 5, -3, np.int16)), (),
        ["train-labels-idx1-ubyte.gz: label -3 at index 5 is outside [0, 10)"]),
    "labels not integers": (
        lambda d: custom_dataset(d, test_labels=_labels(128, np.float32)), (),
        ["t10k-labels-idx1-ubyte.gz: labels are stored as float32; they must be integers"]),
    "a single class": (
        lambda d: custom_dataset(d, train_labels=np.zeros(256, np.uint8), test_labels=np.zeros(128, np.uint8)), (),
        ["every label is 0; a classifier needs at least two classes"]),
    "NaN pixel": (
        lambda d: custom_dataset(d, train_images=_pixels(256, np.nan)), (),
        ["train-images-idx3-ubyte.gz: image 3 holds a non-finite value (nan at row 4, column 5)"]),
    "infinite pixel": (
        lambda d: custom_dataset(d, test_images=_pixels(128, -np.inf, at=(9, 0, 27))), (),
        ["t10k-images-idx3-ubyte.gz: image 9 holds a non-finite value (-inf at row 0, column 27)"]),
}


@pytest.mark.parametrize("case", list(FILE_CASES))
def test_a_bad_dataset_folder_is_one_line_naming_the_file(case, tmp_path):
    make, flags, words = FILE_CASES[case]
    folder = tmp_path / "data"
    make(folder)
    out = tmp_path / "run"
    line = one_line_error(train(folder, out, *flags))
    for word in words:
        assert word in line
    assert not out.exists()  # found before training started: nothing written


def test_a_checksum_mismatch_of_a_known_dataset(tmp_path):
    folder = custom_dataset(tmp_path / "fashion-mnist")  # MNIST-format, but not Fashion-MNIST's bytes
    result = run_cli("train", "--backend", ANY_BACKEND, "--dataset", "fashion-mnist", "--data-dir", tmp_path,
                     "--out", tmp_path / "run", "--no-download")
    line = one_line_error(result)
    assert f"{folder / 'train-images-idx3-ubyte.gz'}: checksum mismatch for fashion-mnist train-images" in line
    assert "expected c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888" in line


def test_a_label_outside_the_range_of_a_known_dataset(tmp_path):
    """KMNIST publishes only the hashes of its .gz files, so decompressed copies are used unverified:
    their labels are checked against KMNIST's 10 classes."""
    labels = _with(256, 7, 10, np.uint8)
    folder = custom_dataset(tmp_path / "kmnist", gz=False, train_labels=labels)
    result = run_cli("train", "--backend", ANY_BACKEND, "--dataset", "kmnist", "--data-dir", tmp_path,
                     "--out", tmp_path / "run", "--no-download")
    line = one_line_error(result)
    assert f"{folder / 'train-labels-idx1-ubyte'}: label 10 at index 7 is outside [0, 10)" in line


def test_an_output_folder_under_a_file(tmp_path):
    (tmp_path / "file").write_text("")
    line = one_line_error(train("fashion-mnist", tmp_path / "file" / "run"))
    assert f"cannot create the run folder {tmp_path / 'file' / 'run'}: {tmp_path / 'file'} is a file" in line


@pytest.mark.skipif(os.geteuid() == 0, reason="running as root, who may write in any folder")
def test_an_output_folder_without_write_permission(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    line = one_line_error(train("fashion-mnist", locked / "run"))
    assert f"no permission to write in {locked}" in line


def test_a_run_folder_is_not_overwritten(tmp_path):
    data = custom_dataset(tmp_path / "data")
    out = tmp_path / "run"
    assert train(data, out).returncode == 0
    before = (out / "params.npz").read_bytes()
    line = one_line_error(train(data, out, "--lr", "0.5"))
    assert f"{out} already holds a run: continue it with --resume {out}, or choose another --out" in line
    assert (out / "params.npz").read_bytes() == before


def test_device_gpu_without_a_gpu(backend, tmp_path):
    try:
        crossframe.classifier(backend, "softmax", device="gpu")
    except DeviceUnavailable as err:
        expected = str(err)
    else:
        pytest.skip(f"{backend} sees a GPU on this machine")
    data = custom_dataset(tmp_path / "data")
    line = one_line_error(train(data, tmp_path / "run", "--device", "gpu", backend=backend))
    assert line == f"crossframe: error: {expected}"


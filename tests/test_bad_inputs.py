"""Issue 16's root causes, one case each: what crossframe reads from disk is checked before it
is trusted, the answer is one line and exit code 2 (or 1 for divergence), and nothing is
overwritten or used silently.

Most cases run ``crossframe`` in this process (``run_main``: no interpreter start) with the
NumPy backend and a 256-image folder; the corrupt-file fuzzing is in test_fuzz_files.py, the
run-folder races and the exit codes in test_run_folders.py.
"""

from __future__ import annotations

import json
import os
import shutil
import struct

import numpy as np
import pytest

import crossframe
from crossframe.common.errors import DataError
from crossframe.data import load_data
from helpers import custom_dataset, load_npz, one_line_error, run_main


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return custom_dataset(tmp_path_factory.mktemp("bad") / "data")


@pytest.fixture(scope="module")
def saved_run(data, tmp_path_factory, capsys_module):
    """One epoch of softmax (SGD with momentum: an optimizer with state) on 200 of the images."""
    run = tmp_path_factory.mktemp("saved") / "run"
    assert train(capsys_module, data, run, "--limit-train", "200").returncode == 0
    return run


@pytest.fixture(scope="module")
def capsys_module():
    """run_main's capture for module fixtures (pytest's capsys is per test)."""

    class Capture:
        def readouterr(self):
            return "", ""

    return Capture()


@pytest.fixture
def run(saved_run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(saved_run, copy)
    return copy


def train(capsys, data, out, *extra):
    return run_main(capsys, "train", "--backend", "numpy", "--model", "softmax", "--dataset", data, "--epochs", "1",
                    "--out", out, "--no-progress", *extra)


def resume(capsys, run, *extra):
    return run_main(capsys, "train", "--resume", run, "--epochs", "2", "--no-progress", *extra)


def evaluate(capsys, params, data, backend="numpy"):
    return run_main(capsys, "evaluate", "--backend", backend, "--model", "softmax", "--params", params,
                    "--dataset", data)


def unchanged(run):
    """A snapshot of the folder's files, to compare after a refused command."""
    return {p.name: p.read_bytes() for p in sorted(run.iterdir())}


# ------------------------------------------------------------------ 1. parameter, checkpoint, safetensors files

def _safetensors(params: dict, edit) -> bytes:
    from safetensors.numpy import save

    blob = save(params)
    n = struct.unpack("<Q", blob[:8])[0]
    header, body = json.loads(blob[8:8 + n]), blob[8 + n:]
    header, body = edit(header, body)
    text = json.dumps(header).encode() if isinstance(header, dict) else header
    return struct.pack("<Q", len(text)) + text + body


def _first(header):
    return next(k for k in header if k != "__metadata__")


PARAM_FILES = {
    "zero-byte .npz": ("p.npz", lambda p, good: b"", "(the file is empty)"),
    "truncated .npz": ("p.npz", lambda p, good: good[: len(good) // 2], "not a complete zip archive"),
    "random bytes": ("p.npz", lambda p, good: np.random.default_rng(0).bytes(3000), "not a complete zip archive"),
    "strings of the right shapes": ("p.npz", lambda p, good: _npz({k: v.astype(str) for k, v in p.items()}),
                                    "entry 'fc.weight' holds <U"),
    "numeric strings": ("p.npz", lambda p, good: _npz({k: np.full(v.shape, "1.5") for k, v in p.items()}),
                        "entry 'fc.weight' holds <U3"),
    "bool weights": ("p.npz", lambda p, good: _npz({k: v > 0 for k, v in p.items()}), "holds bool"),
    "complex weights": ("p.npz", lambda p, good: _npz({k: v.astype(complex) for k, v in p.items()}),
                        "holds complex128"),
    "safetensors: bad JSON header": ("p.safetensors", lambda p, good: _safetensors(p, lambda h, b: (b"{no json}", b)),
                                     "invalid JSON in header"),
    "safetensors: offsets past the end": (
        "p.safetensors",
        lambda p, good: _safetensors(p, lambda h, b: ({**h, _first(h): {**h[_first(h)], "data_offsets": [0, 10**9]}},
                                                      b)),
        "Error while deserializing header"),
    "safetensors: truncated body": ("p.safetensors", lambda p, good: _safetensors(p, lambda h, b: (h, b[:-100])),
                                    "incomplete metadata"),
    "safetensors: bool weights": ("p.safetensors",
                                  lambda p, good: _safetensors({k: v > 0 for k, v in p.items()}, lambda h, b: (h, b)),
                                  "holds BOOL"),
}


def _npz(arrays: dict) -> bytes:
    import io

    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


@pytest.mark.parametrize("case", list(PARAM_FILES))
def test_a_damaged_parameter_file_is_one_line(case, saved_run, data, tmp_path, capsys):
    name, make, words = PARAM_FILES[case]
    good = (saved_run / "params.npz").read_bytes()
    path = tmp_path / name
    path.write_bytes(make(load_npz(saved_run / "params.npz"), good))
    line = one_line_error(evaluate(capsys, path, data))
    assert line.startswith(f"crossframe: error: {path} is damaged or not a parameter file (")
    assert words in line and "unsafely" not in line and "pickle" not in line
    assert line.endswith("replace it with a good copy")


def test_a_checkpoint_cut_in_half(run, capsys):
    blob = (run / "checkpoint.npz").read_bytes()
    (run / "checkpoint.npz").write_bytes(blob[: len(blob) // 2])
    before = unchanged(run)
    line = one_line_error(resume(capsys, run))
    assert line == (f"crossframe: error: {run / 'checkpoint.npz'} is damaged or not a crossframe checkpoint (not a "
                    "complete zip archive, which every .npz is: cut short, or another kind of file); restore it, or "
                    "start the run again in another folder")
    assert unchanged(run) == before


# ------------------------------------------------------------------ 3. sizes in Python integers

def test_an_idx_size_that_wraps_around_int64(data, tmp_path):
    folder = tmp_path / "wrap"
    shutil.copytree(data, folder)
    (folder / "train-images-idx3-ubyte.gz").unlink()
    path = folder / "train-images-idx3-ubyte"
    path.write_bytes(bytes([0, 0, 8, 3]) + struct.pack(">III", 2**22, 2**21, 2**21) + bytes(100))
    with pytest.raises(DataError, match=r"shape \(4194304, 2097152, 2097152\) \(18446744073709551616 data bytes\) but "
                                        r"only 100 follow"):
        load_data(folder)


# ------------------------------------------------------------------ 4. large finite pixels

def test_huge_finite_pixels_normalise_as_the_same_images_unscaled(tmp_path):
    rng = np.random.default_rng(0)
    images = {k: rng.integers(0, 256, (n, 28, 28)).astype(np.float64) for k, n in (("train", 256), ("test", 128))}
    plain = load_data(custom_dataset(tmp_path / "plain", train_images=images["train"], test_images=images["test"]))
    huge = load_data(custom_dataset(tmp_path / "huge", train_images=images["train"] * 1e200,
                                    test_images=images["test"] * 1e200))
    assert np.isfinite(huge.std) and huge.std == pytest.approx(plain.std * 1e200, rel=1e-12)
    np.testing.assert_allclose(huge.train.X, plain.train.X, rtol=1e-6, atol=1e-6)
    assert huge.train.X.std() > 0.5  # not every image normalised to -0.0


def test_pixels_whose_distance_from_the_mean_overflows(tmp_path):
    images = np.full((256, 28, 28), -1.7e308)
    images[5] = 1.7e308  # 3.4e308 from the mean, beyond float64
    folder = custom_dataset(tmp_path / "max", train_images=images, test_images=images[:128])
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz: image 5 normalises to values float32 cannot hold"):
        load_data(folder)


# ------------------------------------------------------------------ 5. evaluate: finite as float32, logits checked

def test_float64_weights_beyond_float32_are_refused(saved_run, data, tmp_path, capsys):
    params = {k: np.full(v.shape, 1e39) for k, v in load_npz(saved_run / "params.npz").items()}
    np.savez(tmp_path / "big.npz", **params)
    line = one_line_error(evaluate(capsys, tmp_path / "big.npz", data))
    assert line == (f"crossframe: error: {tmp_path / 'big.npz'}: parameter fc.weight contain 1e+39 at index (0, 0), "
                    "beyond float32's range (largest 3.4e+38); the file comes from a diverged run")


def test_weights_whose_logits_overflow_are_one_line_in_every_backend(backend, saved_run, data, tmp_path, capsys):
    params = {k: np.full(v.shape, 3e38, np.float32) for k, v in load_npz(saved_run / "params.npz").items()}
    np.savez(tmp_path / "huge.npz", **params)
    line = one_line_error(evaluate(capsys, tmp_path / "huge.npz", data, backend=backend))
    assert line.startswith(f"crossframe: error: {tmp_path / 'huge.npz'}: these parameters give a logit float32 "
                           "cannot hold (")
    assert line.endswith("for validation image 0, class 0: they come from a diverged run")


# ------------------------------------------------------------------ 6. the float64 backend's last good parameters

def test_parameters_beyond_float32_are_divergence(data, tmp_path, capsys):
    out = tmp_path / "run"
    result = run_main(capsys, "train", "--backend", "numpy", "--model", "mlp", "--lr", "300", "--dataset", data,
                      "--epochs", "3", "--out", out, "--no-progress")
    line = one_line_error(result, code=1)
    assert line.startswith("crossframe: training diverged: the state left float32's range in epoch 1 (parameter ")
    assert line.endswith(f"lower the learning rate (it is 300). The last good parameters, the initial parameters, "
                         f"are in {out / 'params.npz'}")
    saved = load_npz(out / "params.npz")
    assert all(np.isfinite(v).all() for v in saved.values())
    assert all(np.array_equal(saved[k], v) for k, v in crossframe.init_params("mlp").items())


# ------------------------------------------------------------------ 7. config.json and checkpoint contents

def _edit_config(run, edit):
    path = run / "config.json"
    path.write_text(json.dumps(edit(json.loads(path.read_text()))))


CONFIG_EDITS = {
    "a list": (lambda c: [1, 2, 3], "config.json: holds a JSON list, not the object crossframe writes"),
    "no lr": (lambda c: {k: v for k, v in c.items() if k != "lr"}, "config.json: has no lr"),
    "lr a word": (lambda c: c | {"lr": "fast"}, 'config.json: lr is "fast", expected a number'),
    "epochs a word": (lambda c: c | {"epochs": "three"}, 'config.json: epochs is "three", expected an integer'),
    "negative lr": (lambda c: c | {"lr": -1.0}, "config.json: the learning rate must be a positive number; got -1.0"),
    "infinite std": (lambda c: c | {"normalization": {"mean": 0.5, "std": float("inf")}},
                     "config.json: not valid JSON (Infinity is not a JSON number"),
}


def test_an_edited_lr_names_both_values(run, capsys):
    _edit_config(run, lambda c: c | {"lr": 0.02})
    line = one_line_error(resume(capsys, run))
    assert line == (f"crossframe: error: {run / 'config.json'} was changed after {run / 'checkpoint.npz'} was saved: "
                    "lr 0.02 (the checkpoint's: 0.01); put the saved values back (a run keeps its settings), or start "
                    "a new run in another folder")


def _edit_checkpoint(run, edit):
    arrays = load_npz(run / "checkpoint.npz")
    np.savez(run / "checkpoint.npz", **edit(arrays))


CHECKPOINT_EDITS = {
    "history an object": (lambda a: a | {"history": np.asarray('{"epoch": 1}')},
                          "checkpoint.npz: the history is a JSON dict, not a list of epoch records"),
    "no optimizer entries": (lambda a: {k: v for k, v in a.items() if not k.startswith("optimizer/")},
                             "checkpoint.npz: missing optimizer/momentum.fc.weight, optimizer/momentum.fc.bias for a "
                             "softmax run with sgd"),
    "epoch -5": (lambda a: a | {"epoch": np.asarray(-5)},
                 "checkpoint.npz: epoch is -5, expected a whole number of completed epochs"),
    "a NaN parameter": (lambda a: a | {"params/fc.bias": np.full(10, np.nan, np.float32)},
                        "checkpoint.npz: params/fc.bias contain nan at index (0,)"),
    "a parameter of another shape": (lambda a: a | {"params/fc.bias": np.zeros(3, np.float32)},
                                     "checkpoint.npz: params/fc.bias has shape (3,), expected (10,)"),
}


RUN_EDITS = {**{f"config: {k}": (_edit_config, *v) for k, v in CONFIG_EDITS.items()},
             **{f"checkpoint: {k}": (_edit_checkpoint, *v) for k, v in CHECKPOINT_EDITS.items()}}


@pytest.mark.parametrize("case", list(RUN_EDITS))
def test_a_bad_config_or_checkpoint_is_refused_before_anything_is_written(case, run, capsys):
    editor, edit, words = RUN_EDITS[case]
    editor(run, edit)
    before = unchanged(run)
    line = one_line_error(resume(capsys, run))
    assert f"{run}/{words}" in line, line  # the file named, then what is wrong
    assert unchanged(run) == before


def test_resume_refuses_a_flag_with_another_value_and_accepts_the_same(run, data, capsys):
    line = one_line_error(resume(capsys, run, "--backend", "torch", "--model", "mlp", "--seed", "0"))
    assert line == (f"crossframe: error: --resume takes the run's settings from {run / 'config.json'}; these differ: "
                    "--backend torch (its backend: numpy), --model mlp (its model: softmax) (only --epochs, --device, "
                    "--devices, --data-dir, --no-download and --progress may change; leave the others out or give the run's "
                    "values)")
    line = one_line_error(resume(capsys, run, "--limit-train", "100"))
    assert "these differ: --limit-train 100 selects 100 training images (the run's: 200)" in line
    # the command line recalled with --resume added: every value the run's own
    same = resume(capsys, run, "--backend", "numpy", "--model", "softmax", "--dataset", data, "--limit-train", "200",
                  "--seed", "0", "--lr", "0.01", "--out", run)
    assert same.returncode == 0, same.stderr
    assert same.stdout.startswith(f"resuming {run} after epoch 1 of 2\n")


# ------------------------------------------------------------------ 9. paths the system refuses

def test_a_path_component_too_long(data, tmp_path, capsys):
    out = tmp_path / ("x" * 300)
    line = one_line_error(train(capsys, data, out))
    assert line == f"crossframe: error: cannot create the run folder {out}: File name too long"


# ------------------------------------------------------------------ 10. the class count of a custom folder

def _labels_with(value, index=17, dtype=np.uint8):
    labels = (np.arange(256) % 10).astype(dtype)
    labels[index] = value
    return labels


def test_a_stray_label_is_an_error_unless_the_class_count_is_given(tmp_path, capsys):
    folder = custom_dataset(tmp_path / "stray", train_labels=_labels_with(11))
    line = one_line_error(train(capsys, folder, tmp_path / "a"))
    assert line == (f"crossframe: error: label 11 at index 17 of {folder / 'train-labels-idx1-ubyte.gz'}: class 10 "
                    "has no training examples; if the dataset has 12 classes, pass --num-classes 12, else fix the "
                    "stray labels")
    result = train(capsys, folder, tmp_path / "b", "--num-classes", "12")
    assert result.returncode == 0, result.stderr
    assert ", 256 training / 128 validation images, 12 classes, batch 64," in result.stdout.splitlines()[0]
    assert json.loads((tmp_path / "b" / "config.json").read_text())["num_classes"] == 12


@pytest.mark.parametrize(("value", "dtype", "words"), [
    (255, np.uint8, "label 255 at index 17 of {file}: classes 10 to 254 have no training examples; if the dataset "
                    "has 256 classes, pass --num-classes 256"),
    (2**30, np.int32, "label 1073741824 at index 17 of {file}: crossframe trains at most 1000 classes"),
])
def test_labels_that_would_make_hundreds_of_classes(value, dtype, words, tmp_path, capsys):
    folder = custom_dataset(tmp_path / "stray", train_labels=_labels_with(value, dtype=dtype))
    line = one_line_error(train(capsys, folder, tmp_path / "run"))
    assert words.format(file=folder / "train-labels-idx1-ubyte.gz") in line


def test_num_classes_is_bounded(data, tmp_path, capsys):
    line = one_line_error(train(capsys, data, tmp_path / "run", "--num-classes", "5000"))
    assert "argument --num-classes: must be from 2 to 1000, got 5000" in line
    line = one_line_error(train(capsys, data, tmp_path / "run", "--num-classes", "4"))
    assert "label 4 at index 4 is outside [0, 4)" in line


# ------------------------------------------------------------------ 11. the smaller ones

def test_an_empty_out_is_refused(data, capsys):
    line = one_line_error(train(capsys, data, ""))
    assert "argument --out: an empty path: give a folder name" in line


def test_run_files_follow_the_umask(data, tmp_path, capsys):
    old = os.umask(0o027)
    try:
        assert train(capsys, data, tmp_path / "run").returncode == 0
    finally:
        os.umask(old)
    modes = {p.name: p.stat().st_mode & 0o777 for p in (tmp_path / "run").iterdir() if not p.name.startswith(".")}
    assert modes and set(modes.values()) == {0o640}, modes


def test_data_dir_naming_a_file(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    line = one_line_error(run_main(capsys, "train", "--backend", "numpy", "--data-dir", tmp_path / "file",
                                   "--out", tmp_path / "run", "--no-download"))
    assert line == (f"crossframe: error: --data-dir {tmp_path / 'file'} is a file, not a folder: give the folder "
                    "that holds the fashion-mnist files")


@pytest.mark.parametrize("kind", ["folder", "symlink loop", "FIFO", "broken link"])
def test_something_else_under_a_dataset_file_name(kind, data, tmp_path, capsys):
    folder = tmp_path / "data"
    shutil.copytree(data, folder)
    path = folder / "train-labels-idx1-ubyte.gz"
    path.unlink()
    {"folder": path.mkdir, "symlink loop": lambda: path.symlink_to(path), "FIFO": lambda: os.mkfifo(path),
     "broken link": lambda: path.symlink_to(tmp_path / "gone")}[kind]()
    line = one_line_error(train(capsys, folder, tmp_path / "run"))
    expected = {"folder": "is a folder, not an IDX file", "symlink loop": "is a loop of symbolic links",
                "FIFO": "is a FIFO (named pipe), not an IDX file",
                "broken link": f"is a symbolic link to {tmp_path / 'gone'}, which does not exist"}[kind]
    assert line.startswith(f"crossframe: error: {path} {expected}")


def test_images_of_no_pixels_name_their_file(tmp_path, capsys):
    folder = custom_dataset(tmp_path / "empty", train_images=np.zeros((256, 0, 0), np.uint8),
                            test_images=np.zeros((128, 0, 0), np.uint8))
    line = one_line_error(train(capsys, folder, tmp_path / "run"))
    assert line.startswith(f"crossframe: error: {folder / 'train-images-idx3-ubyte.gz'}: the images are 0x0 pixels")


def test_compare_lists_only_the_files_it_wrote(data, tmp_path, capsys, monkeypatch, env_blocking):
    out = tmp_path / "cmp"
    monkeypatch.setenv("PYTHONPATH", env_blocking("crossframe.backends.numpy")["PYTHONPATH"])  # in the worker only
    result = run_main(capsys, "compare", "--backends", "numpy", "--model", "softmax", "--dataset", data, "--epochs",
                      "1", "--out", out)
    assert result.returncode == 1  # the one backend could not run: no epoch to draw
    assert result.stdout.splitlines()[-1] == f"wrote {out / 'compare.json'}, {out / 'report.md'}, {out / 'report.html'}"
    assert not (out / "curves.png").exists()
    line = one_line_error(run_main(capsys, "compare", "--backends", "numpy", "--dataset", data, "--out", out))
    assert line.startswith(f"crossframe: error: {out} already holds a comparison (compare.json, report.md, report.html, numpy)")

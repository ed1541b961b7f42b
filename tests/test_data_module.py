"""load_data / DataModule / EpochPlan: shapes, statistics, order, batching, validation."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from crossframe.common.errors import DataError, UserError
from crossframe.data import KNOWN_DATASETS, EpochPlan, load_data, read_idx, write_idx
from crossframe.data import locate as locate_mod
from crossframe.data.catalog import MNIST_FILENAMES
from crossframe.data.testing import random_arrays, spec_for, write_dataset

MNIST_T10K = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "mnist-t10k"
DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture(scope="module")
def mnist_folder(tmp_path_factory) -> Path:
    """A custom dataset folder whose train AND test files are the real MNIST t10k files."""
    if not (MNIST_T10K / "t10k-images-idx3-ubyte.gz").exists():
        pytest.skip(f"the real MNIST test set is absent from {MNIST_T10K}")
    folder = tmp_path_factory.mktemp("mnist10k")
    for split in ("train", "t10k"):
        for kind in ("images-idx3", "labels-idx1"):
            (folder / f"{split}-{kind}-ubyte.gz").symlink_to(MNIST_T10K / f"t10k-{kind}-ubyte.gz")
    return folder


@pytest.fixture(scope="module")
def mnist(mnist_folder):
    return load_data(mnist_folder, batch_size=64, seed=7)


# ------------------------------------------------------------------ real MNIST digits

def test_real_mnist_shapes_dtypes_and_statistics(mnist, mnist_folder):
    raw = read_idx(mnist_folder / "t10k-images-idx3-ubyte.gz")
    assert raw.shape == (10000, 28, 28) and raw.dtype == np.uint8
    X, y = mnist.train.X, mnist.train.y
    assert X.shape == (10000, 1, 28, 28) and X.dtype == np.float32 and X.flags.c_contiguous
    assert y.shape == (10000,) and y.dtype == np.int64
    assert mnist.input_shape == (1, 28, 28)
    assert mnist.num_classes == 10 and mnist.class_names == [str(i) for i in range(10)]
    scaled = raw.astype(np.float64) / 255
    assert mnist.mean == pytest.approx(scaled.mean(), rel=1e-12)
    assert mnist.std == pytest.approx(scaled.std(), rel=1e-12)
    assert mnist.mean == pytest.approx(0.1325, abs=1e-4)  # the MNIST test set's known values
    assert mnist.std == pytest.approx(0.3105, abs=1e-4)
    np.testing.assert_allclose(X[:, 0], (scaled - mnist.mean) / mnist.std, rtol=1e-6, atol=1e-6)
    assert abs(float(X.mean(dtype=np.float64))) < 1e-6
    assert float(X.std(dtype=np.float64)) == pytest.approx(1, 1e-6)
    assert np.bincount(y).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert all(s["verified"] is None and s["origin"] == "folder" for s in mnist.source.values())


def test_order_is_a_reproducible_permutation_per_epoch(mnist, mnist_folder):
    n = len(mnist.train)
    o0 = mnist.train_order(0)
    assert o0.dtype == np.int64 and np.array_equal(np.sort(o0), np.arange(n))
    assert np.array_equal(o0, mnist.train_order(0))
    assert np.array_equal(o0, np.random.default_rng([7, 0]).permutation(n))
    assert not np.array_equal(o0, mnist.train_order(1))
    other = load_data(mnist_folder, seed=7, limit_val=10)  # another DataModule, same seed
    assert np.array_equal(other.train_order(3), mnist.train_order(3))
    other_seed = load_data(mnist_folder, seed=8, limit_val=10)
    assert not np.array_equal(other_seed.train_order(3), mnist.train_order(3))
    plan = mnist.train_plan(2)
    assert np.array_equal(plan.order, mnist.train_order(2))
    X, y = next(iter(plan))
    assert np.array_equal(y, mnist.train.y[mnist.train_order(2)[:64]])
    with pytest.raises(UserError):
        mnist.train_order(-1)


def test_last_partial_batch_is_kept(mnist_folder):
    dm = load_data(mnist_folder, batch_size=64, limit_train=1000, limit_val=1000)
    plan = dm.train_plan(0)
    assert len(plan) == 16 and plan.num_examples == 1000
    assert plan.batch_sizes() == [64] * 15 + [40]
    batches = list(dm.train_batches(0))
    assert [len(y) for _, y in batches] == plan.batch_sizes()
    assert all(X.shape[1:] == (1, 28, 28) and X.dtype == np.float32 for X, _ in batches)
    # every example exactly once, in the epoch's order
    assert np.array_equal(np.concatenate([y for _, y in batches]), dm.train.y[plan.order])
    assert [s.stop - s.start for s in plan.batch_slices()] == plan.batch_sizes()


def test_weighted_batch_average_equals_plain_average(mnist_folder):
    dm = load_data(mnist_folder, batch_size=64, limit_train=1000)
    plan = dm.train_plan(5)
    means = [X.mean(dtype=np.float64) for X, _ in plan]
    weighted = np.dot(means, plan.batch_sizes()) / plan.num_examples
    assert weighted == pytest.approx(dm.train.X.mean(dtype=np.float64), abs=1e-12)
    # the approximation that exact weighting avoids is measurably off here
    assert abs(np.mean(means) - dm.train.X.mean(dtype=np.float64)) > 1e-6


def test_val_plan_is_in_file_order(mnist):
    plan = mnist.val_plan()
    assert np.array_equal(plan.order, np.arange(10000))
    assert len(plan) == 157 and plan.batch_sizes()[-1] == 10000 - 156 * 64
    X, y = next(mnist.val_batches())
    assert np.array_equal(X, mnist.val.X[:64]) and np.array_equal(y, mnist.val.y[:64])


def test_limits_take_the_first_examples_and_keep_full_statistics(mnist_folder, mnist):
    dm = load_data(mnist_folder, limit_train=100, limit_val=50, seed=7)
    assert (len(dm.train), len(dm.val)) == (100, 50)
    assert np.array_equal(dm.train.X, mnist.train.X[:100]) and np.array_equal(dm.val.y, mnist.val.y[:50])
    assert (dm.mean, dm.std) == (mnist.mean, mnist.std)
    assert len(load_data(mnist_folder, limit_train=10**6).train) == 10000


@pytest.mark.parametrize("kwargs", [dict(batch_size=0), dict(batch_size=-1), dict(batch_size=2.5),
                                    dict(limit_train=0), dict(limit_val=-3), dict(seed=-1)])
def test_bad_arguments_are_user_errors(mnist_folder, kwargs):
    with pytest.raises(UserError):
        load_data(mnist_folder, **kwargs)


def test_epoch_plan_directly():
    X = np.arange(10, dtype=np.float32).reshape(10, 1, 1, 1)
    y = np.arange(10, dtype=np.int64)
    plan = EpochPlan(X, y, np.array([9, 8, 7, 6, 5, 4, 3, 2, 1, 0], dtype=np.int64), 4)
    assert len(plan) == 3 and plan.batch_sizes() == [4, 4, 2]
    assert [b.tolist() for _, b in plan] == [[9, 8, 7, 6], [5, 4, 3, 2], [1, 0]]
    assert len(EpochPlan(X, y, np.arange(8), 4)) == 2
    with pytest.raises(UserError):
        EpochPlan(X, y, np.arange(10), 0)


# ------------------------------------------------------------------ Fashion-MNIST

def test_fashion_mnist_from_usr_share(tmp_path, monkeypatch):
    if not all((DEBIAN_FASHION / n).exists() for n in MNIST_FILENAMES.values()):
        pytest.skip(f"{DEBIAN_FASHION} is absent (sudo apt-get install dataset-fashion-mnist)")
    monkeypatch.setenv("CROSSFRAME_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(locate_mod, "SYSTEM_DATASETS_DIR", DEBIAN_FASHION.parent)
    dm = load_data("fashion-mnist", limit_train=2000, download=False)
    assert dm.name == "fashion-mnist" and dm.num_classes == 10
    assert dm.class_names[0] == "T-shirt/top" and dm.class_names[9] == "Ankle boot"
    assert dm.train.X.shape == (2000, 1, 28, 28) and dm.val.X.shape == (10000, 1, 28, 28)
    assert dm.mean == pytest.approx(0.2860, abs=1e-4) and dm.std == pytest.approx(0.3530, abs=1e-4)
    assert np.bincount(dm.val.y).tolist() == [1000] * 10
    assert all(s["verified"] is True and s["origin"] == "system" for s in dm.source.values())
    assert len(dm.train_plan(0)) == 32 and dm.train_plan(0).batch_sizes()[-1] == 2000 - 31 * 64


# ------------------------------------------------------------------ custom folders and bad data

def custom(tmp_path, **changes) -> Path:
    arrays = random_arrays(np.random.default_rng(3), n_train=30, n_test=12, size=(5, 7), num_classes=4)
    arrays.update(changes)
    write_dataset(tmp_path / "custom", arrays, gz=False)
    return tmp_path / "custom"


def test_custom_folder_dataset(tmp_path):
    test_labels = np.array([0, 1, 2, 3, 5, 0, 1, 2, 3, 0, 1, 2], np.uint8)  # 5 only in val
    folder = custom(tmp_path, test_labels=test_labels)
    with pytest.raises(DataError, match=r"label 5 at index 4 of .*t10k-labels-idx1-ubyte: classes 4, 5 have no "
                                        r"training examples; if the dataset has 6 classes, pass --num-classes 6"):
        load_data(folder, batch_size=8)  # a stray label, most likely: the class count is not guessed
    dm = load_data(folder, batch_size=8, num_classes=6)
    assert dm.num_classes == 6 and dm.class_names == ["0", "1", "2", "3", "4", "5"]
    assert dm.input_shape == (1, 5, 7) and dm.train.X.shape == (30, 1, 5, 7)
    assert len(dm.train_plan(0)) == 4 and dm.train_plan(0).batch_sizes() == [8, 8, 8, 6]
    assert dm.name == str(folder)


def test_custom_float_dataset_is_normalised_with_its_own_statistics(tmp_path):
    rng = np.random.default_rng(4)
    train = (rng.standard_normal((30, 5, 7)) * 3 + 10).astype(np.float32)
    folder = custom(tmp_path, train_images=train, test_images=train[:12].astype(np.float64))
    dm = load_data(folder)
    assert dm.mean == pytest.approx(train.astype(np.float64).mean(), rel=1e-12)
    assert dm.std == pytest.approx(train.astype(np.float64).std(), rel=1e-12)
    np.testing.assert_allclose(dm.train.X[:, 0], (train - dm.mean) / dm.std, rtol=1e-5, atol=1e-5)
    assert dm.val.X.dtype == np.float32


def test_missing_file_in_custom_folder(tmp_path):
    folder = custom(tmp_path)
    (folder / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError, match="missing t10k-labels-idx1-ubyte.gz") as e:
        load_data(folder)
    assert str(folder) in str(e.value)


def test_count_mismatch_names_both_files(tmp_path):
    folder = custom(tmp_path, train_labels=np.zeros(29, np.uint8))
    with pytest.raises(DataError) as e:
        load_data(folder)
    msg = str(e.value)
    assert str(folder / "train-images-idx3-ubyte") in msg and str(folder / "train-labels-idx1-ubyte") in msg
    assert "30 images" in msg and "29 labels" in msg


def test_images_must_be_3d(tmp_path):
    folder = custom(tmp_path, test_images=np.zeros((12, 35), np.uint8))
    with pytest.raises(DataError, match=r"3-D .* got shape \(12, 35\)") as e:
        load_data(folder)
    assert str(folder / "t10k-images-idx3-ubyte") in str(e.value)


def test_nan_pixels_in_float_data(tmp_path):
    images = np.ones((30, 5, 7), np.float32)
    images[17, 2, 3] = np.nan
    images[20, 0, 0] = np.inf
    folder = custom(tmp_path, train_images=images)
    with pytest.raises(DataError, match=r"image 17 .*nan at row 2, column 3") as e:
        load_data(folder)
    assert str(folder / "train-images-idx3-ubyte") in str(e.value)


def test_image_sizes_must_agree(tmp_path):
    folder = custom(tmp_path, test_images=np.zeros((12, 7, 5), np.uint8))
    with pytest.raises(DataError, match="same image size"):
        load_data(folder)


def test_float_labels_are_rejected(tmp_path):
    folder = custom(tmp_path, train_labels=np.zeros(30, np.float32))
    with pytest.raises(DataError, match="must be integers") as e:
        load_data(folder)
    assert str(folder / "train-labels-idx1-ubyte") in str(e.value)


def test_negative_label_in_custom_folder(tmp_path):
    labels = np.zeros(12, np.int16)
    labels[4] = -2
    folder = custom(tmp_path, test_labels=labels)
    with pytest.raises(DataError, match="label -2 at index 4") as e:
        load_data(folder)
    assert str(folder / "t10k-labels-idx1-ubyte") in str(e.value)


def test_label_out_of_range_for_a_known_dataset(tmp_path, monkeypatch):
    arrays = random_arrays(np.random.default_rng(5))
    arrays["train_labels"][[13, 40]] = [10, 11]
    files = write_dataset(tmp_path / "bad", arrays)
    monkeypatch.setitem(KNOWN_DATASETS, "badlabels", spec_for("badlabels", files))  # checksums match
    with pytest.raises(DataError, match=r"label 10 at index 13 is outside \[0, 10\)") as e:
        load_data("badlabels", data_dir=tmp_path / "bad", download=False)
    assert str(files["train_labels"]) in str(e.value)


def test_not_a_folder_nor_a_name(tmp_path):
    with pytest.raises(DataError, match="fashion-mnist, mnist, kmnist"):
        load_data(tmp_path / "nowhere")
    f = write_idx(tmp_path / "file", np.zeros(3, np.uint8))
    with pytest.raises(DataError, match="existing folder"):
        load_data(f)


def test_folder_with_gz_and_raw_mixed(tmp_path):
    folder = custom(tmp_path)
    gz = write_idx(tmp_path / "x.gz", read_idx(folder / "train-images-idx3-ubyte"))
    (folder / "train-images-idx3-ubyte").unlink()
    shutil.move(gz, folder / "train-images-idx3-ubyte.gz")
    assert load_data(folder).train.X.shape == (30, 1, 5, 7)


def test_reloading_reuses_decoded_files_until_they_change(tmp_path, monkeypatch):
    from crossframe.data import datamodule

    folder = custom(tmp_path)
    calls = []
    real = datamodule.read_idx
    monkeypatch.setattr(datamodule, "read_idx", lambda p, **kw: calls.append(p) or real(p, **kw))
    a = load_data(folder)
    b = load_data(folder, limit_train=5)
    assert len(calls) == 4
    assert np.array_equal(a.train.X[:5], b.train.X) and (a.mean, a.std) == (b.mean, b.std)
    write_idx(folder / "train-labels-idx1-ubyte", np.full(30, 3, np.uint8))
    c = load_data(folder, num_classes=4)
    assert len(calls) == 5 and set(c.train.y.tolist()) == {3}
    c.train.X[0] = 0  # the DataModule's own arrays are writable copies

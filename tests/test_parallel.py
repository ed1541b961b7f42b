"""Data parallelism, --devices N (issue 13; README, "More than one device"): the split rule, the
refusals, and for torch, jax and tf a run on 2 CPU devices against the same run on one.

The 2-device runs start their own processes (torch's workers; JAX and TF need their CPU devices
configured before the framework starts), so they run through ``python -m crossframe``."""

from __future__ import annotations

import json

import numpy as np
import pytest

from crossframe.common.parallel import replica_slice
from helpers import custom_dataset, load_npz, one_line_error, run_cli, run_main

# float32 sums of the same gradient in another order: a few ulps of each step's update, over 8
# steps of lr 0.01 (measured 7.5e-9 on 2,048 images; the bound for that run is 1e-4)
TOLERANCE = 1e-6


@pytest.mark.parametrize("batch, world", [(64, 2), (63, 2), (11, 4), (3, 4), (1, 2), (10, 3)])
def test_replica_slices_cover_the_batch_in_order(batch, world):
    parts = [replica_slice(batch, r, world) for r in range(world)]
    assert [i for s in parts for i in range(batch)[s]] == list(range(batch))  # contiguous, in order, once each
    sizes = [s.stop - s.start for s in parts]
    assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)


def test_numpy_refuses_two_devices(capsys):
    line = one_line_error(run_main(capsys, "train", "--backend", "numpy", "--devices", "2", "--epochs", "1"))
    assert "one device only" in line and "--devices 2" in line


def test_batchnorm_refused_on_two_devices(capsys):
    line = one_line_error(run_main(capsys, "train", "--backend", "jax", "--model", "lenet-bn", "--devices", "2"))
    assert "BatchNorm" in line


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return custom_dataset(tmp_path_factory.mktemp("parallel") / "data", n_train=200, n_test=64)


@pytest.mark.parametrize("engine_backend", ["torch", "jax", "tf"])
def test_two_devices_train_as_one(engine_backend, data, tmp_path):
    # batch 27: 7 batches that split 14/13 and a last one of 11 (6/5): every uneven case
    common = ["train", "--backend", engine_backend, "--model", "mlp", "--device", "cpu", "--epochs", "1",
              "--dataset", data, "--batch-size", "27", "--no-download"]
    runs = {}
    for n in (1, 2):
        result = run_cli(*common, "--devices", n, "--out", tmp_path / f"d{n}")
        assert result.returncode == 0, result.stderr
        runs[n] = load_npz(tmp_path / f"d{n}" / "params.npz")
    assert "2 devices" in result.stdout
    config = json.loads((tmp_path / "d2" / "config.json").read_text())
    assert (config["devices"], config["world_size"]) == (2, 2) and config["engine"]
    assert runs[1].keys() == runs[2].keys()
    worst = max(float(np.abs(runs[1][k] - runs[2][k]).max()) for k in runs[1])
    assert worst <= TOLERANCE, worst


def test_compare_refuses_two_devices_when_no_backend_named_can(capsys, data, tmp_path):
    line = one_line_error(run_main(capsys, "compare", "--backends", "numpy", "--devices", "2", "--dataset", data,
                                   "--out", tmp_path / "c"))
    assert "one device only" in line and "--devices 2" in line


def test_compare_refuses_a_batchnorm_model_on_two_devices(capsys, data, tmp_path):
    line = one_line_error(run_main(capsys, "compare", "--backends", "jax", "--model", "lenet-bn", "--devices", "2",
                                   "--dataset", data, "--out", tmp_path / "c"))
    assert "BatchNorm" in line and not (tmp_path / "c").exists()


def test_the_refusal_a_table_row_shows():
    """bench runs a model that cannot be split on one device, and its scaling row says why not on two."""
    from crossframe.common.parallel import refusal

    assert "BatchNorm" in refusal("jax", "lenet-bn", 2) and "one device only" in refusal("numpy", "mlp", 2)
    assert refusal("jax", "mlp", 2) is None and refusal("jax", "lenet-bn", 1) is None


def test_resume_on_another_device_count(data, tmp_path):
    """A run of 1 epoch on 2 devices resumed for a second on 1 ends where 2 epochs on 1 device end
    (up to the float32 summation order of the first epoch)."""
    common = ["train", "--backend", "jax", "--model", "mlp", "--device", "cpu", "--dataset", data,
              "--batch-size", "27", "--no-download"]
    for args in (["--epochs", 1, "--devices", 2, "--out", tmp_path / "mixed"],
                 ["--resume", tmp_path / "mixed", "--epochs", 2],
                 ["--epochs", 2, "--out", tmp_path / "one"]):
        result = run_cli(*common, *args) if "--resume" not in args else run_cli(
            "train", *args, "--no-download")
        assert result.returncode == 0, result.stderr
    config = json.loads((tmp_path / "mixed" / "config.json").read_text())
    assert config["devices"] == 2 and config["resumed"][0]["after_epoch"] == 1 and config["resumed"][0]["devices"] == 1
    mixed, one = load_npz(tmp_path / "mixed" / "params.npz"), load_npz(tmp_path / "one" / "params.npz")
    assert max(float(np.abs(mixed[k] - one[k]).max()) for k in one) <= TOLERANCE

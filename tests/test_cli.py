"""The command line, through subprocesses, as a user runs it."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
import sysconfig

import pytest

from helpers import one_line_error
from helpers import run_cli as crossframe


def test_help_lists_the_commands():
    result = crossframe("--help")
    assert result.returncode == 0
    assert "train" in result.stdout and "datasets" in result.stdout


def test_train_prints_epochs_and_writes_the_run_folder(fashion_dir, tmp_path):
    out = tmp_path / "run"
    result = crossframe("train", "--backend", "torch", "--model", "softmax", "--epochs", "2",
                        "--limit-train", "1000", "--limit-val", "500", "--data-dir", str(fashion_dir),
                        "--out", str(out))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("training softmax with torch on cpu: fashion-mnist, 1,000 training / 500 validation")
    assert [line.split()[1] for line in lines if line.startswith("epoch ")] == ["1/2", "2/2"]
    assert lines[-1].startswith("done in ") and str(out) in lines[-1]
    config = json.loads((out / "config.json").read_text())
    assert (config["lr"], config["momentum"]) == (0.01, 0.5)  # the softmax recipe
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 2


def test_the_console_script_is_installed():
    script = shutil.which("crossframe", path=sysconfig.get_path("scripts"))
    assert script is not None, f"no crossframe script in {sysconfig.get_path('scripts')}"
    result = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "usage: crossframe" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--backend", "mxnet"], "invalid choice: 'mxnet' (choose from 'torch', 'jax', 'tf', 'numpy')"),
        (["train", "--model", "vgg"], "invalid choice: 'vgg' (choose from 'softmax', 'mlp', 'cnn', 'lenet', 'resnet', 'mlp-dropout', 'lenet-bn', 'resnet-bn')"),
        (["train", "--dataset", "cifar"], "unknown dataset 'cifar': choose one of fashion-mnist, mnist, kmnist"),
        (["train", "--optimizer", "rmsprop"], "invalid choice: 'rmsprop' (choose from 'sgd', 'adam', 'adamw')"),
        (["train", "--batch-size", "0"], "argument --batch-size: must be at least 1, got 0"),
        (["train", "--epochs", "-1"], "argument --epochs: must be at least 1, got -1"),
        (["train", "--lr", "0"], "argument --lr: must be a positive number, got 0"),
        (["train", "--device", "tpu"], "invalid choice: 'tpu' (choose from 'auto', 'cpu', 'gpu')"),
        (["train", "--lr", "-0.5"], "argument --lr: must be a positive number, got -0.5"),
        (["train", "--epochs", "two"], "argument --epochs: expected a whole number, got 'two'"),
        (["evaluate", "--backend", "mxnet", "--params", "p.npz"], "invalid choice: 'mxnet'"),
        (["evaluate"], "the following arguments are required: --params"),
        ([], "the following arguments are required: COMMAND"),
    ],
)
def test_bad_arguments_exit_2_naming_the_choices(args, message):
    """argparse's errors too are one line (what, and where to read more), not the usage text."""
    line = one_line_error(crossframe(*args))
    assert message in line and line.endswith("--help')")


@pytest.mark.parametrize(("name", "framework"), [("torch", "torch"), ("jax", "jax"), ("tf", "tensorflow")])
def test_a_missing_framework_names_the_pip_extra(tmp_path, name, framework):
    """Simulate a machine without the framework: ``sys.modules[name] = None`` makes its import fail."""
    if importlib.util.find_spec(f"crossframe.backends.{name}") is None:
        pytest.skip(f"crossframe has no {name} backend yet")
    code = (
        f"import sys; sys.modules[{framework!r}] = None\n"
        "from crossframe.common.cli import main\n"
        f"sys.exit(main(['train', '--backend', {name!r}, '--limit-train', '100', '--out', sys.argv[1]]))"
    )
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert f'pip install "crossframe[{name}]"' in result.stderr
    assert "Traceback" not in result.stderr


def test_offline_without_a_copy_says_where_to_put_the_files(tmp_path):
    result = crossframe("train", "--dataset", "mnist", "--no-download", env=_env(CROSSFRAME_CACHE=str(tmp_path)))
    assert result.returncode == 2
    assert "train-images-idx3-ubyte.gz" in result.stderr and "--data-dir" in result.stderr
    assert "Traceback" not in result.stderr


def test_device_gpu_without_a_gpu_exits_2(fashion_dir, tmp_path):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    result = crossframe("train", "--device", "gpu", "--limit-train", "100", "--data-dir", str(fashion_dir),
                        "--out", str(tmp_path))
    assert result.returncode == 2
    assert "PyTorch sees no GPU" in result.stderr and "Traceback" not in result.stderr


def test_datasets_lists_fashion_mnist_as_verified(fashion_dir):
    result = crossframe("datasets")
    assert result.returncode == 0
    row = next(line for line in result.stdout.splitlines() if line.startswith("fashion-mnist"))
    assert str(fashion_dir) in row and "verified" in row


def _env(**extra):
    import os

    return {**os.environ, **extra}

"""``crossframe compare``: one process per backend, a table, compare.json, report.md, curves.png;
a backend that is missing or fails is one row of the table and the others still run."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from crossframe.common.bench.compare import summarise
from crossframe.common.bench.jobs import run_job
from crossframe.common.bench.schemas import COMPARE_SCHEMA
from crossframe.common.checkpoint import save_params
from jsonschema import Draft202012Validator

TINY = ["--limit-train", "500", "--limit-val", "200", "--no-download"]


def test_the_schema_is_a_valid_json_schema():
    Draft202012Validator.check_schema(COMPARE_SCHEMA)


def test_compare_runs_the_others_when_a_backend_is_missing(fashion_dir, tmp_path, env_blocking):
    """jax is made unimportable (whether or not this crossframe has it); torch still trains."""
    out = tmp_path / "cmp"
    result = subprocess.run(
        [sys.executable, "-m", "crossframe", "compare", "--backends", "torch,jax", "--model", "softmax",
         "--epochs", "2", "--data-dir", str(fashion_dir), *TINY, "--out", str(out)],
        capture_output=True, text=True, timeout=300, env=env_blocking("crossframe.backends.jax"),
    )
    assert result.returncode == 1, result.stderr  # 1: not every backend finished
    assert "Traceback" not in result.stderr

    report = json.loads((out / "compare.json").read_text())
    Draft202012Validator(COMPARE_SCHEMA).validate(report)
    assert list(report["backends"]) == ["torch", "jax"]
    assert report["reference_backend"] == "torch"
    assert report["config"] | {"model": "softmax", "epochs": 2, "train_examples": 500, "val_examples": 200,
                               "lr": 0.01, "momentum": 0.5} == report["config"]
    torch_run, jax_run = report["backends"]["torch"], report["backends"]["jax"]
    assert torch_run["status"] == "ok" and torch_run["error"] is None
    assert [e["epoch"] for e in torch_run["epochs"]] == [1, 2]
    assert [e["max_param_diff"] for e in torch_run["epochs"]] == [0.0, 0.0]  # the reference against itself
    assert torch_run["final"]["val_acc"] == torch_run["epochs"][-1]["val_acc"]
    assert torch_run["samples_per_second"] == pytest.approx(500 / torch_run["seconds_per_epoch"])
    assert torch_run["peak_rss_bytes"] > 0
    assert jax_run["status"] == "unavailable" and "jax" in jax_run["error"]
    assert jax_run["epochs"] == [] and jax_run["final"] is None

    # the torch run folder is a normal run folder plus every epoch's parameters
    for name in ("config.json", "metrics.jsonl", "params.npz", "params-epoch0.npz", "params-epoch2.npz"):
        assert (out / "torch" / name).is_file(), name
    assert (out / "curves.png").read_bytes().startswith(b"\x89PNG")
    report_md = (out / "report.md").read_text()
    assert "![loss and accuracy per epoch" in report_md and "torch 2." in report_md
    # report.html: crossframe show's page of the compared backends' code, the tables and curves on top
    page = (out / "report.html").read_text()
    results = page[page.index('id="results"'):page.index("</section>")]
    assert f"{torch_run['final']['val_acc']:.4f}" in results and 'src="data:image/png;base64,' in results
    assert 'id="training_step-torch"' in page and 'id="training_step-jax"' in page and "-tf\"" not in page
    assert '<span class="name">TorchClassifier._train_step</span>' in page
    assert f"in the compare run: val acc {torch_run['final']['val_acc']:.4f}" in page
    assert "in the compare run: unavailable: backend &#x27;jax&#x27;" in page

    # the table, printed: a row per backend, the missing one with its error
    table = result.stdout[result.stdout.index("| backend"):].split("\n\n")[0]
    rows = {line.split("|")[1].strip(): line for line in table.splitlines() if line.startswith("| ")}
    assert f"{torch_run['final']['val_acc']:.4f}" in rows["torch"]
    assert "unavailable: backend 'jax'" in rows["jax"]


def _write_run(folder, params_by_epoch):
    folder.mkdir(parents=True)
    for epoch, params in enumerate(params_by_epoch):
        save_params(folder / f"params-epoch{epoch}.npz", params)


def _history(epochs):
    return [{"epoch": e, "train_loss": 1.0, "train_acc": 0.5, "val_loss": 1.0, "val_acc": 0.5, "seconds": 2.0 + e,
             "val_seconds": 0.1, "samples_per_second": 100.0} for e in range(1, epochs + 1)]


def test_parameter_differences_are_measured_from_the_first_backend_that_finished(tmp_path):
    start = {"fc.weight": np.zeros((2, 3), np.float32), "fc.bias": np.zeros(2, np.float32)}
    moved = {"fc.weight": np.full((2, 3), 0.5, np.float32), "fc.bias": np.zeros(2, np.float32)}
    later = {"fc.weight": np.full((2, 3), 0.5, np.float32), "fc.bias": np.array([0.0, -0.25], np.float32)}
    _write_run(tmp_path / "a", [start, moved])
    _write_run(tmp_path / "b", [start, later])
    results = {
        "x": {"status": "unavailable", "error": "backend 'x' is not here"},  # first asked for, but did not run
        "a": {"status": "ok", "error": None, "history": _history(1)},
        "b": {"status": "ok", "error": None, "history": _history(1)},
    }
    summary = summarise(results, tmp_path, train_examples=300)
    assert summary["reference_backend"] == "a"
    b = summary["backends"]["b"]
    assert b["initial_param_diff"] == 0.0
    assert (b["epochs"][0]["max_param_diff"], b["epochs"][0]["max_param_diff_param"]) == (0.25, "fc.bias")
    assert summary["backends"]["x"]["epochs"] == [] and summary["backends"]["x"]["initial_param_diff"] is None


def test_a_run_that_fails_midway_keeps_its_finished_epochs(tmp_path):
    params = {"fc.weight": np.zeros((2, 3), np.float32), "fc.bias": np.zeros(2, np.float32)}
    _write_run(tmp_path / "a", [params] * 4)
    _write_run(tmp_path / "b", [params] * 3)
    results = {"a": {"status": "ok", "error": None, "history": _history(3)},
               "b": {"status": "failed", "error": "training diverged: ...", "history": _history(2)}}
    b = summarise(results, tmp_path, train_examples=300)["backends"]["b"]
    assert [e["epoch"] for e in b["epochs"]] == [1, 2]
    assert b["final"] is None  # a run that did not finish has no final figures
    assert b["first_epoch_seconds"] == 3.0 and b["seconds_per_epoch"] == 4.0  # the epochs after the first


def test_a_worker_that_dies_is_reported_with_its_last_words(tmp_path):
    crash = [sys.executable, "-c", ("import sys; print('half way', flush=True); "
                                    "sys.stderr.write('Fatal Python error: Segmentation fault\\n'); sys.exit(245)")]
    lines = []
    result = run_job({"kind": "train"}, tmp_path / "run", argv=crash, echo=lines.append)
    assert result["status"] == "failed"
    assert "exited with code 245 without a result: Fatal Python error: Segmentation fault" in result["error"]
    assert lines == ["half way"]


def test_a_worker_past_its_timeout_is_stopped(tmp_path):
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    result = run_job({"kind": "train"}, tmp_path / "run", argv=sleeper, timeout=1)
    assert result["status"] == "failed" and "timeout" in result["error"]
    assert result["wall_seconds"] < 30


@pytest.mark.parametrize(("model", "lr", "momentum"), [("mlp-dropout", 0.1, 0.5), ("lenet-bn", 0.1, 0.9)])
def test_every_backend_trains_the_dropout_and_batchnorm_models_alike(fashion_dir, model, lr, momentum):
    """What ``crossframe compare --backends torch,jax,tf,numpy --model mlp-dropout`` (and lenet-bn)
    promises, in one process on a smaller slice (320 images, 5 steps; the figures of 3,000 images
    are in README): every backend within 1e-3 of torch's parameters and buffers, and within 0.5
    percentage points of its validation accuracy. Only the same masks and running statistics allow it."""
    import crossframe

    data = crossframe.load_data("fashion-mnist", data_dir=fashion_dir, limit_train=320, limit_val=300,
                                download=False)
    states, accuracies = {}, {}
    for backend in crossframe.available_backends():
        clf = crossframe.classifier(backend, model, lr=lr, momentum=momentum, device="cpu")
        accuracies[backend] = crossframe.Trainer(1, progress=False).fit(clf, data)[0]["val_acc"]
        states[backend] = clf.state_dict()
    reference = states[crossframe.available_backends()[0]]
    for backend, state in states.items():
        diff = max(float(np.abs(state[n].astype(np.float64) - reference[n]).max()) for n in reference)
        assert diff <= 1e-3, (backend, diff)
        assert abs(accuracies[backend] - next(iter(accuracies.values()))) <= 0.005, accuracies


def test_compare_on_two_devices(fashion_dir, tmp_path):
    """--devices 2: jax, tf and torch each train data-parallel on 2 CPU devices (a mesh, a
    MirroredStrategy, 2 DDP worker processes) and still agree with each other; numpy, which runs on
    one device only, is a row saying so in one line. The bound: as one device's runs (README, "Compare
    frameworks"), float32 sums in another order, 8 steps of lr 0.01 (measured: 7.5e-9)."""
    out = tmp_path / "cmp"
    result = subprocess.run(
        [sys.executable, "-m", "crossframe", "compare", "--backends", "jax,tf,torch,numpy", "--model", "mlp",
         "--epochs", "2", "--devices", "2", "--device", "cpu", "--data-dir", str(fashion_dir),
         "--limit-train", "256", "--limit-val", "128", "--no-download", "--out", str(out)],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 1, result.stderr  # 1: numpy did not run
    assert "Traceback" not in result.stderr
    report = json.loads((out / "compare.json").read_text())
    Draft202012Validator(COMPARE_SCHEMA).validate(report)
    assert report["config"]["devices"] == 2 and report["reference_backend"] == "jax"
    engines = {"jax": "jax.sharding.Mesh", "tf": "tf.distribute.MirroredStrategy",
               "torch": "torch.nn.parallel.DistributedDataParallel"}
    for backend, engine in engines.items():
        run = report["backends"][backend]
        assert run["status"] == "ok", (backend, run["error"])
        assert (run["devices"], run["world_size"], run["engine"]) == (2, 2, engine)
        assert run["epochs"][-1]["max_param_diff"] <= 1e-6, (backend, run["epochs"][-1]["max_param_diff"])
        config = json.loads((out / backend / "config.json").read_text())  # rank 0's run folder
        assert (config["devices"], config["world_size"], config["engine"]) == (2, 2, engine)
    numpy_run = report["backends"]["numpy"]
    assert numpy_run["status"] == "unavailable" and "runs on one device only" in numpy_run["error"]
    assert not (out / "numpy").exists()  # refused before any process started
    table = result.stdout[result.stdout.index("| backend"):].split("\n\n")[0]
    rows = {line.split("|")[1].strip(): line for line in table.splitlines() if line.startswith("| ")}
    assert "| devices |" in table.splitlines()[0] and "unavailable: backend 'numpy' runs on one device only" in rows["numpy"]
    assert "Data parallelism (--devices 2" in (out / "report.md").read_text()

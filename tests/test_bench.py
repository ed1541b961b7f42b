"""``crossframe bench``: timed epochs per backend, model and batch size beside the classic pipeline
and Keras 3; bench.json follows its schema; a missing backend is a row, the others still run.
No figure is asserted here (no timing in tests): only that each one is there and consistent."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import crossframe
import pytest
from crossframe.common.bench.bench import add_ratios, targets
from crossframe.common.bench.schemas import BENCH_SCHEMA
from crossframe.common.bench.timing import steady_state
from crossframe.common.commands.options import comma_list
from jsonschema import Draft202012Validator


def test_the_schema_is_a_valid_json_schema():
    Draft202012Validator.check_schema(BENCH_SCHEMA)


def test_bench_times_backends_and_both_references(fashion_dir, tmp_path, env_blocking):
    """A tiny run: torch, jax made unimportable, the classic pipeline and Keras 3 on all three frameworks."""
    out = tmp_path / "bench"
    result = subprocess.run(
        [sys.executable, "-m", "crossframe", "bench", "--backends", "torch,jax", "--models", "mlp",
         "--batch-sizes", "128", "--epochs", "2", "--limit-train", "512", "--data-dir", str(fashion_dir),
         "--no-download", "--device", "cpu", "--out", str(out)],
        capture_output=True, text=True, timeout=600, env=env_blocking("crossframe.backends.jax"),
    )
    assert result.returncode == 1, result.stderr  # 1: not every run finished (jax)
    assert "Traceback" not in result.stderr
    report = json.loads((out / "bench.json").read_text())
    Draft202012Validator(BENCH_SCHEMA).validate(report)
    runs = {r["name"]: r for r in report["runs"]}
    assert list(runs) == ["torch", "jax", "classic", "keras-torch", "keras-jax", "keras-tensorflow"]  # backend order
    assert runs["jax"]["status"] == "unavailable" and "jax" in runs["jax"]["error"]
    for name in ("torch", "classic", "keras-tensorflow", "keras-jax", "keras-torch"):
        run = runs[name]
        assert run["status"] == "ok", (name, run["error"])
        assert len(run["epoch_seconds"]) == 1 and len(run["epoch_seconds"][0]) == 2  # one round of two epochs
        assert run["steady_seconds"] == run["epoch_seconds"][0][1]
        assert run["samples_per_second"] == pytest.approx(512 / run["steady_seconds"])
        assert run["device"] == "cpu" and run["peak_rss_bytes"] > 0
    for framework in ("tensorflow", "jax", "torch"):  # each Keras run used the framework it was given
        assert runs[f"keras-{framework}"]["detail"]["keras_backend"] == framework
        assert framework in runs[f"keras-{framework}"]["versions"]
    torch_run = runs["torch"]
    assert torch_run["keras_reference"] == "keras-torch"
    assert torch_run["vs_classic"] == pytest.approx(runs["classic"]["steady_seconds"] / torch_run["steady_seconds"])
    assert torch_run["vs_keras"] == pytest.approx(runs["keras-torch"]["steady_seconds"] / torch_run["steady_seconds"])
    assert all(t["met"] is None for t in report["targets"])  # 512 images: the targets need the full set

    bench_md = (out / "bench.md").read_text()
    assert "crossframe bench --backends torch,jax --models mlp" in bench_md
    table = result.stdout[result.stdout.index("| run"):].split("\n\n")[0]
    rows = {line.split("|")[1].strip(): line for line in table.splitlines()[2:]}
    assert list(rows) == ["crossframe torch", "crossframe jax", "classic pipeline", "Keras 3 (torch)",
                          "Keras 3 (jax)", "Keras 3 (tensorflow)"]
    assert f"{torch_run['vs_classic']:.2f}x" in rows["crossframe torch"]
    assert "unavailable: backend 'jax'" in rows["crossframe jax"]


def _run(name, kind, steady, *, model="mlp", batch_size=64, keras=None, status="ok"):
    return {"name": name, "kind": kind, "model": model, "batch_size": batch_size, "status": status,
            "steady_seconds": steady, "keras_reference": keras, "vs_classic": None, "vs_keras": None}


def test_ratios_and_targets_on_the_full_dataset():
    runs = [
        _run("torch", "crossframe", 1.0, keras="keras-torch"),
        _run("jax", "crossframe", 2.0, keras="keras-jax"),
        _run("tf", "crossframe", None, keras="keras-tensorflow", status="unavailable"),
        _run("numpy", "crossframe", 4.0),  # the float64 reference: timed, not held to the targets
        _run("classic", "classic", 5.0),
        _run("keras-torch", "keras", 1.5),
        _run("keras-jax", "keras", 1.0),
        _run("classic", "classic", 50.0, batch_size=256),  # another batch size: not a reference for batch 64
    ]
    add_ratios(runs)
    assert (runs[0]["vs_classic"], runs[0]["vs_keras"]) == (5.0, 1.5)
    assert (runs[1]["vs_classic"], runs[1]["vs_keras"]) == (2.5, 0.5)
    assert runs[3]["vs_classic"] == 1.25
    assert runs[5]["vs_classic"] == pytest.approx(5 / 1.5) and runs[5]["vs_keras"] is None
    fastest, every, keras = targets(runs, {"dataset": "fashion-mnist", "train_examples": 60_000})
    assert fastest["met"] is True and fastest["detail"] == "torch 5.00x; not measured: tf"
    assert every["met"] is True and every["detail"].startswith("torch 5.00x, jax 2.50x")
    assert keras["met"] is False and keras["detail"].startswith("torch 1.50x, jax 0.50x")


def test_steady_state_is_the_median_after_the_warm_up():
    figures = steady_state([[9.0, 2.0, 4.0, 3.0]], examples=600)
    assert figures == {"warmup_seconds": 9.0, "steady_seconds": 3.0, "warmup_overhead_seconds": 6.0,
                       "samples_per_second": 200.0}


def test_steady_state_over_rounds_pools_the_epochs_after_each_warm_up():
    figures = steady_state([[9.0, 2.0, 6.0], [7.0, 3.0, 3.5], [8.0]], examples=600)  # the third round: one epoch
    assert figures["warmup_seconds"] == 8.0 and figures["steady_seconds"] == 3.25


@pytest.mark.parametrize(("text", "error"), [
    ("--epochs 1", "argument --epochs: must be at least 2 (the first epoch is the warm-up), got 1"),
    ("--models mlp,vgg", "argument --models: unknown 'vgg': choose from softmax, mlp, cnn, lenet, resnet"),
    ("--batch-sizes 64,0", "argument --batch-sizes: must be at least 1, got 0"),
    ("--references classic,caffe", "argument --references: unknown 'caffe'"),
])
def test_bad_bench_arguments_exit_2(text, error):
    result = subprocess.run([sys.executable, "-m", "crossframe", "bench", *text.split()], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2 and error in result.stderr


def test_comma_lists_keep_order_drop_duplicates_and_expand_all():
    parse = comma_list(("a", "b", "c"))
    assert parse("c, a,c") == ["c", "a"]
    assert parse("all") == ["a", "b", "c"]


KERAS_LOGITS = """
import json, sys
import numpy as np
import crossframe
from crossframe.common.bench.keras_reference import build_model, keras
from crossframe.common.models import build_spec

X = np.random.default_rng(0).standard_normal((8, 1, 28, 28)).astype(np.float32)
diffs = {}
for model in crossframe.MODELS:
    torch_clf = crossframe.classifier("torch", model)
    expected = torch_clf.to_numpy(torch_clf.forward(X))
    net = build_model(build_spec(model), crossframe.init_params(model))
    logits = keras.ops.convert_to_numpy(net(X.transpose(0, 2, 3, 1)))
    diffs[model] = float(np.abs(logits - expected).max())
print(json.dumps({"backend": keras.backend.backend(), "diffs": diffs}))
"""


def test_the_keras_reference_is_the_same_network(tmp_path):
    """Same spec and init: Keras's logits equal the torch backend's up to float32 rounding, for
    every model (the conv kernels, the flatten order before a dense layer, the residual blocks).

    Run in a fresh process with the torch backend of Keras: Keras fixes its framework when first
    imported. The bound: logits are sums of at most 784 products of order 1, added in another
    order (channels-last, another GEMM); float32 rounding of such sums stays below 1e-5 (seen: 7e-7).
    """
    env = {**os.environ, "KERAS_BACKEND": "torch"}
    result = subprocess.run([sys.executable, "-c", KERAS_LOGITS], capture_output=True, text=True, timeout=300,
                            env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["backend"] == "torch"
    assert set(report["diffs"]) == set(crossframe.MODELS)
    assert all(diff <= 1e-5 for diff in report["diffs"].values()), report["diffs"]


def test_gpu_targets_appear_only_for_gpu_runs():
    cpu_only = [_run("torch", "crossframe", 1.0) | {"device": "cpu"}]
    assert all("GPU" not in t["target"] for t in targets(cpu_only, {"dataset": "fashion-mnist",
                                                                    "train_examples": 60_000}))
    gpu = [_run("torch", "crossframe", 0.15) | {"device": "cuda:0"}, _run("jax", "crossframe", 0.25) | {"device": "gpu"},
           _run("torch", "crossframe", 0.3, model="cnn") | {"device": "cuda:0"}]
    by_text = {t["target"]: t for t in targets(gpu, {"dataset": "fashion-mnist", "train_examples": 60_000})}
    mlp = by_text["torch and JAX mlp epoch ≤ 0.2 s at batch 64 on an H100 (GPU)"]
    assert mlp["met"] is False and mlp["detail"] == "torch 0.150 s on cuda:0, jax 0.250 s on gpu"
    assert by_text["torch and JAX cnn epoch ≤ 0.4 s at batch 64 on an H100 (GPU)"]["met"] is True

"""``crossframe parity --devices N`` (issue 13): each backend data-parallel on N replicas, checked
against the float64 reference and against the same backend on one device.

The end-to-end run starts its own processes (torch's workers; JAX and TF configured for 2 CPU
devices before they start), so it runs through ``python -m crossframe``; the checks themselves
are tested here on the reference's own traces, where a wrong replica gradient is made by hand."""

from __future__ import annotations

import dataclasses
import json

import pytest

import crossframe
from crossframe.common import parity
from crossframe.common.cli import build_parser
from crossframe.common.commands.parity import _models_for
from crossframe.common.models import build_spec
from helpers import one_line_error, run_cli, run_main

ENGINES = [b for b in ("jax", "tf", "torch") if b in crossframe.available_backends()]


@pytest.mark.skipif(not ENGINES, reason="none of torch, jax, tf is installed: nothing runs on 2 devices")
def test_two_devices_pass_against_the_reference_and_one_device(fashion_dir, tmp_path):
    # batch 21: every step splits 11/10 across the 2 replicas
    result = run_cli("parity", "--devices", 2, "--models", "mlp,cnn", "--steps", 4, "--batch-size", 21,
                     "--backends", ",".join(ENGINES), "--data-dir", fashion_dir, "--no-download",
                     "--json", tmp_path / "p.json")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads((tmp_path / "p.json").read_text())
    assert report["passed"] and report["backends"] == ENGINES and report["devices"] == 2
    assert "all backends, 2 devices each" in result.stdout
    for backend in ENGINES:
        for model in ("mlp", "cnn"):
            checks = {c["check"]: c for c in report["checks"] if (c["backend"], c["model"]) == (backend, model)}
            assert all("2 devices" in c["device"] for c in checks.values())
            replicas = [name for name in checks if name.startswith("2 vs 1 device: ")]
            params = build_spec(model).param_shapes()
            # against one device: every parameter's gradient, the three optimizers, the training run
            assert {f"2 vs 1 device: gradient {p}" for p in params} <= set(replicas)
            assert {"2 vs 1 device: sgd (3 steps)", "2 vs 1 device: adamw (3 steps)",
                    "2 vs 1 device: train (4 steps)", "2 vs 1 device: train loss (4 steps)"} <= set(replicas)
            assert {c["reference"] for n, c in checks.items() if n in replicas} == {f"{backend} on 1 device"}
            assert "gradient fc1.weight" in checks or "gradient conv1.weight" in checks  # and the reference's


@pytest.fixture(scope="module")
def reference_trace(fashion_dir):
    data = parity.load_parity_data(steps=4, data_dir=fashion_dir, download=False)
    batches = parity.training_batches(data, 4)
    return parity.trace(parity.reference_backend(), "softmax", batches, train_batches=batches)


def test_the_replica_checks_pass_on_the_same_run(reference_trace):
    got = dataclasses.replace(reference_trace, devices=2, device="cpu, 2 devices")
    checks = parity.compare_replicas(got, reference_trace)
    assert checks and all(c.passed and c.value == 0 for c in checks)
    assert {c.reference for c in checks} == {f"{reference_trace.backend} on 1 device"}


def test_a_replica_left_out_of_the_all_reduce_fails(reference_trace):
    """A gradient that is one replica's part only (its half of the batch, not summed with the
    other's) differs from the one-device gradient far beyond reduction order."""
    n = len(reference_trace.logits)  # the batch of the gradient check
    half = reference_trace.gradients_without(tuple(range(n // 2, n)))
    part = {name: g * 0.5 for name, g in half.items()}  # replica 0's sum over its slice / the global size
    got = dataclasses.replace(reference_trace, devices=2, gradients=part, gradients_without=None)
    failed = [c.check for c in parity.compare_replicas(got, reference_trace) if not c.passed]
    assert failed == [f"2 vs 1 device: gradient {name}" for name in reference_trace.gradients], failed


def test_a_drifted_training_run_fails(reference_trace):
    """Parameters moved by 10% of the training path's length: the 'train' check fails."""
    start, end = reference_trace.start, reference_trace.train
    drifted = {n: end[n] + 0.1 * (end[n] - start[n])[::-1].reshape(end[n].shape) for n in end}
    got = dataclasses.replace(reference_trace, devices=2, train=drifted)
    failed = [c.check for c in parity.compare_replicas(got, reference_trace) if not c.passed]
    assert failed == ["2 vs 1 device: train (4 steps)"], failed


def test_by_default_every_model_that_runs_on_two_devices():
    args = build_parser().parse_args(["parity", "--devices", "2"])
    assert _models_for(args) == ["softmax", "mlp", "cnn", "lenet", "resnet"]  # no BatchNorm, no dropout
    assert _models_for(build_parser().parse_args(["parity"])) == list(crossframe.MODELS)


@pytest.mark.parametrize("model, word", [("lenet-bn", "BatchNorm"), ("mlp-dropout", "dropout")])
def test_a_model_that_cannot_run_on_two_devices_is_refused(capsys, model, word):
    line = one_line_error(run_main(capsys, "parity", "--devices", "2", "--models", f"mlp,{model}"))
    assert word in line and model in line

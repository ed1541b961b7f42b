"""Divergence, interruption and resume, for every installed backend.

The command-line runs train ``mlp`` (SGD with momentum: the optimizer has state) on a small
random dataset: 256 training images in 4 batches of 64, so an epoch takes milliseconds and
most of a run's time goes to writing its files — where a kill is most likely to land.

Resuming must give the parameters of an uninterrupted run bit for bit: on a CPU every
backend is deterministic run to run (the same operations in the same order on the same
data), and the resumed run repeats them exactly. A backend that cannot promise this must
say so here, with its bound and the reason.
"""

from __future__ import annotations

import os
import re
import signal
import time

import numpy as np
import pytest

import crossframe
from crossframe.common.checkpoint import check_params, load_params
from crossframe.common.errors import DivergenceError, UserError
from crossframe.common.models import build_spec
from crossframe.common.runfolder import RunFolder, interrupts_deferred
from helpers import (assert_same_arrays, custom_dataset, load_npz, one_line_error, read_metrics, run_cli,
                     start_cli)

SEED = 3
START_TIMEOUT = 240  # seconds for a child to import its framework and finish an epoch on a loaded machine


@pytest.fixture(scope="module")
def small_data(tmp_path_factory):
    return custom_dataset(tmp_path_factory.mktemp("small") / "data")


def train(backend, data, out, *extra):
    return ("train", "--backend", backend, "--model", "mlp", "--dataset", data, "--seed", SEED,
            "--out", out, "--no-progress", *extra)


def same_records(a: list[dict], b: list[dict]) -> None:
    """The metrics of two runs agree exactly, apart from the wall-clock figures."""
    timing = {"seconds", "val_seconds", "samples_per_second"}
    assert [{k: v for k, v in r.items() if k not in timing} for r in a] == \
        [{k: v for k, v in r.items() if k not in timing} for r in b]


def wait_for_epoch(proc, run, timeout=START_TIMEOUT) -> None:
    """Return once ``run`` has its first epoch in metrics.jsonl (the child still running)."""
    deadline = time.monotonic() + timeout
    metrics = run / "metrics.jsonl"
    while time.monotonic() < deadline:
        if metrics.exists() and metrics.read_text().count("\n") >= 1:
            return
        if proc.poll() is not None:
            pytest.fail(f"the run ended early ({proc.returncode}): {proc.communicate()[1]}")
        time.sleep(0.05)
    proc.kill()
    pytest.fail(f"no epoch within {timeout} s")


def check_run_folder(run) -> int:
    """Every file loads and agrees with checkpoint.npz; return the checkpoint's epoch."""
    state = RunFolder(run).read_checkpoint()
    spec = build_spec("mlp")
    check_params(state.params, spec)
    records = read_metrics(run)
    # metrics.jsonl is renamed into place after checkpoint.npz: one epoch behind at most.
    assert len(records) in (state.epoch, state.epoch - 1)
    assert records == state.history[:len(records)]
    params = check_params(load_params(run / "params.npz"), spec)
    assert all(np.isfinite(v).all() for v in params.values())
    load_npz(run / "optimizer.npz")
    return state.epoch


# ------------------------------------------------------------------ resume

def test_one_plus_one_epochs_with_resume_equal_two_epochs(backend, small_data, tmp_path):
    whole, split = tmp_path / "whole", tmp_path / "split"
    assert run_cli(*train(backend, small_data, whole, "--epochs", "2")).returncode == 0
    first = run_cli(*train(backend, small_data, split, "--epochs", "1"))
    assert first.returncode == 0, first.stderr
    resumed = run_cli("train", "--resume", split, "--epochs", "2", "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.startswith(f"resuming {split} after epoch 1 of 2\ntraining mlp with {backend} on ")
    assert [line.split()[1] for line in resumed.stdout.splitlines() if line.startswith("epoch ")] == ["2/2"]

    for name in ("params.npz", "optimizer.npz"):
        assert_same_arrays(load_npz(whole / name), load_npz(split / name))
    same_records(read_metrics(whole), read_metrics(split))
    assert check_run_folder(split) == 2

    again = run_cli("train", "--resume", split)  # a finished run: nothing to do, nothing changed
    assert again.returncode == 0 and again.stdout == f"{split} already holds all 2 epochs: nothing to train " \
                                                       "(pass --epochs N to train further)\n"
    line = one_line_error(run_cli("train", "--resume", split, "--epochs", "1"))
    assert line == f"crossframe: error: {split} already holds 2 epochs, more than --epochs 1"
    line = one_line_error(run_cli("train", "--resume", split, "--epochs", "3", "--lr", "0.1", "--model", "cnn"))
    assert (f"--resume takes the run's settings from {split / 'config.json'}; these differ: --model cnn (its model: "
            "mlp), --lr 0.1 (its lr: 0.01)") in line


def test_resume_with_adam_in_process(backend, tmp_path):
    """The library: Trainer.fit(resume=True), with Adam (moments and step count to restore)."""
    data = crossframe.load_data(custom_dataset(tmp_path / "data"), batch_size=64)
    make = lambda: crossframe.classifier(backend, "mlp", optimizer="adam", lr=1e-3, seed=SEED, device="cpu")  # noqa: E731
    whole = make()
    history = crossframe.Trainer(2, progress=False).fit(whole, data)
    crossframe.Trainer(1, progress=False, out_dir=tmp_path / "run").fit(make(), data)
    resumed = make()
    again = crossframe.Trainer(2, progress=False, out_dir=tmp_path / "run").fit(resumed, data, resume=True)
    assert_same_arrays(whole.get_params(), resumed.get_params())
    assert_same_arrays(whole.get_optimizer_state(), resumed.get_optimizer_state())
    same_records(history, again)


def test_resume_refuses_other_settings(backend, tmp_path):
    data = crossframe.load_data(custom_dataset(tmp_path / "data"), batch_size=64)
    crossframe.Trainer(1, progress=False, out_dir=tmp_path / "run").fit(
        crossframe.classifier(backend, "softmax", lr=0.1, device="cpu"), data)
    other = crossframe.classifier(backend, "softmax", lr=0.2, device="cpu")
    with pytest.raises(UserError, match=r"cannot resume .*run: it was made with other settings: lr 0.1 \(saved\) vs 0.2"):
        crossframe.Trainer(2, progress=False, out_dir=tmp_path / "run").fit(other, data, resume=True)
    with pytest.raises(UserError, match="resume=True needs out_dir"):
        crossframe.Trainer(2, progress=False).fit(other, data, resume=True)


def test_resume_needs_a_run_folder(tmp_path):
    line = one_line_error(run_cli("train", "--resume", tmp_path))
    assert line == f"crossframe: error: {tmp_path} is not a crossframe run folder: it has no config.json"


# ------------------------------------------------------------------ interruption

def test_ctrl_c_waits_until_the_files_are_written():
    """Nested, as Trainer wraps RunFolder.save: the interrupt comes once, after the outer block."""
    done = []
    with pytest.raises(KeyboardInterrupt):
        with interrupts_deferred():
            with interrupts_deferred():
                os.kill(os.getpid(), signal.SIGINT)
                done.append("inner")
            done.append("outer")
    assert done == ["inner", "outer"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_killed_run_keeps_its_last_epoch_and_resumes(backend, small_data, tmp_path):
    run = tmp_path / "run"
    proc = start_cli(*train(backend, small_data, run, "--epochs", "1000"))
    try:
        wait_for_epoch(proc, run)
        time.sleep(0.2)  # land somewhere in the next epochs: training, validating or writing files
    finally:
        proc.kill()  # SIGKILL: no cleanup runs
        proc.communicate()
    done = check_run_folder(run)
    assert done >= 1
    saved = RunFolder(run).read_checkpoint()

    result = run_cli("train", "--resume", run, "--epochs", done + 1, "--no-progress")
    assert result.returncode == 0, result.stderr
    records = read_metrics(run)
    assert [r["epoch"] for r in records] == list(range(1, done + 2))
    assert records[:done] == saved.history
    assert check_run_folder(run) == done + 1
    assert not list(run.glob(".*.tmp"))  # what the kill left half-written is gone


def test_ctrl_c_keeps_the_last_epoch_and_says_how_to_resume(backend, small_data, tmp_path):
    run = tmp_path / "run"
    proc = start_cli(*train(backend, small_data, run, "--epochs", "1000"))
    try:
        wait_for_epoch(proc, run)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert len(stderr.splitlines()) == 1, stderr
    match = re.fullmatch(
        rf"crossframe: interrupted: stopped (in|after) epoch (\d+) of 1000; (epoch 1 is|epochs 1 to (\d+) are) "
        rf"saved in {re.escape(str(run))}; to continue: crossframe train --resume {re.escape(str(run))}\n",
        stderr,
    )
    assert match, stderr
    saved = int(match.group(4) or 1)
    # Ctrl-C waits for the files of an epoch to be written: every file holds the same epoch.
    assert check_run_folder(run) == saved == len(read_metrics(run))
    # params.npz is the exchange format: the checkpoint's parameters rounded to float32
    exact = RunFolder(run).read_checkpoint().params
    assert_same_arrays(load_npz(run / "params.npz"), {k: v.astype(np.float32) for k, v in exact.items()})


# ------------------------------------------------------------------ divergence

def test_a_huge_learning_rate_stops_with_the_last_good_parameters(backend, small_data, tmp_path):
    run = tmp_path / "run"
    result = run_cli(*train(backend, small_data, run, "--epochs", "5", "--lr", "1e10"))
    line = one_line_error(result, code=1)
    match = re.fullmatch(
        r"crossframe: training diverged: the training loss became (nan|inf|-inf) in epoch (\d), step (\d) of 4; "
        r"lower the learning rate \(it is 1e\+10\)\. The last good parameters, (.*), are in (.*)",
        line,
    )
    assert match, line
    epoch = int(match.group(2))
    assert match.group(5) == str(run / "params.npz")
    assert match.group(4) == ("the initial parameters" if epoch == 1 else f"the parameters of epoch {epoch - 1}")
    assert check_run_folder(run) == epoch - 1 == len(read_metrics(run))
    if epoch == 1:
        assert_same_arrays(load_npz(run / "params.npz"), crossframe.init_params("mlp", seed=SEED))


def test_divergence_in_a_later_epoch_keeps_the_epoch_before(backend, tmp_path):
    """Poison the parameters once epoch 1 is saved: epoch 2 fails at its first step, and the
    run folder still holds epoch 1."""
    data = crossframe.load_data(custom_dataset(tmp_path / "data"), batch_size=64)
    model = crossframe.classifier(backend, "softmax", lr=0.1, device="cpu")
    good = {}

    def poison(line: str) -> None:
        good.update(model.get_params())
        model.set_params({name: np.full_like(value, np.nan) for name, value in good.items()})

    trainer = crossframe.Trainer(3, progress=False, out_dir=tmp_path / "run", log=poison)
    with pytest.raises(DivergenceError, match=r"became nan in epoch 2, step 1 of 4; lower the learning rate "
                                              r"\(it is 0\.1\)\. The last good parameters, the parameters of epoch 1") as err:
        trainer.fit(model, data)
    assert (err.value.epoch, err.value.step) == (2, 1)
    assert_same_arrays(load_npz(tmp_path / "run" / "params.npz"), good)
    assert len(read_metrics(tmp_path / "run")) == 1

"""Two ``crossframe train`` runs started at once, both needing the same dataset that neither
has yet: they download it from a local mirror (conftest.py's server) into one cache without
corrupting it. The download is data/'s (NumPy only), so one backend covers every backend."""

from __future__ import annotations

import json
import os
import subprocess

import crossframe
from crossframe.data.catalog import MNIST_FILENAMES
from crossframe.data.checksums import verify_file
from helpers import CLI_TIMEOUT, dataset_child, read_metrics

BACKEND = "numpy" if "numpy" in crossframe.available_backends() else crossframe.available_backends()[0]
RUN_CLI = "from crossframe.common.cli import main\nsys.exit(main(sys.argv[1:]))\n"


def test_two_training_runs_download_the_same_dataset_at_once(served_fake, server, tmp_path):
    server.httpd.delay = 0.3  # each file takes a while: the two downloads overlap
    env = dict(os.environ, CROSSFRAME_CACHE=str(served_fake.cache), CROSSFRAME_MIRROR=server.url("good"))
    runs = [tmp_path / f"run{i}" for i in range(2)]
    procs = [
        subprocess.Popen([*dataset_child(served_fake.spec, RUN_CLI), "train", "--backend", BACKEND, "--dataset", "fake",
                          "--model", "softmax", "--epochs", "1", "--out", str(run), "--no-progress"],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for run in runs
    ]
    outs = [p.communicate(timeout=CLI_TIMEOUT) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert all(stderr == "" for _, stderr in outs), outs

    assert sorted(p.name for p in served_fake.folder.iterdir()) == sorted(MNIST_FILENAMES.values())  # no temp file
    for fs in served_fake.spec.files.values():
        assert verify_file(served_fake.folder / fs.filename, fs, "fake") is True
    # The lock, and the re-check under it: each file was fetched once, not once per run.
    assert sorted(server.requests) == sorted(f"/good/{name}" for name in MNIST_FILENAMES.values())
    # Both trained on the same, whole data, from the same start: the same numbers.
    first, second = ([(r["train_loss"], r["val_loss"], r["val_acc"]) for r in read_metrics(run)] for run in runs)
    assert len(first) == 1 and first == second
    assert all(json.loads((run / "config.json").read_text())["train_examples"] == 200 for run in runs)

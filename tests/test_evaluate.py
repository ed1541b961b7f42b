"""Cross-backend checkpoints: parameters trained by one backend, evaluated by every backend.

The tolerance is the one promised: the validation accuracy of the same parameters agrees
across backends within 0.1 percentage points. On 1,000 images that is one image: float32
logits of two frameworks differ by about 1e-6 relative, so an image changes its predicted
class only when its two largest logits are that close, which a trained model rarely allows.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import crossframe
from helpers import custom_dataset, load_npz, one_line_error, read_metrics, run_cli

VAL = 1000
TOLERANCE = 1  # images out of VAL = 0.1 percentage points
TRAINER = crossframe.available_backends()[0]


@pytest.fixture(scope="module")
def trained(fashion_dir, tmp_path_factory):
    """One epoch of mlp (Adam) on 2,000 Fashion-MNIST images, trained by the CLI with the first backend."""
    run = tmp_path_factory.mktemp("trained") / "run"
    result = run_cli("train", "--backend", TRAINER, "--model", "mlp", "--optimizer", "adam", "--lr", "1e-3",
                     "--epochs", "1", "--limit-train", "2000",
                     "--limit-val", VAL, "--data-dir", fashion_dir, "--out", run, "--no-progress")
    assert result.returncode == 0, result.stderr
    return run


def evaluate(backend, params, fashion_dir, *extra):
    return run_cli("evaluate", "--backend", backend, "--params", params, "--data-dir", fashion_dir,
                   "--limit-val", VAL, *extra)


def test_every_backend_evaluates_parameters_from_another(backend, trained, fashion_dir):
    result = evaluate(backend, trained / "params.npz", fashion_dir, "--model", "mlp")
    assert result.returncode == 0, result.stderr
    match = re.fullmatch(
        rf"mlp parameters from {re.escape(str(trained / 'params.npz'))}, evaluated with {backend} on \S+: "
        rf"fashion-mnist, 1,000 validation images: loss (\S+), accuracy (\S+) \((\d+)/1,000 correct\)\n",
        result.stdout,
    )
    assert match, result.stdout
    correct = int(match.group(3))
    expected = round(read_metrics(trained)[0]["val_acc"] * VAL)  # the training backend's own count
    assert abs(correct - expected) <= TOLERANCE, (backend, correct, TRAINER, expected)
    assert correct > 0.6 * VAL  # a trained model, not a random one (chance is 10 %)


def test_parameters_trained_in_each_backend_evaluate_alike_in_all(backend, fashion_2k, tmp_path):
    """In process: ``backend`` trains, every installed backend loads its params.npz and evaluates."""
    data = fashion_2k  # 2,000 training and VAL validation images
    assert len(data.val) == VAL
    model = crossframe.classifier(backend, "mlp", optimizer="adam", lr=1e-3, device="cpu")
    history = crossframe.Trainer(1, progress=False).fit(model, data)
    model.save(tmp_path / "params.npz")
    expected = round(history[0]["val_acc"] * VAL)
    for other in crossframe.available_backends():
        clf = crossframe.classifier(other, "mlp", device="cpu")
        clf.load(tmp_path / "params.npz")
        _, acc = clf.evaluate(data.val_plan()).read()
        assert abs(round(acc * VAL) - expected) <= TOLERANCE, (backend, other, round(acc * VAL), expected)


def test_the_wrong_model_is_named(trained, tmp_path):
    data = custom_dataset(tmp_path / "data", n_train=64, n_test=32)  # 28x28, 10 classes: mlp's inputs
    line = one_line_error(run_cli("evaluate", "--backend", TRAINER, "--params", trained / "params.npz",
                                  "--dataset", data, "--model", "cnn"))
    assert line == (f"crossframe: error: {trained / 'params.npz'} does not hold 'cnn' parameters for this "
                    "dataset; it holds 'mlp' parameters: pass --model mlp")


def test_parameters_of_a_diverged_run_are_refused(trained, tmp_path):
    params = load_npz(trained / "params.npz")
    params["fc2.bias"][3] = np.nan
    np.savez(tmp_path / "bad.npz", **params)
    line = one_line_error(run_cli("evaluate", "--backend", TRAINER, "--params", tmp_path / "bad.npz"))
    assert line == (f"crossframe: error: {tmp_path / 'bad.npz'}: parameter fc2.bias contain nan at index (3,); "
                    "every value must be finite; the file comes from a diverged run")


def test_a_missing_parameter_file(tmp_path):
    line = one_line_error(run_cli("evaluate", "--backend", TRAINER, "--params", tmp_path / "none.npz"))
    assert line == f"crossframe: error: no parameter file at {tmp_path / 'none.npz'}"

"""The Trainer on real Fashion-MNIST slices, for every installed backend."""

from __future__ import annotations

import json

import numpy as np
import pytest

import crossframe
from crossframe.common import reference as ref
from crossframe.common.errors import UserError


def test_one_epoch_on_2000_images_beats_70_percent(backend, fashion_dir, tmp_path):
    """63 Adam steps on 2,000 images (torch: 0.753, 0.731, 0.750 for seeds 0, 1, 2)."""
    data = crossframe.load_data("fashion-mnist", data_dir=fashion_dir, limit_train=2000, limit_val=1000,
                                batch_size=32, download=False)
    model = crossframe.classifier(backend, "mlp", optimizer="adam", lr=1e-3, seed=0)
    history = crossframe.Trainer(1, progress=False, out_dir=tmp_path).fit(model, data)
    assert len(history) == 1
    assert history[0]["val_acc"] > 0.70
    assert history[0]["train_loss"] < 2.3  # below chance level (ln 10 = 2.303)


def test_the_run_folder_holds_what_the_docs_promise(fashion_2k, tmp_path):
    model = crossframe.classifier("torch", "softmax", lr=0.01, momentum=0.5)
    history = crossframe.Trainer(2, progress=False, out_dir=tmp_path).fit(model, fashion_2k)
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["epoch"] for r in records] == [1, 2]
    assert records == history
    for key in ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "seconds", "samples_per_second"):
        assert key in records[0]
    saved = crossframe.common.checkpoint.load_params(tmp_path / "params.npz")
    for name, value in model.get_params().items():
        np.testing.assert_array_equal(saved[name], value)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["backend"] == "torch" and config["model"] == "softmax"
    assert config["lr"] == 0.01 and config["momentum"] == 0.5 and config["batch_size"] == 64
    assert "torch" in config["versions"] and "numpy" in config["versions"]
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*.tmp"))


def test_epoch_averages_are_exact_over_a_last_partial_batch(backend, fashion_2k):
    """1,000 validation images in batches of 64: 15 full batches and one of 40. The
    Trainer's weighted average must equal the loss and accuracy over all 1,000 at once."""
    model = crossframe.classifier(backend, "softmax", seed=3)
    plan = fashion_2k.val_plan()
    assert plan.batch_sizes()[-1] == 1000 % 64
    loss, acc = model.evaluate(plan).read()
    logits = model.to_numpy(model.forward(fashion_2k.val.X))
    assert loss == pytest.approx(ref.cross_entropy(logits, fashion_2k.val.y), rel=1e-6)
    assert acc == ref.accuracy(logits, fashion_2k.val.y)


@pytest.mark.parametrize(("model", "optimizer"), [("mlp", "sgd"), ("cnn", "adam"), ("lenet", "sgd")])
def test_train_epoch_equals_the_step_by_step_loop(backend, fashion_2k, model, optimizer):
    """JAX runs an epoch as one program (``lax.scan``), TensorFlow as one graph (a
    ``tf.while_loop``), each followed by the last partial batch; torch and NumPy loop over
    ``_train_step``. Either way the result must be the one of calling ``training_step`` batch
    by batch, within float32 rounding. 300 examples in batches of 64: four full batches and one
    of 44."""
    kw = dict(optimizer=optimizer, lr=0.05 if optimizer == "sgd" else 1e-3, momentum=0.9 * (optimizer == "sgd"),
              weight_decay=1e-3, device="cpu")
    full = fashion_2k.train_plan(0)
    plan = type(full)(full.X, full.y, full.order[:300], 64)
    assert plan.batch_sizes() == [64, 64, 64, 64, 44]
    whole, stepped = crossframe.classifier(backend, model, **kw), crossframe.classifier(backend, model, **kw)
    totals = whole.train_epoch(plan)
    losses = [float(stepped.training_step(batch)["loss"]) for batch in plan]
    # the same step either way: any difference is the compiler fusing the looped step differently,
    # a few float32 ulps of parameters of size <= 0.5 (ulp 6e-8) after five steps
    for name, value in stepped.get_params().items():
        np.testing.assert_allclose(whole.get_params()[name], value, atol=1e-6, rtol=0, err_msg=name)
    np.testing.assert_allclose(totals.batch_loss_values(), losses, rtol=1e-6)
    loss, _ = totals.read()
    assert loss == pytest.approx(np.dot(losses, plan.batch_sizes()) / 300, rel=1e-6)
    for slot, value in stepped.get_optimizer_state().items():
        np.testing.assert_allclose(whole.get_optimizer_state()[slot], value, atol=1e-6, err_msg=slot)


def test_evaluate_equals_validation_steps(backend, fashion_2k):
    model = crossframe.classifier(backend, "cnn", device="cpu")
    plan = fashion_2k.val_plan()
    per_batch = [model.validation_step(batch) for batch in plan]
    loss, acc = model.evaluate(plan).read()
    sizes = plan.batch_sizes()
    assert loss == pytest.approx(sum(float(m["loss"]) * n for m, n in zip(per_batch, sizes)) / 1000, rel=1e-6)
    assert acc == sum(int(m["correct"]) for m in per_batch) / 1000


def test_the_batch_order_is_the_datamodules(fashion_2k):
    """A Classifier iterates plan.order; training on a reversed order gives other parameters."""
    a = crossframe.classifier("torch", "softmax")
    b = crossframe.classifier("torch", "softmax")
    plan = fashion_2k.train_plan(0)
    a.train_epoch(plan)
    b.train_epoch(type(plan)(plan.X, plan.y, plan.order[::-1].copy(), plan.batch_size))
    assert not np.array_equal(a.get_params()["fc.weight"], b.get_params()["fc.weight"])
    c = crossframe.classifier("torch", "softmax")
    for X, y in fashion_2k.train_batches(0):
        c.training_step((X, y))
    np.testing.assert_allclose(c.get_params()["fc.weight"], a.get_params()["fc.weight"], atol=1e-7)


def test_a_dataset_that_does_not_fit_the_model_is_refused(fashion_2k):
    model = crossframe.classifier("torch", "mlp", input_shape=(1, 32, 32))
    with pytest.raises(UserError, match=r"images are \(1, 28, 28\) but the classifier was built for \(1, 32, 32\)"):
        crossframe.Trainer(1, progress=False).fit(model, fashion_2k)
    small = crossframe.classifier("torch", "mlp", num_classes=5)
    with pytest.raises(UserError, match=r"training labels: label \d+ at index \d+ is outside the valid range \[0, 5\)"):
        crossframe.Trainer(1, progress=False).fit(small, fashion_2k)


def test_divergence_stops_with_the_epoch_and_batch(fashion_2k):
    model = crossframe.classifier("torch", "mlp", lr=1e6, momentum=0.9)
    with pytest.raises(crossframe.common.errors.DivergenceError, match=r"in epoch 1, step \d+ of \d+; lower the learning rate"):
        crossframe.Trainer(1, progress=False).fit(model, fashion_2k)

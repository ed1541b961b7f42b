"""Every installed backend against the reference backend (the float64 NumPy backend where
installed, else PyTorch), for every model, on real Fashion-MNIST batches: the same logits,
loss, gradients, SGD and Adam updates, tie-breaking, and 100 training steps. Then the
``crossframe parity`` command, which runs the same checks, and its TF32 switch."""

from __future__ import annotations

import json

import numpy as np
import pytest

import crossframe
from crossframe.common import parity, precision
from crossframe.common.cli import main

MODELS = ("softmax", "mlp", "cnn", "lenet", "resnet")
REFERENCE = parity.reference_backend()
OTHERS = [b for b in crossframe.available_backends() if b != REFERENCE]


@pytest.fixture(scope="module")
def parity_data(fashion_dir):
    """2,000 training images in batches of 20: 100 steps for the training check."""
    return crossframe.load_data("fashion-mnist", data_dir=fashion_dir, limit_train=2000, limit_val=100,
                                batch_size=20, download=False)


@pytest.fixture(scope="module")
def reference_traces(parity_data):
    """The reference's run of each model, computed once and shared by every backend's test."""
    batches = list(parity_data.train_plan(0))
    cache: dict[str, parity.Trace] = {}

    def get(model: str) -> parity.Trace:
        if model not in cache:
            cache[model] = parity.trace(REFERENCE, model, batches[:2], train_batches=batches)
        return cache[model]

    return get


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("other", OTHERS)
def test_backend_matches_the_reference(other, model, parity_data, reference_traces):
    batches = list(parity_data.train_plan(0))
    assert len(batches) == 100
    checks = parity.check_backend(other, model, batches[:2], reference=REFERENCE, train_batches=batches,
                                  reference_trace=reference_traces(model))
    print("\n" + parity.format_table(checks))
    names = {c.check for c in checks}
    assert {"logits", "loss", "sgd (2 steps)", "adam (2 steps)", "accuracy ties", "train (100 steps)",
            "train loss (100 steps)"} <= names
    assert len([n for n in names if n.startswith("gradient ")]) == len(crossframe.init_params(model))
    failed = [c for c in checks if not c.passed]
    assert not failed, "\n" + parity.format_table(failed)


def _skewed(monkeypatch, offset: float = 1e-3) -> None:
    """Make the "skewed" backend a PyTorch classifier whose logits are off by ``offset``."""

    def make(name, model, **kw):
        clf = crossframe.classifier("torch", model, **kw)
        if name == "skewed":
            forward = clf.forward
            clf.forward = lambda X: forward(X) + offset
        return clf

    monkeypatch.setattr(parity, "classifier", make)


def test_the_tool_fails_when_backends_differ(parity_data, monkeypatch):
    """The check must be able to fail: a "backend" whose logits are off by 1e-3 is caught."""
    batches = list(parity_data.train_plan(0))[:2]
    _skewed(monkeypatch)
    same = parity.check_backend("torch", "softmax", batches, reference="torch")
    assert all(c.passed for c in same)
    checks = parity.check_backend("skewed", "softmax", batches, reference="torch")
    logits = next(c for c in checks if c.check == "logits")
    assert not logits.passed and logits.value == pytest.approx(1e-3, rel=1e-3)


def test_the_training_checks_catch_a_wrong_batch_order(parity_data):
    """Ten steps with two batches swapped: the per-step losses differ by far more than float32 can."""
    batches = list(parity_data.train_plan(0))[:10]
    swapped = batches[:8] + [batches[9], batches[8]]
    ref = parity.trace(REFERENCE, "softmax", batches[:2], train_batches=batches)
    got = parity.trace(REFERENCE, "softmax", batches[:2], train_batches=swapped)
    checks = {c.check: c for c in parity.compare(got, ref)}
    assert checks["logits"].passed and checks["logits"].value == 0
    assert not checks["train loss (10 steps)"].passed


def test_the_adam_check_fails_when_the_gradients_disagree_everywhere(parity_data):
    """Entries whose gradients disagree are left out of the Adam check, but not all of them:
    a trace whose Adam-step gradients are all 1% off has nothing left to compare, and fails."""
    import dataclasses

    batches = list(parity_data.train_plan(0))[:2]
    ref = parity.trace(REFERENCE, "softmax", batches)
    same = {c.check: c for c in parity.compare(ref, ref)}["adam (2 steps)"]
    assert same.passed and same.value == 0 and same.note == ""
    off = dataclasses.replace(ref, adam_gradients=[{n: g * 1.01 for n, g in step.items()}
                                                   for step in ref.adam_gradients])
    check = {c.check: c for c in parity.compare(off, ref)}["adam (2 steps)"]
    assert not check.passed and "so the check fails" in check.note


# --------------------------------------------------------------------------- the command


def _parity(fashion_dir, tmp_path, *args: str) -> tuple[int, dict]:
    code = main(["parity", "--data-dir", str(fashion_dir), "--no-download", "--json", str(tmp_path / "p.json"),
                 *args])
    return code, json.loads((tmp_path / "p.json").read_text())


@pytest.mark.skipif("torch" not in OTHERS, reason="PyTorch is not installed, or it is the reference")
def test_the_command_prints_a_table_per_model_and_writes_the_same_figures(fashion_dir, tmp_path, capsys):
    torch = pytest.importorskip("torch")
    before = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    code, report = _parity(fashion_dir, tmp_path, "--backends", "torch", "--models", "softmax,lenet",
                           "--steps", "3", "--device", "cpu", "--tf32", "off")
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"parity of torch against {REFERENCE}" in out
    # softmax: logits, loss, 2 gradients, sgd, adam, ties, train, train loss; lenet: 10 gradients
    assert "softmax: 9 checks against" in out and "lenet: 17 checks against" in out
    assert "train (3 steps)" in out and "torch (cpu)" in out
    assert "torch.backends.cuda.matmul.allow_tf32=False, torch.backends.cudnn.allow_tf32=False" in out
    assert "no effect on cpu" in out and "all 26 checks passed" in out
    assert report["passed"] is True and report["tf32"] == "off" and report["steps"] == 3
    assert len(report["checks"]) == 26 and all(c["passed"] for c in report["checks"])
    first = report["checks"][0]
    assert {"backend", "reference", "model", "check", "measure", "value", "tolerance", "device", "passed"} <= set(first)
    assert f"{first['value']:.2g} PASS" in out
    assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == before  # put back


@pytest.mark.skipif(not OTHERS, reason="only one backend is installed: nothing to compare")
def test_the_command_exits_1_when_a_check_fails(fashion_dir, tmp_path, capsys, monkeypatch):
    """Every backend but the reference gets logits off by 1e-3."""
    real = parity.classifier

    def make(name, model, **kw):
        clf = real(name, model, **kw)
        if name != REFERENCE:
            forward = clf.forward
            clf.forward = lambda X: forward(X) + 1e-3
        return clf

    monkeypatch.setattr(parity, "classifier", make)
    code, report = _parity(fashion_dir, tmp_path, "--backends", OTHERS[0], "--models", "softmax", "--steps", "2")
    out = capsys.readouterr().out
    assert code == 1 and report["passed"] is False
    assert "FAIL" in out and "checks FAILED" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--backends", "numpy"], "numpy is the reference every backend is compared with"),
        (["--backends", "mxnet"], "unknown backend 'mxnet'"),
        (["--models", "vgg"], "unknown model 'vgg'"),
        (["--tf32", "maybe"], "invalid choice: 'maybe'"),
        (["--steps", "0"], "must be at least 1"),
    ],
)
def test_bad_arguments_exit_2(args, message, capsys):
    if args == ["--backends", "numpy"] and REFERENCE != "numpy":
        pytest.skip("the NumPy backend is not installed, so it is not the reference")
    try:
        code = main(["parity", *args])
    except SystemExit as exit_:  # argparse's own errors
        code = exit_.code
    assert code == 2
    assert message in capsys.readouterr().err


# --------------------------------------------------------------------------- the TF32 switch


def test_tf32_switch_for_torch_sets_both_flags_and_puts_them_back():
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    before = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    with precision.tf32("torch", "on") as setting:
        assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == (True, True)
        assert setting == "torch.backends.cuda.matmul.allow_tf32=True, torch.backends.cudnn.allow_tf32=True"
    with precision.tf32("torch", "off"):
        assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == (False, False)
    with precision.tf32("torch", "default"):
        assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == before
    assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == before


def test_tf32_switch_for_jax_sets_the_default_matmul_precision():
    jax = pytest.importorskip("jax", reason="JAX is not installed")
    before = jax.config.jax_default_matmul_precision
    with precision.tf32("jax", "off") as setting:
        assert jax.config.jax_default_matmul_precision == "highest"
        assert setting == "jax_default_matmul_precision='highest'"
    with precision.tf32("jax", "on"):
        assert jax.config.jax_default_matmul_precision == "tensorfloat32"
    assert jax.config.jax_default_matmul_precision == before


def test_tf32_switch_for_numpy_says_there_is_none():
    with precision.tf32("numpy", "off") as setting:
        assert setting == "no TF32 switch (computes on the CPU)"
    with pytest.raises(ValueError, match="tf32 must be one of"):
        with precision.tf32("torch", "sometimes"):
            pass


def test_gpu_devices_are_recognised_in_every_frameworks_words():
    assert all(precision.on_gpu(d) for d in ("cuda", "cuda:0", "gpu:0", "/job:localhost/device:GPU:0"))
    assert not any(precision.on_gpu(d) for d in ("cpu", "TFRT_CPU_0", "/device:CPU:0"))


@pytest.mark.gpu
def test_tf32_changes_float32_matmuls_on_a_gpu():
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    if not torch.cuda.is_available():
        pytest.skip("no GPU: torch.cuda.is_available() is False")
    a = torch.randn(256, 256, device="cuda")
    exact = (a.double() @ a.double()).float()
    with precision.tf32("torch", "off"):
        off = (a @ a - exact).abs().max().item()
    with precision.tf32("torch", "on"):
        on = (a @ a - exact).abs().max().item()
    major, _ = torch.cuda.get_device_capability()
    if major < 8:
        pytest.skip(f"no TF32 before Ampere: this GPU has compute capability {major}")
    assert on > 10 * off, (on, off)


def test_training_batches_continue_into_the_next_epoch(parity_data):
    batches = parity.training_batches(parity_data, 150)
    assert len(batches) == 150
    second_epoch = list(parity_data.train_plan(1))
    np.testing.assert_array_equal(batches[100][0], second_epoch[0][0])

"""Every installed backend against the reference backend (the float64 NumPy backend where
installed, else PyTorch), for every model, on real Fashion-MNIST batches: the same logits,
loss, gradients, SGD and Adam updates, tie-breaking, and 100 training steps. Then the
``crossframe parity`` command, which runs the same checks, and its TF32 switch."""

from __future__ import annotations

import json

import numpy as np
import pytest

import crossframe
from crossframe.common import parity, parity_report, precision
from crossframe.common.cli import main

MODELS = ("softmax", "mlp", "cnn", "lenet", "resnet")
DEFAULT_COMMAND_MODELS = ("mlp", "cnn")  # checked through the command itself, below
STATEFUL_MODELS = ("mlp-dropout", "lenet-bn", "resnet-bn")  # checked on SHORT_STEPS training steps, below
SHORT_STEPS = 4  # enough for the BatchNorm checks after 3 steps
REFERENCE = parity.reference_backend()
OTHERS = [b for b in crossframe.available_backends() if b != REFERENCE]


@pytest.fixture(scope="module")
def parity_data(fashion_dir):
    """The data of ``crossframe parity`` with its defaults (100 steps of batch 20, seed 0): the
    command's own batches, loaded by the command's own function."""
    return parity.load_parity_data(data_dir=fashion_dir, download=False)


@pytest.fixture(scope="module")
def batches(parity_data):
    return parity.training_batches(parity_data, parity.STEPS)


@pytest.fixture(scope="module")
def reference_traces(batches):
    """The reference's run of each model, computed once and shared by every backend's test."""
    cache: dict[str, parity.Trace] = {}

    def get(model: str) -> parity.Trace:
        if model not in cache:
            cache[model] = parity.trace(REFERENCE, model, batches, train_batches=batches)
        return cache[model]

    return get


@pytest.mark.skipif(not OTHERS, reason="only the reference backend is installed: nothing to compare")
def test_the_default_command_passes_for_every_backend(fashion_dir, tmp_path, capsys):
    """``crossframe parity --models mlp,cnn`` with every other default: what a user runs first."""
    code = main(["parity", "--models", ",".join(DEFAULT_COMMAND_MODELS), "--data-dir", str(fashion_dir),
                 "--no-download", "--json", str(tmp_path / "p.json")])
    out = capsys.readouterr().out
    report = json.loads((tmp_path / "p.json").read_text())
    print(out)
    assert code == 0 and report["passed"], out
    assert report["backends"] == OTHERS and report["steps"] == parity.STEPS and report["batch_size"] == parity.BATCH_SIZE
    assert {c["model"] for c in report["checks"]} == set(DEFAULT_COMMAND_MODELS)
    assert report["worst"]["ratio"] == max(c["ratio"] for c in report["checks"]) <= 1
    assert f"worst margin: {report['worst']['backend']}, {report['worst']['model']}, {report['worst']['check']}" in out


@pytest.mark.parametrize("model", [m for m in MODELS if m not in DEFAULT_COMMAND_MODELS])
@pytest.mark.parametrize("other", OTHERS)
def test_backend_matches_the_reference(other, model, batches, reference_traces):
    assert len(batches) == parity.STEPS
    checks = parity.check_backend(other, model, batches, reference=REFERENCE, train_batches=batches,
                                  reference_trace=reference_traces(model))
    print("\n" + parity_report.format_table(checks))
    names = {c.check for c in checks}
    assert {"logits", "loss", "sgd (3 steps)", "adam (3 steps)", "accuracy ties", "train (100 steps)",
            "train loss (100 steps)"} <= names
    assert len([n for n in names if n.startswith("gradient ")]) == len(crossframe.init_params(model))
    failed = [c for c in checks if not c.passed]
    assert not failed, "\n" + parity_report.format_table(failed)


@pytest.fixture(scope="module")
def short_reference_traces(batches):
    cache: dict[str, parity.Trace] = {}

    def get(model: str) -> parity.Trace:
        if model not in cache:
            cache[model] = parity.trace(REFERENCE, model, batches[:SHORT_STEPS], train_batches=batches[:SHORT_STEPS])
        return cache[model]

    return get


@pytest.mark.parametrize("model", STATEFUL_MODELS)
@pytest.mark.parametrize("other", OTHERS)
def test_batchnorm_and_dropout_models_match_the_reference(other, model, batches, short_reference_traces):
    """The checks of the models with BatchNorm or dropout, on the command's first SHORT_STEPS batches (the
    command itself runs 100: see README, Tolerances): the new checks are there and pass."""
    checks = parity.check_backend(other, model, batches[:SHORT_STEPS], reference=REFERENCE,
                                  train_batches=batches[:SHORT_STEPS], reference_trace=short_reference_traces(model))
    print("\n" + parity_report.format_table(checks))
    names = {c.check for c in checks}
    assert "train logits" in names
    if model == "mlp-dropout":
        assert {"dropout mask (layer 1)", "dropout mask (layer 2)", f"train ({SHORT_STEPS} steps)",
                f"train loss ({SHORT_STEPS} steps)"} <= names
    else:
        spec = crossframe.common.models.build_spec(model)
        assert {"eval logits (3 steps)", "batches tracked (3 steps)", f"train with BatchNorm ({SHORT_STEPS} steps)",
                f"train loss with BatchNorm ({SHORT_STEPS} steps)"} <= names
        assert {f"buffer {n}.running_var (3 steps)" for n in spec.batchnorms()} <= names
        assert {f"gradient before BatchNorm {n}" for n in spec.before_batchnorm()} <= names
    failed = [c for c in checks if not c.passed]
    assert not failed, "\n" + parity_report.format_table(failed)


def _skewed(monkeypatch, offset: float = 1e-3) -> None:
    """Make the "skewed" backend a PyTorch classifier whose logits are off by ``offset``."""

    def make(name, model, **kw):
        clf = crossframe.classifier("torch", model, **kw)
        if name == "skewed":
            forward = clf.forward
            clf.forward = lambda X: forward(X) + offset
        return clf

    monkeypatch.setattr(parity, "classifier", make)


def test_the_tool_fails_when_backends_differ(batches, monkeypatch):
    """The check must be able to fail: a "backend" whose logits are off by 1e-3 is caught."""
    _skewed(monkeypatch)
    same = parity.check_backend("torch", "softmax", batches[:3], reference="torch")
    assert all(c.passed for c in same)
    checks = parity.check_backend("skewed", "softmax", batches[:3], reference="torch")
    logits = next(c for c in checks if c.check == "logits")
    assert not logits.passed and logits.value == pytest.approx(1e-3, rel=1e-3)


def test_the_training_checks_catch_a_wrong_batch_order(batches):
    """Ten steps with two batches swapped: the per-step losses differ by far more than float32 can."""
    ten = batches[:10]
    swapped = ten[:8] + [ten[9], ten[8]]
    ref = parity.trace(REFERENCE, "softmax", ten, train_batches=ten)
    got = parity.trace(REFERENCE, "softmax", ten, train_batches=swapped)
    checks = {c.check: c for c in parity.compare(got, ref)}
    assert checks["logits"].passed and checks["logits"].value == 0
    assert not checks["train loss (10 steps)"].passed


def _scaled(grads: dict[str, np.ndarray], factor: float) -> dict[str, np.ndarray]:
    return {n: g * factor for n, g in grads.items()}


@pytest.mark.parametrize("culprit", [7, None])
def test_the_gradient_check_tells_a_flipped_decision_from_a_wrong_gradient(batches, culprit):
    """A "backend" whose gradients are 0.1% off while example 7 is in the batch (a ReLU decision
    float32 makes the other way in that example) passes, naming the example; one whose gradients
    are 0.1% off in every batch (a wrong gradient) fails."""
    import dataclasses

    ref = parity.trace(REFERENCE, "softmax", batches[:3])
    off = lambda left_out: _scaled(ref.gradients_without(left_out),  # noqa: E731
                                   1.0 if culprit in left_out else 1.001)
    got = dataclasses.replace(ref, backend="fake", gradients=_scaled(ref.gradients, 1.001), gradients_without=off)
    checks = [c for c in parity.compare(got, ref) if c.check.startswith("gradient ")]
    if culprit is None:
        assert not any(c.passed for c in checks)
        assert "not a float32 decision" in checks[0].note
    else:
        assert all(c.passed for c in checks) and all(c.value < 1e-9 for c in checks)
        assert checks[0].note.startswith("example 7 of the batch left out") and "0.001" in checks[0].note
        assert all(c.note == "" for c in checks[1:])
def test_the_training_checks_catch_a_wrong_batch_order_with_batchnorm_too(batches):
    """With BatchNorm the per-step losses have a wider tolerance (the training path drifts further in
    float32); two batches swapped in the middle of the command's 100 steps still fail it (measured:
    0.099 against 0.05). In the first 10 steps at lr 0.01 every batch's loss is within 2% of another's
    (0.016 for a swap at steps 9 and 10), and neither training check can tell a swap from drift."""
    swapped = list(batches)
    swapped[50], swapped[51] = batches[51], batches[50]
    ref = parity.trace(REFERENCE, "lenet-bn", batches[:3], train_batches=batches)
    got = parity.trace(REFERENCE, "lenet-bn", batches[:3], train_batches=swapped)
    check = {c.check: c for c in parity.compare(got, ref)}[f"train loss with BatchNorm ({parity.STEPS} steps)"]
    assert not check.passed, check


@pytest.mark.parametrize(("optimizer", "wrong"), [
    ("adam", dict(eps=1e-7)),  # eps ten times too large
    ("adam", dict(betas=(0.9, 0.99))),  # the second moment's decay off
    ("sgd", dict(dampening=0.1)),  # momentum with dampening (b = mu*b + 0.9*g)
    ("sgd", dict(lr=0.1 * (1 + 1e-4))),  # the rate off by 1e-4
])
def test_the_optimizer_checks_catch_an_optimizer_that_is_slightly_off(batches, monkeypatch, optimizer, wrong):
    """A torch "backend" whose torch.optim optimizer is configured slightly differently from the
    spec fails its optimizer check, while a faithful one passes with room to spare."""
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")

    def make(name, model, **kw):
        clf = crossframe.classifier("torch", model, **kw)
        if name == "off" and kw.get("optimizer") == optimizer:
            h = clf.hparams
            settings = dict(lr=h.lr, weight_decay=h.weight_decay, **({"momentum": h.momentum} if optimizer == "sgd" else {}))
            clf.optimizer = getattr(torch.optim, {"sgd": "SGD", "adam": "Adam"}[optimizer])(
                clf.net.parameters(), **(settings | wrong))
        return clf

    ref = parity.trace(REFERENCE, "softmax", batches[:3])
    monkeypatch.setattr(parity, "classifier", make)
    label = f"{optimizer} ({parity.OPTIMIZER_STEPS} steps)"
    faithful = {c.check: c for c in parity.compare(parity.trace("torch", "softmax", batches[:3],
                                                                step_gradients=ref.step_gradients), ref)}
    off = {c.check: c for c in parity.compare(parity.trace("off", "softmax", batches[:3],
                                                           step_gradients=ref.step_gradients), ref)}
    assert faithful[label].passed and faithful[label].value < 0.6
    assert not off[label].passed, off[label]


def test_the_report_shows_each_checks_share_of_its_tolerance_and_the_worst(batches):
    ref = parity.trace(REFERENCE, "softmax", batches[:3])
    checks = parity.compare(ref, ref)
    result = parity.ParityRun(REFERENCE, [REFERENCE], ["softmax"], "cpu", 0, 0, 20, "default", checks=checks)
    worst = max(checks, key=lambda c: c.ratio)
    assert result.worst == worst and result.to_dict()["worst"]["ratio"] == worst.ratio
    table = parity_report.format_model_table(checks)
    assert f"{worst.value:.2g} ({parity_report.format_margin(worst)}) PASS" in table
    assert f"worst margin: {worst.backend}, softmax, {worst.check}" in parity_report.format_summary(result)
    zero = parity.Check("a", "b", "m", "accuracy ties", "count", 1.0, 0.0)
    assert zero.ratio == float("inf") and parity_report.format_margin(zero) == "inf" and not zero.passed


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
    # softmax: logits, loss, 2 gradients, sgd, adam, adamw, ties, train, train loss; lenet: 10 gradients
    assert "softmax: 10 checks against" in out and "lenet: 18 checks against" in out
    assert "train (3 steps)" in out and "torch (cpu)" in out
    assert "torch.backends.cuda.matmul.allow_tf32=False, torch.backends.cudnn.allow_tf32=False" in out
    assert "no effect on cpu" in out and "all 28 checks passed" in out
    assert report["passed"] is True and report["tf32"] == "off" and report["steps"] == 3
    assert len(report["checks"]) == 28 and all(c["passed"] for c in report["checks"])
    first = report["checks"][0]
    assert {"backend", "reference", "model", "check", "measure", "value", "tolerance", "device", "passed"} <= set(first)
    assert f"{first['value']:.2g} ({first['ratio']:.0%}) PASS" in out
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
    more = parity.training_batches(parity_data, 150)
    assert len(more) == 150
    second_epoch = list(parity_data.train_plan(1))
    np.testing.assert_array_equal(more[100][0], second_epoch[0][0])

"""A run folder belongs to one run, and exit codes mean one thing each.

Two runs started together on one ``--out`` give exactly one run; a folder holding any run
file is never taken by a new run; the lock of a killed run goes with it. An internal error
exits 3 with one line pointing to its traceback file; Ctrl-C during the imports exits 130
with one line; a terminal that goes away does not stop a run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from crossframe.common.errors import UserError
from crossframe.common.runfolder import RunFolder
from crossframe.common.runlock import FolderLock
from helpers import CLI_TIMEOUT, custom_dataset, load_npz, one_line_error, read_metrics, run_main, start_cli


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return custom_dataset(tmp_path_factory.mktemp("folders") / "data")


def train_args(data, out, *extra):
    return ("train", "--backend", "numpy", "--model", "softmax", "--dataset", data, "--epochs", "2", "--out", out,
            "--no-progress", *extra)


def test_two_runs_started_together_on_one_folder_give_one_run(data, tmp_path):
    out = tmp_path / "run"
    procs = [start_cli(*train_args(data, out, "--seed", str(seed))) for seed in (0, 1)]
    results = [(p.wait(timeout=CLI_TIMEOUT), *p.communicate()) for p in procs]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 2], results
    winner = next(seed for seed, (code, _, _) in zip((0, 1), results) if code == 0)
    _, _, refused = next(r for r in results if r[0] == 2)
    assert len(refused.splitlines()) == 1 and (
        f"{out} is in use by another crossframe process" in refused or f"{out} already holds a run" in refused)
    config, state = RunFolder(out).read_run()  # one run's files, all of them
    assert config["seed"] == winner and state.epoch == 2 and len(read_metrics(out)) == 2


def test_a_folder_with_run_files_but_no_checkpoint_is_not_taken(data, tmp_path, capsys):
    out = tmp_path / "run"
    assert run_main(capsys, *train_args(data, out)).returncode == 0
    (out / "checkpoint.npz").unlink()
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    line = one_line_error(run_main(capsys, *train_args(data, out)))
    assert line == (f"crossframe: error: {out} already holds files of a run (config.json, params.npz, optimizer.npz, "
                    "metrics.jsonl, curves.png) but no checkpoint.npz to resume from: choose another --out "
                    "(crossframe never overwrites a run folder)")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_the_claim_looks_at_the_folder_after_taking_the_lock(tmp_path):
    """The window the race test cannot aim at: both runs found the folder empty; the second
    claims it while the first holds it, or after the first wrote its files."""
    first, second = RunFolder(tmp_path / "run"), RunFolder(tmp_path / "run")
    first.claim_new()
    with pytest.raises(UserError, match="is in use by another crossframe process"):
        second.claim_new()
    first.write_config({"any": "thing"})
    first.release()
    with pytest.raises(UserError, match=r"already holds files of a run \(config.json\)"):
        second.claim_new()


def test_a_killed_run_leaves_no_lock_behind(data, tmp_path):
    out = tmp_path / "run"
    proc = start_cli(*train_args(data, out, "--epochs", "100000"))
    try:
        deadline = time.monotonic() + CLI_TIMEOUT
        while not (out / "metrics.jsonl").exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert proc.poll() is None and (out / "metrics.jsonl").exists()
        with pytest.raises(UserError, match="in use by another crossframe process"):
            FolderLock(out).acquire()
    finally:
        proc.kill()  # SIGKILL: no cleanup runs
        proc.communicate()
    with FolderLock(out):  # the kernel dropped the flock with the process
        pass


def test_an_internal_error_exits_3_with_its_traceback_in_a_file(data, tmp_path):
    out = tmp_path / "run"
    code = (
        "import sys\n"
        "from crossframe.common import trainer\n"
        "def bug(self, *args, **kwargs):\n"
        "    raise ZeroDivisionError('a bug')\n"
        "trainer.Trainer._fit_epoch = bug  # after the run folder is claimed\n"
        "from crossframe.common.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    result = subprocess.run([sys.executable, "-c", code, *map(str, train_args(data, out))], capture_output=True,
                            text=True, timeout=CLI_TIMEOUT)
    line = one_line_error(result, code=3)
    assert line.startswith("crossframe: internal error (a bug in crossframe, not in your input): ZeroDivisionError: "
                           f"a bug; the traceback is in {out}/crossframe-error-")
    (report,) = out.glob("crossframe-error-*.txt")
    assert line.endswith(f"{report}; please report it")
    text = report.read_text()
    assert text.startswith("Traceback (most recent call last)")
    assert text.endswith(", in bug\nZeroDivisionError: a bug\n")


def test_ctrl_c_during_the_imports_is_one_line_and_130(tmp_path):
    """A finder that raises KeyboardInterrupt where the commands are imported: a Ctrl-C there, on time."""
    code = (
        "import sys\n"
        "class CtrlC:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'crossframe.common.commands':\n"
        "            raise KeyboardInterrupt\n"
        "sys.meta_path.insert(0, CtrlC())\n"
        "from crossframe.common.cli import main\n"
        "sys.exit(main(['train', '--out', sys.argv[1]]))\n"
    )
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path / "run")], capture_output=True, text=True,
                            timeout=CLI_TIMEOUT)
    assert (result.returncode, result.stderr) == (130, "crossframe: interrupted\n")


def test_ctrl_c_inside_c_code_that_runs_python_is_still_130(tmp_path):
    """CPython 3.11 marks a KeyboardInterrupt raised under ``PyRun_String`` (pybind11 runs Python
    that way while torch imports) and, under ``python -m``, exits by SIGINT whatever ``main``
    returned. A sitecustomize raises one there, where the commands are imported: on time, every time."""
    (tmp_path / "sitecustomize.py").write_text(
        "import ctypes, sys\n"
        "class CtrlC:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'crossframe.common.commands':\n"
        "            ctypes.pythonapi.PyRun_SimpleString(b'raise KeyboardInterrupt')\n"
        "            raise KeyboardInterrupt\n"
        "sys.meta_path.insert(0, CtrlC())\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    proc = start_cli("train", "--out", tmp_path / "run", env=env)
    _, stderr = proc.communicate(timeout=CLI_TIMEOUT)
    assert proc.returncode == 130 and stderr.endswith("crossframe: interrupted\n"), (proc.returncode, stderr)


def test_a_real_ctrl_c_while_a_framework_imports(tmp_path):
    pytest.importorskip("torch", reason="PyTorch is not installed")
    proc = start_cli("train", "--backend", "torch", "--out", tmp_path / "run", "--limit-train", "10")
    time.sleep(1.0)  # past the interpreter's start, inside the imports (torch takes seconds)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=CLI_TIMEOUT)
    assert proc.returncode == 130 and stderr == "crossframe: interrupted\n", (proc.returncode, stderr)


def test_a_terminal_that_goes_away_does_not_stop_the_run(data, tmp_path):
    out = tmp_path / "run"
    proc = start_cli(*train_args(data, out, "--progress", "--epochs", "3"))
    proc.stdout.close()  # both pipes closed: every line and the progress bar fail to write
    proc.stderr.close()
    assert proc.wait(timeout=CLI_TIMEOUT) == 0
    state = RunFolder(out).read_checkpoint()
    assert state.epoch == 3 and len(read_metrics(out)) == 3
    assert load_npz(out / "params.npz")
    assert json.loads((out / "config.json").read_text())["epochs"] == 3


def test_warnings_are_one_line(fashion_dir, tmp_path, capsys):
    """--data-dir that does not exist falls back to the other places, saying so in one line."""
    result = run_main(capsys, "train", "--backend", "numpy", "--model", "softmax", "--data-dir", tmp_path / "nowhere",
                      "--epochs", "1", "--limit-train", "100", "--limit-val", "100", "--out", tmp_path / "run",
                      "--no-progress", "--no-download")
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [f"crossframe: warning: {tmp_path / 'nowhere'} does not exist; using "
                                          f"{fashion_dir} instead"]

"""benchmarks/gpu_check.sh, the one command a session with a GPU machine runs, exercised on the CPU
(``--device cpu --dry-run``: the same four commands at toy sizes) so that it cannot rot unseen."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

import crossframe

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.sh"


@pytest.mark.skipif(not {"torch", "jax"} <= set(crossframe.available_backends()),
                    reason="the script benches torch and jax, and one of them is not installed")
def test_the_gpu_script_runs_its_four_commands_on_a_cpu_as_a_dry_run(fashion_dir, tmp_path):
    out = tmp_path / "gpu-check"
    result = subprocess.run(["bash", str(SCRIPT), "--device", "cpu", "--dry-run", "--out", str(out),
                             "--data-dir", str(fashion_dir)], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = [line.split("\t") for line in (out / "summary.txt").read_text().splitlines() if "\t" in line]
    assert [line[0] for line in lines] == ["pytest-gpu", "parity-tf32-off", "parity-tf32-default", "bench"]
    assert all(line[1] == "exit 0" for line in lines), lines
    for tf32 in ("off", "default"):
        report = json.loads((out / f"parity-tf32-{tf32}.json").read_text())
        assert report["passed"] and report["tf32"] == tf32 and report["device"] == "cpu"
    bench = json.loads((out / "bench" / "bench.json").read_text())
    assert {(r["name"], r["status"]) for r in bench["runs"]} == {("torch", "ok"), ("jax", "ok")}
    assert f"results in {out}" in result.stdout


def test_the_gpu_script_explains_itself_and_refuses_what_it_does_not_know(tmp_path):
    usage = subprocess.run(["bash", str(SCRIPT), "--help"], capture_output=True, text=True)
    assert usage.returncode == 0 and "pytest -m gpu" in usage.stdout and "--dry-run" in usage.stdout
    bad = subprocess.run(["bash", str(SCRIPT), "--device", "tpu", "--out", str(tmp_path / "x")], capture_output=True,
                         text=True)
    assert bad.returncode == 2 and "--device must be gpu or cpu" in bad.stderr

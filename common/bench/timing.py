"""Timing epochs, and what "steady state" means in every table.

The first epoch is the warm-up: it pays for compilation (JAX, TensorFlow, Keras), allocator
growth and cold caches. The steady epoch is the median of the epochs after it; the warm-up
overhead is the first epoch minus the steady one (compilation included). With several rounds
(fresh processes, run round-robin with the other runs), the medians are taken over all rounds.
"""

from __future__ import annotations

import statistics
import time
from typing import Any, Callable


def echo(line: str) -> None:
    """A worker's progress line for the parent, which passes it on as it comes."""
    print(line, flush=True)


def timed_epochs(run_epoch: Callable[[int], Any], epochs: int, result: dict) -> None:
    """Call ``run_epoch(epoch)`` for epochs 0..epochs-1, appending each one's seconds to
    ``result["epoch_seconds"]`` as it finishes (so a failure keeps the epochs before it)."""
    seconds = result.setdefault("epoch_seconds", [])
    for epoch in range(epochs):
        start = time.perf_counter()
        run_epoch(epoch)
        seconds.append(time.perf_counter() - start)
        echo(f"epoch {epoch + 1}/{epochs}: {seconds[-1]:.2f} s")


def steady_state(rounds: list[list[float]], examples: int) -> dict[str, float | None]:
    """Warm-up epoch, steady epoch, overhead and steady samples/s from the per-epoch seconds of one
    or more rounds (each a fresh process): the median first epoch, and the median of all later ones."""
    warmups = [seconds[0] for seconds in rounds if seconds]
    later = [t for seconds in rounds for t in seconds[1:]]
    warmup = statistics.median(warmups) if warmups else None
    steady = statistics.median(later) if later else None
    return {
        "warmup_seconds": warmup,
        "steady_seconds": steady,
        "warmup_overhead_seconds": None if steady is None or warmup is None else warmup - steady,
        "samples_per_second": None if steady is None else examples / steady,
    }


def ms_per_step_in_turns(ways: dict[str, Callable[[], Any]], steps: int, repeats: int) -> dict[str, list[float]]:
    """Milliseconds per step of each of ``ways`` (a callable that runs ``steps`` steps, already
    warmed up), per round: ``repeats`` rounds in which the ways take turns, so that a drift in a
    shared machine's load meets all of them alike. The benchmarks/ scripts compare ways by it."""
    times: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(repeats):
        for name, run in ways.items():
            start = time.perf_counter()
            run()
            times[name].append((time.perf_counter() - start) / steps * 1e3)
    return times

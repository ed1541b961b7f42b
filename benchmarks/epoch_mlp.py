"""Time one training epoch of the ``mlp`` (batch 64, full Fashion-MNIST) with every crossframe
backend installed here and, in the same run, with the classic tutorial pipeline.

    python benchmarks/epoch_mlp.py [--epochs 3] [--device cpu] [any other `crossframe bench` flag]

A thin entry point: the timing lives in ``crossframe bench`` (crossframe/common/bench/), which
also times Keras 3 (add ``--references all``) and writes bench.json / bench.md (``--out DIR``).
Steady state: the first epoch of each run is a warm-up and is reported separately; the
figure is the median of the epochs after it.
"""

from __future__ import annotations

import sys

from crossframe.common.cli import main

DEFAULTS = ["--models", "mlp", "--batch-sizes", "64", "--epochs", "3", "--device", "cpu", "--references", "classic"]

if __name__ == "__main__":
    raise SystemExit(main(["bench", *DEFAULTS, *sys.argv[1:]]))  # later flags override the defaults

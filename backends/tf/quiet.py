"""TensorFlow's first import, without its C++ start-up lines on stderr.

crossframe's command line promises one line on stderr for an error. Importing TensorFlow
2.21 writes two absl banners and two oneDNN notices ("oneDNN custom operations are on ...")
before its logging is configured, so ``TF_CPP_MIN_LOG_LEVEL`` cannot hide them: the import
runs with file descriptor 2 pointed at /dev/null instead (anything else written to stderr
during the import is lost with them; a failed import still raises as usual).
``TF_CPP_MIN_LOG_LEVEL`` defaults to 2, the user's own setting winning, which keeps the
later INFO and WARNING lines (XLA's service banner, "Compiled cluster using XLA!") out too.
The devices are listed inside the same redirect: on a machine with an NVIDIA driver and no
usable GPU, the full ``tensorflow`` wheel logs an ERROR ("failed call to cuInit") when it
first looks for one, which no log level below 3 hides.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Iterator


def import_tensorflow() -> None:
    """Import TensorFlow once, quietly; later ``import tensorflow`` statements find it loaded."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" not in sys.modules:
        with _stderr_to_devnull():
            import tensorflow

            # Looking for devices loads the CUDA platform; on a machine with an NVIDIA driver
            # but no usable GPU, the full ``tensorflow`` wheel logs "failed call to cuInit" at
            # that moment, once per process. Doing it here keeps that line off stderr too.
            tensorflow.config.list_physical_devices()


@contextlib.contextmanager
def _stderr_to_devnull() -> Iterator[None]:
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (AttributeError, OSError, ValueError):  # no stderr file descriptor: import as is
        saved = None
    if saved is None:
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)

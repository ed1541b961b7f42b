"""What crossframe knows about the PyTorch backend before importing PyTorch.

Plain data, importing nothing: common/registry.py reads it (with ``runpy``) to list the
backends, tell which are installed, and name the install command of one that is not.
"""

FRAMEWORK = "PyTorch"  # the framework as a reader knows it
MODULES = ("torch",)  # the top-level modules the backend imports
INSTALL = ('pip install "crossframe[torch]" (on a CPU-only machine first: '
           'pip install torch --index-url https://download.pytorch.org/whl/cpu)')
ORDER = 1  # where it stands in lists and defaults
DEVICES = ("cpu", "gpu")  # the kinds of device it can run on
KERAS_BACKEND = "torch"  # KERAS_BACKEND for Keras 3 on the same framework (crossframe bench's reference)
# data parallelism (common/parallel.py): one worker process per device, DistributedDataParallel
PARALLEL = "processes"

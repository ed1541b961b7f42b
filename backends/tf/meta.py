"""What crossframe knows about the TensorFlow backend before importing TensorFlow.

Plain data, importing nothing: common/registry.py reads it (with ``runpy``) to list the
backends, tell which are installed, and name the install command of one that is not.
"""

FRAMEWORK = "TensorFlow"  # the framework as a reader knows it
MODULES = ("tensorflow",)  # the top-level modules the backend imports
INSTALL = 'pip install "crossframe[tf]"'
ORDER = 3  # where it stands in lists and defaults
DEVICES = ("cpu", "gpu")  # the kinds of device it can run on
KERAS_BACKEND = "tensorflow"  # KERAS_BACKEND for Keras 3 on the same framework (crossframe bench's reference)
# data parallelism (common/parallel.py): one process, tf.distribute.MirroredStrategy over N devices
# (on a CPU, N logical devices, configured in backends/tf/parallel.py before TensorFlow starts)
PARALLEL = "process"
PARALLEL_ENV = {}

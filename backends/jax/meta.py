"""What crossframe knows about the JAX backend before importing JAX.

Plain data, importing nothing: common/registry.py reads it (with ``runpy``) to list the
backends, tell which are installed, and name the install command of one that is not.
"""

FRAMEWORK = "JAX"  # the framework as a reader knows it
MODULES = ("jax", "flax", "optax")  # the top-level modules the backend imports
INSTALL = 'pip install "crossframe[jax]"'
ORDER = 2  # where it stands in lists and defaults
DEVICES = ("cpu", "gpu")  # the kinds of device it can run on
KERAS_BACKEND = "jax"  # KERAS_BACKEND for Keras 3 on the same framework (crossframe bench's reference)
# data parallelism (common/parallel.py): one process over a jax.sharding.Mesh of N devices; on a
# CPU the N devices exist only if XLA is told before JAX starts
PARALLEL = "process"
PARALLEL_ENV = {"XLA_FLAGS": "--xla_force_host_platform_device_count={n}"}

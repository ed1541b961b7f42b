"""What crossframe knows about the NumPy backend, the float64 reference.

Plain data, importing nothing: common/registry.py reads it (with ``runpy``) to list the
backends, tell which are installed, and name the install command of one that is not.
"""

FRAMEWORK = "NumPy"  # the framework as a reader knows it
MODULES = ("numpy",)  # the top-level modules the backend imports
INSTALL = "pip install numpy"
ORDER = 4  # where it stands in lists and defaults
DEVICES = ("cpu",)  # the kinds of device it can run on
KERAS_BACKEND = None  # Keras 3 has no NumPy backend that trains
PARALLEL = None  # the float64 reference runs on one device (--devices 2 is refused)

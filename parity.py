"""``crossframe.parity``: prove that two backends compute the same thing.

The checks and their tolerances are documented in :mod:`crossframe.common.parity`.
"""

from .common.parity import *  # noqa: F401,F403
from .common.parity import __all__  # noqa: F401

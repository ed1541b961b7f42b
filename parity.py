"""``crossframe.parity``: prove that two backends compute the same thing.

The checks and their tolerances are documented in :mod:`crossframe.common.parity`; the
reports are in :mod:`crossframe.common.parity_report`.
"""

from .common.parity import *  # noqa: F401,F403
from .common.parity import __all__ as _checks
from .common.parity_report import *  # noqa: F401,F403
from .common.parity_report import __all__ as _reports

__all__ = [*_checks, *_reports]

"""triage: alert correlation and triage between monitoring tools and the pager.

The ``triage`` package itself is the small core that wires the layers together
(settings, CLI, process start-up, the store). The layers live in their own
folders and install as ``triage.ingest``, ``triage.correlation``,
``triage.models`` and ``triage.api``; none of them imports the core's wiring.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("triage")
except PackageNotFoundError:  # running from a checkout that was never installed
    __version__ = "0.0.0"

__all__ = ["__version__"]

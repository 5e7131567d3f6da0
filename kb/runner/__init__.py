"""The snippet runner: warm worker processes that run each snippet in a fresh, limited child.

Public API: Limits, RunSpec, RunResult, WorkerPool, detect_devices, isolation_report, STATUSES.
Importing this package never imports torch or numpy; only the worker processes do.
"""

from kb.runner.devices import detect_devices
from kb.runner.models import DEVICES, STATUSES, Limits, RunResult, RunSpec
from kb.runner.pool import WorkerPool
from kb.runner.sandbox import isolation_report

__all__ = [
    "DEVICES",
    "STATUSES",
    "Limits",
    "RunResult",
    "RunSpec",
    "WorkerPool",
    "detect_devices",
    "isolation_report",
]

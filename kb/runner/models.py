"""Value objects of the snippet runner.

Classes: Limits (what a run may use), RunSpec (one run request) and RunResult (its record).
They are plain frozen dataclasses with no dependency beyond the standard library, so the CLI, the
service and the TUI can build and store them without importing torch.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

STATUSES: tuple[str, ...] = ("passed", "failed", "timeout", "cpu_limit", "memory", "output_limit", "crashed")
DEVICES: tuple[str, ...] = ("cpu", "cuda")


@dataclass(frozen=True)
class Limits:
    """Resource limits of one run.

    Attributes:
        wall_s: Wall-clock deadline; the process group is killed after it (verdict "timeout").
        cpu_s: RLIMIT_CPU soft limit in seconds (rounded up to whole seconds; the hard limit is one
            second more), verdict "cpu_limit".
        memory_bytes: RLIMIT_AS on CPU runs; on CUDA runs (whose driver reserves huge address ranges)
            RLIMIT_DATA on the host and the allocator's memory fraction on the GPU.
        output_keep_bytes: How much of stdout+stderr the record keeps.
        output_kill_bytes: Total output after which the group is killed (verdict "output_limit").
        file_bytes: RLIMIT_FSIZE; SIGXFSZ is ignored so an oversized write raises OSError(EFBIG).
        nproc_extra: RLIMIT_NPROC is the user's current task count plus this, when not root.
        shm_bytes: Size of the run's private /dev/shm (a tmpfs, so not counted by RLIMIT_AS); it is
            emptied after the run. Inside bubblewrap every worker's /dev/shm has the default size.
    """

    wall_s: float = 30.0
    cpu_s: float = 10.0
    memory_bytes: int = 2 * 1024**3
    output_keep_bytes: int = 64 * 1024
    output_kill_bytes: int = 1024 * 1024
    file_bytes: int = 16 * 1024**2
    nproc_extra: int = 64
    shm_bytes: int = 256 * 1024**2

    def __post_init__(self) -> None:
        for name in (
            "wall_s",
            "cpu_s",
            "memory_bytes",
            "output_keep_bytes",
            "output_kill_bytes",
            "file_bytes",
            "shm_bytes",
        ):
            if not getattr(self, name) > 0:
                raise ValueError(f"Limits.{name} must be positive, got {getattr(self, name)!r}")
        if self.nproc_extra < 1:
            raise ValueError(f"Limits.nproc_extra must be at least 1, got {self.nproc_extra!r}")


@dataclass(frozen=True)
class RunSpec:
    """One snippet run.

    Attributes:
        key: What the run belongs to (a concept id); copied into the result.
        code: The snippet's Python source.
        device: "cpu" or "cuda"; the snippet sees it as the global `device` (a torch.device).
        limits: Resource limits.
        expressions: Computed-card expressions, evaluated in the snippet's namespace if it passed.
        line_offset: Added to a snippet line number to give the line in the YAML file.
        source_path: The YAML file, for messages; not used by the runner itself.
        sandbox: Confinement is REQUIRED: if neither the Landlock filesystem rules nor the seccomp
            socket filter can be applied in the run's process, the code is not run and the result is
            "crashed" with a message starting "sandbox unavailable:". Set it for untrusted
            (imported) snippets. When False, every run is still confined as far as the kernel
            allows (best effort).
    """

    key: str
    code: str
    device: str = "cpu"
    limits: Limits = Limits()
    expressions: tuple[str, ...] = ()
    line_offset: int = 0
    source_path: str | None = None
    sandbox: bool = False

    def __post_init__(self) -> None:
        if self.device not in DEVICES:
            raise ValueError(f"RunSpec.device must be one of {DEVICES}, got {self.device!r}")
        if not isinstance(self.sandbox, bool):  # "no" or 0 must not silently mean "not required"
            raise ValueError(f"RunSpec.sandbox must be a bool, got {self.sandbox!r}")
        # Callers often hold a list; a tuple keeps the spec hashable and immutable.
        object.__setattr__(self, "expressions", tuple(self.expressions))

    def to_wire(self) -> dict[str, Any]:
        """The JSON-able request sent to a worker."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class RunResult:
    """The record of one run.

    Attributes:
        key: The spec's key.
        status: One of STATUSES.
        device: The device the snippet ran on.
        duration_s: Wall time from fork to exit of the snippet's process.
        output: stdout and stderr interleaved as received, at most output_keep_bytes, decoded as
            UTF-8 with replacement characters.
        truncated: Whether more output was produced than was kept.
        message: Why it did not pass ("AssertionError: ...", "killed after 30 s wall time", "SIGSEGV").
        line: The failing line in the YAML file (line_offset applied), or None if unknown.
        signal: The signal name when the process died by a signal ("SIGSEGV").
        exit_code: The exit status when the process exited normally.
        values: Computed expressions: expression -> {"value": JSON-able, "text": display text}.
        versions: Python, torch and numpy versions of the worker.
    """

    key: str
    status: str
    device: str
    duration_s: float
    output: str
    truncated: bool
    message: str | None
    line: int | None
    signal: str | None
    exit_code: int | None
    values: dict = field(default_factory=dict)
    versions: dict = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict of every field."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunResult:
        """The inverse of to_dict (unknown keys are ignored, so old records still load)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

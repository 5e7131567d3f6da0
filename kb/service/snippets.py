"""Snippets: plan which may run (trust, device, changes), run them in workers, record verdicts."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from kb.errors import KbError
from kb.service.base import ServiceBase, package_version

if TYPE_CHECKING:
    from kb.parity import ParityRow
    from kb.runner.models import RunResult, RunSpec
    from kb.store.queries import SnippetSource

    pass


class VerifyError(KbError):
    """A verify request that cannot be carried out (a device that is not here)."""


@dataclass(frozen=True)
class VerifyOutcome:
    """The verdict of one snippet: a run record, or why it did not run (untrusted, skipped)."""

    id: str
    status: str
    device: str | None
    duration_s: float
    message: str | None = None
    line: int | None = None
    source_path: str | None = None
    output: str = ""
    values: dict | None = None

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    @property
    def ran(self) -> bool:
        return self.status not in ("untrusted", "skipped")

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "status": self.status,
            "device": self.device,
            "duration_s": round(self.duration_s, 4),
            "message": self.message,
        }


class SnippetUseCases(ServiceBase):
    """Verify and run snippets."""

    def devices(self) -> list[str]:
        from kb.runner import detect_devices

        return detect_devices()

    @staticmethod
    def isolation_level() -> str:
        """How snippets are confined here: landlock+seccomp | landlock | seccomp | rlimits-only."""
        from kb.runner.sandbox import sandbox_level

        return sandbox_level()

    def _resolve_device(self, device: str) -> str:
        available = self.devices()
        if device == "auto":
            return "cuda" if "cuda" in available else "cpu"
        if device not in available:
            raise VerifyError(
                f"--device {device}: no {device.upper()} device is available here (found: {', '.join(available)})"
            )
        return device

    @staticmethod
    def _untrusted_reason(src: SnippetSource, own_decks: set[str], names: dict[str, str]) -> str | None:
        """Why `src` may not run unconfined, or None: own decks always run; others by trusted hash."""
        if src.deck_path in own_decks or (src.trusted_hash is not None and src.trusted_hash == src.code_hash):
            return None
        name = names.get(src.deck_path, src.deck_path)
        if src.trusted_hash is not None:
            return (
                f"the snippet of {src.concept_id} changed since you trusted the deck {name}; "
                f"read it, then run `kb trust {name}` again (or `kb verify --sandbox {src.concept_id}`)"
            )
        return (
            f"the deck {name} is not trusted; read its snippets, then run `kb trust {name}` "
            f"(or `kb verify --sandbox {src.concept_id}` to run this one confined)"
        )

    def _plan(
        self, ids: list[str] | None, device: str, changed_only: bool, sandbox: bool = False
    ) -> tuple[list[tuple[SnippetSource, RunSpec]], list[VerifyOutcome]]:
        """RunSpecs for what should run, and outcomes for what will not (untrusted, skipped).

        With `sandbox`, untrusted snippets run too, but only where the runner can confine them
        (bubblewrap, Landlock file rules or the seccomp filter); elsewhere they are refused.
        """
        from kb.runner import Limits, RunSpec
        from kb.runner.sandbox import sandbox_level
        from kb.store.queries import last_passes, snippet_sources

        chosen = self._resolve_device(device)
        available = self.devices()
        sources = snippet_sources(self.engine, ids)
        passes = last_passes(self.engine) if changed_only else {}
        current = self.library_versions()
        decks = self.settings.decks()
        own_decks = {str(d.path) for d in decks if d.trusted}
        names = {str(d.path): d.name for d in decks}
        level = None
        specs, skipped = [], []
        for src in sources:
            reason = self._untrusted_reason(src, own_decks, names)
            confined = reason is not None  # may run only with --sandbox, and then only confined
            if confined and sandbox:
                level = level or sandbox_level()
                if level == "rlimits-only":
                    reason = (
                        f"{src.concept_id} is untrusted and this machine has no sandbox for it (neither bubblewrap, "
                        f"Landlock nor seccomp is available; `kb doctor` shows the isolation); it will not run"
                    )
                else:
                    reason = None
            if reason is not None:
                skipped.append(
                    VerifyOutcome(src.concept_id, "untrusted", None, 0.0, reason, source_path=src.source_path)
                )
                continue
            run_on = chosen if chosen in src.devices else next((d for d in src.devices if d in available), None)
            if run_on is None:
                skipped.append(
                    VerifyOutcome(
                        src.concept_id,
                        "skipped",
                        None,
                        0.0,
                        f"needs {' or '.join(src.devices)}, not available here",
                        source_path=src.source_path,
                    )
                )
                continue
            last = passes.get(src.concept_id)
            if (
                changed_only
                and last
                and last["code_hash"] == src.code_hash
                and last["device"] == run_on
                and all(last[k] == current[k] for k in ("python", "torch", "numpy"))
            ):
                continue
            limits = self.settings.run_limits
            if src.timeout_s:
                limits = Limits(**{**limits.__dict__, "wall_s": src.timeout_s, "cpu_s": src.timeout_s})
            specs.append(
                (
                    src,
                    RunSpec(
                        key=src.concept_id,
                        code=src.code,
                        device=run_on,
                        limits=limits,
                        expressions=src.expressions,
                        line_offset=src.line_offset,
                        source_path=src.source_path,
                        sandbox=confined,
                    ),
                )
            )
        return specs, skipped

    @staticmethod
    def library_versions() -> dict[str, str | None]:
        """The versions a run would report, read without importing torch or numpy."""

        return {
            "python": platform.python_version(),
            "torch": package_version("torch"),
            "numpy": package_version("numpy"),
        }

    def _record(self, src: SnippetSource, result: RunResult) -> VerifyOutcome:
        import json

        from kb.store.queries import record_run

        record_run(
            self.engine,
            src.concept_id,
            {
                "code_hash": src.code_hash,
                "status": result.status,
                "device": result.device,
                "python_version": result.versions.get("python"),
                "torch_version": result.versions.get("torch"),
                "numpy_version": result.versions.get("numpy"),
                "duration_s": result.duration_s,
                "output": result.output,
                "truncated": result.truncated,
                "message": result.message,
                "line": result.line,
                "signal": result.signal,
                "exit_code": result.exit_code,
                "values_json": json.dumps(result.values, ensure_ascii=False),
            },
            now=self.clock(),
        )
        return VerifyOutcome(
            result.key,
            result.status,
            result.device,
            result.duration_s,
            result.message,
            result.line,
            src.source_path,
            result.output,
            result.values,
        )

    def verify(
        self,
        ids: list[str] | None = None,
        *,
        device: str = "auto",
        jobs: int | None = None,
        changed_only: bool = False,
        sandbox: bool = False,
        on_planned: Callable[[int], None] | None = None,
        on_result: Callable[[VerifyOutcome], None] | None = None,
    ) -> list[VerifyOutcome]:
        """Run snippets in warm isolated workers, record every verdict, return them in id order.

        Snippets of decks that are not the user's own run only when trusted by hash, or, with
        `sandbox`, confined (see _plan).
        """
        from kb.runner import WorkerPool

        planned, skipped = self._plan(ids, device, changed_only, sandbox)
        if on_planned:
            on_planned(len(planned))
        outcomes: dict[str, VerifyOutcome] = {o.id: o for o in skipped}
        if planned:
            by_id = {src.concept_id: src for src, _ in planned}
            jobs = max(1, min(jobs or (os.cpu_count() or 1), len(planned)))

            def done(result: RunResult) -> None:
                outcome = self._record(by_id[result.key], result)
                outcomes[outcome.id] = outcome
                if on_result:
                    on_result(outcome)

            with WorkerPool(jobs=jobs, device=planned[0][1].device) as pool:
                pool.run_many([spec for _, spec in planned], on_result=done)
        return [outcomes[k] for k in sorted(outcomes)]

    @staticmethod
    def device_environment() -> dict:
        """The GPU, its driver, and the torch and CUDA versions the workers use (asked of a
        subprocess: this process never imports torch)."""
        import json
        import subprocess
        import sys

        probe = (
            "import json, platform, torch, numpy; c = torch.cuda.is_available(); print(json.dumps({"
            "'python': platform.python_version(), 'torch': torch.__version__, 'numpy': numpy.__version__, "
            "'cuda': torch.version.cuda, 'cudnn': torch.backends.cudnn.version() if c else None, "
            "'gpu': torch.cuda.get_device_name(0) if c else None}))"
        )
        try:
            out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
            facts = json.loads(out.stdout.strip().splitlines()[-1])
        except (OSError, subprocess.SubprocessError, ValueError, IndexError) as exc:
            facts = {"error": f"could not ask torch: {exc}"}
        try:
            smi = subprocess.run(
                ["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
                capture_output=True,
                text=True,
                timeout=30,
            )
            facts["nvidia_smi"] = smi.stdout.strip() or None
        except (OSError, subprocess.SubprocessError):
            facts["nvidia_smi"] = None
        return facts

    def verify_parity(
        self,
        ids: list[str] | None = None,
        *,
        device: str = "cuda",
        compare: str = "cpu",
        jobs: int | None = None,
        on_planned: Callable[[int], None] | None = None,
        on_result: Callable[[VerifyOutcome], None] | None = None,
    ) -> list[ParityRow]:
        """Run the snippets on `compare`, then on `device`, and compare each entry's verdict and
        every computed value (within the entry's `compare_rtol`, default kb.parity.DEFAULT_RTOL)."""
        from kb.parity import DEFAULT_RTOL, ParityRow, compare_values
        from kb.store.queries import concept_data

        left = {
            o.id: o for o in self.verify(ids, device=compare, jobs=jobs, on_planned=on_planned, on_result=on_result)
        }
        right = {
            o.id: o for o in self.verify(ids, device=device, jobs=jobs, on_planned=on_planned, on_result=on_result)
        }
        rows = []
        for concept_id in sorted(set(left) | set(right)):
            a, b = left.get(concept_id), right.get(concept_id)
            stored = concept_data(self.engine, concept_id)
            snippet = ((stored or {}).get("data") or {}).get("snippet") or {}
            rtol = float(snippet.get("compare_rtol") or DEFAULT_RTOL)
            mismatches = compare_values(a.values if a else None, b.values if b else None, rtol=rtol)
            note = next((o.message for o in (a, b) if o is not None and not o.ran), None)
            if b is not None and b.ran and b.device != device:
                note = f"ran on {b.device}, not {device}: its snippet lists devices {snippet.get('devices')}"
            rows.append(
                ParityRow(
                    concept_id,
                    a.status if a else "missing",
                    b.status if b else "missing",
                    a.duration_s if a else 0.0,
                    b.duration_s if b else 0.0,
                    len(set((a.values if a else None) or {}) | set((b.values if b else None) or {})),
                    mismatches if (a and a.passed and b and b.passed) else [],
                    rtol,
                    note,
                    None if a is None or a.passed else a.message,
                    None if b is None or b.passed else b.message,
                )
            )
        return rows

    def run_snippet(
        self,
        concept_id: str,
        *,
        device: str = "auto",
        sandbox: bool = False,
        on_output: Callable[[str], None] | None = None,
    ) -> VerifyOutcome:
        """Run one concept's snippet on a warm worker kept for this KnowledgeBase, streaming output."""
        planned, skipped = self._plan([concept_id], device, changed_only=False, sandbox=sandbox)
        if skipped:
            return skipped[0]
        if not planned:
            concept = self.show(concept_id)
            if concept is None:
                raise VerifyError(f"no concept {concept_id!r}")
            if concept.get("retired"):
                raise VerifyError(
                    f"{concept_id} is retired: its file is gone ({concept['source_path']}), so its snippet "
                    "does not run; its cards and reviews are kept"
                )
            raise VerifyError(f"{concept_id} has no snippet")
        src, spec = planned[0]
        if self._pool is None:
            from kb.runner import WorkerPool

            self._pool = WorkerPool(jobs=1, device=spec.device)
        return self._record(src, self._pool.run(spec, on_output=on_output))

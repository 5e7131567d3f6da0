"""Reading a third-party deck of YAML files (a folder or a .zip) for `kb import`, defensively.

Nothing here writes or parses: `read_deck_source` returns the bytes of every .yaml/.yml file with
the name to show in messages, or every reason the source cannot be imported. Limits are checked
before anything is read (a zip's declared sizes, a file's lstat), and reads are bounded anyway,
because a zip's header can lie.
"""

from __future__ import annotations

import os
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from kb.loader import MAX_FILE_BYTES, LoadError

MAX_IMPORT_BYTES = 20 * 1024 * 1024  # a whole deck's total size, so one import cannot exhaust memory
MAX_IMPORT_FILES = 10_000
YAML_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class DeckFile:
    relpath: PurePosixPath  # where it goes inside the deck's directory
    shown: str  # how messages name it: the real file, or "deck.zip:member"
    data: bytes


@dataclass
class DeckSource:
    files: list[DeckFile] = field(default_factory=list)
    errors: list[LoadError] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)  # files that are not YAML (README, LICENSE, ...)


def read_deck_source(path: Path) -> DeckSource:
    """The YAML files of a folder or a .zip archive, or the reasons they cannot be taken."""
    if path.is_dir():
        return _read_folder(path)
    return _read_zip(path)


def _hidden(parts: tuple[str, ...]) -> bool:
    return any(p.startswith(".") or p == "__MACOSX" for p in parts)


def _read_folder(root: Path) -> DeckSource:
    out = DeckSource()
    total = 0
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            full = Path(dirpath) / name
            rel = PurePosixPath(*full.relative_to(root).parts)
            if _hidden(rel.parts):
                continue
            try:
                st = full.lstat()
            except OSError as exc:
                out.errors.append(LoadError(str(full), 1, 1, f"cannot read the file: {exc.strerror or exc}"))
                continue
            if stat.S_ISLNK(st.st_mode):
                # A link could point anywhere (~/.ssh, another deck); copy the file in instead.
                if name.endswith(YAML_SUFFIXES):
                    out.errors.append(LoadError(str(full), 1, 1, "a symbolic link; decks are imported without links"))
                continue
            if not name.endswith(YAML_SUFFIXES) or not stat.S_ISREG(st.st_mode):
                out.ignored.append(str(rel))
                continue
            if not _admit(out, str(full), st.st_size, total):
                continue
            total += st.st_size
            try:
                with open(full, "rb") as f:
                    data = f.read(MAX_FILE_BYTES + 1)
            except OSError as exc:
                out.errors.append(LoadError(str(full), 1, 1, f"cannot read the file: {exc.strerror or exc}"))
                continue
            _add(out, rel, str(full), data)
    return out


def _admit(out: DeckSource, shown: str, size: int, total: int) -> bool:
    """Whether a file of `size` bytes may be read, given `total` so far; records the reason if not."""
    if len(out.files) >= MAX_IMPORT_FILES:
        out.errors.append(LoadError(shown, 1, 1, f"more than {MAX_IMPORT_FILES:,} YAML files in one import"))
        return False
    if size > MAX_FILE_BYTES:
        out.errors.append(
            LoadError(shown, 1, 1, f"the file is {size:,} bytes; the limit is {MAX_FILE_BYTES:,} bytes (1 MiB)")
        )
        return False
    if total + size > MAX_IMPORT_BYTES:
        out.errors.append(
            LoadError(shown, 1, 1, f"the deck is over {MAX_IMPORT_BYTES // 2**20} MiB of YAML; import it in parts")
        )
        return False
    return True


def _add(out: DeckSource, rel: PurePosixPath, shown: str, data: bytes) -> None:
    if len(data) > MAX_FILE_BYTES:  # grew after the size check, or a zip header that lied
        out.errors.append(LoadError(shown, 1, 1, f"the file is over the limit of {MAX_FILE_BYTES:,} bytes (1 MiB)"))
        return
    out.files.append(DeckFile(rel, shown, data))


def _read_zip(archive: Path) -> DeckSource:
    out = DeckSource()
    try:
        zf = zipfile.ZipFile(archive)
    except FileNotFoundError:
        out.errors.append(LoadError(str(archive), 1, 1, "no such file or folder"))
        return out
    except (zipfile.BadZipFile, OSError) as exc:
        out.errors.append(LoadError(str(archive), 1, 1, f"not a folder or a readable .zip archive ({exc})"))
        return out
    with zf:
        members = []
        for info in zf.infolist():
            shown = f"{archive}:{info.filename}"
            if info.is_dir():
                continue
            name = info.filename.replace("\\", "/")
            rel = PurePosixPath(name)
            if not rel.parts or name.startswith("/") or ".." in rel.parts or ":" in rel.parts[0]:
                out.errors.append(LoadError(shown, 1, 1, "an unsafe path in the archive (absolute or with '..')"))
                continue
            if _hidden(rel.parts):
                continue
            if stat.S_ISLNK(info.external_attr >> 16):
                out.errors.append(LoadError(shown, 1, 1, "a symbolic link; decks are imported without links"))
                continue
            if not name.endswith(YAML_SUFFIXES):
                out.ignored.append(name)
                continue
            members.append((info, rel, shown))
        # A zip of a folder has one top directory ("mydeck/a.yaml"): the deck is what is inside it.
        tops = {rel.parts[0] for _, rel, _ in members}
        strip = len(tops) == 1 and all(len(rel.parts) > 1 for _, rel, _ in members)
        total = 0
        for info, rel, shown in members:
            if not _admit(out, shown, info.file_size, total):
                continue
            total += info.file_size
            try:
                with zf.open(info) as f:
                    data = f.read(MAX_FILE_BYTES + 1)
            except (zipfile.BadZipFile, OSError, NotImplementedError, RuntimeError) as exc:
                out.errors.append(LoadError(shown, 1, 1, f"cannot extract: {exc}"))
                continue
            _add(out, PurePosixPath(*rel.parts[1:]) if strip else rel, shown, data)
    return out

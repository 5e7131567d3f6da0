"""YAML concept files -> validated Concepts, every problem as `path:line:col: message`.

The file is read once (one snapshot for hashing and parsing), decoded strictly as UTF-8, and parsed
as a stream of libyaml events (CSafeLoader's C parser). Building the value tree from events
ourselves lets us keep the line and column of every key and value, reject anchors, aliases, tags,
merge keys, duplicate keys and deep nesting before anything walks the data, and flag YAML 1.1
surprises (`NO`, `1.10`) where a string was expected.
"""

from __future__ import annotations

import datetime as _dt
import difflib
import hashlib
import os
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

import yaml
from pydantic import ValidationError

from kb.schema import CARD_TYPES, FIELDS_BY_MODEL, Concept

MAX_FILE_BYTES = 1024 * 1024
MAX_DEPTH = 32
# No number a note needs is longer: a longer unquoted value that YAML would read as a number (a
# 5,000-digit integer, a base-60 `1:1:1:...`) is refused before it is converted, which would
# otherwise fail (Python's 4,300-digit limit) or take minutes (base 60 is quadratic).
MAX_NUMBER_CHARS = 100
MAX_QUOTED_CHARS = 60  # user text quoted in a message is cut to this many characters
_NUMBER_TAGS = frozenset({"tag:yaml.org,2002:int", "tag:yaml.org,2002:float"})


def _shown(text: object, limit: int = MAX_QUOTED_CHARS) -> str:
    """User text as quoted in an error message: at most `limit` characters."""
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1] + f"… ({len(text):,} characters)"


_STR_TAG = "tag:yaml.org,2002:str"
_ALLOWED_SCALAR_TAGS = {
    _STR_TAG,
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
}
_ALLOWED_COLLECTION_TAGS = {"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"}
_RESOLVER = yaml.resolver.Resolver()
_CONSTRUCTOR = yaml.constructor.SafeConstructor()
# The first characters for which YAML 1.1 may type a plain scalar as other than a string ('' too).
_IMPLICIT_FIRST = frozenset(k for k in yaml.resolver.Resolver.yaml_implicit_resolvers if k is not None)

Path_ = tuple  # a path into the data: keys and list indices


@dataclass(frozen=True, order=True)
class LoadError:
    """One problem in one file, at a 1-based line and column."""

    path: str
    line: int
    col: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}: {self.message}"

    def to_dict(self) -> dict:
        return {"path": self.path, "line": self.line, "col": self.col, "message": self.message}


@dataclass
class ParsedFile:
    """What one file gave: its concept (None if invalid), its errors, and where things are."""

    path: Path
    content_hash: str
    concept: Concept | None = None
    errors: list[LoadError] = field(default_factory=list)
    # (field, referenced id, line, col) for every entry of related/prerequisites.
    references: list[tuple[str, str, int, int]] = field(default_factory=list)
    id_position: tuple[int, int] = (1, 1)
    # Snippet line n is YAML line n + snippet_line_offset.
    snippet_line_offset: int = 0
    # Card index -> (line, col) of the card mapping, for messages about a card.
    card_positions: list[tuple[int, int]] = field(default_factory=list)
    # The `id:` the file declares, even when the rest does not validate (its references and a
    # duplicate id are still checked, so every error of a file comes in one pass).
    declared_id: str | None = None


class _Fatal(Exception):
    """Stops building a file's tree (depth limit, multiple documents)."""


class _Tree:
    """Builds Python values from libyaml events, recording positions as it goes."""

    def __init__(self, path: str):
        self.path = path
        self.errors: list[LoadError] = []
        self.value_pos: dict[Path_, tuple[int, int]] = {}
        self.key_pos: dict[Path_, tuple[int, int]] = {}
        # Plain scalars that YAML 1.1 typed as something other than a string: path -> source text.
        self.implicit_text: dict[Path_, str] = {}
        self.block_scalar: set[Path_] = set()

    def error(self, mark: Any, message: str) -> None:
        self.errors.append(LoadError(self.path, mark.line + 1, mark.column + 1, message))

    def build(self, text: str) -> Any:
        # libyaml's events, pulled straight from the parser (yaml.parse's generator and check_event
        # cost a fifth of the parse).
        parser = yaml.CSafeLoader(text)
        try:
            return self._build(parser.get_event)
        finally:
            parser.dispose()

    def _build(self, next_event: Any) -> Any:
        # Each stack frame: [container, path, pending_key(for maps), key_mark, is_map, index]
        stack: list[list[Any]] = []
        root: Any = None
        have_root = False
        documents = 0
        while True:
            event = next_event()
            kind = type(event)
            if kind is yaml.StreamEndEvent or event is None:
                break
            if kind is yaml.DocumentStartEvent:
                documents += 1
                if documents > 1:
                    self.error(event.start_mark, "only one document per file is allowed (found a second '---')")
                    raise _Fatal
                continue
            if kind in (yaml.StreamStartEvent, yaml.StreamEndEvent, yaml.DocumentEndEvent):
                continue
            if kind is yaml.MappingEndEvent or kind is yaml.SequenceEndEvent:
                frame = stack.pop()
                value: Any = frame[0]
                if not stack:
                    root, have_root = value, True
                continue

            path = self._child_path(stack)
            if kind is yaml.AliasEvent:
                self.error(event.start_mark, f"aliases are not allowed (found '*{_shown(event.anchor)}')")
                value = None
            elif kind is yaml.ScalarEvent:
                value = self._scalar(event, path, is_key=bool(stack) and stack[-1][4] and stack[-1][2] is _NO_KEY)
            else:  # MappingStartEvent / SequenceStartEvent
                if event.anchor is not None:
                    self.error(event.start_mark, f"anchors are not allowed (found '&{_shown(event.anchor)}')")
                if event.tag is not None and event.tag not in _ALLOWED_COLLECTION_TAGS:
                    self.error(event.start_mark, f"the tag '{_shown(event.tag)}' is not allowed")
                if len(stack) >= MAX_DEPTH:
                    self.error(event.start_mark, f"nesting is deeper than {MAX_DEPTH} levels")
                    raise _Fatal
                value = {} if kind is yaml.MappingStartEvent else []
                self._attach(stack, value, event, path)
                stack.append([value, path, _NO_KEY, None, kind is yaml.MappingStartEvent, 0])
                continue
            if not stack:
                root, have_root = value, True
                self.value_pos[()] = (event.start_mark.line + 1, event.start_mark.column + 1)
            else:
                self._attach(stack, value, event, path)
        if not have_root or root is None:
            self.errors.append(LoadError(self.path, 1, 1, "the file is empty: expected a mapping of concept fields"))
            return None
        return root

    @staticmethod
    def _child_path(stack: list[list[Any]]) -> Path_:
        if not stack:
            return ()
        frame = stack[-1]
        if frame[4]:
            return frame[1] + ((frame[2],) if frame[2] is not _NO_KEY else ())
        return frame[1] + (frame[5],)

    def _attach(self, stack: list[list[Any]], value: Any, event: Any, path: Path_) -> None:
        pos = (event.start_mark.line + 1, event.start_mark.column + 1)
        if not stack:
            self.value_pos[()] = pos
            return
        frame = stack[-1]
        if frame[4]:  # a mapping: alternate key, value
            if frame[2] is _NO_KEY:
                if not isinstance(value, str):
                    self.error(event.start_mark, "mapping keys must be plain text")
                    value = repr(value)
                container = frame[0]
                if value in container:
                    first = self.key_pos[frame[1] + (value,)]
                    self.error(
                        event.start_mark,
                        f"duplicate key '{_shown(value)}' (first defined at line {first[0]}, column {first[1]})",
                    )
                    frame[2] = _Duplicate(value)
                else:
                    frame[2] = value
                    self.key_pos[frame[1] + (value,)] = pos
                frame[3] = pos
            else:
                key = frame[2]
                if not isinstance(key, _Duplicate):
                    frame[0][key] = value
                    self.value_pos[frame[1] + (key,)] = pos
                frame[2] = _NO_KEY
        else:
            frame[0].append(value)
            self.value_pos[frame[1] + (frame[5],)] = pos
            frame[5] += 1

    def _scalar(self, event: Any, path: Path_, *, is_key: bool) -> Any:
        if event.anchor is not None:
            self.error(event.start_mark, f"anchors are not allowed (found '&{_shown(event.anchor)}')")
        text = event.value
        tag = event.tag
        if tag is not None and tag != "!":
            if tag not in _ALLOWED_SCALAR_TAGS:
                self.error(event.start_mark, f"the tag '{_shown(tag)}' is not allowed")
                return text
        elif not event.style and event.implicit[0]:
            # Most plain scalars start with a letter no implicit type starts with: a string.
            tag = _RESOLVER.resolve(yaml.ScalarNode, text, (True, False)) if text[:1] in _IMPLICIT_FIRST else _STR_TAG
        else:
            tag = _STR_TAG
        if is_key:
            if tag == "tag:yaml.org,2002:merge":
                self.error(event.start_mark, "merge keys ('<<') are not allowed")
            return text
        if event.style in ("|", ">"):
            self.block_scalar.add(path)
        if tag == _STR_TAG:
            return text
        if tag in _NUMBER_TAGS and len(text) > MAX_NUMBER_CHARS:
            self.error(
                event.start_mark,
                f"this unquoted value of {len(text):,} characters reads as a number, longer "
                f"than any number kb accepts ({MAX_NUMBER_CHARS}); quote it if it is text",
            )
            return text
        try:
            value = _construct(tag, text, event)
        except yaml.YAMLError:
            value = text
        except (ValueError, OverflowError) as exc:  # an impossible date (2024-13-45), a number too large
            kind = "date" if tag.endswith("timestamp") else "number"
            self.error(
                event.start_mark,
                f"the unquoted {_shown(text)} reads as a {kind} but is not a valid one ({exc}); quote it if it is text",
            )
            return text
        if not isinstance(value, str) and not event.style:
            self.implicit_text[path] = text
        return value


class _Duplicate(str):
    """Marks the value slot of a duplicate key, which is dropped."""


_NO_KEY = object()


def _construct(tag: str, text: str, event: Any) -> Any:
    node = yaml.ScalarNode(tag, text, event.start_mark, event.end_mark)
    if tag == "tag:yaml.org,2002:null":
        return None
    if tag == "tag:yaml.org,2002:bool":
        return _CONSTRUCTOR.construct_yaml_bool(node)
    if tag == "tag:yaml.org,2002:int":
        return _CONSTRUCTOR.construct_yaml_int(node)
    if tag == "tag:yaml.org,2002:float":
        return _CONSTRUCTOR.construct_yaml_float(node)
    if tag == "tag:yaml.org,2002:timestamp":
        return _CONSTRUCTOR.construct_yaml_timestamp(node)
    return text


def _yaml_error(path: str, exc: yaml.YAMLError, text: str) -> LoadError:
    if isinstance(exc, yaml.reader.ReaderError):
        before = text[: exc.position]
        line = before.count("\n") + 1
        col = exc.position - (before.rfind("\n") + 1) + 1
        return LoadError(path, line, col, f"the control character U+{exc.character:04X} is not allowed")
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    message = f"{context}: {problem}" if context and "while" not in context else problem
    if mark is None:
        return LoadError(path, 1, 1, message)
    lines = text.splitlines()
    if mark.line < len(lines) and lines[mark.line][mark.column : mark.column + 1] == "\t":
        message += " (a tab: YAML indents with spaces only)"
    return LoadError(path, mark.line + 1, mark.column + 1, message)


def _decode(path: str, data: bytes) -> tuple[str | None, LoadError | None]:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return None, LoadError(path, 1, 1, "the file is UTF-16 encoded; save it as UTF-8")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        before = data[: exc.start]
        line = before.count(b"\n") + 1
        line_start = before.rfind(b"\n") + 1
        col = len(before[line_start:].decode("utf-8", errors="replace")) + 1
        return None, LoadError(path, line, col, f"invalid UTF-8 (byte 0x{data[exc.start]:02x})")


def content_hash(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def parse_bytes(path: Path, data: bytes) -> ParsedFile:
    """Parse and validate one file's bytes; never raises for bad input."""
    shown = str(path)
    result = ParsedFile(path=path, content_hash=content_hash(data))
    text, decode_error = _decode(shown, data)
    if text is None or decode_error:
        result.errors.extend([decode_error] if decode_error else [])
        return result
    tree = _Tree(shown)
    try:
        data_tree = tree.build(text)
    except _Fatal:
        result.errors.extend(tree.errors)
        return result
    except yaml.YAMLError as exc:
        result.errors.extend(tree.errors)
        result.errors.append(_yaml_error(shown, exc, text))
        return result
    except RecursionError:
        result.errors.append(LoadError(shown, 1, 1, f"nesting is deeper than {MAX_DEPTH} levels"))
        return result
    result.errors.extend(tree.errors)
    if data_tree is None:
        return result
    if not isinstance(data_tree, dict):
        line, col = tree.value_pos.get((), (1, 1))
        kind = "a list" if isinstance(data_tree, list) else "a single value"
        result.errors.append(
            LoadError(shown, line, col, f"expected a mapping of concept fields at the top level, found {kind}")
        )
        return result

    result.id_position = tree.value_pos.get(("id",), (1, 1))
    if isinstance(data_tree.get("id"), str):
        result.declared_id = data_tree["id"]
    code_pos = tree.value_pos.get(("snippet", "code"))
    if code_pos:
        block = ("snippet", "code") in tree.block_scalar
        result.snippet_line_offset = code_pos[0] if block else code_pos[0] - 1
    cards = data_tree.get("cards")
    if isinstance(cards, list):
        result.card_positions = [tree.value_pos.get(("cards", i), (1, 1)) for i in range(len(cards))]
    for ref_field in ("related", "prerequisites"):
        refs = data_tree.get(ref_field)
        if isinstance(refs, list):
            for i, ref in enumerate(refs):
                if isinstance(ref, str):
                    line, col = tree.value_pos.get((ref_field, i), (1, 1))
                    result.references.append((ref_field, ref, line, col))

    if result.errors:
        # Structural problems (aliases, merge keys, tags) leave out content by kb's refusal: the
        # schema's "missing field" would then mislead. References are still checked (check_parsed).
        return result
    try:
        result.concept = Concept.model_validate(data_tree)
    except ValidationError as exc:
        result.errors.extend(sorted(_validation_errors(shown, exc, data_tree, tree)))
    except RecursionError:
        result.errors.append(LoadError(shown, 1, 1, f"nesting is deeper than {MAX_DEPTH} levels"))
    if result.concept is not None:
        seen_ids: set[str] = set()
        for i, card in enumerate(result.concept.cards):
            if card.id is not None and card.id in seen_ids:
                line, col = result.card_positions[i]
                result.errors.append(LoadError(shown, line, col, f"duplicate card id '{_shown(card.id)}'"))
                result.concept = None
                break
            if card.id is not None:
                seen_ids.add(card.id)
    return result


def parse_file(path: Path) -> ParsedFile:
    """Check the size before reading, then parse the bytes read in one go."""
    shown = str(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            result = ParsedFile(path=path, content_hash="")
            result.errors.append(
                LoadError(shown, 1, 1, f"the file is {size:,} bytes; the limit is {MAX_FILE_BYTES:,} bytes (1 MiB)")
            )
            return result
        data = path.read_bytes()
    except OSError as exc:
        result = ParsedFile(path=path, content_hash="")
        result.errors.append(LoadError(shown, 1, 1, f"cannot read the file: {exc.strerror or exc}"))
        return result
    if len(data) > MAX_FILE_BYTES:  # grew between stat and read
        result = ParsedFile(path=path, content_hash="")
        result.errors.append(LoadError(shown, 1, 1, f"the file is over the limit of {MAX_FILE_BYTES:,} bytes (1 MiB)"))
        return result
    return parse_bytes(path, data)


# --- pydantic errors -> path:line:col messages -------------------------------------------------

_TYPE_WORDS = {
    "string_type": "a string",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "int_type": "an integer",
    "float_type": "a number",
    "bool_type": "true or false",
}


def _describe(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, (_dt.date, _dt.datetime)):
        return "a date"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _resolve(data: Any, loc: tuple) -> tuple[Path_, Any, bool]:
    """Follow a pydantic loc through the data, skipping union tags; returns (path, value, found)."""
    path: Path_ = ()
    node = data
    for i, part in enumerate(loc):
        if isinstance(node, dict) and part in node:
            node = node[part]
            path += (part,)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
            path += (part,)
        elif isinstance(node, dict) and isinstance(part, str) and part in CARD_TYPES and i < len(loc) - 1:
            continue  # the discriminator value pydantic puts in the loc of a card
        else:
            return path, node, False
    return path, node, True


def _dotted(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _model_name(data: Any, path: Path_) -> str:
    if not path:
        return "concept"
    head = path[0]
    if head in ("title", "summary", "snippet") and len(path) == 1:
        return head
    if head in ("formulas", "sources") and len(path) == 2:
        return head[:-1]
    if head == "cards" and len(path) == 2:
        _, card, found = _resolve(data, path)
        if found and isinstance(card, dict) and card.get("type") in CARD_TYPES:
            return card["type"]
    return ""


def _validation_errors(shown: str, exc: ValidationError, data: dict, tree: _Tree) -> list[LoadError]:
    errors: list[LoadError] = []
    seen: set[tuple] = set()
    for err in exc.errors(include_url=False):
        kind = err["type"]
        loc = tuple(err["loc"])
        path, value, found = _resolve(data, loc)
        if kind == "extra_forbidden":
            line, col = tree.key_pos.get(path, tree.value_pos.get(path, (1, 1)))
            name = path[-1] if path else loc[-1]
            allowed = FIELDS_BY_MODEL.get(_model_name(data, path[:-1]), ())
            guess = difflib.get_close_matches(str(name), allowed, n=1, cutoff=0.6)
            hint = f" (did you mean '{guess[0]}'?)" if guess else ""
            where = f" in {_dotted(path[:-1])}" if path[:-1] else ""
            message = f"unknown field '{_shown(name)}'{where}{hint}"
        elif kind == "missing" or kind == "union_tag_not_found":
            line, col = tree.value_pos.get(path, (1, 1))
            name = "type" if kind == "union_tag_not_found" else loc[-1]
            where = f" in {_dotted(path)}" if path else ""
            message = f"missing required field '{name}'{where}"
        elif kind == "union_tag_invalid":
            line, col = tree.value_pos.get(path + ("type",), tree.value_pos.get(path, (1, 1)))
            tag = value.get("type") if isinstance(value, dict) else value
            message = (
                f"{_dotted(path)}.type: unknown card type '{_shown(tag)}' (expected one of {', '.join(CARD_TYPES)})"
            )
        else:
            line, col = tree.value_pos.get(path, (1, 1))
            target = _dotted(path if found else path + (loc[len(path) :][-1:] or ("?",)))
            if kind in _TYPE_WORDS:
                message = f"{target}: expected {_TYPE_WORDS[kind]}, got {_describe(value)}"
                if path in tree.implicit_text and kind == "string_type":
                    message += (
                        f" (YAML reads the unquoted {_shown(tree.implicit_text[path])} that way; quote this value)"
                    )
            elif kind == "literal_error":
                expected = err.get("ctx", {}).get("expected", "")
                message = f"{target}: {_shown(repr(value))} is not allowed; expected {expected}"
            else:
                msg = err["msg"]
                if msg.startswith("Value error, "):
                    msg = msg[len("Value error, ") :]
                message = f"{target}: {msg[0].lower() + msg[1:]}"
        key = (line, col, message)
        if key not in seen:
            seen.add(key)
            errors.append(LoadError(shown, line, col, message))
    return errors


# --- many files ---------------------------------------------------------------------------------


def check_references(parsed: Iterable[ParsedFile], known_ids: set[str]) -> list[LoadError]:
    """Unknown ids in related/prerequisites, each at its line and column."""
    errors = []
    for item in parsed:
        own_id = item.concept.id if item.concept is not None else item.declared_id
        if own_id is not None:
            errors.extend(reference_errors(str(item.path), item.references, own_id, known_ids))
    return errors


def reference_errors(
    path: str, references: list[tuple[str, str, int, int]], own_id: str, known_ids: set[str]
) -> list[LoadError]:
    """The errors of one file's references: unknown ids (with a guess) and the concept itself."""
    errors = []
    for ref_field, ref, line, col in references:
        if ref not in known_ids:
            guess = difflib.get_close_matches(ref, sorted(known_ids), n=1, cutoff=0.75)
            hint = f" (did you mean '{guess[0]}'?)" if guess else ""
            errors.append(LoadError(path, line, col, f"unknown id '{ref}' in {ref_field}{hint}"))
        elif ref == own_id:
            errors.append(LoadError(path, line, col, f"a concept cannot list itself in {ref_field}"))
    return errors


def duplicate_id_at(
    path: str, position: tuple[int, int], concept_id: str, other_path: str, other_pos: tuple[int, int]
) -> LoadError:
    return LoadError(
        path,
        position[0],
        position[1],
        f"duplicate id '{concept_id}' (also defined in {other_path}:{other_pos[0]}:{other_pos[1]})",
    )


MAX_WALK_DEPTH = 64  # folders within folders in one deck
MAX_DECK_FILES = 200_000


@dataclass(frozen=True)
class WalkProblem:
    """A folder of a deck that could not be read, or was not read again: said once, never silently."""

    path: str
    message: str
    unreadable: bool  # its files could not be listed: what was loaded from it before must be kept

    def as_error(self) -> LoadError:
        return LoadError(self.path, 1, 1, self.message)


def walk_yaml(root: Path, problems: list[WalkProblem] | None = None) -> Iterator[tuple[str, os.stat_result]]:
    """(path, stat) of every .yaml/.yml file under root, skipping hidden entries; one stat a file.

    Each real folder is read once, however many symbolic links lead to it, so a link loop
    (`ln -s . notes/a`) ends the walk instead of running for ever; a folder reached again, one that
    cannot be listed, and a walk past MAX_WALK_DEPTH or MAX_DECK_FILES are each reported in
    `problems` once.
    """
    problems = problems if problems is not None else []
    seen: dict[tuple[int, int], str] = {}
    stack = [(str(root), 0)]
    files = 0
    while stack:
        folder, depth = stack.pop()
        try:
            st = os.stat(folder)
        except OSError as exc:
            if folder != str(root):
                problems.append(
                    WalkProblem(
                        folder,
                        f"cannot read this folder ({exc.strerror}); what kb loaded from it before is kept",
                        unreadable=True,
                    )
                )
            continue
        identity = (st.st_dev, st.st_ino)
        if identity in seen:
            problems.append(
                WalkProblem(
                    folder,
                    f"a symbolic link back to {seen[identity]}, which is read once (a loop "
                    "or a second link to one folder)",
                    unreadable=False,
                )
            )
            continue
        seen[identity] = folder
        try:
            entries = list(os.scandir(folder))
        except OSError as exc:
            problems.append(
                WalkProblem(
                    folder,
                    f"cannot read this folder ({exc.strerror}); what kb loaded from it before is kept",
                    unreadable=True,
                )
            )
            continue
        for entry in sorted(entries, key=lambda e: e.name, reverse=True):
            if entry.name.startswith("."):
                continue
            try:
                if entry.is_dir():
                    if depth + 1 > MAX_WALK_DEPTH:
                        problems.append(
                            WalkProblem(
                                entry.path,
                                f"folders nested deeper than {MAX_WALK_DEPTH} levels are not read",
                                unreadable=False,
                            )
                        )
                    else:
                        stack.append((entry.path, depth + 1))
                elif entry.name.endswith((".yaml", ".yml")) and entry.is_file():
                    files += 1
                    if files > MAX_DECK_FILES:
                        problems.append(
                            WalkProblem(
                                str(root),
                                f"a deck of more than {MAX_DECK_FILES:,} files: the rest is not read",
                                unreadable=True,
                            )
                        )
                        return
                    yield entry.path, entry.stat()
            except OSError:
                continue  # vanished while walking


def find_yaml_files(root: Path, problems: list[WalkProblem] | None = None) -> list[Path]:
    """All .yaml/.yml files under root (or root itself if it is a file), sorted."""
    if root.is_file():
        return [root]
    return sorted(Path(p) for p, _ in walk_yaml(root, problems))


@dataclass
class CheckReport:
    parsed: list[ParsedFile]
    errors: list[LoadError]

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass
class SyncReport:
    """What a sync of the decks into the database did: the concepts added, updated, retired and
    renamed, and every file's errors (a report of the content, as CheckReport is; the store fills it)."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    retired: list[str] = field(default_factory=list)
    renamed: list[tuple[str, str]] = field(default_factory=list)
    unchanged: int = 0
    files_parsed: int = 0
    errors: list[LoadError] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)  # where the time went, for bench/

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.retired or self.renamed)

    def to_dict(self) -> dict:
        return {
            "added": self.added,
            "updated": self.updated,
            "retired": self.retired,
            "renamed": [list(pair) for pair in self.renamed],
            "unchanged": self.unchanged,
            "errors": [e.to_dict() for e in self.errors],
        }


def check_files(paths: Iterable[Path], extra_known_ids: Collection[str] = frozenset()) -> CheckReport:
    """Validate files without a database: syntax, schema, duplicate ids and references."""
    return check_parsed([parse_file(p) for p in paths], extra_known_ids)


def check_parsed(parsed: list[ParsedFile], extra_known_ids: Collection[str] = frozenset()) -> CheckReport:
    """The errors of parsed files as a set: their own, duplicate ids among them, and dangling references."""
    errors = [e for item in parsed for e in item.errors]
    first_by_id: dict[str, ParsedFile] = {}
    for item in parsed:
        declared = item.concept.id if item.concept is not None else item.declared_id
        if declared is None:
            continue
        other = first_by_id.get(declared)
        if other is not None:
            errors.append(
                duplicate_id_at(str(item.path), item.id_position, declared, str(other.path), other.id_position)
            )
        else:
            first_by_id[declared] = item
    errors.extend(check_references(parsed, set(first_by_id) | set(extra_known_ids)))
    errors.sort()
    return CheckReport(parsed=parsed, errors=errors)

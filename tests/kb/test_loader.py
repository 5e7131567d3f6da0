"""The loader: every bad input becomes `path:line:col: message`, never an exception: bad YAML,
bad fields, duplicate ids and bad text encodings."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import concept_yaml
from kb import loader
from kb.loader import check_files, parse_bytes, parse_file


def errors_of(tmp_path: Path, data: bytes | str, name: str = "deck.yaml") -> list[str]:
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    result = parse_file(path)
    assert result.concept is None or not result.errors
    return [str(e).replace(str(tmp_path) + "/", "") for e in result.errors]


def test_valid_concept_loads(tmp_path):
    path = tmp_path / "softmax.yaml"
    path.write_text(concept_yaml("softmax", title_zh="归一化指数函数"), encoding="utf-8")
    result = parse_file(path)
    assert result.errors == []
    assert result.concept.id == "softmax"
    assert result.concept.title.zh == "归一化指数函数"
    assert result.id_position == (1, 5)


# --- A. malformed YAML ---------------------------------------------------------------------------


def test_unterminated_quote(tmp_path):
    assert errors_of(tmp_path, 'id: x\ntitle: "unterminated\n') == ["deck.yaml:3:1: found unexpected end of stream"]


def test_bad_indent(tmp_path):
    assert errors_of(tmp_path, "id: x\n  bad: indent\n") == [
        "deck.yaml:2:6: mapping values are not allowed in this context"
    ]


def test_tab_indent(tmp_path):
    (msg,) = errors_of(tmp_path, "id: x\ntitle:\n\ten: y\n")
    assert msg.startswith("deck.yaml:3:1: ")
    assert "tab" in msg


def test_duplicate_key_names_both_lines(tmp_path):
    text = concept_yaml("x") + "category: layers\n"
    (msg,) = errors_of(tmp_path, text)
    assert msg == "deck.yaml:11:1: duplicate key 'category' (first defined at line 8, column 1)"


def test_alias_bomb_rejected_fast(tmp_path):
    import psutil

    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i, name in enumerate("bcdefgh"):
        prev = "abcdefgh"[i]
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    text = "\n".join(lines) + "\n"
    rss = psutil.Process().memory_info().rss
    start = time.perf_counter()
    msgs = errors_of(tmp_path, text)
    assert time.perf_counter() - start < 0.1
    assert psutil.Process().memory_info().rss - rss < 50 * 1024**2
    assert msgs[0] == "deck.yaml:1:4: anchors are not allowed (found '&a')"
    assert "deck.yaml:2:8: aliases are not allowed (found '*a')" in msgs


def test_merge_key_rejected(tmp_path):
    assert errors_of(tmp_path, "<<: {a: 1}\n") == ["deck.yaml:1:1: merge keys ('<<') are not allowed"]


@pytest.mark.parametrize("depth", [40, 10_000])
def test_deep_nesting_is_a_clean_error(tmp_path, depth):
    start = time.perf_counter()
    (msg,) = errors_of(tmp_path, "a: " + "[" * depth + "]" * depth + "\n")
    assert time.perf_counter() - start < 1
    assert msg.startswith("deck.yaml:1:")
    assert "nesting" in msg


def test_oversized_file_rejected_before_parsing(tmp_path, monkeypatch):
    path = tmp_path / "big.yaml"
    with open(path, "wb") as f:
        f.truncate(loader.MAX_FILE_BYTES + 1)  # sparse: no bytes actually written

    def fail(*args, **kwargs):
        raise AssertionError("the parser must not run on an oversized file")

    monkeypatch.setattr(yaml, "parse", fail)
    monkeypatch.setattr(Path, "read_bytes", fail)
    result = parse_file(path)
    assert [e.message for e in result.errors] == ["the file is 1,048,577 bytes; the limit is 1,048,576 bytes (1 MiB)"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "deck.yaml:1:1: the file is empty: expected a mapping of concept fields"),
        ("# only a comment\n", "deck.yaml:1:1: the file is empty: expected a mapping of concept fields"),
        ("- a\n- b\n", "deck.yaml:1:1: expected a mapping of concept fields at the top level, found a list"),
        ("just text\n", "deck.yaml:1:1: expected a mapping of concept fields at the top level, found a single value"),
        ("a: 1\n---\nb: 2\n", "deck.yaml:2:1: only one document per file is allowed (found a second '---')"),
    ],
)
def test_empty_and_odd_documents(tmp_path, text, expected):
    assert errors_of(tmp_path, text) == [expected]


def test_python_tags_never_construct(tmp_path):
    marker = tmp_path / "pwned"
    text = f'id: !!python/object/apply:os.system ["touch {marker}"]\n'
    (msg,) = errors_of(tmp_path, text)
    assert msg == "deck.yaml:1:5: the tag 'tag:yaml.org,2002:python/object/apply:os.system' is not allowed"
    assert not marker.exists()


@pytest.mark.parametrize(
    ("value", "got"),
    [
        ("NO", "a boolean"),
        ("yes", "a boolean"),
        ("1.10", "a number"),
        ("0123", "an integer"),
        ("1:20", "an integer"),
        ("2024-01-01", "a date"),
        ("null", "nothing (null)"),
    ],
)
def test_yaml11_surprises_in_string_fields(tmp_path, value, got):
    text = concept_yaml("x").replace("zh: 测试概念\n", f"zh: {value}\n", 1)
    (msg,) = errors_of(tmp_path, text)
    hint = f" (YAML reads the unquoted {value} that way; quote this value)"
    assert msg == f"deck.yaml:4:7: title.zh: expected a string, got {got}{hint}"


def test_quoted_value_is_fine(tmp_path):
    text = concept_yaml("x").replace("zh: 测试概念\n", 'zh: "NO"\n', 1)
    assert errors_of(tmp_path, text) == []


# --- B. schema violations ------------------------------------------------------------------------


def test_all_missing_fields_listed_at_the_mapping(tmp_path):
    msgs = errors_of(tmp_path, "id: x\ncategory: llm\n")
    assert msgs == [f"deck.yaml:1:1: missing required field '{f}'" for f in ("definition", "summary", "title")]


def test_missing_nested_field(tmp_path):
    text = concept_yaml("x").replace("  zh: 测试概念\n", "", 1)
    assert errors_of(tmp_path, text) == ["deck.yaml:3:3: missing required field 'zh' in title"]


def test_typo_suggests_the_field(tmp_path):
    text = concept_yaml("x").replace("definition:", "defintion:")
    assert errors_of(tmp_path, text) == [
        "deck.yaml:1:1: missing required field 'definition'",
        "deck.yaml:9:1: unknown field 'defintion' (did you mean 'definition'?)",
    ]


def test_typo_inside_a_card(tmp_path):
    text = concept_yaml("x", extra="cards:\n  - type: basic\n    front: q\n    bakc: a\n")
    assert errors_of(tmp_path, text) == [
        "deck.yaml:12:5: missing required field 'back' in cards[0]",
        "deck.yaml:14:5: unknown field 'bakc' in cards[0] (did you mean 'back'?)",
    ]


def test_wrong_types_one_error_each(tmp_path):
    extra = "tags: one-tag\naliases: [1]\nsnippet:\n  code: [x]\n  timeout_s: yes\n"
    msgs = errors_of(tmp_path, concept_yaml("x", extra=extra))
    assert msgs == [
        "deck.yaml:11:7: tags: expected a list, got a string",
        "deck.yaml:12:11: aliases[0]: expected a string, got an integer (YAML reads the unquoted 1 that way; quote this value)",
        "deck.yaml:14:9: snippet.code: expected a string, got a list",
        "deck.yaml:15:14: snippet.timeout_s: expected a number, got a boolean",
    ]


def test_unknown_card_type(tmp_path):
    text = concept_yaml("x", extra="cards:\n  - type: essay\n    text: t\n")
    assert errors_of(tmp_path, text) == [
        "deck.yaml:12:11: cards[0].type: unknown card type 'essay' (expected one of basic, cloze, choice, typed, computed)"
    ]


@pytest.mark.parametrize(
    ("replacement", "message"),
    [
        ('en: ""', "title.en: must not be empty or whitespace only"),
        ('en: "   "', "title.en: must not be empty or whitespace only"),
        ("en: " + "x" * 301, "title.en: string should have at most 300 characters"),
    ],
)
def test_empty_and_overlong_strings(tmp_path, replacement, message):
    text = concept_yaml("x", title_en="Placeholder").replace("en: Placeholder", replacement, 1)
    (msg,) = errors_of(tmp_path, text)
    assert msg == f"deck.yaml:3:7: {message}"


@pytest.mark.parametrize("bad_id", ["has space", "a/b", "Upper", "\u0430ttention", "x\u202ey", "-lead"])
def test_invalid_ids(tmp_path, bad_id):
    text = concept_yaml("placeholder").replace("id: placeholder", f'id: "{bad_id}"', 1)
    (msg,) = errors_of(tmp_path, text)
    assert msg.startswith("deck.yaml:1:5: id: ")


# --- C. identity -----------------------------------------------------------------------------------


def test_duplicate_id_across_files_names_both(tmp_path):
    (tmp_path / "a.yaml").write_text(concept_yaml("same"), encoding="utf-8")
    (tmp_path / "b.yaml").write_text(concept_yaml("same"), encoding="utf-8")
    report = check_files([tmp_path / "a.yaml", tmp_path / "b.yaml"])
    assert [str(e) for e in report.errors] == [
        f"{tmp_path}/b.yaml:1:5: duplicate id 'same' (also defined in {tmp_path}/a.yaml:1:5)"
    ]


def test_unknown_reference_is_an_error_at_its_position(tmp_path):
    (tmp_path / "a.yaml").write_text(concept_yaml("softmax"), encoding="utf-8")
    (tmp_path / "b.yaml").write_text(concept_yaml("b", extra="related: [softmax, softmaks]\n"), encoding="utf-8")
    report = check_files([tmp_path / "a.yaml", tmp_path / "b.yaml"])
    assert [str(e) for e in report.errors] == [
        f"{tmp_path}/b.yaml:11:20: unknown id 'softmaks' in related (did you mean 'softmax'?)"
    ]


def test_duplicate_card_ids_rejected(tmp_path):
    extra = "cards:\n  - {type: basic, id: q, front: a, back: b}\n  - {type: basic, id: q, front: c, back: d}\n"
    assert errors_of(tmp_path, concept_yaml("x", extra=extra)) == ["deck.yaml:13:5: duplicate card id 'q'"]


# --- D. unicode --------------------------------------------------------------------------------------


def test_cjk_rtl_emoji_round_trip(tmp_path):
    title = "注意力 שלום 👩‍🔬 e\u0301"
    text = concept_yaml("x").replace("zh: 测试概念\n", f'zh: "{title}"\n', 1)
    path = tmp_path / "u.yaml"
    path.write_text(text, encoding="utf-8")
    assert parse_file(path).concept.title.zh == title


def test_nul_raw_and_escaped(tmp_path):
    (raw,) = errors_of(tmp_path, b"id: x\x00\n")
    assert raw == "deck.yaml:1:6: the control character U+0000 is not allowed"
    text = concept_yaml("x").replace("zh: 测试概念\n", 'zh: "a\\0b"\n', 1)
    (escaped,) = errors_of(tmp_path, text)
    assert escaped == "deck.yaml:4:7: title.zh: contains the control character U+0000"


def test_invalid_utf8_position(tmp_path):
    assert errors_of(tmp_path, b"id: x\ntitle: ab\xff\n") == ["deck.yaml:2:10: invalid UTF-8 (byte 0xff)"]


def test_bom_accepted_utf16_refused(tmp_path):
    text = concept_yaml("x")
    assert errors_of(tmp_path, b"\xef\xbb\xbf" + text.encode()) == []
    assert errors_of(tmp_path, text.encode("utf-16")) == ["deck.yaml:1:1: the file is UTF-16 encoded; save it as UTF-8"]
    # Without a BOM, UTF-16 is not UTF-8 either: its Chinese characters are invalid bytes.
    (msg,) = errors_of(tmp_path, text.encode("utf-16-le"))
    assert msg.startswith("deck.yaml:4:") and "invalid UTF-8" in msg


@pytest.mark.parametrize("newline", ["\r\n", "\r"])
def test_line_endings_give_same_content_and_positions(tmp_path, newline):
    text = concept_yaml("x").replace("definition:", "defintion:")
    lf = errors_of(tmp_path, text)
    other = errors_of(tmp_path, text.replace("\n", newline))
    assert other == lf
    path = tmp_path / "ok.yaml"
    path.write_bytes(concept_yaml("x").replace("\n", newline).encode())
    assert parse_file(path).concept == parse_bytes(path, concept_yaml("x").encode()).concept


def test_lone_surrogate(tmp_path):
    text = concept_yaml("x").replace("zh: 测试概念\n", 'zh: "\\ud800"\n', 1)
    (msg,) = errors_of(tmp_path, text)
    assert msg == "deck.yaml:4:10: found invalid Unicode character escape code"


def test_column_counts_characters_not_bytes(tmp_path):
    text = concept_yaml("x").replace("zh: 测试概念\n", "zh: 测试概念\n  fr: 注意\n", 1)
    assert errors_of(tmp_path, text) == ["deck.yaml:5:3: unknown field 'fr' in title"]


def test_all_errors_of_all_files_in_one_run(tmp_path):
    (tmp_path / "a.yaml").write_text(concept_yaml("a").replace("definition:", "defintion:"), encoding="utf-8")
    (tmp_path / "b.yaml").write_text("id: [\n", encoding="utf-8")
    (tmp_path / "c.yaml").write_text(concept_yaml("c"), encoding="utf-8")
    report = check_files(sorted(tmp_path.glob("*.yaml")))
    paths = sorted({Path(e.path).name for e in report.errors})
    assert paths == ["a.yaml", "b.yaml"]
    assert len(report.errors) == 3


def test_implicit_type_fast_path_is_sound():
    """The loader skips YAML's implicit resolver for plain scalars whose first character no
    resolver is registered for; that is only right while no resolver applies to every character."""
    import yaml

    from kb.loader import _IMPLICIT_FIRST

    assert None not in yaml.resolver.Resolver.yaml_implicit_resolvers
    assert {"", "y", "N", "0", "-", ".", "~", "<"} <= _IMPLICIT_FIRST


# --- values YAML would read as numbers or dates that cannot be one ------------------------------


def _errors(extra: str = "", **replace: str) -> list[str]:
    text = concept_yaml("odd-values") + extra
    for old, new in replace.items():
        text = text.replace(old, new)
    return [str(e) for e in parse_bytes(Path("n.yaml"), text.encode()).errors]


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    ("extra", "replace", "where"),
    [
        ("pitfalls: [" + "1" * 5000 + "]\n", {}, "n.yaml:11:12: "),  # past Python's 4,300-digit limit
        ("pitfalls: [" + ":".join(["1"] * 3000) + "]\n", {}, "n.yaml:11:12: "),  # YAML 1.1 base 60
        ("", {"category: fundamentals": "category: " + ":".join(["1"] * 3000)}, "n.yaml:8:11: "),
        ("pitfalls: [" + ":".join(["1"] * 300_000) + "]\n", {}, "n.yaml:11:12: "),  # 600 KB: bounded, not minutes
        ("pitfalls: [0x" + "f" * 4000 + ", 1" + "0" * 200 + ".5]\n", {}, "n.yaml:11:12: "),
    ],
    ids=["5000-digits", "base-60-pitfall", "base-60-category", "600-kb-base-60", "hex-and-float"],
)
def test_a_number_too_long_is_an_error_of_that_file_not_a_crash(extra, replace, where):
    errors = _errors(extra, **replace)
    assert errors and errors[0].startswith(where), errors
    assert "reads as a number, longer than any number kb accepts" in errors[0]
    assert max(len(e) for e in errors) < 400  # the value is never quoted whole


@pytest.mark.parametrize("value", ["2024-13-45", "2023-02-30", "2024-01-01 25:61:00"])
def test_an_impossible_date_is_an_error_not_a_crash(value):
    errors = _errors(f"pitfalls: [{value}]\n")
    assert errors and errors[0].startswith("n.yaml:11:12: the unquoted") and "not a valid one" in errors[0], errors


def test_long_keys_and_values_are_cut_in_messages():
    key = "k" * 1000  # YAML's own limit for a plain key is 1,024 characters
    errors = _errors(f"{key}: 1\n", **{"category: fundamentals": "category: '" + "z" * 50_000 + "'"})
    assert len(errors) == 2 and all(len(e) < 400 for e in errors), [len(e) for e in errors]
    assert any("unknown field 'kkk" in e and "(1,000 characters)" in e for e in errors), errors
    assert any("category" in e and "(50,002 characters)" in e for e in errors), errors


IMPLICIT_LOOKING = st.one_of(
    st.from_regex(r"\A[-+]?[0-9][0-9_]{0,6000}\Z"),
    st.from_regex(r"\A[-+]?[0-9]{1,3}(:[0-9]{1,2}){1,3000}\Z"),
    st.from_regex(r"\A[-+]?(0x[0-9a-f_]{1,5000}|0o?[0-7_]{1,5000}|0b[01_]{1,5000})\Z"),
    st.from_regex(r"\A[-+]?[0-9]{0,5000}\.[0-9]{0,5000}([eE][-+]?[0-9]{1,5000})?\Z"),
    st.from_regex(r"\A[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}([Tt ][0-9]{1,2}:[0-9]{2}:[0-9]{2}(\.[0-9]{0,2000})?)?\Z"),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(IMPLICIT_LOOKING, st.sampled_from(["pitfalls: [{}]\n", "tags: [{}]\n", "aliases:\n  - {}\n", "x{}: 1\n"]))
def test_number_and_date_looking_scalars_never_crash_the_loader(scalar, template):
    result = parse_bytes(Path("n.yaml"), (concept_yaml("odd-values") + template.format(scalar)).encode())
    for error in result.errors:
        assert str(error).startswith("n.yaml:") and len(str(error)) < 600


def test_a_cloze_card_without_a_deletion_is_an_error():
    errors = _errors("cards:\n  - {type: cloze, id: c, text: 'No deletion here.'}\n")
    assert errors == ["n.yaml:12:32: cards[0].text: a cloze card needs at least one deletion, written {{c1::answer}}"]
    assert _errors("cards:\n  - {type: cloze, id: c, text: 'A {{c1::deletion}} here.'}\n") == []

"""The card search language: one grammar for every place that selects cards (close to Anki's).

    concept:softmax  category:attention  tag:pytorch-pitfall  deck:notes  kind:cloze
    is:due|new|learning|review|suspended|leech|buried|flagged
    flag:1           flagged red (0 none, 1-7 red, orange, green, blue, pink, turquoise, purple)
    rated:1          answered today (or in the last N days); rated:7:1 rated Again in the last 7 days
    prop:r<0.8  prop:s>30  prop:d>7  prop:ivl>=10  prop:lapses>2  prop:reps=0
    words            match the card's or its concept's text, English or Chinese (case-insensitive)
    -term            negation;  a b  both;  a OR b  either;  ( ... ) grouping;  "two words"

`parse(text)` gives a `Query` (raising QueryError, which points at the column, for bad input);
`Query.matches(card)` tests one `SearchableCard`. Values may use `*` as a wildcard
(`concept:soft*`). Pure: no database, no clock (the caller gives "now" in the card's fields).
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from kb.errors import KbError

KEYS = ("concept", "category", "tag", "deck", "kind", "is", "flag", "rated", "prop")
IS_VALUES = ("due", "new", "learning", "review", "suspended", "leech", "buried", "flagged")
PROPS = ("r", "s", "d", "ivl", "lapses", "reps", "due")
_PROP = re.compile(r"(r|s|d|ivl|lapses|reps|due)(<=|>=|!=|<|>|=)(-?\d+(?:\.\d+)?)$")


class QueryError(KbError):
    """A search that cannot be read; `col` (1-based) is where the problem starts."""

    def __init__(self, message: str, col: int) -> None:
        super().__init__(f"search, column {col}: {message}", col=col)


@dataclass(frozen=True)
class SearchableCard:
    """What a search can ask about one card (the service fills it in)."""

    card_id: str
    concept_id: str
    category: str
    deck: str
    kind: str
    state: str  # new | learning | review | relearning
    tags: tuple[str, ...] = ()
    text: str = ""  # the card's and its concept's text, for free words
    due_now: bool = False  # due by the end of today's study day
    suspended: bool = False
    leech: bool = False
    buried: bool = False  # held back until the next study day
    flag: int = 0  # 0 none, 1-7
    retrievability: float | None = None  # None for a new card
    stability: float | None = None
    difficulty: float | None = None
    interval_days: int | None = None
    days_until_due: int | None = None
    lapses: int = 0
    reps: int = 0
    ratings_by_days_ago: tuple[tuple[int, int], ...] = ()  # (study days ago, rating) of each review


# --- the syntax tree --------------------------------------------------------------------------


@dataclass(frozen=True)
class Query:
    """A parsed search; `matches` tests a card."""

    test: Callable[[SearchableCard], bool]
    text: str = ""

    def matches(self, card: SearchableCard) -> bool:
        return self.test(card)


@dataclass
class _Token:
    kind: str  # word | open | close | or | not
    value: str
    col: int
    quoted: bool = False


@dataclass
class _Parser:
    tokens: list[_Token]
    end_col: int
    at: int = 0
    depth: int = field(default=0)

    def peek(self) -> _Token | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self) -> _Token:
        token = self.tokens[self.at]
        self.at += 1
        return token

    def parse_or(self) -> Callable[[SearchableCard], bool]:
        parts = [self.parse_and()]
        while (token := self.peek()) is not None and token.kind == "or":
            self.take()
            if self.peek() is None or self.peek().kind in ("or", "close"):  # type: ignore[union-attr]
                raise QueryError("OR needs a search term after it", token.col)
            parts.append(self.parse_and())
        if len(parts) == 1:
            return parts[0]
        return lambda card: any(part(card) for part in parts)

    def parse_and(self) -> Callable[[SearchableCard], bool]:
        parts = []
        while (token := self.peek()) is not None and token.kind not in ("or", "close"):
            parts.append(self.parse_unary())
        if not parts:
            token = self.peek()
            raise QueryError("a search term is missing here", token.col if token else self.end_col)
        if len(parts) == 1:
            return parts[0]
        return lambda card: all(part(card) for part in parts)

    def parse_unary(self) -> Callable[[SearchableCard], bool]:
        token = self.take()
        if token.kind == "not":
            nxt = self.peek()
            if nxt is None or nxt.kind in ("or", "close"):
                raise QueryError("'-' needs a search term after it", token.col)
            inner = self.parse_unary()
            return lambda card: not inner(card)
        if token.kind == "open":
            self.depth += 1
            if self.depth > 50:
                raise QueryError("parentheses nested too deeply", token.col)
            inner = self.parse_or()
            closing = self.peek()
            if closing is None or closing.kind != "close":
                raise QueryError("'(' is never closed", token.col)
            self.take()
            self.depth -= 1
            return inner
        if token.kind == "close":
            raise QueryError("')' without a matching '('", token.col)
        return _term(token)


def _tokens(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        col = i + 1
        if ch == "(":
            tokens.append(_Token("open", ch, col))
            i += 1
        elif ch == ")":
            tokens.append(_Token("close", ch, col))
            i += 1
        elif ch == "-" and (i + 1 < n and not text[i + 1].isspace()):
            tokens.append(_Token("not", ch, col))
            i += 1
        else:
            value: list[str] = []
            quoted = False
            while i < n and not text[i].isspace() and text[i] not in "()":
                if text[i] == '"':
                    end = text.find('"', i + 1)
                    if end < 0:
                        raise QueryError('a quote (") is never closed', i + 1)
                    quoted = quoted or not value  # "two words" is text; concept:"a b" is still a key
                    value.append(text[i + 1 : end])
                    i = end + 1
                else:
                    value.append(text[i])
                    i += 1
            word = "".join(value)
            kind = "or" if word == "OR" and not quoted else "word"
            tokens.append(_Token(kind, word, col, quoted))
    return tokens


def _pattern(value: str) -> Callable[[str], bool]:
    lowered = value.casefold()
    if "*" in lowered:
        regex = re.compile(fnmatch.translate(lowered.replace("[", "[[]")))
        return lambda text: bool(regex.match(text.casefold()))
    return lambda text: text.casefold() == lowered


def _term(token: _Token) -> Callable[[SearchableCard], bool]:
    word = token.value
    key, colon, value = word.partition(":")
    if token.quoted or not colon or key.casefold() not in KEYS:
        if colon and not token.quoted and key and key.isalpha() and key.casefold() not in KEYS:
            raise QueryError(f"unknown search key {key!r} (keys: {', '.join(KEYS)})", token.col)
        needle = word.casefold()
        if not needle:
            return lambda card: True
        return lambda card: needle in card.text.casefold()
    key = key.casefold()
    if not value:
        raise QueryError(f"{key}: needs a value (e.g. {key}:{_EXAMPLES[key]})", token.col)
    value_col = token.col + len(key) + 1
    if key in ("concept", "category", "deck", "kind"):
        match = _pattern(value)
        attribute = {"concept": "concept_id", "category": "category", "deck": "deck", "kind": "kind"}[key]
        return lambda card: match(getattr(card, attribute))
    if key == "tag":
        match = _pattern(value)
        return lambda card: any(match(tag) for tag in card.tags)
    if key == "is":
        return _is(value.casefold(), value_col)
    if key == "rated":
        return _rated(value, value_col)
    if key == "flag":
        if not (value.isdigit() and int(value) <= 7):
            raise QueryError("flag: is a number from 0 (no flag) to 7", value_col)
        wanted = int(value)
        return lambda card: card.flag == wanted
    return _prop(value, value_col)


_EXAMPLES = {
    "concept": "softmax",
    "category": "attention",
    "tag": "pytorch-pitfall",
    "deck": "notes",
    "kind": "cloze",
    "is": "due",
    "flag": "1",
    "rated": "7:1",
    "prop": "r<0.8",
}


def _is(value: str, col: int) -> Callable[[SearchableCard], bool]:
    tests: dict[str, Callable[[SearchableCard], bool]] = {
        "due": lambda c: c.due_now and c.state != "new" and not c.suspended and not c.buried,
        "new": lambda c: c.state == "new",
        "learning": lambda c: c.state in ("learning", "relearning"),
        "review": lambda c: c.state == "review",
        "suspended": lambda c: c.suspended,
        "leech": lambda c: c.leech,
        "buried": lambda c: c.buried,
        "flagged": lambda c: c.flag > 0,
    }
    if value not in tests:
        raise QueryError(f"is:{value} is not known (is: {', '.join(IS_VALUES)})", col)
    return tests[value]


def _rated(value: str, col: int) -> Callable[[SearchableCard], bool]:
    parts = value.split(":")
    if len(parts) > 2 or not all(p.isdigit() for p in parts):
        raise QueryError("rated: takes days, or days:rating (rated:1, rated:7:1)", col)
    days = int(parts[0])
    if not 1 <= days <= 36500:
        raise QueryError("rated: days go from 1 (today) to 36500", col)
    rating = int(parts[1]) if len(parts) == 2 else None
    if rating is not None and rating not in (1, 2, 3, 4):
        raise QueryError("rated: a rating is 1-4 (Again, Hard, Good, Easy)", col + len(parts[0]) + 1)
    return lambda card: any(ago < days and (rating is None or r == rating) for ago, r in card.ratings_by_days_ago)


_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "<": lambda a, b: a < b,
    ">": lambda a, b: a > b,
    "<=": lambda a, b: a <= b,
    ">=": lambda a, b: a >= b,
    "=": lambda a, b: math.isclose(a, b, abs_tol=1e-9),
    "!=": lambda a, b: not math.isclose(a, b, abs_tol=1e-9),
}


def _prop(value: str, col: int) -> Callable[[SearchableCard], bool]:
    match = _PROP.match(value)
    if match is None:
        raise QueryError(f"prop: is a property ({', '.join(PROPS)}), a comparison and a number, e.g. prop:ivl>=10", col)
    name, op, number = match.group(1), match.group(2), float(match.group(3))
    attribute = {
        "r": "retrievability",
        "s": "stability",
        "d": "difficulty",
        "ivl": "interval_days",
        "lapses": "lapses",
        "reps": "reps",
        "due": "days_until_due",
    }[name]
    compare = _COMPARE[op]

    def test(card: SearchableCard) -> bool:
        actual = getattr(card, attribute)
        return actual is not None and compare(float(actual), number)

    return test


def parse(text: str) -> Query:
    """The query `text` as a `Query`; an empty text matches every card.

    Raises:
        QueryError: naming the column of the first problem.
    """
    if len(text) > 2000:
        raise QueryError("a search is at most 2000 characters", 2001)
    tokens = _tokens(text)
    if not tokens:
        return Query(lambda card: True, text)
    parser = _Parser(tokens, end_col=len(text) + 1)
    test = parser.parse_or()
    if parser.peek() is not None:
        token = parser.take()
        raise QueryError("')' without a matching '('" if token.kind == "close" else "unexpected text", token.col)
    return Query(test, text)

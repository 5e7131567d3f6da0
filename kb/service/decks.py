"""Decks: which decks kb loads, and the trust of their snippets."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from kb.errors import KbError
from kb.service.base import ServiceBase

if TYPE_CHECKING:
    from kb.config import Deck

    pass


class DeckError(KbError, ValueError):
    """A deck command that cannot be done (unknown deck, invalid import); the message says why."""


@dataclass(frozen=True)
class DeckInfo:
    """One deck as `kb decks` shows it."""

    name: str
    path: Path
    kind: str  # bundled | notes | imported | KB_CONTENT
    exists: bool
    own: bool  # the user's own deck: its snippets always run
    concepts: int
    snippets: int
    trusted_snippets: int
    changed_snippets: int
    changes: dict[str, list[str]] = field(default_factory=dict)  # concept id -> what changed since trusted

    @property
    def trust(self) -> str:
        """own | trusted | partly trusted | changed since trusted | untrusted | no snippets"""
        if self.own:
            return "own"
        if not self.snippets:
            return "no snippets"
        if self.trusted_snippets == self.snippets:
            return "trusted"
        if self.trusted_snippets:
            return "partly trusted"
        return "changed since trusted" if self.changed_snippets else "untrusted"

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "path": str(self.path),
            "kind": self.kind,
            "exists": self.exists,
            "trust": self.trust,
            "trusted": self.own or (self.snippets > 0 and self.trusted_snippets == self.snippets),
            "concepts": self.concepts,
            "snippets": self.snippets,
            "trusted_snippets": self.trusted_snippets,
            "changed_snippets": self.changed_snippets,
            "changes": self.changes,
        }


class DeckUseCases(ServiceBase):
    """Find decks, trust their snippets by hash, list them."""

    def find_deck(self, name_or_path: str) -> Deck | None:
        """The deck named so (as `kb decks` lists it), or whose directory this is; None if none."""
        decks = self.settings.decks()
        named = [deck for deck in decks if deck.name == name_or_path]
        if len(named) > 1:
            raise DeckError(
                f"{len(named)} decks are named {name_or_path!r} ({', '.join(str(d.path) for d in named)}); "
                "give the directory instead"
            )
        if named:
            return named[0]
        path = Path(name_or_path).expanduser()
        if path.exists():
            resolved = path.resolve()
            for deck in decks:
                if deck.path.resolve() == resolved:
                    return deck
        return None

    def trust(self, name_or_path: str, trusted: bool = True) -> tuple[object, int]:
        """Record (or, with trusted=False, forget) the hash of every current snippet of a deck.

        Returns (the deck, how many snippets). Raises DeckError for an unknown deck or one that is
        the user's own.
        """
        from kb.store.queries import revoke_deck_trust, trust_deck_snippets

        deck = self.find_deck(name_or_path)
        if deck is None:
            names = ", ".join(d.name for d in self.settings.decks())
            raise DeckError(f"no deck {name_or_path!r} (decks: {names}; `kb decks` lists them)")
        if deck.trusted:
            raise DeckError(f"the deck {deck.name} is your own ({deck.path}): its snippets always run")
        self.sync()  # trust what is on disk now, not what the last sync saw
        if trusted:
            return deck, trust_deck_snippets(self.engine, str(deck.path), now=self.clock())
        return deck, revoke_deck_trust(self.engine, str(deck.path))

    def changes_since_trusted(self, deck_path: str) -> dict[str, list[str]]:
        """concept id -> what its executed strings (code, computed expressions) changed since `kb trust`."""
        from kb.store.queries import changed_since_trusted
        from kb.trust import describe_changes

        return {
            c.concept_id: describe_changes(c.trusted, c.current) for c in changed_since_trusted(self.engine, deck_path)
        }

    def decks(self) -> list["DeckInfo"]:
        """Every deck kb loads, with its concepts and the trust of its snippets."""
        from kb.store.queries import DeckCounts, deck_counts

        stats = deck_counts(self.engine)
        out = []
        for deck in self.settings.decks():
            kind = deck.kind
            c = stats.get(str(deck.path), DeckCounts())
            changes = self.changes_since_trusted(str(deck.path)) if c.changed and not deck.trusted else {}
            out.append(
                DeckInfo(
                    deck.name,
                    deck.path,
                    kind,
                    deck.path.is_dir(),
                    deck.trusted,
                    c.concepts,
                    c.snippets,
                    c.trusted,
                    c.changed,
                    changes,
                )
            )
        return out

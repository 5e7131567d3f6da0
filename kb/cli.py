"""The `kb` command: thin, over kb.service. Bad input gets one line on stderr and exit 1."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

from kb.config import SettingsError
from kb.errors import KbError
from kb.render.safe_text import safe

EXIT_OK, EXIT_FAIL = 0, 1


class UsageError(KbError):
    """A command line that cannot be carried out as given (a bad argument, an unknown id)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse would print usage and exit 2
        import difflib

        # "invalid choice: 'serch' (choose from ...)": suggest the closest command, as for ids.
        wrong = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)$", message)
        if wrong:
            choices = re.findall(r"'([^']*)'", wrong.group(2))
            guess = difflib.get_close_matches(wrong.group(1), choices, n=1, cutoff=0.6)
            what = "command" if "COMMAND" in message else "action" if "ACTION" in message else "choice"
            message = (
                f"no {what} {wrong.group(1)!r}"
                + (f" (did you mean {guess[0]!r}?)" if guess else "")
                + f"; the {what}s: {', '.join(choices)}"
            )
        raise UsageError(message)


class _SafeStream:
    """A text stream that shows control characters as visible escapes.

    While a command runs, sys.stdout and sys.stderr are wrapped in one: any line the CLI prints may
    carry deck text or a snippet's output, and none of it may act on the terminal (set its title or
    clipboard, clear it, move the cursor). Rich's styled output is written to the raw stream, with
    its text passed through safe() first.
    """

    def __init__(self, raw):
        self.raw = raw

    def write(self, text: str) -> int:
        return self.raw.write(safe(text))

    def __getattr__(self, name: str):
        return getattr(self.raw, name)


def _raw(stream):
    return stream.raw if isinstance(stream, _SafeStream) else stream


def escape(text: str) -> str:
    """Rich markup escaped: deck text in a table cell is never read as markup."""
    from rich.markup import escape as escape_markup

    return escape_markup(text)


def _console(*, stderr: bool = False):
    """A rich Console on the raw stream (its own escape codes are the only ones that may pass)."""
    from rich.console import Console

    return Console(file=_raw(sys.stderr if stderr else sys.stdout))


# JSON escapes C0 controls itself; C1 controls and bidi characters are valid in JSON strings but not
# on a terminal, so they are written as \u escapes too (still the same JSON value).
_JSON_UNSAFE = re.compile("[\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _print_json(value) -> None:
    text = json.dumps(value, ensure_ascii=False, indent=2)
    raw = _raw(sys.stdout)
    raw.write(_JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text) + "\n")


def _err(message: str) -> None:
    print(f"kb: {message}", file=sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="kb", description="A terminal knowledge base of deep-learning, vision and LLM concepts.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("check", help="validate YAML files; print path:line:col: message for each error")
    p.add_argument("paths", nargs="*", type=Path, metavar="PATH", help="files or directories (default: all decks)")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = sub.add_parser("sync", help="load the decks into the database and say what changed")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = sub.add_parser("search", help="full-text search in English and Chinese")
    p.add_argument("query", nargs="+", metavar="QUERY")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--limit", type=int, default=20, help="at most this many results (default 20)")

    p = sub.add_parser("show", help="one concept with its cards and last run")
    p.add_argument("id", metavar="ID")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--raw", action="store_true", help="math as LaTeX, as written (default: readable Unicode)")

    p = sub.add_parser("verify", help="run snippets in isolated workers and record their verdicts")
    p.add_argument("ids", nargs="*", metavar="ID", help="concepts to verify (default: all with a snippet)")
    p.add_argument("--device", choices=("cpu", "cuda", "auto"), default="auto", help="where to run (default auto)")
    p.add_argument("--jobs", type=int, default=None, help="parallel workers (default: number of cores)")
    p.add_argument(
        "--changed",
        action="store_true",
        help="only snippets whose code or library versions changed since their last pass",
    )
    p.add_argument(
        "--sandbox",
        action="store_true",
        help="also run untrusted snippets, confined (Landlock/seccomp); refused where the machine has neither",
    )
    p.add_argument(
        "--compare",
        choices=("cpu", "cuda"),
        default=None,
        help="run every snippet on this device too and compare verdicts and computed values (e.g. --device cuda --compare cpu)",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = sub.add_parser(
        "trust", help="allow the snippets of a deck to run, as they are now (an edited one is untrusted again)"
    )
    p.add_argument("deck", metavar="DECK", help="the deck's name as `kb decks` lists it, or its directory")
    p.add_argument("--revoke", action="store_true", help="stop trusting the deck's snippets")

    p = sub.add_parser("decks", help="the decks kb loads, with their concepts and whether their snippets are trusted")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = sub.add_parser("quiz", help="today's quiz, line by line (the TUI quiz comes with the TUI)")
    p.add_argument("--plain", action="store_true", help="line-based session on stdin/stdout (scripts, screen readers)")
    p.add_argument("--limit", type=int, default=None, help="stop after N answers")
    p.add_argument(
        "--search",
        default=None,
        metavar="QUERY",
        help="custom study: the cards this search selects (e.g. concept:softmax), new ones included, no daily limits",
    )
    p.add_argument(
        "--preview",
        action="store_true",
        help="with --search: go through the cards without storing answers (nothing is rescheduled)",
    )
    p.add_argument("--raw", action="store_true", help="math as LaTeX, as written (default: readable Unicode)")

    p = sub.add_parser("config", help="show or change the settings kept in $KB_HOME/settings.toml")
    config = p.add_subparsers(dest="config_command", metavar="ACTION", parser_class=_Parser)
    q = config.add_parser("list", help="every setting, its value and where the value comes from")
    q.add_argument("--json", action="store_true", help="machine-readable output")
    q = config.add_parser("get", help="one setting's value")
    q.add_argument("key", metavar="KEY")
    q = config.add_parser("set", help="change a setting (checked before it is saved)")
    q.add_argument("key", metavar="KEY")
    q.add_argument("value", metavar="VALUE")
    q = config.add_parser("unset", help="back to the default")
    q.add_argument("key", metavar="KEY")
    config.add_parser("reset", help="start a new settings file (the old one is kept as settings.toml.old)")

    p = sub.add_parser(
        "cards",
        help="list the cards a search selects (concept:softmax, is:due, prop:r<0.8, ...; the README has the grammar)",
    )
    p.add_argument("query", nargs="*", default=[], metavar="QUERY", help="the search (no search: every card)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    change = p.add_mutually_exclusive_group()
    change.add_argument("--suspend", action="store_true", help="keep the cards out of every quiz until unsuspended")
    change.add_argument("--unsuspend", action="store_true", help="let suspended cards (leeches too) back in")
    change.add_argument("--bury", action="store_true", help="keep the cards out until the next study day")
    change.add_argument("--unbury", action="store_true", help="let buried cards back in today")
    change.add_argument("--flag", metavar="N", help="flag the cards: 1 red ... 7 purple; 0 clears")
    change.add_argument("--reset", action="store_true", help="make the cards new again (their answers stay in the log)")
    change.add_argument("--due", metavar="DATE", help="make the cards due on DATE (YYYY-MM-DD)")
    change.add_argument("--undo", action="store_true", help="take back the last change made with kb cards")

    p = sub.add_parser("stats", help="reviews, retention, due counts")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    sub.add_parser("optimize", help="fit FSRS parameters to your review history")

    p = sub.add_parser(
        "add", help="write a new note in $EDITOR from a template; validated, then saved to the notes deck"
    )
    p.add_argument(
        "id", nargs="?", default=None, metavar="ID", help="the new concept's id (or a note of yours to edit)"
    )
    p.add_argument("--category", default="fundamentals", help="category for the template (default fundamentals)")

    sub.add_parser("schema", help="print the JSON Schema of a concept file")
    p = sub.add_parser("doctor", help="versions, paths, decks and database integrity")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p = sub.add_parser("serve", help="the TUI in a web browser, for you alone (binds to 127.0.0.1 by default)")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="the address to listen on (default 127.0.0.1: this machine only; anyone who reaches another "
        "address can use your knowledge base as you)",
    )
    p.add_argument("--port", type=int, default=8000, help="the port to listen on (default 8000)")
    _add_interop_parsers(sub)
    _add_backup_parsers(sub)
    _add_db_parsers(sub)
    return parser


def _report_errors(errors) -> None:
    for error in errors:
        print(str(error), file=sys.stderr)


def cmd_check(kb, args) -> int:
    for path in args.paths:
        if not path.exists():
            raise UsageError(f"no such file or directory: {path}")
    report = kb.check(args.paths or None)
    if args.json:
        _print_json({"ok": report.ok, "errors": [e.to_dict() for e in report.errors]})
    else:
        _report_errors(report.errors)
        files = len(report.parsed)
        if report.ok:
            print(f"{files} file{'s' if files != 1 else ''} checked, no errors")
        else:
            print(
                f"{files} file{'s' if files != 1 else ''} checked, {len(report.errors)} error{'s' if len(report.errors) != 1 else ''}",
                file=sys.stderr,
            )
    return EXIT_OK if report.ok else EXIT_FAIL


def _sync_or_fail(kb, *, quiet: bool = True):
    report = kb.sync()
    if report.errors and not quiet:
        _report_errors(report.errors)
    return report


def cmd_sync(kb, args) -> int:
    report = kb.sync()
    if args.json:
        _print_json(report.to_dict())
    else:
        _report_errors(report.errors)
        parts = [f"{len(report.added)} added", f"{len(report.updated)} updated", f"{len(report.retired)} retired"]
        if report.renamed:
            parts.append(f"{len(report.renamed)} renamed")
        parts.append(f"{report.unchanged} unchanged")
        for cid in report.added:
            print(f"  + {cid}")
        for cid in report.updated:
            print(f"  ~ {cid}")
        for cid in report.retired:
            print(f"  - {cid} (retired; its cards and reviews are kept)")
        for old, new in report.renamed:
            print(f"  > {old} -> {new}")
        print("sync: " + ", ".join(parts) + (f"; {len(report.errors)} error(s)" if report.errors else ""))
    return EXIT_FAIL if report.errors else EXIT_OK


def _warn_broken(report) -> None:
    if report.errors:
        _err(f"{len(report.errors)} error(s) in the decks (run `kb check`); their last good versions are used")


def cmd_search(kb, args) -> int:
    query = " ".join(args.query).strip()
    if not query:
        raise UsageError("the search query is empty")
    if args.limit < 1:
        raise UsageError("--limit must be at least 1")
    _warn_broken(kb.sync())
    hits = kb.search(query, limit=args.limit)
    if args.json:
        _print_json([h.to_dict() for h in hits])
        return EXIT_OK
    if not hits:
        print(f"no concept matches {query!r}")
        return EXIT_OK
    width = max(len(h.id) for h in hits)
    for h in hits:
        print(f"{h.id:<{width}}  {h.title_en} / {h.title_zh}  [{h.category}]")
        print(f"{'':<{width}}  {h.snippet_text}")
    return EXIT_OK


def cmd_show(kb, args) -> int:
    _warn_broken(kb.sync())
    concept = kb.show(args.id)
    if concept is None:
        suggestions = kb.suggest_ids(args.id)
        hint = f" (did you mean {', '.join(repr(s) for s in suggestions)}?)" if suggestions else ""
        raise UsageError(f"no concept with id {args.id!r}{hint}")
    if args.json:
        _print_json(concept)
        return EXIT_OK
    math, formula_text = _math_renderers(args.raw)
    # The language setting: en, zh (English where the entry has no Chinese), or both.
    language = kb.settings.content_language
    title, summary = concept["title"], concept["summary"]
    names = {"en": title["en"], "zh": f"{title['zh']} / {title['en']}"}.get(language, f"{title['en']} / {title['zh']}")
    print(f"{names}   ({concept['id']}, {concept['category']})")
    if concept.get("retired"):
        print("(retired: its file is gone; cards and reviews are kept)")
    print()
    for side in ("en", "zh") if language == "both" else (language,):
        print(math(summary[side]))
    print()
    zh = concept.get("definition_zh")
    if language != "zh" or not zh:
        print(math(concept["definition"].rstrip()))
    if zh and language != "en":
        if language == "both":
            print()
        print(math(zh.rstrip()))
    from kb.bilingual import localized

    for formula in concept["formulas"]:
        print(f"\n{localized(formula['name'], language)}:  {formula_text(formula['latex'])}")
        for symbol, meaning in formula["where"].items():
            print(f"    {formula_text(symbol)}: {math(localized(meaning, language))}")
    if concept["pitfalls"]:
        print("\nPitfalls:")
        for pitfall in concept["pitfalls"]:
            print(f"  - {math(localized(pitfall, language, chr(10) + '    '))}")
    if concept.get("sources"):
        print("\nSources:")
        for source in concept["sources"]:
            print(f"  - {source['title']}: {source['url']}")
    if concept["snippet"]:
        print("\nSnippet:")
        print("    " + concept["snippet"]["code"].rstrip().replace("\n", "\n    "))
    run = concept["last_run"]
    stale = "" if not run or run["current"] else ", of an earlier version of this snippet"
    print(
        f"\nLast run: {run['status']} on {run['device']} ({run['created_at']}{stale})" if run else "\nLast run: never"
    )
    print(f"Cards: {len(concept['cards'])}   Source: {concept['source_path']}")
    return EXIT_OK


def _math_renderers(raw: bool):
    """(text with $...$ math, a formula's LaTeX) -> printable text: Unicode, or as written with --raw."""
    if raw:
        return (lambda text: text), (lambda latex: latex)
    from kb.render.latex import tex_to_text
    from kb.render.markdown import plain_with_math

    return plain_with_math, tex_to_text


_STATUS_STYLE = {"passed": "green", "untrusted": "yellow", "skipped": "dim"}


def _verify_parity(kb, args, planned, advance, progress) -> int:
    """`kb verify --device D --compare C`: every snippet on both, verdicts and values compared."""
    if args.compare == args.device and args.device != "cpu":
        raise UsageError("--compare needs another device than --device")
    if args.changed or args.sandbox:
        raise UsageError("--compare runs every snippet that may run: it takes no --changed or --sandbox")
    device = "cuda" if args.device == "auto" else args.device
    if device == "cuda" and "cuda" not in kb.devices():
        raise UsageError("--device cuda: torch sees no CUDA device here")
    rows = kb.verify_parity(
        args.ids or None, device=device, compare=args.compare, jobs=args.jobs, on_planned=planned, on_result=advance
    )
    disagree = [r for r in rows if not r.agrees]
    if args.json:
        _print_json(
            {
                "device": device,
                "compare": args.compare,
                "environment": kb.device_environment(),
                "entries": len(rows),
                "agree": len(rows) - len(disagree),
                "results": [r.to_dict(args.compare, device) for r in rows],
            }
        )
        return EXIT_FAIL if disagree else EXIT_OK
    from rich.table import Table

    table = Table(show_edge=False, pad_edge=False)
    for column in ("id", args.compare, device, "values", "agree"):
        table.add_column(column)
    for r in rows:
        table.add_row(
            safe(escape(r.id)), r.left_status, r.right_status, str(r.compared), "yes" if r.agrees else "[bold red]no[/]"
        )
    _console().print(table)
    for r in disagree:
        detail = "; ".join(f"{m.expression}: {m.why}" for m in r.mismatches) or f"{r.left_status} vs {r.right_status}"
        print(safe(f"{r.id}: {detail}"))
    print(f"{len(rows) - len(disagree)} of {len(rows)} entries agree between {args.compare} and {device}")
    return EXIT_FAIL if disagree else EXIT_OK


def cmd_verify(kb, args) -> int:

    if args.jobs is not None and args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    _warn_broken(kb.sync())
    if args.ids:
        known = set(kb.concept_ids())
        for cid in args.ids:
            if cid not in known:
                suggestions = kb.suggest_ids(cid)
                hint = f" (did you mean {', '.join(repr(s) for s in suggestions)}?)" if suggestions else ""
                raise UsageError(f"no concept with id {cid!r}{hint}")
    interactive = sys.stderr.isatty() and not args.json
    progress = task = None
    try:
        if interactive:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            progress = Progress(
                TextColumn("verifying"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("{task.fields[last]}", markup=False),
                console=_console(stderr=True),
                transient=True,
            )
            progress.start()

        def planned(total: int) -> None:
            nonlocal task
            if progress is not None:
                task = progress.add_task("verify", total=total, last="starting workers…")

        def advance(outcome) -> None:
            if progress is not None and task is not None:
                progress.update(task, advance=1, last=f"{outcome.id}: {outcome.status}")

        if args.compare:
            return _verify_parity(kb, args, planned, advance, progress)
        outcomes = kb.verify(
            args.ids or None,
            device=args.device,
            jobs=args.jobs,
            changed_only=args.changed,
            sandbox=args.sandbox,
            on_planned=planned,
            on_result=advance,
        )
    finally:
        if progress is not None:
            progress.stop()
    ran = [o for o in outcomes if o.ran]
    passed = sum(o.passed for o in ran)
    failed = len(ran) - passed
    if args.json:
        _print_json(
            {
                "passed": passed,
                "failed": failed,
                "skipped": len(outcomes) - len(ran),
                "results": [o.to_dict() for o in outcomes],
            }
        )
        return EXIT_FAIL if failed else EXIT_OK
    if not outcomes:
        print("nothing to verify" + (" (no snippet changed since its last pass)" if args.changed else ""))
        return EXIT_OK
    from rich.table import Table

    table = Table(show_edge=False, pad_edge=False)
    for column in ("id", "verdict", "device", "seconds"):
        table.add_column(column, justify="right" if column == "seconds" else "left")
    for o in outcomes:
        style = _STATUS_STYLE.get(o.status, "bold red")
        table.add_row(
            safe(escape(o.id)), f"[{style}]{o.status}[/]", o.device or "-", f"{o.duration_s:.2f}" if o.ran else "-"
        )
    _console().print(table)
    # Plain prints: a path:line must never be wrapped, so editors and terminals can open it.
    for o in outcomes:
        if not o.passed:
            where = (
                f"{o.source_path}:{o.line}: "
                if o.source_path and o.line
                else (f"{o.source_path}: " if o.source_path else "")
            )
            print(f"{where}{o.id}: {o.status}: {o.message or ''}")
    skipped = len(outcomes) - len(ran)
    print(f"{passed} passed, {failed} failed" + (f", {skipped} not run" if skipped else ""))
    return EXIT_FAIL if failed else EXIT_OK


def cmd_trust(kb, args) -> int:

    _warn_broken(kb.sync())  # what is on disk now is what is trusted, and what is compared
    deck = kb.find_deck(args.deck)
    changes = kb.changes_since_trusted(str(deck.path)) if deck is not None and not args.revoke else {}
    deck, count = kb.trust(args.deck, not args.revoke)
    if args.revoke:
        print(f"no longer trusting the deck {deck.name}: {count} snippet hash(es) forgotten")
        return EXIT_OK
    if changes:
        print(f"changed since you last trusted the deck {deck.name}:")
        for concept_id, lines in changes.items():
            for line in lines:
                print(f"  {concept_id}: {line}")
    print(
        f"trusting the {count} snippet(s) of the deck {deck.name} as they are now ({deck.path}): "
        f"their code and their computed cards' expressions; an edit of either is untrusted again"
    )
    return EXIT_OK


def cmd_decks(kb, args) -> int:
    _warn_broken(kb.sync())
    decks = kb.decks()
    if args.json:
        _print_json([d.to_dict() for d in decks])
        return EXIT_OK
    from rich.table import Table

    table = Table(show_edge=False, pad_edge=False)
    for column in ("deck", "kind", "concepts", "snippets", "trust"):
        table.add_column(column, justify="right" if column in ("concepts", "snippets") else "left")
    for d in decks:
        trust = d.trust
        if trust in ("partly trusted", "changed since trusted", "untrusted"):
            trust += (
                f" ({d.trusted_snippets}/{d.snippets}"
                + (f", {d.changed_snippets} changed" if d.changed_snippets else "")
                + ")"
            )
        style = "green" if d.trust in ("own", "trusted") else "dim" if d.trust == "no snippets" else "yellow"
        table.add_row(safe(escape(d.name)), d.kind, str(d.concepts), str(d.snippets), f"[{style}]{escape(trust)}[/]")
    _console().print(table)
    # Paths as plain lines: never wrapped, so they can be copied.
    width = max(len(d.name) for d in decks)
    for d in decks:
        print(f"{d.name:<{width}}  {d.path}" + ("" if d.exists else "  (missing)"))
    for d in decks:
        for concept_id, lines in d.changes.items():
            for line in lines:
                print(f"{d.name}: {concept_id}: {line}")
    return EXIT_OK


def cmd_quiz(kb, args) -> int:
    """A line-based quiz: prompt, answer line, the answer and verdict, rating line; q quits. Its
    words follow the language setting (kb.i18n): Chinese with `zh`."""
    from kb.i18n import translator
    from kb.scheduler import RATINGS, parse_rating
    from kb.service import AnsweredElsewhere
    from kb.service.session import QuizSession

    if args.limit is not None and args.limit < 1:
        raise UsageError("--limit must be at least 1")
    _warn_broken(kb.sync())
    out = sys.stdout
    math, _latex = _math_renderers(args.raw)
    _ = translator(kb.settings.content_language)

    def rating_word(rating: int) -> str:
        return _(RATINGS[rating])

    typed_ratings = {rating_word(r): r for r in RATINGS}  # a rating's name in the quiz's language works too

    def ask(prompt: str) -> str | None:
        out.write(prompt)
        out.flush()
        line = sys.stdin.readline()
        return None if line == "" else line.rstrip("\r\n")

    if args.search is not None:
        from kb.cardsearch import parse

        parse(args.search)  # a bad search is one line pointing at its column
    elif args.preview:
        raise UsageError("--preview goes through a custom study session: give --search QUERY too")
    session = QuizSession(kb, limit=args.limit, search=args.search, preview=args.preview)
    left = _("{state}; {n} left today") if args.search is None else _("{state}; {n} left in this search")
    quit_requested = False
    while not quit_requested:
        item = session.next()
        if item is None:
            break
        card = item.card
        out.write(
            f"\n[{session.answered + 1}] {card.card_id} ({left.format(state=_(item.state), n=session.remaining)})\n"
            f"{math(card.prompt)}\n"
        )
        for i, option in enumerate(card.options, 1):
            out.write(f"  {i}. {math(option)}\n")
        response = ask(_("answer> "))
        if response is None or response.strip().lower() == "q":
            break
        graded = session.reveal(response)
        out.write(_("--- answer ---") + f"\n{math(card.answer)}\n")
        if card.note:
            out.write(_("note: {note}").format(note=math(card.note)) + "\n")
        if graded:
            out.write(_("verdict: {feedback}").format(feedback=_(graded.feedback)) + "\n")
        proposed = session.proposed_rating
        default = _(" (enter = {rating})").format(rating=rating_word(proposed)) if proposed else ""
        buttons = session.buttons(lowercase=True, translate=_)
        rating = undone = None
        while rating is None and undone is None:
            line = ask(_("rate [{buttons}]{default}, u undo, q quit> ").format(buttons=buttons, default=default))
            if line is None or line.strip().lower() == "q":
                quit_requested = True
                break
            word = line.strip().lower()
            if word == "u":
                # As in Anki, the card taken back is shown again (it is due again, first).
                undone = session.undo()
                done = (
                    _("undid the answer to {card}").format(card=undone)
                    if undone
                    else _("nothing to undo in this session")
                )
                out.write(done + "\n")
            elif word == "" and proposed:
                rating = proposed
            else:
                rating = parse_rating(word) or typed_ratings.get(word)
                if rating is None:
                    out.write(_("please answer 1-4, again/hard/good/easy, u or q") + "\n")
        if undone is not None:
            continue
        if rating is None:
            break
        try:
            outcome = session.answer(rating)
        except AnsweredElsewhere as exc:
            out.write(_("not recorded: {reason}; next card").format(reason=exc) + "\n")
            continue
        if outcome.previewed:
            out.write(
                _("preview: {rating} not stored; the card keeps its schedule").format(rating=rating_word(rating)) + "\n"
            )
            continue
        out.write(
            _("recorded: {rating}, next in {interval}").format(rating=rating_word(rating), interval=outcome.interval)
            + (f" ({outcome.leech_message})" if outcome.leech else "")
            + "\n"
        )
        out.flush()
    summary = session.summary()
    out.write(
        "\n"
        + _(
            "{answered} reviewed, {recalled} recalled, {minutes:.1f} min; {due} still due today, next 7 days: {forecast}"
        ).format(
            answered=summary.answered,
            recalled=summary.recalled,
            minutes=summary.minutes,
            due=summary.due_today,
            forecast=summary.forecast_7d,
        )
        + "\n"
    )
    if not quit_requested:
        if summary.waiting_line:
            out.write(summary.waiting_line + "\n")
        elif summary.answered == 0:
            out.write(_("nothing due right now: come back tomorrow, or add notes") + "\n")
    return EXIT_OK


def cmd_cards(kb, args) -> int:
    """The cards a search selects, with what the scheduler knows of each; or a change to them."""
    from kb.cardsearch import parse

    query = " ".join(args.query)
    if args.undo:
        if query:
            raise UsageError("--undo takes back the last change and takes no search")
        report = kb.undo_last_change()
        print(report.line())
        return EXIT_OK
    action, value = _card_action(args)
    if action and not query.strip():
        raise UsageError(f"--{action}: name the cards with a search (e.g. concept:softmax kind:cloze)")
    parse(query)  # a bad search is one line pointing at its column, before the decks are read
    _warn_broken(kb.sync())
    cards = kb.search_cards(query)
    if action:
        report = kb.change_cards([c.card_id for c in cards], action, value)
        if args.json:
            _print_json({"action": action, "changed": report.changed, "unchanged": report.unchanged})
        else:
            print(report.line() + ("; kb cards --undo takes it back" if report.changed else ""))
        return EXIT_OK
    if args.json:
        _print_json([c.to_dict() for c in cards])
        return EXIT_OK
    if not cards:
        print("no card matches")
        return EXIT_OK
    from rich.table import Table

    table = Table(show_edge=False, pad_edge=False)
    table.add_column("card", overflow="fold")  # the whole id, wrapped if need be: it is what other commands take
    for column in ("kind", "state", "due", "R", "S", "D", "lapses", "reviews", "flags"):
        table.add_column(column, justify="right" if column in ("R", "S", "D", "lapses", "reviews") else "left")
    for c in cards:
        table.add_row(
            safe(c.card_id),
            c.kind,
            c.state,
            "" if c.due is None else kb.study_day(c.due).isoformat(),
            "" if c.retrievability is None else f"{c.retrievability:.2f}",
            "" if c.stability is None else f"{c.stability:.1f}",
            "" if c.difficulty is None else f"{c.difficulty:.1f}",
            str(c.lapses),
            str(c.reviews),
            c.marks,
        )
    _console().print(table)
    print(f"{len(cards)} card(s)")
    return EXIT_OK


def _card_action(args) -> tuple[str | None, str | None]:
    """The change `kb cards` was asked to make: (action, its value), or (None, None) to list."""
    for action in ("suspend", "unsuspend", "bury", "unbury", "reset"):
        if getattr(args, action):
            return action, None
    if args.flag is not None:
        return "flag", args.flag
    if args.due is not None:
        return "due", args.due
    return None, None


def cmd_stats(kb, args) -> int:
    _warn_broken(kb.sync())
    stats = kb.stats()
    if args.json:
        _print_json(stats)
        return EXIT_OK
    retention = "n/a" if stats["retention_30d"] is None else f"{stats['retention_30d']:.1%}"
    print(
        f"cards: {stats['cards_total']} ({stats['cards_new']} new, {stats['cards_learning']} learning, "
        f"{stats['cards_review']} review, {stats['cards_suspended']} suspended)"
    )
    print(
        f"reviews: {stats['reviews_total']} in all, {stats['reviews_today']} today; streak {stats['streak_days']} day(s)"
    )
    print(f"due today: {stats['due_today']}; next 7 days: {' '.join(map(str, stats['forecast_7d']))}")
    print(f"retention (last 30 days, review cards): {retention}; FSRS parameters: {stats['parameters']}")
    print()
    from kb.service import true_retention_lines

    for line in true_retention_lines(stats["true_retention"]):
        print(line)
    return EXIT_OK


def cmd_optimize(kb, args) -> int:

    progress = task = None
    if sys.stderr.isatty():
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        progress = Progress(
            TextColumn("fitting FSRS parameters"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=_console(stderr=True),
            transient=True,
        )
        progress.start()

    def advance(done: int, total: int) -> None:
        nonlocal task
        if progress is not None:
            if task is None:
                task = progress.add_task("fit", total=total)
            progress.update(task, completed=done)

    try:
        result = kb.optimize(on_progress=advance)
    finally:
        if progress is not None:
            progress.stop()
    print(result["message"])
    if result["evaluations"]:
        # Lower is better for both: log loss of the recall predictions, and RMSE between predicted and
        # actual recall over bins of (interval, reviews, lapses).
        print(f"{'parameters':<12}{'log loss':>10}{'RMSE(bins)':>12}")
        for name, figures in result["evaluations"].items():
            mark = "  <- in use" if name == result["chosen"] else ""
            print(f"{name:<12}{figures['log_loss']:>10.4f}{figures['rmse_bins']:>12.4f}{mark}")
    return EXIT_OK


def cmd_add(kb, args) -> int:
    """$EDITOR on a template (or on your existing note); on errors, show them and offer to edit again."""
    import os
    import shlex
    import subprocess

    from kb.schema import CATEGORIES, SLUG_PATTERN

    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR")
    if not editor:
        raise UsageError("set $EDITOR (for example `export EDITOR=nano`), or press `a` in the TUI to use its editor")
    if args.category not in CATEGORIES:
        raise UsageError(f"--category must be one of {', '.join(CATEGORIES)}")
    import re

    if args.id is not None and not re.match(SLUG_PATTERN, args.id):
        raise UsageError(f"{args.id!r} is not a valid id: use lowercase ASCII letters, digits and '-'")
    kb.sync()
    replace = None
    text = kb.note_template(args.id or "my-concept", args.category)
    if args.id is not None:
        existing = kb.show(args.id)
        if existing is not None and not existing.get("retired"):
            replace = kb.note_source(args.id)
            text = replace.read_text(encoding="utf-8")
    drafts = kb.settings.notes_dir / ".drafts"
    drafts.mkdir(parents=True, exist_ok=True)
    draft = drafts / f"{args.id or 'new-note'}.edit.yaml"
    draft.write_text(text, encoding="utf-8")
    while True:
        if subprocess.call([*shlex.split(editor), str(draft)]) != 0:
            raise UsageError(f"the editor exited with an error; your text is kept in {draft}")
        path, concept_id, errors = kb.save_note(draft.read_text(encoding="utf-8"), replace=replace)
        if not errors:
            draft.unlink(missing_ok=True)
            print(f"saved {concept_id} to {path}")
            return EXIT_OK
        _report_errors(errors)
        if not sys.stdin.isatty():
            _err(f"not saved; your text is kept in {draft}")
            return EXIT_FAIL
        answer = input("Edit again? [Y/n] ").strip().lower()
        if answer in ("n", "no"):
            _err(f"not saved; your text is kept in {draft}")
            return EXIT_FAIL


def cmd_schema(kb, args) -> int:
    from kb.service import json_schema

    _print_json(json_schema())
    return EXIT_OK


def cmd_doctor(kb, args) -> int:
    info = kb.doctor()
    if args.json:
        _print_json(info)
        return EXIT_OK if info["integrity"] == "ok" else EXIT_FAIL
    print(
        f"kb {info['packages']['mlkb'] or '(not installed)'} on Python {info['python']}, SQLite {info['sqlite']}, "
        f"libyaml {'yes' if info['libyaml'] else 'NO (slow loading)'}"
    )
    print("packages: " + ", ".join(f"{k} {v or 'missing'}" for k, v in info["packages"].items()))
    print(f"KB_HOME:  {info['kb_home']}")
    print(f"database: {info['database']} (integrity: {info['integrity']})")
    c = info["counts"]
    print(
        f"          {c['concepts']} concepts, {c['cards']} cards, {c['reviews']} reviews, {c['runs']} runs, "
        f"{c['retired_concepts']} retired"
    )
    for deck in info["decks"]:
        print(
            f"deck {deck['name']}: {deck['path']} ({deck['kind']}, snippets {deck['trust']}"
            f"{'' if deck['exists'] else ', missing'})"
        )
    print(f"devices:  {', '.join(info['devices'])}")
    iso = info["isolation"]
    verdict = (
        "untrusted snippets may run with --sandbox"
        if iso["sandbox_capable"]
        else "untrusted snippets never run: no bubblewrap, Landlock or seccomp here"
    )
    print(f"isolation: {iso['level']} ({verdict})")
    if iso["bubblewrap"]:
        print(
            "  outer:   bubblewrap: own user, PID, network, IPC and mount namespaces; sees only the system's and "
            "Python's files, a private /tmp, /dev and /dev/shm"
        )
    else:
        print(f"  outer:   no bubblewrap ({iso['bubblewrap_reason']}); a keeper process reaps what a worker leaves")
    files = (
        "writes only in the run's temp dir, a private /dev/shm and /dev/null-like devices"
        if iso["filesystem_restricted"]
        else "not confined"
    )
    print(f"  files:   {files} (Landlock ABI {iso['landlock_abi']})")
    if iso["seccomp"]:
        print("  calls:   no device nodes, chmod/chown/utime/xattr, TIOCSTI, namespaces, ptrace or io_uring (seccomp)")
    print(f"  network: {'blocked: ' + iso['network_restricted'] if iso['network_restricted'] else 'not confined'}")
    print(f"  signals: {'only to its own processes (Landlock)' if iso['landlock_signal_scope'] else 'not scoped'}")
    print("  terminal: none (each run is a session of its own, all capabilities dropped)")
    print("  limits:  " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in iso["rlimits"].items()))
    return EXIT_OK if info["integrity"] == "ok" else EXIT_FAIL


COMMANDS = {
    "check": cmd_check,
    "sync": cmd_sync,
    "search": cmd_search,
    "show": cmd_show,
    "verify": cmd_verify,
    "trust": cmd_trust,
    "decks": cmd_decks,
    "quiz": cmd_quiz,
    "stats": cmd_stats,
    "cards": cmd_cards,
    "optimize": cmd_optimize,
    "add": cmd_add,
    "schema": cmd_schema,
    "doctor": cmd_doctor,
}


# --- kb export / kb import ------------------------------------------------------------------------


def _add_interop_parsers(sub) -> None:
    p = sub.add_parser(
        "export", help="write the cards as an Anki package, or the concepts as JSON, Markdown or a static HTML site"
    )
    p.add_argument(
        "format", choices=("anki", "json", "markdown", "html"), metavar="FORMAT", help="anki | json | markdown | html"
    )
    p.add_argument("out", type=Path, metavar="OUT", help="the .apkg or .json file, or the Markdown or HTML directory")
    p.add_argument("--deck", default="kb", help="anki: the parent deck (default kb); one subdeck per category")
    p.add_argument("--category", default=None, help="only this category's concepts")
    p = sub.add_parser(
        "import", help="import a deck (a folder or .zip of YAML files, or an Anki .apkg) as an untrusted deck"
    )
    p.add_argument("package", type=Path, metavar="PATH", help="a folder or .zip of concept files, or an .apkg file")
    p.add_argument("--name", default=None, help="the deck's name (default: the folder's or file's name)")
    p.add_argument(
        "--update",
        action="store_true",
        help="replace the imported deck of that name by this version (reviews are kept)",
    )


def cmd_export(kb, args) -> int:
    from kb import service

    to_directory = args.format in ("markdown", "html")
    if not to_directory and args.out.is_dir():
        raise UsageError(f"{args.out} is a directory; give a file name")
    if to_directory and args.out.exists() and not args.out.is_dir():
        raise UsageError(f"{args.out} is a file; give a directory")
    if args.format == "anki":
        result = service.export_anki(kb, args.out, deck=args.deck, category=args.category)
        skipped = (
            f"; {len(result.skipped)} computed card(s) skipped (no passing run: `kb verify`)" if result.skipped else ""
        )
        print(
            f"exported {result.notes} notes ({result.cards} Anki cards) in {len(result.decks)} decks "
            f"to {args.out}{skipped}"
        )
    elif args.format == "json":
        print(f"exported {service.export_json(kb, args.out, category=args.category)} concepts to {args.out}")
    elif args.format == "html":
        counts = service.export_html(kb, args.out, category=args.category)
        fell_back = f"; {counts['fallbacks']} formula(s) shown as LaTeX" if counts["fallbacks"] else ""
        print(
            f"exported {counts['concepts']} pages and {counts['categories']} category indexes to {args.out}"
            f"{fell_back}; open {args.out / 'index.html'}"
        )
    else:
        counts = service.export_markdown(kb, args.out, category=args.category)
        print(f"exported {counts['concepts']} pages and {counts['categories']} category indexes to {args.out}")
    return EXIT_OK


def cmd_import(kb, args) -> int:
    from kb import service

    if not args.package.exists():
        raise UsageError(f"no such file or folder: {args.package}")
    if args.package.is_dir() or args.package.suffix.lower() != ".apkg":
        return _import_yaml_deck(kb, args)
    if args.update:
        raise UsageError("--update applies to YAML decks; an Anki package is always imported as a new deck")
    status = None
    if sys.stderr.isatty():
        status = _console(stderr=True).status("importing…")
        status.start()
    try:
        outcome = service.import_anki(
            kb, args.package, name=args.name, on_progress=(lambda text: status.update(f"{text}…")) if status else None
        )
    finally:
        if status is not None:
            status.stop()
    for reason in outcome.skipped:
        _err(f"skipped note {reason}")
    print(
        f"imported {len(outcome.concepts)} concepts into {outcome.deck} (untrusted)"
        + (f"; {len(outcome.skipped)} note(s) skipped" if outcome.skipped else "")
    )
    return EXIT_OK


def _import_yaml_deck(kb, args) -> int:
    from kb import service

    outcome = service.import_deck(kb, args.package, name=args.name, update=args.update)
    name = outcome.name
    if outcome.updated:
        print(
            f"updated the deck {name} ({outcome.deck}): {len(outcome.added)} added, {len(outcome.changed)} changed, "
            f"{len(outcome.retired)} retired (their reviews are kept)"
        )
    else:
        print(f"imported {outcome.concepts} concepts into the deck {name} ({outcome.deck})")
    if outcome.untrusted_again:
        print(
            f"{len(outcome.untrusted_again)} snippet(s) changed since you trusted them and are untrusted again: "
            f"{', '.join(outcome.untrusted_again)}"
        )
    if outcome.untrusted:
        print(
            f"{outcome.untrusted} of its {outcome.snippets} snippet(s) do not run until you read them and run "
            f"`kb trust {name}` (or run one confined with `kb verify --sandbox ID`); its text and cards work now"
        )
    if outcome.ignored:
        print(
            f"{len(outcome.ignored)} file(s) that are not YAML were left out: {', '.join(outcome.ignored[:5])}"
            + (", ..." if len(outcome.ignored) > 5 else "")
        )
    return EXIT_OK


COMMANDS.update({"export": cmd_export, "import": cmd_import})


# --- kb backup / kb restore ------------------------------------------------------------------------


def _add_db_parsers(sub) -> None:
    p = sub.add_parser("db", help="copy the database to or from another one (SQLite file or PostgreSQL)")
    p.add_argument("action", choices=["copy"], help="copy: every row, into an empty database, all or nothing")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--to", metavar="URL", help="a PostgreSQL URL or a SQLite file to copy this database into")
    where.add_argument(
        "--from", dest="source", metavar="URL", help="a PostgreSQL URL or a SQLite file to copy into this database"
    )


def _add_backup_parsers(sub) -> None:
    sub.add_parser("backup", help="back up the database now into $KB_HOME/backups and print the backup's path")
    p = sub.add_parser(
        "restore", help="replace the database by a backup (the newest by default); what it replaces is backed up first"
    )
    p.add_argument(
        "file", nargs="?", type=Path, default=None, metavar="FILE", help="a backup file (default: the newest)"
    )
    p.add_argument(
        "--dismiss",
        action="store_true",
        help="keep the database kb started after moving a damaged one aside, and stop saying so",
    )


def cmd_db(kb, args) -> int:
    source, target, counts = kb.copy_database(to=args.to, source=args.source)
    rows = ", ".join(f"{n} {table}" for table, n in counts.items() if n)
    print(f"copied {source} to {target}: {rows or 'no rows'}")
    return EXIT_OK


def cmd_backup(kb, args) -> int:
    print(kb.backup())
    return EXIT_OK


def cmd_restore(kb, args) -> int:
    if args.dismiss:
        if args.file is not None:
            raise UsageError("--dismiss keeps the current database: give no backup FILE with it")
        kept = kb.dismiss_moved_aside()
        print(
            f"kept the current database; the damaged file(s) stay as {', '.join(map(str, kept))}"
            if kept
            else "nothing to dismiss: no damaged database was moved aside"
        )
        return EXIT_OK
    result = kb.restore(args.file)
    print(f"restored {result['restored']}")
    if result["previous"] is not None:
        print(f"the database it replaced is backed up in {result['previous']}")
    if result["moved_aside"] is not None:
        print(f"the unreadable database it replaced was moved to {result['moved_aside']}")
    return EXIT_OK


COMMANDS.update({"backup": cmd_backup, "restore": cmd_restore, "db": cmd_db})


def cmd_config(args) -> int:
    """`kb config`: works even when settings.toml is broken (that is when one needs it)."""
    from kb.config import OPTIONS_BY_KEY, SettingsError, read_settings_file, setting_rows, write_setting

    home = Path(os.environ["KB_HOME"]).expanduser().resolve() if os.environ.get("KB_HOME") else None
    if home is None:
        import platformdirs

        home = platformdirs.user_data_path("kb", appauthor=False)
    action = args.config_command or "list"
    if action == "reset":
        path = home / "settings.toml"
        if path.exists():
            path.replace(path.with_name("settings.toml.old"))
            print(f"settings back to their defaults; the old file is {path.with_name('settings.toml.old')}")
        else:
            print("no settings file: every setting is at its default")
        return EXIT_OK
    if action in ("set", "unset"):
        try:
            path = write_setting(home, args.key, args.value if action == "set" else None)
        except SettingsError as exc:
            hint = " (the file itself cannot be read: fix it in an editor, or `kb config reset`)" if exc.path else ""
            raise UsageError(str(exc) + hint) from None
        print(
            f"{args.key} = {args.value} (in {path})"
            if action == "set"
            else f"{args.key}: back to the default (in {path})"
        )
        variable = OPTIONS_BY_KEY[args.key].variable
        if os.environ.get(variable):
            print(f"note: {variable} is set in the environment and overrides it")
        return EXIT_OK
    try:
        stored = read_settings_file(home)
    except SettingsError as exc:
        raise UsageError(
            f"{exc} (fix it with `kb config set` or `kb config unset`, or in an editor; "
            "`kb config reset` starts afresh)"
        ) from None
    rows = setting_rows(stored)
    if action == "get":
        if args.key not in OPTIONS_BY_KEY:
            from kb.config import _unknown_key

            raise UsageError(_unknown_key(args.key))
        print(next(r["value"] for r in rows if r["key"] == args.key))
        return EXIT_OK
    if getattr(args, "json", False):
        _print_json(rows)
        return EXIT_OK
    width = max(len(str(r["key"])) for r in rows)
    for r in rows:
        shown = "(system)" if r["value"] is None else r["value"]
        print(f"{r['key']:<{width}}  {shown!s:<18} {r['source']:<20} {r['help']}")
    print(f"file: {home / 'settings.toml'}")
    return EXIT_OK


def _search_words_apart(argv: list[str]) -> list[str]:
    """`kb cards -tag:x kind:cloze`: a negated search word starts with '-', which argparse would take
    for an option; the words of `kb cards` go after a `--`, its own options before."""
    if not argv or argv[0] != "cards" or "--" in argv:
        return argv
    flags = ("--json", "-h", "--help", "--suspend", "--unsuspend", "--bury", "--unbury", "--reset", "--undo")
    valued = ("--flag", "--due")
    options: list[str] = []
    words: list[str] = []
    rest = iter(argv[1:])
    for arg in rest:
        if arg in flags or arg.startswith(tuple(f"{v}=" for v in valued)):
            options.append(arg)
        elif arg in valued:
            options += [arg, next(rest, "")]
        else:
            words.append(arg)
    return ["cards", *options, "--", *words]


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = _search_words_apart(list(sys.argv[1:] if argv is None else argv))
    try:
        args = parser.parse_args(argv)
    except UsageError as exc:
        _err(str(exc))
        return EXIT_FAIL
    if args.command == "config":
        try:
            return cmd_config(args)
        except UsageError as exc:
            _err(str(exc))
            return EXIT_FAIL
    if args.command == "serve":
        return cmd_serve(args)
    if args.command is None:
        if not (sys.stdin.isatty() and sys.stdout.isatty()):
            parser.print_help()  # no terminal to draw on (a pipe, a script): the commands instead
            return EXIT_OK
        try:
            from kb.config import load_settings

            settings = load_settings()
        except SettingsError as exc:
            _err(_settings_problem(exc))
            return EXIT_FAIL
        return _start_tui(settings)
    from kb.config import load_settings
    from kb.service import KnowledgeBase
    from kb.store.errors import StoreError

    raw_out, raw_err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _SafeStream(raw_out), _SafeStream(raw_err)
    try:
        return _run_command(args, load_settings, KnowledgeBase, StoreError)
    finally:
        sys.stdout, sys.stderr = raw_out, raw_err


def cmd_serve(args) -> int:
    """`kb serve`: textual-serve runs the TUI in a fresh process for each browser tab."""
    import shlex
    import socket
    from importlib.metadata import entry_points

    if not 0 < args.port < 65536:
        _err(f"--port must be between 1 and 65535, not {args.port}")
        return EXIT_FAIL
    try:
        from kb.config import load_settings

        load_settings()  # a broken settings file is reported here, not in every tab
    except SettingsError as exc:
        _err(_settings_problem(exc))
        return EXIT_FAIL
    found = entry_points(group="kb.frontends", name="tui")
    try:
        from textual_serve.server import Server
    except ImportError:
        _err("kb serve needs textual-serve: pip install textual-serve")
        return EXIT_FAIL
    if not found:
        _err("the TUI is not installed with this kb (no 'kb.frontends' entry point)")
        return EXIT_FAIL
    module = next(iter(found)).value.split(":")[0]
    try:  # a port in use is one line, before the server starts
        with socket.create_server((args.host, args.port)):
            pass
    except OSError as exc:
        _err(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}")
        return EXIT_FAIL
    url = f"http://{args.host}:{args.port}"
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(
            f"warning: listening on {args.host}: anyone who can reach it can use your knowledge base", file=sys.stderr
        )
    print(f"kb in the browser at {url} (ctrl+c stops it)", flush=True)
    Server(shlex.join([sys.executable, "-m", module]), host=args.host, port=args.port, title="kb").serve()
    return EXIT_OK


def _start_tui(settings) -> int:
    """The TUI, found through the "kb.frontends" entry point: the core never imports the app."""
    from importlib.metadata import entry_points

    found = entry_points(group="kb.frontends", name="tui")
    if not found:
        _err(
            "the TUI is not installed with this kb (no 'kb.frontends' entry point); reinstall kb "
            "(`pip install --force-reinstall mlkb`, or from a checkout `pip install -e .`)"
        )
        return EXIT_FAIL
    run = next(iter(found)).load()
    return run(settings)


def _settings_problem(exc: SettingsError) -> str:
    hint = " (`kb config` shows the settings and fixes them)" if exc.path else ""
    return f"{exc}{hint}"


def _run_command(args, load_settings, KnowledgeBase, StoreError) -> int:
    from kb.store.errors import StoreCorruptError

    try:
        settings = load_settings()
    except SettingsError as exc:
        _err(_settings_problem(exc))
        return EXIT_FAIL
    try:
        with KnowledgeBase(settings) as kb:
            notice = kb.moved_aside_notice()
            if notice and not (args.command == "restore"):
                _err(notice)  # on every command until a backup is restored or the notice dismissed
            try:
                return COMMANDS[args.command](kb, args)
            finally:
                for line in kb.notices:
                    _err(line)
    except StoreCorruptError:
        # Found damaged while in use (not only at start-up): rebuilt if only the search index is
        # hurt, else moved aside with the newest backup named.
        with KnowledgeBase(settings) as kb:
            _err(kb.recover_damaged())
    except KbError as exc:  # every error meant for the user, from any layer: one line, exit 1
        _report_errors(getattr(exc, "errors", []))
        _err(exc.user_message())
    except KeyboardInterrupt:
        _err("interrupted")
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except OSError as exc:
        _err(f"{exc.filename or ''}{': ' if exc.filename else ''}{exc.strerror or exc}")
    return EXIT_FAIL


if __name__ == "__main__":
    sys.exit(main())

"""Moving cards between kb and other tools: Anki packages, JSON and Markdown.

Pure of the database: the service reads the rows (kb.store.queries.export_rows) and passes them in.
"""

from __future__ import annotations

from kb.errors import KbError


class InteropError(KbError):
    """An export or import that cannot be carried out; its message is shown to the user as is."""

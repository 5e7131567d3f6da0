"""Errors of the store, importable without SQLAlchemy."""


class StoreError(Exception):
    """The database cannot be used: not a kb database, a newer schema, an empty file, unwritable."""

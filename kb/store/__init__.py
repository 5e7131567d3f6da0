"""Everything SQL: the engine factory, the tables, sync (ingest) and queries."""

"""ODS ingest: raw landing objects to typed records, rejected records, manifest."""

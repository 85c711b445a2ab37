"""DWS jobs: daily aggregates (one module per table)."""

"""DWD jobs: clean, deduplicated, sessionised detail (one module per table)."""

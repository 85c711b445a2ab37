"""Data quality gates: one Great Expectations suite per table (``expectations/<table>.json``),
run on the new partitions as a Spark DataFrame before they are published."""

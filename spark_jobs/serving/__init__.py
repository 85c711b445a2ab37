"""Serving the BI SQL: run the ``rpt_*`` views and the ad-hoc queries of ``sql/queries/``.

- :mod:`spark_jobs.serving.queries` loads a view or a query file, finds its ``:name``
  parameters and binds them: as SQL literals (engines without server-side binding) or in the
  native form of the Athena and Redshift Data APIs; transpiles between dialects with sqlglot.
- :mod:`spark_jobs.serving.aws` runs a statement on Amazon Athena (PyAthena) or Amazon Redshift
  (Redshift Data API) and returns ``(column_names, rows)``.
- :mod:`spark_jobs.serving.endpoints` connects to the local stand-ins (a Spark Thrift Server
  for Athena, PostgreSQL for Redshift) as DB-API 2 connections.

``lakehouse sql`` (:mod:`spark_jobs.cli`) is the command line over all of them.
"""

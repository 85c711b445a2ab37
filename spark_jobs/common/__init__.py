"""Shared pieces: Spark session, Delta IO, schemas, planning, the job frame."""

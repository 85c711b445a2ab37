"""Clickstream lakehouse: raw landing -> ODS -> DWD -> DWS on Delta Lake."""

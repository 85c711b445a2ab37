-- The Spectrum schema over the Glue catalog (run once, as an admin), for the ODS/DWD detail that
-- stays in the lake (ddl/*.sql creates its external tables). It uses its own Glue database, so
-- its table names do not clash with Athena's. ${SPECTRUM_ROLE} is an IAM role Redshift may assume
-- to read the catalog and the lake's objects.
CREATE EXTERNAL SCHEMA IF NOT EXISTS clickstream_lake
FROM DATA CATALOG DATABASE 'clickstream_spectrum'
IAM_ROLE '${SPECTRUM_ROLE}'
CREATE EXTERNAL DATABASE IF NOT EXISTS;

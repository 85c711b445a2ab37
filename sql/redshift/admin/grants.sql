-- Roles of the Redshift warehouse (run once, as an admin). Redshift role-based access control:
--   bi_read_only  BI tools and analysts: read the views and the marts, nothing else
--   developer     build and change views and ad-hoc tables in the clickstream schema
--   operator      the loading job (bi-publish): replace days of the marts
-- Grant a role to a user with GRANT ROLE <role> TO <user>. Redshift syntax (TO ROLE); the local
-- PostgreSQL warehouse has one superuser and does not run this file.
CREATE ROLE bi_read_only;
CREATE ROLE developer;
CREATE ROLE operator;

GRANT USAGE ON SCHEMA clickstream TO ROLE bi_read_only;
GRANT SELECT ON ALL TABLES IN SCHEMA clickstream TO ROLE bi_read_only;

GRANT USAGE, CREATE ON SCHEMA clickstream TO ROLE developer;
GRANT SELECT ON ALL TABLES IN SCHEMA clickstream TO ROLE developer;

GRANT USAGE ON SCHEMA clickstream TO ROLE operator;
GRANT SELECT, INSERT, DELETE ON ALL TABLES IN SCHEMA clickstream TO ROLE operator;

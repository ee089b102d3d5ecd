-- cartflow's own login and database (docker-compose.yml mounts this into
-- /docker-entrypoint-initdb.d). The postgres image runs it once, as the superuser, on the first
-- start of an empty data volume: changing CARTFLOW_DB_PASSWORD later needs ALTER ROLE or a
-- fresh volume.
--
-- The application gets an ordinary role that owns its database. The superuser is only for
-- Temporal's auto-setup, which creates the temporal and temporal_visibility databases itself.
-- Owning the database is enough for the migrations: in PostgreSQL 15 the public schema belongs
-- to the database owner.

-- From the postgres container's environment; when it is unset, :'cartflow_password' below stays
-- literal text, the statement fails, and the container stops with the error (ON_ERROR_STOP).
\getenv cartflow_password CARTFLOW_DB_PASSWORD

CREATE ROLE cartflow LOGIN PASSWORD :'cartflow_password';
CREATE DATABASE cartflow OWNER cartflow;

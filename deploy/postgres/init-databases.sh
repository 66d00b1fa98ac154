#!/bin/sh
# First start of the postgres container only (docker-entrypoint-initdb.d): one database per
# owner next to POSTGRES_DB. EXTRA_DATABASES is a space-separated list (compose.yaml).
set -eu
for db in ${EXTRA_DATABASES:-}; do
  echo "init-databases: creating database $db"
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -c "CREATE DATABASE \"$db\" OWNER \"$POSTGRES_USER\""
done

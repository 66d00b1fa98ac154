#!/bin/sh
# The official postgres image's first-start contract on Debian's PostgreSQL: an empty PGDATA
# gets a cluster owned by POSTGRES_USER (password auth over TCP, trust on the local socket),
# the database POSTGRES_DB, and the scripts of /docker-entrypoint-initdb.d run once against a
# server that listens on the socket only. Then the command runs: `postgres ARGS` listens on
# every interface.
set -eu
: "${PGDATA:=/var/lib/postgresql/data}"
user="${POSTGRES_USER:-postgres}"
db="${POSTGRES_DB:-$user}"
socket=/var/run/postgresql

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  if [ -z "${POSTGRES_PASSWORD:-}" ]; then
    echo "postgres-entrypoint: POSTGRES_PASSWORD is empty; set it (compose reads deploy/.env)" >&2
    exit 1
  fi
  pwfile=$(mktemp)
  printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
  initdb -D "$PGDATA" -U "$user" --pwfile="$pwfile" -E UTF8 --no-locale \
    --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  rm -f "$pwfile"
  echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
  pg_ctl -D "$PGDATA" -w -o "-c listen_addresses='' -c unix_socket_directories=$socket" start >/dev/null
  export PGHOST="$socket" PGUSER="$user"
  if [ "$db" != postgres ]; then
    psql -v ON_ERROR_STOP=1 -q -d postgres -c "CREATE DATABASE \"$db\" OWNER \"$user\""
  fi
  for script in /docker-entrypoint-initdb.d/*; do
    case "$script" in
      *.sh) echo "postgres-entrypoint: running $script"; . "$script" ;;
      *.sql) echo "postgres-entrypoint: running $script"; psql -v ON_ERROR_STOP=1 -q -d "$db" -f "$script" ;;
      *) ;;
    esac
  done
  pg_ctl -D "$PGDATA" -w -m fast stop >/dev/null
  unset PGHOST PGUSER
  echo "postgres-entrypoint: cluster initialised in $PGDATA"
fi

if [ "${1:-}" = postgres ]; then
  shift
  exec postgres -D "$PGDATA" -c listen_addresses='*' -c unix_socket_directories="$socket" "$@"
fi
exec "$@"

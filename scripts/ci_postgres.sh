#!/usr/bin/env bash
# Provide a PostgreSQL server for the test suite and print the matching shell
# `export` lines on stdout. Usage:
#
#   eval "$(bash scripts/ci_postgres.sh)"   # sets EVENTCORE_DATABASE_URL
#   eval "${EVENTCORE_PG_STOP:-}"           # later: stop a throwaway cluster
#
# 1. Reuse a trust-auth server at 127.0.0.1:5432 (user postgres) if one answers.
# 2. Otherwise start a throwaway cluster (newest /usr/lib/postgresql/*/bin,
#    free port, fsync off) and also export EVENTCORE_PG_STOP, a command that
#    stops and deletes it. EVENTCORE_PG_FORCE_LOCAL=1 skips step 1, and
#    EVENTCORE_PG_BIN=/path/to/bin picks other server binaries.
# 3. If both fail, exit non-zero. stdout then carries `false`, so that the
#    `eval` above fails too (an eval of empty output would succeed silently).
set -euo pipefail

HOST=127.0.0.1

die() {
  echo "ci_postgres.sh: ERROR: $*" >&2
  echo "false"
  exit 1
}

# Server binaries: EVENTCORE_PG_BIN, else the newest Debian install.
PGBIN=${EVENTCORE_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)}
# Client tools: from PATH (postgresql-client) or next to the server binaries.
PSQL=$(command -v psql || true)
[ -n "$PSQL" ] || PSQL=${PGBIN:+$PGBIN/psql}

can_query() { # $1 = URL; succeeds if `select 1` works without a password
  [ -n "$PSQL" ] && "$PSQL" -w -X -q -tA -d "$1" -c 'select 1' >/dev/null 2>&1
}

# 1. Existing server.
URL="postgresql://postgres@$HOST:5432/postgres"
if [ "${EVENTCORE_PG_FORCE_LOCAL:-0}" != 1 ] && can_query "$URL"; then
  echo "ci_postgres.sh: using the server at $HOST:5432" >&2
  echo "export EVENTCORE_DATABASE_URL=$URL"
  echo "unset EVENTCORE_PG_STOP"
  exit 0
fi

# 2. Throwaway cluster.
[ -n "$PGBIN" ] && [ -x "$PGBIN/initdb" ] ||
  die "no server answers at $HOST:5432 and no PostgreSQL server binaries (looked in ${PGBIN:-/usr/lib/postgresql/*/bin}; apt-get install postgresql)"

# A free port: nothing accepts a connection on it (bash's /dev/tcp, no python needed).
PORT=""
for _ in $(seq 50); do
  candidate=$((20000 + RANDOM % 40000))
  if ! (exec 3<>"/dev/tcp/$HOST/$candidate") 2>/dev/null; then PORT=$candidate; break; fi
done
[ -n "$PORT" ] || die "found no free TCP port"

ROOT=$(mktemp -d "${TMPDIR:-/tmp}/eventcore-pg.XXXXXX")
AS=()
if [ "$(id -u)" = 0 ]; then
  # initdb refuses to run as root: run the server as the postgres user.
  id postgres >/dev/null 2>&1 || die "running as root but there is no 'postgres' user"
  chown postgres "$ROOT"
  AS=(runuser -u postgres --)
fi

"${AS[@]}" "$PGBIN/initdb" -D "$ROOT/data" -U postgres -A trust -E UTF8 --no-locale \
  >"$ROOT/initdb.log" 2>&1 || { cat "$ROOT/initdb.log" >&2; die "initdb failed"; }
"${AS[@]}" "$PGBIN/pg_ctl" -D "$ROOT/data" -l "$ROOT/server.log" -w -t 60 \
  -o "-c listen_addresses=$HOST -p $PORT -k $ROOT -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
  start >/dev/null 2>&1 || { tail -n 20 "$ROOT/server.log" >&2 || true; die "pg_ctl start failed (logs in $ROOT)"; }

URL="postgresql://postgres@$HOST:$PORT/postgres"
STOP="${AS[*]:+${AS[*]} }$PGBIN/pg_ctl -D $ROOT/data -m fast stop >/dev/null; rm -rf $ROOT"
if ! can_query "$URL"; then
  eval "$STOP" || true
  die "started a cluster on port $PORT but cannot query it"
fi

echo "ci_postgres.sh: started a throwaway cluster on $HOST:$PORT ($ROOT)" >&2
echo "export EVENTCORE_DATABASE_URL=$URL"
printf 'export EVENTCORE_PG_STOP=%q\n' "$STOP"

#!/usr/bin/env bash
# A throwaway PostgreSQL on 127.0.0.1 with a random port, for tests.
#   eval "$(scripts/pg.sh start)"   exports DATABASE_URL and PG_TMPDIR
#   scripts/pg.sh stop "$PG_TMPDIR"
# Runs the server as the postgres user when started as root.
set -euo pipefail

pg_bin() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
  [ -n "$dir" ] || { echo "PostgreSQL is not installed (apt-get install -y postgresql)" >&2; exit 1; }
  echo "$dir"
}
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

case "${1:-start}" in
  start)
    bin=$(pg_bin)
    dir=$(mktemp -d -t pushgate-pg.XXXXXX)
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$dir"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    as_pg "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --no-sync >/dev/null
    as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w \
      -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=300 -c fsync=on" start >/dev/null
    echo "export DATABASE_URL=postgres://postgres@127.0.0.1:$port/postgres PG_TMPDIR=$dir"
    ;;
  stop)
    dir=${2:?usage: scripts/pg.sh stop PG_TMPDIR}
    as_pg "$(pg_bin)/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
    rm -rf "$dir"
    ;;
  *) echo "usage: $0 start | stop PG_TMPDIR" >&2; exit 2 ;;
esac

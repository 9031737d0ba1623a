#!/usr/bin/env bash
# A PostgreSQL server of its own for the benchmarks, on 127.0.0.1:${PGBENCH_PORT:-5433}, created
# anew at each start (no schemas left over from earlier runs), with the settings of one of the
# files beside this script: default.conf (Debian's defaults), tuned.conf (a write-heavy
# server's), profile.conf (tuned + pg_stat_statements). bench/intel/README.md compares them.
#
#   url=$(bench/pg/server.sh start default|tuned|profile)
#   LIAISON_TEST_POSTGRES_URL="$url" bench/intel/ingest_load.sh 14000000 3 postgres
#   bench/pg/server.sh stop
#
# Runs as root (initdb and the server run as the `postgres` user); the cluster lives under
# ${PGBENCH_DIR:-/var/tmp/liaison-bench-pg} and is created anew at each start.
set -euo pipefail
PORT="${PGBENCH_PORT:-5433}"
DIR="${PGBENCH_DIR:-/var/tmp/liaison-bench-pg}"
BIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
HERE="$(cd "$(dirname "$0")" && pwd)"
as_pg() { runuser -u postgres -- "$@"; }
case "${1:-}" in
  start)
    profile="${2:-tuned}"
    [ -f "$HERE/$profile.conf" ] || { echo "no settings file $HERE/$profile.conf" >&2; exit 2; }
    if [ -f "$DIR/postmaster.pid" ]; then as_pg "$BIN/pg_ctl" -D "$DIR" -m fast stop >/dev/null || true; fi
    rm -rf "$DIR"; mkdir -p "$DIR"; chown postgres:postgres "$DIR"; chmod 700 "$DIR"
    as_pg "$BIN/initdb" -D "$DIR" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
    {
      echo "listen_addresses = '127.0.0.1'"
      echo "port = $PORT"
      echo "unix_socket_directories = '$DIR'"
      echo "log_checkpoints = on"
      cat "$HERE/$profile.conf"
    } >> "$DIR/postgresql.conf"
    as_pg "$BIN/pg_ctl" -D "$DIR" -l "$DIR/server.log" -w start >/dev/null
    as_pg "$BIN/createdb" -h 127.0.0.1 -p "$PORT" -U postgres test
    echo "postgres://postgres@127.0.0.1:$PORT/test"
    ;;
  stop)
    [ -f "$DIR/postmaster.pid" ] && as_pg "$BIN/pg_ctl" -D "$DIR" -m fast stop >/dev/null
    ;;
  *) echo "usage: $0 start default|tuned|profile | stop" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# A private PostgreSQL cluster that listens only on a unix socket inside its own directory.
#   pg-cluster.sh start DIR [DBNAME] [fast]  initdb on first use, start, create DBNAME; prints its DATABASE_URL
#   pg-cluster.sh stop DIR                   fast shutdown (keeps the data)
# PostgreSQL refuses to run as root, so as root the binaries run as the `postgres` user.
# "fast" trades durability for speed (fsync off): only for throwaway test clusters.
set -euo pipefail

bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -n "$bindir" ] || { echo "PostgreSQL server binaries not found (apt-get install postgresql)" >&2; exit 1; }

as_owner() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

command="${1:?usage: pg-cluster.sh start|stop DIR}"
dir="$(mkdir -p "${2:?missing DIR}" && cd "$2" && pwd)"
if [ "$(id -u)" -eq 0 ]; then chown postgres:postgres "$dir"; fi
superuser="$(if [ "$(id -u)" -eq 0 ]; then echo postgres; else id -un; fi)"

case "$command" in
start)
    dbname="${3:-careledger}"
    settings="-c listen_addresses='' -c unix_socket_directories='$dir/socket' -c max_connections=200"
    # Throwaway test clusters: no durability, and room for the many pools of a parallel test run.
    [ "${4:-}" = "fast" ] && settings="$settings -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=500"
    # Extra server settings for a profiling run, e.g. "-c shared_preload_libraries=pg_stat_statements".
    settings="$settings ${PG_EXTRA_SETTINGS:-}"
    if [ ! -f "$dir/data/PG_VERSION" ]; then
        as_owner "$bindir/initdb" -D "$dir/data" -U "$superuser" --auth=trust -E UTF8 --locale=C >/dev/null
    fi
    as_owner mkdir -p "$dir/socket"
    # The server daemon must not inherit our caller's descriptors (a parent waiting for a pipe to
    # close would wait for as long as PostgreSQL runs).
    for fd in $(ls /proc/$$/fd); do
        [ "$fd" -gt 2 ] && eval "exec $fd>&-" 2>/dev/null || true
    done
    if ! as_owner "$bindir/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
        as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 -o "$settings" start >/dev/null
    fi
    exists=$(as_owner "$bindir/psql" -h "$dir/socket" -U "$superuser" -d postgres -tAc \
        "SELECT 1 FROM pg_database WHERE datname = '$dbname'")
    [ "$exists" = "1" ] || as_owner "$bindir/createdb" -h "$dir/socket" -U "$superuser" "$dbname"
    echo "postgresql:///$dbname?host=$dir/socket&user=$superuser"
    ;;
stop)
    if as_owner "$bindir/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
        as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null
    fi
    ;;
*)
    echo "usage: pg-cluster.sh start|stop DIR" >&2
    exit 64
    ;;
esac

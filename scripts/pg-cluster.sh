#!/usr/bin/env bash
# Start throw-away PostgreSQL clusters for the tests, on free loopback ports in
# temporary directories, and stop them again.
#
#   scripts/pg-cluster.sh start DIR            one primary; prints its URL
#   scripts/pg-cluster.sh start-pair DIR       primary + synchronous standby;
#                                              prints the multi-host URL
#   scripts/pg-cluster.sh stop DIR             stop whatever runs under DIR
#
# The server refuses to run as root, so as root the clusters run as the
# `postgres` user. Authentication is `trust` on loopback only: the clusters
# hold test data and live as long as the test run.
set -euo pipefail

PGBIN=${PGBIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
[ -x "$PGBIN/initdb" ] || { echo "pg-cluster: no PostgreSQL server binaries (apt-get install postgresql)" >&2; exit 1; }

as_pg() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

init_node() { # DIR PORT
    local dir=$1 port=$2
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres: "$dir"
    chmod 0700 "$dir"
    as_pg "$PGBIN/initdb" -D "$dir/data" -U lockbox --auth=trust -E UTF8 --no-sync --no-instructions >"$dir/initdb.log" 2>&1 \
        || { echo "pg-cluster: initdb failed:" >&2; cat "$dir/initdb.log" >&2; exit 1; }
    cat >>"$dir/data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
max_connections = 200
fsync = on
synchronous_commit = on
wal_level = replica
max_wal_senders = 4
EOF
    echo "host replication lockbox 127.0.0.1/32 trust" >>"$dir/data/pg_hba.conf"
}

start_node() { # DIR
    if ! as_pg "$PGBIN/pg_ctl" -D "$1/data" -l "$1/server.log" -w -t 60 start >/dev/null; then
        echo "pg-cluster: the server in $1 did not start:" >&2; tail -n 20 "$1/server.log" >&2 || true; exit 1
    fi
}

port_of() { sed -n 's/^port = //p' "$1/data/postgresql.conf" | tail -1; }

# The server runs as `postgres` when we are root: it must be able to reach
# DIR (a `mktemp -d` is 0700 root). What DIR holds stays 0700 postgres.
reachable() { # DIR
    mkdir -p "$1"
    if [ "$(id -u)" = 0 ]; then chmod o+x "$1"; fi
    # every parent must be passable too
    local p; p=$(dirname "$(realpath "$1")")
    while [ "$p" != / ]; do
        if ! runuser -u postgres -- test -x "$p" 2>/dev/null && [ "$(id -u)" = 0 ]; then
            echo "pg-cluster: $p is not passable for the postgres user" >&2; exit 1
        fi
        p=$(dirname "$p")
    done
}

case ${1:-} in
start)
    dir=$2; port=$(free_port)
    reachable "$dir"
    init_node "$dir/primary" "$port"
    start_node "$dir/primary"
    as_pg "$PGBIN/createdb" -h 127.0.0.1 -p "$port" -U lockbox lockbox
    echo "postgres://lockbox@127.0.0.1:$port/lockbox"
    ;;
start-pair)
    dir=$2; p1=$(free_port); p2=$(free_port)
    reachable "$dir"
    init_node "$dir/primary" "$p1"
    start_node "$dir/primary"
    as_pg "$PGBIN/createdb" -h 127.0.0.1 -p "$p1" -U lockbox lockbox
    mkdir -p "$dir/standby"; [ "$(id -u)" = 0 ] && chown postgres: "$dir/standby"; chmod 0700 "$dir/standby"
    as_pg "$PGBIN/pg_basebackup" -h 127.0.0.1 -p "$p1" -U lockbox -D "$dir/standby/data" -R -X stream -c fast \
        -d "application_name=standby" >"$dir/standby/basebackup.log" 2>&1
    sed -i "s/^port = .*/port = $p2/; s#^unix_socket_directories = .*#unix_socket_directories = '$dir/standby'#" \
        "$dir/standby/data/postgresql.conf"
    start_node "$dir/standby"
    # only now, with the standby streaming, may commits wait for it
    echo "synchronous_standby_names = 'standby'" >>"$dir/primary/data/postgresql.conf"
    as_pg "$PGBIN/pg_ctl" -D "$dir/primary/data" reload >/dev/null
    echo "postgres://lockbox@127.0.0.1:$p1,127.0.0.1:$p2/lockbox?target_session_attrs=read-write"
    ;;
stop)
    dir=$2
    for node in "$dir"/primary "$dir"/standby; do
        [ -f "$node/data/postmaster.pid" ] && as_pg "$PGBIN/pg_ctl" -D "$node/data" -m immediate stop >/dev/null 2>&1 || true
    done
    ;;
*)
    sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac

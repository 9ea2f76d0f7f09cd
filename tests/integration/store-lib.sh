# SPDX-License-Identifier: Apache-2.0
# Real PostgreSQL 15 and Redis for the shared-store tests, started per test in a temp folder
# and stopped by the trap. Sourced after lib.sh. PostgreSQL refuses to run as root: when root,
# its folder belongs to the "postgres" user and the server runs through runuser.
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}

pg_as() { # runs a command as the database owner
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# start_postgres: initdb + pg_ctl on 127.0.0.1:$PG_PORT (scram password for TCP) and a unix
# socket in $PGD; creates role cloister / password $PG_PASS owning database kbsdb.
start_postgres() {
    [ -x "$PGBIN/initdb" ] || skip "PostgreSQL 15 is not installed ($PGBIN/initdb)"
    if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then skip "no postgres user to run the server as"; fi
    PGD=$(mktemp -d /tmp/cloister-pg.XXXXXX)
    [ "$(id -u)" = 0 ] && chown postgres "$PGD"
    PG_PORT=$(free_port)
    PG_PASS=pw-$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')
    pg_as "$PGBIN/initdb" -D "$PGD/data" -U postgres -A trust >"$T/pg-init.log" 2>&1 || fail "initdb"
    cat >"$PGD/data/pg_hba.conf" <<HBA
local all all trust
host all all 127.0.0.1/32 scram-sha-256
HBA
    pg_as "$PGBIN/pg_ctl" -D "$PGD/data" -l "$PGD/pg.log" -w -t 30 \
        -o "-p $PG_PORT -k $PGD -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=on" start \
        >/dev/null || { cat "$PGD/pg.log"; fail "pg_ctl start"; }
    STOP_PG=1
    pg_as "$PGBIN/psql" -h "$PGD" -p "$PG_PORT" -U postgres -q -v ON_ERROR_STOP=1 \
        -c "CREATE ROLE cloister LOGIN PASSWORD '$PG_PASS'" -c "CREATE DATABASE kbsdb OWNER cloister" \
        >/dev/null || fail "psql: create role/database"
}

psql_q() { # psql_q SQL: one unaligned answer from kbsdb
    pg_as "$PGBIN/psql" -h "$PGD" -p "$PG_PORT" -U postgres -d kbsdb -Atq -c "$1"
}

restart_postgres() {
    pg_as "$PGBIN/pg_ctl" -D "$PGD/data" -m fast -w -t 30 restart \
        -o "-p $PG_PORT -k $PGD -c listen_addresses=127.0.0.1 -c max_connections=200" >/dev/null \
        || fail "pg_ctl restart"
}

start_redis() {
    need redis-server redis-cli
    RD_PORT=$(free_port)
    mkdir -p "$T/redis"
    redis-server --port "$RD_PORT" --bind 127.0.0.1 --dir "$T/redis" --save "" --appendonly yes \
        --appendfsync always --daemonize no >"$T/redis.log" 2>&1 &
    RD_PID=$!
    PIDS="$PIDS $RD_PID"
    i=0
    until redis-cli -p "$RD_PORT" ping >/dev/null 2>&1; do
        i=$((i + 1)); [ $i -lt 100 ] || fail "redis-server did not come up"; sleep 0.1
    done
}

restart_redis() {
    kill "$RD_PID"; wait "$RD_PID" 2>/dev/null || true
    redis-server --port "$RD_PORT" --bind 127.0.0.1 --dir "$T/redis" --save "" --appendonly yes \
        --appendfsync always --daemonize no >>"$T/redis.log" 2>&1 &
    RD_PID=$!
    PIDS="$PIDS $RD_PID"
    i=0
    until redis-cli -p "$RD_PORT" ping >/dev/null 2>&1; do
        i=$((i + 1)); [ $i -lt 100 ] || fail "redis-server did not come back"; sleep 0.1
    done
}

stop_postgres() {
    if [ "${STOP_PG:-0}" = 1 ]; then
        pg_as "$PGBIN/pg_ctl" -D "$PGD/data" -m immediate -w stop >/dev/null 2>&1 || true
        rm -rf "$PGD"
        STOP_PG=0
    fi
}

# start_store BACKEND: starts the database; sets STORE_TOML, the [storage_backend] section.
start_store() {
    case "$1" in
    Postgres)
        start_postgres
        STORE_TOML="[storage_backend]
storage_type = \"Postgres\"

[storage_backend.backends.postgres]
host = \"127.0.0.1\"
port = $PG_PORT
db = \"kbsdb\"
username = \"cloister\"
password = \"$PG_PASS\"
timeout_ms = 3000"
        ;;
    Redis)
        start_redis
        STORE_TOML="[storage_backend]
storage_type = \"Redis\"

[storage_backend.backends.redis]
url = \"redis://127.0.0.1:$RD_PORT\"
timeout_ms = 3000"
        ;;
    *) fail "start_store: unknown backend $1" ;;
    esac
    # Replicas sign with one key (a shared store refuses to start without one).
    [ -f "$T/signer.key" ] || openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
        -out "$T/signer.key" 2>/dev/null
    STORE_TOML="$STORE_TOML

[attestation_service.attestation_token_broker.signer]
key_path = \"$T/signer.key\""
}

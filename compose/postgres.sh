#!/bin/sh
# Entry point of the compose demo's PostgreSQL image (compose.yaml, service postgres).
#
# At the first start (an empty data volume) it makes the cluster: the superuser
# postgres reachable only over the local socket (peer), and the app role `chat`
# owning database `chat`, with the password the `secrets` service made, allowed
# from the demo's network only (scram-sha-256). Then PostgreSQL runs in the
# foreground as postgres. The password is read as root and piped to
# PostgreSQL's single-user mode: it is never on a command line.
set -eu
data=/var/lib/postgresql/data
bin=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin | sort -V | tail -n 1)

tries=0
until [ -e /secrets/ready ]; do
  tries=$((tries + 1))
  [ "$tries" -le 240 ] || { echo "cd-compose-postgres: no secrets after 120 s (service secrets)" >&2; exit 1; }
  sleep 0.5
done

as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"; }

install -d -o postgres -g postgres -m 2775 /run/postgresql
install -d -o postgres -g postgres -m 0700 "$data"
if [ ! -s "$data/PG_VERSION" ]; then
  as_postgres "$bin/initdb" --pgdata="$data" --username=postgres --encoding=UTF8 --locale=C.UTF-8 \
    --auth-local=peer --auth-host=scram-sha-256 >/dev/null
  cat >"$data/pg_hba.conf" <<'HBA'
# Written by compose/postgres.sh at the first start.
# TYPE  DATABASE  USER      ADDRESS  METHOD
local   all       postgres           peer
host    chat      chat      samenet  scram-sha-256
HBA
  chown postgres:postgres "$data/pg_hba.conf"
  password=$(cat /secrets/postgres_password)
  printf "CREATE ROLE chat LOGIN PASSWORD '%s';\nCREATE DATABASE chat OWNER chat;\n" "$password" |
    as_postgres "$bin/postgres" --single -D "$data" postgres >/dev/null
  echo "cd-compose-postgres: made the cluster, role chat and database chat"
fi
exec setpriv --reuid=postgres --regid=postgres --init-groups -- \
  "$bin/postgres" -D "$data" -c listen_addresses='*'

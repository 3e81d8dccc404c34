#!/usr/bin/env bash
# Brings up the backing services the integration tests (and CI) use, idempotently, as root:
#   - installs postgresql and nats-server with apt when missing (apt-get update only if needed),
#   - starts PostgreSQL 15 on 127.0.0.1:5432 (creates the `15/main` cluster when absent),
#   - ensures role `strata` (password `strata`, LOGIN CREATEDB) and database `strata` owned by it,
#   - prints the connection URL on stdout (everything else goes to stderr).
# nats-server is only installed, not started: each test starts its own on a free port
# (test/helpers/services.ts), so tests never share JetStream state.
set -euo pipefail

PG_WANT="${PG_VERSION:-15}"
PG_CLUSTER="${PG_CLUSTER:-main}"
PG_PORT="${PG_PORT:-5432}"
PG_USER="${STRATA_PG_USER:-strata}"
PG_PASSWORD="${STRATA_PG_PASSWORD:-strata}"
PG_DB="${STRATA_PG_DB:-strata}"

log() { echo "services: $*" >&2; }

if [ "$(id -u)" -ne 0 ]; then
  log "must run as root (installs packages and starts PostgreSQL)"
  exit 1
fi

need=()
command -v pg_ctlcluster >/dev/null 2>&1 && compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null || need+=(postgresql)
command -v nats-server >/dev/null 2>&1 || need+=(nats-server)
if [ "${#need[@]}" -gt 0 ]; then
  log "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Update the package index only when it has never been fetched or the install fails on a stale one.
  if ! compgen -G '/var/lib/apt/lists/*_Packages' >/dev/null; then apt-get -o DPkg::Lock::Timeout=900 update -qq >&2; fi
  if ! apt-get -o DPkg::Lock::Timeout=900 install -y -qq "${need[@]}" >&2; then
    apt-get -o DPkg::Lock::Timeout=900 update -qq >&2
    apt-get -o DPkg::Lock::Timeout=900 install -y -qq "${need[@]}" >&2
  fi
fi

# PostgreSQL 15 (Debian 12's) when installed, else the newest one the distribution gave us.
if [ -x "/usr/lib/postgresql/${PG_WANT}/bin/postgres" ]; then
  PG_VERSION="${PG_WANT}"
else
  PG_VERSION="$(basename "$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -type d | sort -V | tail -n 1)")"
  log "PostgreSQL ${PG_WANT} not installed; using ${PG_VERSION}"
fi

if ! pg_lsclusters -h 2>/dev/null | awk '{print $1" "$2}' | grep -qx "${PG_VERSION} ${PG_CLUSTER}"; then
  log "creating cluster ${PG_VERSION}/${PG_CLUSTER} on port ${PG_PORT}"
  pg_createcluster "${PG_VERSION}" "${PG_CLUSTER}" --port "${PG_PORT}" >&2
fi

status="$(pg_lsclusters -h | awk -v v="${PG_VERSION}" -v c="${PG_CLUSTER}" '$1==v && $2==c {print $4}')"
if [ "${status}" != "online" ]; then
  log "starting PostgreSQL ${PG_VERSION}/${PG_CLUSTER}"
  # Debian's default config listens on localhost only and pg_hba.conf accepts passwords from 127.0.0.1.
  pg_ctlcluster "${PG_VERSION}" "${PG_CLUSTER}" start >&2
fi

# Wait until it accepts connections.
for _ in $(seq 1 50); do
  if su postgres -c "psql -p ${PG_PORT} -Atqc 'SELECT 1'" >/dev/null 2>&1; then break; fi
  sleep 0.2
done
su postgres -c "psql -p ${PG_PORT} -Atqc 'SELECT 1'" >/dev/null

psql_admin() { su postgres -c "psql -p ${PG_PORT} -v ON_ERROR_STOP=1 -Atq" >&2; }

psql_admin <<SQL
DO \$\$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${PG_USER}') THEN
    CREATE ROLE "${PG_USER}" LOGIN CREATEDB PASSWORD '${PG_PASSWORD}';
  ELSE
    ALTER ROLE "${PG_USER}" LOGIN CREATEDB PASSWORD '${PG_PASSWORD}';
  END IF;
END
\$\$;
SQL

if ! su postgres -c "psql -p ${PG_PORT} -Atqc \"SELECT 1 FROM pg_database WHERE datname = '${PG_DB}'\"" | grep -q 1; then
  su postgres -c "createdb -p ${PG_PORT} -O '${PG_USER}' '${PG_DB}'" >&2
fi

url="postgres://${PG_USER}:${PG_PASSWORD}@127.0.0.1:${PG_PORT}/${PG_DB}"
# Check the URL really works over TCP with the password (pg_hba), not only over the socket.
if ! PGPASSWORD="${PG_PASSWORD}" psql "${url}" -Atqc 'SELECT 1' >/dev/null 2>&1; then
  log "cannot connect as ${PG_USER} over TCP: check pg_hba.conf for host 127.0.0.1/32"
  exit 1
fi
log "PostgreSQL ready; nats-server $(nats-server --version 2>/dev/null | awk '{print $2}') installed"
echo "${url}"

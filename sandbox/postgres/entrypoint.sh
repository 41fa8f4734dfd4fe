#!/bin/sh
# Entrypoint of spilttea-sandbox/postgres:15 (built by scripts/sandbox).
#
# As root: prepares the volume and the socket directory, hands the password
# from the bind-mounted secret to the first initialisation, then re-runs
# itself as "postgres". As postgres: on the first start of a volume, initdb
# (role spilttea = the bootstrap superuser, scram for TCP, trust on the
# container's own Unix socket so `docker exec ... pg_dump -U spilttea` works
# as in the runbook), applies the Prisma migrations and the seed on a
# socket-only server, then runs the real server on 127.0.0.1:$PGPORT.
#
# The volume is mounted on /var/lib/postgresql; the data directory is its
# "data" subdirectory, and ".spilttea-initialized" marks a finished
# initialisation so a start that crashed half-way is redone from scratch.
set -eu

root=/var/lib/postgresql
data=${PGDATA:-$root/data}
marker=$root/.spilttea-initialized
secret=${POSTGRES_PASSWORD_FILE:-/run/secrets/postgres.password}
share=/usr/local/share/spilttea
pwfile=/tmp/spilttea-initdb.pw
port=${PGPORT:-55432}

if [ "$(id -u)" = 0 ]; then
	mkdir -p "$root" /run/postgresql
	chown postgres:postgres "$root" /run/postgresql
	chmod 700 "$root"
	chmod 2775 /run/postgresql
	if [ ! -f "$marker" ]; then
		if [ ! -s "$secret" ]; then
			echo "error: $secret is missing or empty: cannot initialise the database" >&2
			exit 1
		fi
		umask 077
		cat "$secret" > "$pwfile"
		chown postgres:postgres "$pwfile"
	fi
	exec su -s /bin/sh -- postgres "$0" "$@"
fi

if [ ! -f "$marker" ]; then
	echo "spilttea-postgres: initialising $data"
	rm -rf "$data"
	initdb -D "$data" -U spilttea --pwfile="$pwfile" -E UTF8 --locale=C \
		--auth-local=trust --auth-host=scram-sha-256 >/dev/null
	rm -f "$pwfile"
	pg_ctl -D "$data" -w -t 120 -l /tmp/init-server.log \
		-o "-c listen_addresses='' -p $port" start >/dev/null
	psql -X -q -v ON_ERROR_STOP=1 -d postgres -c 'CREATE DATABASE spilttea'
	psql -X -q -v ON_ERROR_STOP=1 -d spilttea -f "$share/prisma_migrations.sql"
	for dir in "$share"/migrations/*/; do
		name=$(basename "$dir")
		sum=$(sha256sum "$dir/migration.sql" | cut -d' ' -f1)
		echo "spilttea-postgres: applying migration $name"
		psql -X -q -1 -v ON_ERROR_STOP=1 -d spilttea -v name="$name" -v checksum="$sum" \
			-f "$dir/migration.sql" -f "$share/record_migration.sql"
	done
	echo "spilttea-postgres: loading seed data"
	psql -X -q -1 -v ON_ERROR_STOP=1 -d spilttea -f "$share/seed.sql" >/dev/null
	pg_ctl -D "$data" -w -m fast stop >/dev/null
	touch "$marker"
	echo "spilttea-postgres: initialised"
fi

exec postgres -D "$data" -p "$port" -c listen_addresses=127.0.0.1 "$@"

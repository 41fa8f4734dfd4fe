#!/bin/sh
# standin-migrate: the stand-in backend's `npm run prisma:migrate` (Prisma's
# `migrate deploy`) and `prisma migrate resolve`, done with psql so the
# sandbox's _prisma_migrations table looks exactly like Prisma's.
#
# usage: standin-migrate deploy                  apply pending migrations in order
#        standin-migrate status                  list applied, failed and pending ones
#        standin-migrate resolve --rolled-back NAME | --applied NAME
#
# Migrations are the folders of $MIGRATIONS_DIR (default
# /app/prisma/migrations), each with a migration.sql, applied in name order.
# As Prisma does, deploy refuses to run while a failed migration (started,
# never finished, not rolled back) is recorded (P3009); each migration gets
# its row first (checksum = SHA-256 of migration.sql, started_at), then
# finished_at when its SQL succeeded, or its error in logs when it failed
# (P3018, exit 1). Unlike Prisma, each migration runs in one transaction, so
# a failed one leaves no half-applied schema behind.
#
# The database comes from DATABASE_URL (postgresql://user:password@host:port/db?...);
# the password reaches psql through PGPASSWORD, never its arguments.
set -eu

dir=${MIGRATIONS_DIR:-/app/prisma/migrations}

die() { echo "Error: $*" >&2; exit 1; }

connect_from_url() {
	local url rest creds hostport
	url=${DATABASE_URL:-}
	[ -n "$url" ] || die "DATABASE_URL is not set"
	case $url in postgres://* | postgresql://*) ;; *) die "DATABASE_URL is not a postgresql:// URL" ;; esac
	rest=${url#*://}
	case $rest in *@*) ;; *) die "DATABASE_URL has no user" ;; esac
	creds=${rest%%@*}
	rest=${rest#*@}
	case $creds in *%*) die "DATABASE_URL: percent-encoded credentials are not supported here" ;; esac
	PGUSER=${creds%%:*}
	if [ "$creds" != "$PGUSER" ]; then PGPASSWORD=${creds#*:}; export PGPASSWORD; fi
	hostport=${rest%%/*}
	PGDATABASE=${rest#*/}
	PGDATABASE=${PGDATABASE%%\?*}
	PGHOST=${hostport%:*}
	PGPORT=5432
	[ "$hostport" = "$PGHOST" ] || PGPORT=${hostport##*:}
	export PGUSER PGHOST PGPORT PGDATABASE
	# No Kerberos on this stand-in: do not let libpq look for it.
	PGGSSENCMODE=disable
	# CREATE TABLE IF NOT EXISTS and friends: no NOTICE chatter in the output.
	PGOPTIONS="-c client_min_messages=warning"
	PGAPPNAME=standin-migrate
	export PGGSSENCMODE PGAPPNAME PGOPTIONS
}

# psql reading SQL from stdin, one unaligned value per line; psql variables
# given as -v NAME=VALUE are interpolated with :'NAME'.
sql() { psql -X -q -A -t -v ON_ERROR_STOP=1 "$@"; }

ensure_table() {
	sql <<'EOF'
CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
    "id"                    VARCHAR(36) PRIMARY KEY NOT NULL,
    "checksum"              VARCHAR(64) NOT NULL,
    "finished_at"           TIMESTAMPTZ,
    "migration_name"        VARCHAR(255) NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        TIMESTAMPTZ,
    "started_at"            TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count"   INTEGER NOT NULL DEFAULT 0
);
EOF
}

failed_migrations() {
	sql <<'EOF'
SELECT migration_name FROM "_prisma_migrations"
 WHERE finished_at IS NULL AND rolled_back_at IS NULL ORDER BY started_at;
EOF
}

is_applied() {
	[ -n "$(sql -v name="$1" <<'EOF'
SELECT 1 FROM "_prisma_migrations"
 WHERE migration_name = :'name' AND finished_at IS NOT NULL AND rolled_back_at IS NULL LIMIT 1;
EOF
)" ]
}

migration_dirs() {
	for d in "$dir"/*/; do
		[ -f "$d/migration.sql" ] && basename "$d"
	done
	return 0
}

cmd_deploy() {
	local failed name file sum id out applied=""
	ensure_table
	failed=$(failed_migrations)
	if [ -n "$failed" ]; then
		echo "Error: P3009" >&2
		echo "migrate found failed migrations in the target database, new migrations will not be applied." >&2
		for name in $failed; do echo "The \`$name\` migration failed" >&2; done
		exit 1
	fi
	echo "$(migration_dirs | wc -l) migrations found in prisma/migrations"
	for name in $(migration_dirs); do
		is_applied "$name" && continue
		file=$dir/$name/migration.sql
		sum=$(sha256sum "$file" | cut -d' ' -f1)
		echo "Applying migration \`$name\`"
		id=$(sql -v name="$name" -v checksum="$sum" <<'EOF'
INSERT INTO "_prisma_migrations" (id, checksum, migration_name, started_at, applied_steps_count)
VALUES (gen_random_uuid()::text, :'checksum', :'name', now(), 0) RETURNING id;
EOF
)
		if out=$(psql -X -q -1 -v ON_ERROR_STOP=1 -f "$file" 2>&1); then
			[ -z "$out" ] || printf '%s\n' "$out"
			sql -v id="$id" <<'EOF' >/dev/null
UPDATE "_prisma_migrations" SET finished_at = now(), applied_steps_count = 1 WHERE id = :'id';
EOF
			applied="$applied $name"
		else
			sql -v id="$id" -v logs="$out" <<'EOF' >/dev/null
UPDATE "_prisma_migrations" SET logs = :'logs' WHERE id = :'id';
EOF
			echo "Error: P3018" >&2
			echo "A migration failed to apply. New migrations cannot be applied before the error is recovered from." >&2
			echo "Migration name: $name" >&2
			printf 'Database error:\n%s\n' "$out" >&2
			exit 1
		fi
	done
	if [ -z "$applied" ]; then
		echo "No pending migrations to apply."
	else
		echo "The following migration(s) have been applied:"
		for name in $applied; do echo "  $name"; done
		echo "All migrations have been successfully applied."
	fi
}

cmd_status() {
	local failed pending="" name
	ensure_table
	failed=$(failed_migrations)
	for name in $(migration_dirs); do
		is_applied "$name" || pending="$pending $name"
	done
	echo "$(migration_dirs | wc -l) migrations found in prisma/migrations"
	for name in $failed; do echo "failed: $name"; done
	for name in $pending; do echo "pending: $name"; done
	if [ -z "$failed" ] && [ -z "$pending" ]; then
		echo "Database schema is up to date!"
		return 0
	fi
	return 1
}

cmd_resolve() {
	local how=${1:-} name=${2:-} n
	[ -n "$name" ] || die "usage: standin-migrate resolve --rolled-back NAME | --applied NAME"
	ensure_table
	case $how in
	--rolled-back)
		n=$(sql -v name="$name" <<'EOF'
WITH r AS (UPDATE "_prisma_migrations" SET rolled_back_at = now()
            WHERE migration_name = :'name' AND finished_at IS NULL AND rolled_back_at IS NULL
            RETURNING 1)
SELECT count(*) FROM r;
EOF
)
		[ "$n" -gt 0 ] || die "P3011: migration $name cannot be rolled back because it is not in a failed state"
		echo "Migration $name marked as rolled back."
		;;
	--applied)
		[ -f "$dir/$name/migration.sql" ] || die "P3017: migration $name could not be found in $dir"
		is_applied "$name" && die "P3008: migration $name is already recorded as applied in the database"
		sql -v name="$name" -v checksum="$(sha256sum "$dir/$name/migration.sql" | cut -d' ' -f1)" <<'EOF' >/dev/null
UPDATE "_prisma_migrations" SET rolled_back_at = now()
 WHERE migration_name = :'name' AND finished_at IS NULL AND rolled_back_at IS NULL;
INSERT INTO "_prisma_migrations" (id, checksum, migration_name, started_at, finished_at, applied_steps_count)
VALUES (gen_random_uuid()::text, :'checksum', :'name', now(), now(), 0);
EOF
		echo "Migration $name marked as applied."
		;;
	*) die "usage: standin-migrate resolve --rolled-back NAME | --applied NAME" ;;
	esac
}

connect_from_url
[ "${1:-}" = resolve ] || [ -d "$dir" ] || die "migrations directory $dir does not exist"
case ${1:-} in
deploy) cmd_deploy ;;
status) cmd_status ;;
resolve) shift; cmd_resolve "$@" ;;
*) echo "usage: standin-migrate deploy | status | resolve --rolled-back NAME | --applied NAME" >&2; exit 2 ;;
esac

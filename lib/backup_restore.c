/*
 * backup_restore.c - verifying a backup against its manifest, the database
 * operations of a restore (create, drop, terminate, swap, inventory), and
 * loading a dump into a database through psql (see backup.h).
 */
#include "backup.h"
#include "backup_internal.h"
#include "config.h"
#include "pg.h"
#include "sbuf.h"
#include "services.h"
#include "text.h"
#include "timeutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- verify ------------------------------------------------------------ */

void backup_check_release(struct backup_check *c)
{
	if (c)
		backup_manifest_release(&c->manifest);
}

int backup_resolve(const char *dir, const char *file, struct backup_check *out, struct st_error *err)
{
	const char *slash = strrchr(file, '/');
	struct stat st;

	memset(out, 0, sizeof(*out));
	if (slash) {
		size_t dl = (size_t)(slash - file);

		if (dl == 0)
			dl = 1; /* "/backup_x.sql.gz" */
		if (dl >= sizeof(out->dir))
			return st_error_set(err, ST_EUSAGE, "path too long: '%s'", file);
		memcpy(out->dir, file, dl);
		out->dir[dl] = '\0';
		text_copy(out->name, sizeof(out->name), slash + 1);
		text_copy(out->path, sizeof(out->path), file);
	} else {
		text_copy(out->dir, sizeof(out->dir), dir);
		text_copy(out->name, sizeof(out->name), file);
		snprintf(out->path, sizeof(out->path), "%s/%s", dir, file);
	}
	if (backup_name_parse(out->name, NULL) != 0) {
		st_error_set(err, ST_EUSAGE, "'%s' is not a spilttea-ops backup name", out->name);
		return st_error_hint(err, "backups are named backup_YYYYmmdd_HHMMSS[_schema|_data].sql[.gz|.zst]; "
				     "see 'spilttea-ops backup list'");
	}
	if (lstat(out->path, &st) != 0) {
		st_error_set(err, errno == ENOENT ? ST_ENOTFOUND : ST_EIO, "cannot read '%s': %s", out->path,
			     strerror(errno));
		return st_error_hint(err, "see 'spilttea-ops backup list'");
	}
	if (!S_ISREG(st.st_mode))
		return st_error_set(err, ST_EUSAGE, "'%s' is not a regular file", out->path);
	return 0;
}

static int save_verdict(struct backup_check *c, int ok, const char *why, struct st_error *err)
{
	c->manifest.verified = ok;
	c->manifest.verified_at = time_wall();
	text_copy(c->manifest.verify_error, sizeof(c->manifest.verify_error), ok ? "" : why);
	return backup_manifest_save(c->dir, &c->manifest, err);
}

int backup_verify(const char *dir, const char *file, int update_manifest, struct backup_check *out,
		  struct st_error *err)
{
	const struct backup_manifest *m = &out->manifest;
	const struct backup_reader_result *r = &out->result.read;
	struct backup_name bn;
	char why[200];
	struct stat st;
	int rc;

	if ((rc = backup_resolve(dir, file, out, err)) != 0)
		return rc;
	backup_name_parse(out->name, &bn);
	if ((rc = backup_manifest_load(out->dir, out->name, &out->manifest, err)) != 0) {
		st_error_wrap(err, "cannot verify '%s'", out->name);
		if (rc == ST_ENOTFOUND)
			st_error_hint(err, "a backup without its manifest cannot be trusted: take a new one with 'spilttea-ops backup'");
		return rc;
	}
	out->manifest_loaded = 1;
	if (m->codec != bn.codec || m->kind != bn.kind) {
		rc = st_error_set(err, ST_EFAILED, "'%s' does not match its manifest (kind or compression)",
				  out->name);
		goto judged;
	}
	if (stat(out->path, &st) != 0 || (uint64_t)st.st_size != m->bytes_compressed) {
		rc = st_error_set(err, ST_EFAILED, "'%s' has %lld bytes, its manifest says %llu (truncated?)",
				  out->name, (long long)st.st_size, (unsigned long long)m->bytes_compressed);
		goto judged;
	}
	rc = backup_file_verify(out->path, m->codec, &out->result, err);
	if (rc == ST_EFAILED)
		goto judged;
	if (rc)
		return rc;
	if (strcmp(r->sha256, m->sha256) != 0) {
		rc = st_error_set(err, ST_EFAILED, "'%s': checksum mismatch (sha256 %.12s..., manifest %.12s...)",
				  out->name, r->sha256, m->sha256);
	} else if (r->bytes_raw != m->bytes_raw) {
		rc = st_error_set(err, ST_EFAILED, "'%s' decompresses to %llu bytes, its manifest says %llu",
				  out->name, (unsigned long long)r->bytes_raw, (unsigned long long)m->bytes_raw);
	} else if (!backup_trailer_ok(&r->trailer, why, sizeof(why))) {
		rc = st_error_set(err, ST_EFAILED, "'%s' holds an incomplete dump: %s", out->name, why);
	}
judged:
	if (update_manifest) {
		struct st_error serr = { 0 };
		int src = save_verdict(out, rc == 0, rc ? err->message : NULL, &serr);

		if (src && rc == 0) {
			*err = serr;
			rc = src;
		}
	}
	return rc;
}

/* ---- databases --------------------------------------------------------- */

int backup_db_exists(struct pg_conn *conn, const char *name, int *exists, struct st_error *err)
{
	const char *params[1] = { name };
	long long n = 0;
	int rc = pg_query_long(conn, "SELECT count(*) FROM pg_database WHERE datname = $1", 1, params, 30,
			       &n, err);

	*exists = n > 0;
	return rc;
}

static int check_ident(const char *name, struct st_error *err)
{
	if (!name || !*name || strlen(name) > 63)
		return st_error_set(err, ST_EUSAGE, "database name '%s' must be 1 to 63 bytes", name ? name : "");
	return 0;
}

/* Appends " OPTION value" with value as a quoted identifier, which CREATE
 * DATABASE takes for its options. An identifier longer than 63 bytes would be
 * cut by the server with only a notice, so such a value is refused. */
static int append_option(struct pg_conn *conn, struct sbuf *sql, const char *option, const char *value,
			 const char *like, struct st_error *err)
{
	char *q = NULL;
	int rc;

	if (strlen(value) > 63)
		return st_error_set(err, ST_ECONFLICT, "cannot copy %s '%.64s...' of database '%s': longer than 63 bytes",
				    option, value, like);
	if ((rc = pg_quote_ident(conn, value, &q, err)) != 0)
		return rc;
	if (sbuf_printf(sql, " %s %s", option, q) != 0)
		rc = st_error_set(err, ST_ENOMEM, "out of memory");
	free(q);
	return rc;
}

/* The locale settings of database like, read through to_jsonb() so that the
 * query works whatever columns the server's pg_database has: datlocprovider
 * and daticulocale came with PostgreSQL 15, daticurules with 16, and 17
 * renamed daticulocale to datlocale. */
#define LOCALE_QUERY                                                                                           \
	"SELECT d.encoding, d.datcollate, d.datctype, to_jsonb(d)->>'datlocprovider', "                        \
	"coalesce(to_jsonb(d)->>'datlocale', to_jsonb(d)->>'daticulocale'), to_jsonb(d)->>'daticurules' "      \
	"FROM pg_database d WHERE d.datname = $1"

/* Appends the encoding and locale options of the database described by row 0
 * of res (LOCALE_QUERY). */
static int append_locale(struct pg_conn *conn, struct sbuf *sql, PGresult *res, const char *like,
			 struct st_error *err)
{
	const char *provider = PQgetisnull(res, 0, 3) ? "c" : PQgetvalue(res, 0, 3);
	const char *locale = PQgetisnull(res, 0, 4) ? "" : PQgetvalue(res, 0, 4);
	long long enc;
	int rc;

	if (pg_parse_long(PQgetvalue(res, 0, 0), &enc) != 0)
		return st_error_set(err, ST_EPROTO, "unexpected encoding of database '%s'", like);
	if (sbuf_printf(sql, " ENCODING %lld", enc) != 0)
		return st_error_set(err, ST_ENOMEM, "out of memory");
	if ((rc = append_option(conn, sql, "LC_COLLATE", PQgetvalue(res, 0, 1), like, err)) != 0 ||
	    (rc = append_option(conn, sql, "LC_CTYPE", PQgetvalue(res, 0, 2), like, err)) != 0)
		return rc;
	if (strcmp(provider, "c") == 0)
		return 0;
	if (strcmp(provider, "i") == 0) {
		if (sbuf_puts(sql, " LOCALE_PROVIDER icu") != 0)
			return st_error_set(err, ST_ENOMEM, "out of memory");
		if ((rc = append_option(conn, sql, "ICU_LOCALE", locale, like, err)) != 0)
			return rc;
		if (!PQgetisnull(res, 0, 5) && *PQgetvalue(res, 0, 5))
			rc = append_option(conn, sql, "ICU_RULES", PQgetvalue(res, 0, 5), like, err);
		return rc;
	}
	if (strcmp(provider, "b") == 0) {
		if (sbuf_puts(sql, " LOCALE_PROVIDER builtin") != 0)
			return st_error_set(err, ST_ENOMEM, "out of memory");
		return append_option(conn, sql, "BUILTIN_LOCALE", locale, like, err);
	}
	return st_error_set(err, ST_ECONFLICT, "database '%s' has locale provider '%s', unknown to spilttea-ops",
			    like, provider);
}

int backup_db_create(struct pg_conn *conn, const char *name, const char *like, struct st_error *err)
{
	struct sbuf sql = SBUF_INIT;
	char *qname = NULL;
	PGresult *res = NULL;
	int exists = 0, rc;

	if ((rc = check_ident(name, err)) != 0 || (rc = backup_db_exists(conn, name, &exists, err)) != 0)
		goto out;
	if (exists) {
		rc = st_error_set(err, ST_ECONFLICT, "database '%s' already exists", name);
		goto out;
	}
	if ((rc = pg_quote_ident(conn, name, &qname, err)) != 0)
		goto out;
	if (like) {
		const char *params[1] = { like };

		if ((rc = pg_query(conn, LOCALE_QUERY, 1, params, 30, &res, err)) != 0)
			goto out;
	}
	if (sbuf_printf(&sql, "CREATE DATABASE %s TEMPLATE template0", qname) != 0) {
		rc = st_error_set(err, ST_ENOMEM, "out of memory");
		goto out;
	}
	/* Same encoding, collation, character classes and locale provider as
	 * the database it replaces: a copy on another provider would sort and
	 * compare text differently, and its indexes would follow. */
	if (res && PQntuples(res) == 1 && (rc = append_locale(conn, &sql, res, like, err)) != 0)
		goto out;
	if ((rc = pg_exec(conn, sbuf_str(&sql), 0, NULL, 0, err)) != 0)
		st_error_wrap(err, "cannot create database '%s'", name);
out:
	PQclear(res);
	free(qname);
	sbuf_release(&sql);
	return rc;
}

int backup_db_drop(struct pg_conn *conn, const char *name, struct st_error *err)
{
	char *qname = NULL, sql[200];
	int rc;

	if ((rc = check_ident(name, err)) != 0 || (rc = pg_quote_ident(conn, name, &qname, err)) != 0)
		return rc;
	snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", qname);
	free(qname);
	if ((rc = pg_exec(conn, sql, 0, NULL, 0, err)) != 0)
		st_error_wrap(err, "cannot drop database '%s'", name);
	return rc;
}

int backup_db_drop_retry(const struct st_config *cfg, const char *name, double wait_s, struct st_error *err)
{
	double deadline = time_monotonic() + wait_s;
	struct pg_conn *conn = NULL;
	int rc;

	if ((rc = check_ident(name, err)) != 0)
		return rc;
	for (;;) {
		if ((rc = services_pg_connect(cfg, BACKUP_MAINTENANCE_DB, BACKUP_APP_NAME, &conn, err)) == 0)
			rc = backup_db_drop(conn, name, err);
		pg_close(conn);
		conn = NULL;
		if (rc == 0 || time_monotonic() + 0.5 > deadline)
			return rc;
		time_sleep(0.5);
	}
}

int backup_db_terminate(struct pg_conn *conn, const char *name, int *count, struct st_error *err)
{
	const char *params[1] = { name };
	long long n = 0;
	int rc = pg_query_long(conn,
			       "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
			       "WHERE datname = $1 AND pid <> pg_backend_pid()",
			       1, params, 30, &n, err);

	if (count)
		*count = (int)n;
	return rc;
}

int backup_db_swap(struct pg_conn *conn, const char *live, const char *incoming, const char *outgoing,
		   int require_incoming, struct st_error *err)
{
	char *ql = NULL, *qi = NULL, *qo = NULL, sql1[200], sql2[200], state[8];
	double deadline = time_monotonic() + 10;
	int rc, attempt, live_exists = 0, incoming_exists = 0;

	if ((rc = check_ident(live, err)) || (rc = check_ident(incoming, err)) ||
	    (rc = check_ident(outgoing, err)) || (rc = pg_quote_ident(conn, live, &ql, err)) ||
	    (rc = pg_quote_ident(conn, incoming, &qi, err)) || (rc = pg_quote_ident(conn, outgoing, &qo, err)) ||
	    (rc = backup_db_exists(conn, live, &live_exists, err)) ||
	    (rc = backup_db_exists(conn, incoming, &incoming_exists, err)))
		goto out;
	if (!incoming_exists && (require_incoming || !live_exists)) {
		rc = st_error_set(err, ST_ENOTFOUND, "cannot swap in database '%s': it does not exist", incoming);
		goto out;
	}
	snprintf(sql1, sizeof(sql1), "ALTER DATABASE %s RENAME TO %s", ql, qo);
	snprintf(sql2, sizeof(sql2), "ALTER DATABASE %s RENAME TO %s", qi, ql);
	for (attempt = 1;; attempt++) {
		if ((live_exists && (rc = backup_db_terminate(conn, live, NULL, err)) != 0) ||
		    (incoming_exists && (rc = backup_db_terminate(conn, incoming, NULL, err)) != 0))
			goto out;
		if ((rc = pg_exec(conn, "BEGIN", 0, NULL, 30, err)) != 0)
			goto out;
		/* A live database that does not exist (a restore onto a new server)
		 * has nothing to move aside. */
		rc = live_exists ? pg_exec(conn, sql1, 0, NULL, 30, err) : 0;
		if (rc == 0 && incoming_exists)
			rc = pg_exec(conn, sql2, 0, NULL, 30, err);
		if (rc == 0)
			rc = pg_exec(conn, "COMMIT", 0, NULL, 30, err);
		if (rc == 0)
			goto out;
		snprintf(state, sizeof(state), "%s", pg_last_sqlstate(conn));
		pg_exec(conn, "ROLLBACK", 0, NULL, 30, NULL);
		/* 55006: a session reconnected between terminate and rename. */
		if (strcmp(state, "55006") != 0 || time_monotonic() > deadline)
			break;
		time_sleep(0.1 * attempt);
	}
	st_error_wrap(err, "cannot swap database '%s' for '%s'", live, incoming);
out:
	free(ql);
	free(qi);
	free(qo);
	return rc;
}

int backup_db_list_stamped(struct pg_conn *conn, const char *prefix, char ***names, size_t *count,
			   struct st_error *err)
{
	const char *params[1] = { prefix };
	PGresult *res = NULL;
	char **list = NULL;
	size_t n = 0;
	int rc, i;

	*names = NULL;
	*count = 0;
	/* prefix followed by exactly YYYYmmdd_HHMMSS; the prefix is compared
	 * as text, never as a pattern. */
	rc = pg_query(conn,
		      "SELECT datname FROM pg_database WHERE left(datname, length($1)) = $1 "
		      "AND substr(datname, length($1) + 1) ~ '^[0-9]{8}_[0-9]{6}$' ORDER BY 1",
		      1, params, 30, &res, err);
	if (rc)
		return rc;
	list = calloc((size_t)PQntuples(res) + 1, sizeof(*list));
	if (!list) {
		rc = st_error_set(err, ST_ENOMEM, "out of memory");
		goto out;
	}
	for (i = 0; i < PQntuples(res); i++) {
		if (!(list[n] = strdup(PQgetvalue(res, i, 0)))) {
			rc = st_error_set(err, ST_ENOMEM, "out of memory");
			goto out;
		}
		n++;
	}
out:
	PQclear(res);
	if (rc) {
		for (i = 0; list && list[i]; i++)
			free(list[i]);
		free(list);
		return rc;
	}
	*names = list;
	*count = n;
	return 0;
}

int backup_db_inventory(const struct st_config *cfg, const char *dbname, struct backup_manifest *out,
			struct st_error *err)
{
	static const char tables_sql[] =
		"SELECT n.nspname || '.' || c.relname FROM pg_class c "
		"JOIN pg_namespace n ON n.oid = c.relnamespace "
		"WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
		"AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%' "
		"ORDER BY n.nspname COLLATE \"C\", c.relname COLLATE \"C\"";
	static const char *const counted[] = { "User", "Post" };
	struct pg_conn *conn = NULL;
	PGresult *res = NULL;
	size_t i, k;
	int rc;

	memset(out, 0, sizeof(*out));
	text_copy(out->database, sizeof(out->database), dbname);
	if ((rc = services_pg_connect(cfg, dbname, BACKUP_APP_NAME, &conn, err)) != 0)
		goto out;
	if ((rc = pg_query(conn, tables_sql, 0, NULL, cfg->postgres.statement_timeout, &res, err)) != 0)
		goto out;
	for (i = 0; i < (size_t)PQntuples(res) && rc == 0; i++)
		rc = backup_manifest_add_table(out, PQgetvalue(res, (int)i, 0), err);
	for (k = 0; k < 2 && rc == 0; k++) {
		char want[64], *q = NULL, sql[160];
		long long rows = 0;
		int found = 0;

		snprintf(want, sizeof(want), "public.%s", counted[k]);
		for (i = 0; i < out->ntables; i++)
			found |= !strcmp(out->tables[i], want);
		if (!found)
			continue;
		if ((rc = pg_quote_ident(conn, counted[k], &q, err)) != 0)
			break;
		snprintf(sql, sizeof(sql), "SELECT count(*) FROM public.%s", q);
		free(q);
		if ((rc = pg_query_long(conn, sql, 0, NULL, 0, &rows, err)) == 0)
			rc = backup_manifest_add_count(out, counted[k], rows, err);
	}
out:
	PQclear(res);
	pg_close(conn);
	if (rc)
		backup_manifest_release(out);
	return rc;
}

int backup_compare(const struct backup_manifest *want, const struct backup_manifest *got,
		   const char *dbname, struct st_error *err)
{
	size_t i, j;

	for (i = 0; i < want->ntables; i++) {
		for (j = 0; j < got->ntables && strcmp(want->tables[i], got->tables[j]); j++)
			;
		if (j == got->ntables)
			return st_error_set(err, ST_EFAILED, "database '%s' lacks table %s, which the backup has",
					    dbname, want->tables[i]);
	}
	for (j = 0; j < got->ntables; j++) {
		for (i = 0; i < want->ntables && strcmp(want->tables[i], got->tables[j]); i++)
			;
		if (i == want->ntables)
			return st_error_set(err, ST_EFAILED, "database '%s' has table %s, which the backup lacks",
					    dbname, got->tables[j]);
	}
	if (want->kind == BACKUP_KIND_SCHEMA || !want->snapshot_shared)
		return 0;
	for (i = 0; i < want->ncounts; i++) {
		long long have = backup_manifest_count(got, want->counts[i].table);

		if (have != want->counts[i].rows)
			return st_error_set(err, ST_EFAILED,
					    "table \"%s\" in database '%s' has %lld rows, the backup had %lld",
					    want->counts[i].table, dbname, have, want->counts[i].rows);
	}
	return 0;
}

/* ---- load -------------------------------------------------------------- */

struct load_ctx {
	const struct backup_load_request *rq;
	struct backup_reader *reader;
	double started, last_progress;
	int failed;                        /* the reader or a check failed: do not send EOF */
	int rc;
	struct st_error err;
};

static void load_progress(struct load_ctx *l, int done)
{
	struct backup_reader_result r;
	struct backup_progress p;

	if (!l->rq->progress)
		return;
	backup_reader_result(l->reader, &r);
	memset(&p, 0, sizeof(p));
	p.phase = "load";
	p.bytes_raw = r.bytes_raw;
	p.bytes_total = l->rq->manifest->bytes_raw;
	p.elapsed = time_monotonic() - l->started;
	p.done = done;
	l->rq->progress(l->rq->progress_ud, &p);
}

/* psql's stdin: the decompressed dump. The end of input is only signalled
 * once the whole file proved to be the one in the manifest; otherwise the
 * read fails, the connection drops, and the caller drops the database. */
static ssize_t load_read(void *ud, void *buf, size_t cap, struct st_error *err)
{
	struct load_ctx *l = ud;
	const struct backup_manifest *m = l->rq->manifest;
	struct backup_reader_result r;
	char why[160];
	ssize_t n;
	double now;

	if (l->rq->cancel && *l->rq->cancel) {
		l->failed = 1;
		return st_error_set(err, ST_EABORTED, "load interrupted");
	}
	n = backup_reader_read(l->reader, buf, cap, err);
	if (n < 0) {
		l->failed = 1;
		return n;
	}
	now = time_monotonic();
	if (n > 0) {
		if (now - l->last_progress >= 0.25) {
			l->last_progress = now;
			load_progress(l, 0);
		}
		return n;
	}
	backup_reader_result(l->reader, &r);
	l->failed = 1;
	if (strcmp(r.sha256, m->sha256) != 0)
		return st_error_set(err, ST_EFAILED, "'%s': checksum mismatch while loading", m->name);
	if (r.bytes_raw != m->bytes_raw || r.bytes_in != m->bytes_compressed)
		return st_error_set(err, ST_EFAILED, "'%s' changed size while loading", m->name);
	if (!backup_trailer_ok(&r.trailer, why, sizeof(why)))
		return st_error_set(err, ST_EFAILED, "'%s' holds an incomplete dump: %s", m->name, why);
	l->failed = 0;
	return 0;
}

int backup_load(const struct backup_load_request *rq, struct st_error *err)
{
	static const char *const args[] = { "-X", "-q", "-v", "ON_ERROR_STOP=1", NULL };
	struct load_ctx l;
	struct pgtool_run run;
	char *password = NULL;
	int fd = -1, rc;

	memset(&l, 0, sizeof(l));
	memset(&run, 0, sizeof(run));
	l.rq = rq;
	fd = open(rq->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		rc = st_error_set(err, ST_EIO, "cannot open '%s': %s", rq->path, strerror(errno));
		goto out;
	}
	(void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	if ((rc = backup_reader_open(fd, rq->manifest->codec, rq->manifest->name, &l.reader, err)) != 0 ||
	    (rc = backup_read_password(rq->cfg, &password, err)) != 0)
		goto out;
	l.started = l.last_progress = time_monotonic();
	run.cfg = rq->cfg;
	run.docker = rq->docker;
	run.via = rq->via;
	run.pg_bin = rq->pg_bin;
	run.tool = "psql";
	run.args = args;
	run.database = rq->database;
	run.password = password;
	run.stdin_read = load_read;
	run.stdin_ud = &l;
	run.cancel = rq->cancel;
	rc = pgtool_run(&run, err);
	load_progress(&l, 1);
	if (rc) {
		st_error_wrap(err, "cannot load '%s' into database '%s'", rq->manifest->name, rq->database);
		goto out;
	}
	if (run.exit_code != 0 || run.err_out.error_line[0]) {
		char why[200];

		rc = st_error_set(err, ST_EFAILED, "psql failed loading '%s' into '%s' (exit %d): %s",
				  rq->manifest->name, rq->database, run.exit_code,
				  pgtool_failure(&run, why, sizeof(why)));
		goto out;
	}
	if (!run.stdin_complete || l.failed) {
		rc = st_error_set(err, ST_EFAILED, "psql did not read all of '%s'", rq->manifest->name);
		goto out;
	}
out:
	backup_reader_free(l.reader);
	if (fd >= 0)
		close(fd);
	config_secret_free(password);
	return rc;
}

/* ---- test-restore ------------------------------------------------------ */

int backup_test_restore(const struct st_config *cfg, struct docker_client *docker, const char *dir,
			const char *file, backup_progress_fn progress, void *progress_ud,
			volatile sig_atomic_t *cancel, struct backup_test_result *out,
			struct st_error *err)
{
	struct backup_check chk;
	struct backup_load_request lr;
	struct pg_conn *admin = NULL;
	char stamp[32];
	double t0 = time_monotonic();
	int rc, created = 0;

	memset(out, 0, sizeof(*out));
	memset(&chk, 0, sizeof(chk));
	if ((rc = backup_resolve(dir, file, &chk, err)) != 0)
		goto out;
	if ((rc = backup_manifest_load(chk.dir, chk.name, &chk.manifest, err)) != 0) {
		st_error_wrap(err, "cannot test-restore '%s'", chk.name);
		goto out;
	}
	if (chk.manifest.kind == BACKUP_KIND_DATA) {
		rc = st_error_set(err, ST_EUSAGE, "'%s' is a data-only backup: it needs the schema to load into",
				  chk.name);
		goto out;
	}
	time_format_compact(time_wall(), stamp, sizeof(stamp));
	snprintf(out->database, sizeof(out->database), "%.30s_testrestore_%.15s", chk.manifest.database, stamp);
	if ((rc = services_pg_connect(cfg, BACKUP_MAINTENANCE_DB, BACKUP_APP_NAME, &admin, err)) != 0 ||
	    (rc = backup_db_create(admin, out->database, chk.manifest.database, err)) != 0)
		goto out;
	created = 1;
	memset(&lr, 0, sizeof(lr));
	lr.cfg = cfg;
	lr.docker = docker;
	lr.path = chk.path;
	lr.manifest = &chk.manifest;
	lr.database = out->database;
	lr.via = cfg->backup.via;
	lr.progress = progress;
	lr.progress_ud = progress_ud;
	lr.cancel = cancel;
	if ((rc = backup_load(&lr, err)) != 0)
		goto out;
	if ((rc = backup_db_inventory(cfg, out->database, &out->found, err)) != 0)
		goto out;
	rc = backup_compare(&chk.manifest, &out->found, out->database, err);
out:
	if (created) {
		struct st_error derr = { 0 };

		/* After a server crash the admin connection is gone and new ones
		 * are refused until recovery ends: wait for it rather than leave
		 * the scratch database behind. */
		if (backup_db_drop(admin, out->database, &derr) != 0 &&
		    backup_db_drop_retry(cfg, out->database, BACKUP_DROP_WAIT, &derr) != 0) {
			if (rc == 0) {
				*err = derr;
				rc = derr.code;
			}
			st_error_hint(err, "the scratch database '%s' is left: spilttea-ops restore cleanup "
				      "--database %s", out->database, chk.manifest.database);
		}
	}
	pg_close(admin);
	backup_check_release(&chk);
	out->seconds = time_monotonic() - t0;
	return rc;
}

/*
 * backup.c - backup_create(): pg_dump through the streaming pipeline into a
 * published, verified backup with its manifest; cron metrics and webhook
 * bodies (see backup.h).
 */
#include "backup.h"
#include "atomic_file.h"
#include "backup_internal.h"
#include "config.h"
#include "pg.h"
#include "services.h"
#include "text.h"
#include "timeutil.h"
#include "version.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PROGRESS_INTERVAL 0.25

/* ---- row counts in the dump's snapshot --------------------------------- */

static const char *const COUNTED[] = { "User", "Post" };
#define N_COUNTED (sizeof(COUNTED) / sizeof(COUNTED[0]))

#define LOCK_WAIT_DEFAULT 300.0

struct counter {
	struct pg_conn *conn;         /* used only by the thread while it runs */
	const char *tables[N_COUNTED];
	size_t n;
	long long rows[N_COUNTED];
	double timeout;               /* per count */
	int rc;
	struct st_error err;
	pthread_t thread;
	int started;
	/* Made before the thread starts: PQgetCancel() must not run while
	 * another thread uses the connection; PQcancel() may. */
	PGcancel *cancel;
};

static int count_rows(struct pg_conn *conn, const char *table, double timeout, long long *rows,
		      struct st_error *err)
{
	char *quoted = NULL, sql[256];
	int rc;

	if ((rc = pg_quote_ident(conn, table, &quoted, err)) != 0)
		return rc;
	/* Identifier quoted by libpq; no value from input is spliced in. */
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM public.%s", quoted);
	free(quoted);
	return pg_query_long(conn, sql, 0, NULL, timeout, rows, err);
}

static void *counter_main(void *arg)
{
	struct counter *c = arg;
	size_t i;

	for (i = 0; i < c->n && c->rc == 0; i++)
		c->rc = count_rows(c->conn, c->tables[i], c->timeout, &c->rows[i], &c->err);
	return NULL;
}

/* Stops a running count (the dump failed, or we are leaving) and joins. */
static void counter_stop(struct counter *c)
{
	char ebuf[256];

	if (!c->started)
		return;
	if (c->cancel)
		PQcancel(c->cancel, ebuf, sizeof(ebuf));
	pthread_join(c->thread, NULL);
	c->started = 0;
}

/* Takes ACCESS SHARE on the counted tables in the snapshot's transaction,
 * waiting at most wait seconds: once held, no count can queue behind a
 * later ACCESS EXCLUSIVE request (a migration waiting for pg_dump). */
static int lock_counted(struct pg_conn *conn, const struct counter *c, double wait, struct st_error *err)
{
	struct sbuf sql = SBUF_INIT, names = SBUF_INIT;
	char dur[32];
	size_t i;
	int rc = 0;

	if (sbuf_puts(&sql, "LOCK TABLE "))
		rc = st_error_set(err, ST_ENOMEM, "out of memory");
	for (i = 0; i < c->n && rc == 0; i++) {
		char *quoted = NULL;

		if ((rc = pg_quote_ident(conn, c->tables[i], &quoted, err)) != 0)
			break;
		/* Identifiers quoted by libpq; no value from input is spliced in. */
		if (sbuf_printf(&sql, "%spublic.%s", i ? ", " : "", quoted) ||
		    sbuf_printf(&names, "%s\"%s\"", i ? ", " : "", c->tables[i]))
			rc = st_error_set(err, ST_ENOMEM, "out of memory");
		free(quoted);
	}
	if (rc == 0 && sbuf_puts(&sql, " IN ACCESS SHARE MODE"))
		rc = st_error_set(err, ST_ENOMEM, "out of memory");
	if (rc == 0 && (rc = pg_exec(conn, sbuf_str(&sql), 0, NULL, wait, err)) != 0) {
		if (rc == ST_ETIMEOUT) {
			st_error_set(err, ST_ETIMEOUT, "%s stayed locked by another session for %s: the backup "
				     "gives up", sbuf_str(&names), time_format_duration(wait, dur, sizeof(dur)));
			st_error_hint(err, "look for a migration or a transaction left open (pg_stat_activity), "
				      "then run the backup again");
		} else {
			st_error_wrap(err, "cannot lock %s for the row counts", sbuf_str(&names));
		}
	}
	sbuf_release(&sql);
	sbuf_release(&names);
	return rc;
}

/* Tables of the database (schema.name) in the current transaction. */
static int list_tables(struct pg_conn *conn, double timeout, struct backup_manifest *m,
		       struct st_error *err)
{
	static const char sql[] =
		"SELECT n.nspname || '.' || c.relname FROM pg_class c "
		"JOIN pg_namespace n ON n.oid = c.relnamespace "
		"WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
		"AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%' "
		"ORDER BY n.nspname COLLATE \"C\", c.relname COLLATE \"C\"";
	PGresult *res = NULL;
	int rc, i;

	if ((rc = pg_query(conn, sql, 0, NULL, timeout, &res, err)) != 0)
		return rc;
	for (i = 0; i < PQntuples(res) && rc == 0; i++)
		rc = backup_manifest_add_table(m, PQgetvalue(res, i, 0), err);
	PQclear(res);
	return rc;
}

static int has_table(const struct backup_manifest *m, const char *name)
{
	char want[160];
	size_t i;

	snprintf(want, sizeof(want), "public.%s", name);
	for (i = 0; i < m->ntables; i++)
		if (!strcmp(m->tables[i], want))
			return 1;
	return 0;
}

/* ---- the dump ------------------------------------------------------------ */

struct dump_ctx {
	struct backup_sink *sink;
	int sink_rc;
	struct st_error sink_err;
	const struct backup_request *rq;
	uint64_t bytes;
	uint64_t estimate;
	double started, last_progress;
	int cancelled;
};

static void dump_progress(struct dump_ctx *d, int done)
{
	struct backup_progress p;

	if (!d->rq->progress)
		return;
	memset(&p, 0, sizeof(p));
	p.phase = "dump";
	p.bytes_raw = d->bytes;
	p.estimate = d->estimate;
	p.elapsed = time_monotonic() - d->started;
	p.done = done;
	d->rq->progress(d->rq->progress_ud, &p);
}

static int dump_out(void *ud, const char *data, size_t len)
{
	struct dump_ctx *d = ud;
	double now;

	if (d->rq->cancel && *d->rq->cancel) {
		d->cancelled = 1;
		return 1;
	}
	if ((d->sink_rc = backup_sink_write(d->sink, data, len, &d->sink_err)) != 0)
		return 1;
	d->bytes += len;
	now = time_monotonic();
	if (now - d->last_progress >= PROGRESS_INTERVAL) {
		d->last_progress = now;
		dump_progress(d, 0);
	}
	return 0;
}

/* Picks a name no backup or manifest has yet (the lock keeps other backups
 * out; two in the same second wait for the next one). */
static int pick_name(const struct backup_request *rq, const char *dir, char *name, size_t size,
		     double *started, struct st_error *err)
{
	int tries;

	for (tries = 0; tries < 5; tries++) {
		char path[4096], mname[BACKUP_NAME_MAX + 8];
		struct stat st;

		*started = time_wall();
		backup_name_format(*started, rq->kind, rq->codec, name, size);
		backup_manifest_name(name, mname, sizeof(mname));
		snprintf(path, sizeof(path), "%s/%s", dir, name);
		if (stat(path, &st) != 0) {
			snprintf(path, sizeof(path), "%s/%s", dir, mname);
			if (stat(path, &st) != 0)
				return 0;
		}
		time_sleep(1.0 - (*started - (double)(long long)*started) + 0.01);
	}
	return st_error_set(err, ST_ECONFLICT, "cannot find a free backup name in '%s'", dir);
}

int backup_create(const struct backup_request *rq, struct backup_outcome *out, struct st_error *err)
{
	const struct st_config *cfg = rq->cfg;
	const char *dir = rq->dir ? rq->dir : cfg->backup.dir;
	const char *db = rq->database ? rq->database : cfg->postgres.database;
	struct backup_manifest *m = &out->manifest;
	struct st_lock *lock = NULL;
	struct pg_conn *conn = NULL;
	struct atomic_file *af = NULL;
	struct backup_sink *sink = NULL;
	struct backup_sink_opts so;
	struct backup_sink_result sr;
	struct counter counter;
	struct dump_ctx d;
	struct pgtool_run run;
	char *password = NULL, *snapshot = NULL, *server_version = NULL;
	char snap_arg[160], why[160];
	const char *args[6];
	char lock_arg[64];
	double lock_wait = rq->lock_wait > 0 ? rq->lock_wait : LOCK_WAIT_DEFAULT;
	int nargs = 0, vfd = -1, rc = 0, in_txn = 0, manifest_saved = 0;
	double t0 = time_monotonic(), started = 0;
	long long dbsize = 0;
	struct stat st;
	size_t i;

	memset(out, 0, sizeof(*out));
	memset(&counter, 0, sizeof(counter));
	memset(&d, 0, sizeof(d));
	memset(&run, 0, sizeof(run));

	if (rq->lock && (rc = lock_acquire(cfg->state_dir, BACKUP_LOCK_NAME, rq->command_line, &lock,
					   &out->takeover, err)) != 0)
		goto out;
	if ((rc = atomic_file_mkdirs(dir, 0700, err)) != 0)
		goto out;
	if (rq->lock && (rc = backup_sweep(dir, &out->swept, err)) != 0)
		goto out;
	if ((rc = backup_read_password(cfg, &password, err)) != 0)
		goto out;
	if ((rc = services_pg_connect(cfg, db, BACKUP_APP_NAME, &conn, err)) != 0)
		goto out;
	if ((rc = pg_query_text(conn, "SHOW server_version", 0, NULL, cfg->postgres.statement_timeout,
				&server_version, err)) != 0 ||
	    (rc = pg_query_long(conn, "SELECT pg_database_size(current_database())", 0, NULL,
				cfg->postgres.statement_timeout, &dbsize, err)) != 0)
		goto out;

	/* The snapshot pg_dump will use, held open until the dump is done. */
	if ((rc = pg_exec(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL,
			  cfg->postgres.statement_timeout, err)) != 0)
		goto out;
	in_txn = 1;
	{
		struct st_error serr = { 0 };

		if (pg_query_text(conn, "SELECT pg_export_snapshot()", 0, NULL, cfg->postgres.statement_timeout,
				  &snapshot, &serr) != 0) {
			/* A server that cannot export (a standby before 10...): count in a
			 * transaction of our own just before the dump instead. */
			pg_exec(conn, "ROLLBACK", 0, NULL, 0, NULL);
			in_txn = 0;
			free(snapshot);
			snapshot = NULL;
			if ((rc = pg_exec(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL,
					  cfg->postgres.statement_timeout, err)) != 0)
				goto out;
			in_txn = 1;
		}
	}
	if ((rc = list_tables(conn, cfg->postgres.statement_timeout, m, err)) != 0)
		goto out;
	if (rq->kind != BACKUP_KIND_SCHEMA)
		for (i = 0; i < N_COUNTED; i++)
			if (has_table(m, COUNTED[i]))
				counter.tables[counter.n++] = COUNTED[i];
	counter.conn = conn;
	counter.timeout = lock_wait;
	if (counter.n > 0 && (rc = lock_counted(conn, &counter, lock_wait, err)) != 0)
		goto out;
	if (!snapshot && counter.n > 0) {
		counter_main(&counter);
		if ((rc = counter.rc) != 0) {
			*err = counter.err;
			goto out;
		}
	}

	/* Where the dump goes: a temporary file, read back by the verifier. */
	if ((rc = pick_name(rq, dir, m->name, sizeof(m->name), &started, err)) != 0)
		goto out;
	snprintf(out->path, sizeof(out->path), "%s/%s", dir, m->name);
	if ((rc = atomic_file_open(out->path, 0600, &af, err)) != 0)
		goto out;
	vfd = open(atomic_file_temp_path(af), O_RDONLY | O_CLOEXEC);
	if (vfd < 0) {
		rc = st_error_set(err, ST_EIO, "cannot read back '%s': %s", atomic_file_temp_path(af),
				  strerror(errno));
		goto out;
	}
	memset(&so, 0, sizeof(so));
	so.name = m->name;
	so.codec = rq->codec;
	so.level = rq->level;
	so.fd = atomic_file_fd(af);
	so.verify_fd = vfd;
	so.threaded = 1;
	if ((rc = backup_sink_open(&so, &sink, err)) != 0)
		goto out;

	if (snapshot && counter.n > 0) {
		if (!(counter.cancel = PQgetCancel(pg_raw(conn)))) {
			rc = st_error_set(err, ST_ENOMEM, "out of memory");
			goto out;
		}
		if (pthread_create(&counter.thread, NULL, counter_main, &counter) != 0) {
			rc = st_error_set(err, ST_EIO, "cannot start the row count thread");
			goto out;
		}
		counter.started = 1;
	}

	/* A table locked exclusively (a migration) must not hang the nightly
	 * backup forever: give up, and say so, after lock_wait (5 minutes). */
	snprintf(lock_arg, sizeof(lock_arg), "--lock-wait-timeout=%lld", (long long)(lock_wait * 1000.0));
	args[nargs++] = lock_arg;
	if (snapshot) {
		snprintf(snap_arg, sizeof(snap_arg), "--snapshot=%s", snapshot);
		args[nargs++] = snap_arg;
	}
	if (rq->kind == BACKUP_KIND_SCHEMA)
		args[nargs++] = "--schema-only";
	else if (rq->kind == BACKUP_KIND_DATA)
		args[nargs++] = "--data-only";
	args[nargs] = NULL;

	d.sink = sink;
	d.rq = rq;
	d.estimate = dbsize > 0 ? (uint64_t)dbsize : 0;
	d.started = d.last_progress = time_monotonic();
	run.cfg = cfg;
	run.docker = rq->docker;
	run.via = rq->via;
	run.pg_bin = rq->pg_bin;
	run.tool = "pg_dump";
	run.args = args;
	run.database = db;
	run.password = password;
	run.on_stdout = dump_out;
	run.ud = &d;
	run.cancel = rq->cancel;
	rc = pgtool_run(&run, err);
	dump_progress(&d, 1);

	/* The dump failed: do not wait for counts nobody needs. */
	if (rc != 0 || run.exit_code != 0)
		counter_stop(&counter);
	if (counter.started) {
		pthread_join(counter.thread, NULL);
		counter.started = 0;
	}

	/* One reason, the first that applies. */
	if (d.cancelled || (rq->cancel && *rq->cancel)) {
		rc = st_error_set(err, ST_EABORTED, "backup interrupted");
		goto out;
	}
	if (d.sink_rc) {
		*err = d.sink_err;
		rc = d.sink_rc;
		goto out;
	}
	if (rc != 0) {
		st_error_wrap(err, "cannot run pg_dump");
		goto out;
	}
	if (run.exit_code != 0) {
		rc = st_error_set(err, ST_ESERVICE, "pg_dump failed (exit %d): %s", run.exit_code,
				  pgtool_failure(&run, why, sizeof(why)));
		goto out;
	}
	if (run.err_out.error_line[0]) {
		rc = st_error_set(err, ST_ESERVICE, "pg_dump reported an error: %s", run.err_out.error_line);
		goto out;
	}
	if ((rc = backup_sink_finish(sink, &sr, err)) != 0)
		goto out;
	if (!backup_trailer_ok(&sr.trailer, why, sizeof(why))) {
		rc = st_error_set(err, ST_EFAILED, "the dump of '%s' is incomplete: %s", db, why);
		goto out;
	}
	if (!sr.verified) {
		rc = st_error_set(err, ST_EFAILED, "'%s' was not verified", m->name);
		goto out;
	}
	if (counter.n > 0 && counter.rc != 0) {
		*err = counter.err;
		rc = st_error_wrap(err, "cannot count rows for the manifest");
		goto out;
	}
	/* Durable before it is announced; then the size must be what was verified. */
	if (fsync(atomic_file_fd(af)) != 0) {
		rc = st_error_set(err, ST_EIO, "cannot sync '%s': %s", m->name, strerror(errno));
		goto out;
	}
	if (fstat(atomic_file_fd(af), &st) != 0 || (uint64_t)st.st_size != sr.bytes_out) {
		rc = st_error_set(err, ST_EFAILED, "'%s' has %lld bytes on disk, %llu were verified", m->name,
				  (long long)st.st_size, (unsigned long long)sr.bytes_out);
		goto out;
	}

	m->format = BACKUP_MANIFEST_FORMAT;
	text_copy(m->database, sizeof(m->database), db);
	text_copy(m->server_version, sizeof(m->server_version), server_version);
	text_copy(m->pg_dump_version, sizeof(m->pg_dump_version), sr.trailer.dumped_by);
	m->kind = rq->kind;
	m->codec = rq->codec;
	m->level = rq->codec == BACKUP_CODEC_NONE ? 0 : rq->level ? rq->level : backup_codec_default_level(rq->codec);
	m->bytes_raw = sr.bytes_raw;
	m->bytes_compressed = sr.bytes_out;
	memcpy(m->sha256, sr.sha256, sizeof(m->sha256));
	m->started = started;
	m->duration = time_monotonic() - t0;
	text_copy(m->tool_version, sizeof(m->tool_version), ST_VERSION);
	text_copy(m->via, sizeof(m->via), rq->via == CONFIG_VIA_LOCAL ? "local" : "exec");
	m->verified = 1;
	m->verified_at = time_wall();
	m->snapshot_shared = snapshot != NULL;
	for (i = 0; i < counter.n; i++)
		if ((rc = backup_manifest_add_count(m, counter.tables[i], counter.rows[i], err)) != 0)
			goto out;
	out->compress_seconds = sr.compress_seconds;
	out->verify_seconds = sr.verify_seconds;

	/* Manifest first, then the rename that publishes the backup: a backup
	 * under its final name always has its manifest. A manifest whose save
	 * failed after its own rename is removed below like any other. */
	manifest_saved = 1;
	if ((rc = backup_manifest_save(dir, m, err)) != 0)
		goto out;
	{
		int renamed = 0;

		rc = atomic_file_commit_renamed(af, &renamed, err);
		af = NULL;
		/* Once renamed the backup is published (only the directory sync
		 * failed): removing its manifest would orphan it. */
		if (renamed)
			manifest_saved = 0;
	}
out:
	counter_stop(&counter);
	if (counter.cancel)
		PQfreeCancel(counter.cancel);
	backup_sink_free(sink);
	if (vfd >= 0)
		close(vfd);
	atomic_file_abort(af);
	if (manifest_saved) {
		char mname[BACKUP_NAME_MAX + 8], path[4096];

		backup_manifest_name(m->name, mname, sizeof(mname));
		snprintf(path, sizeof(path), "%s/%s", dir, mname);
		unlink(path);
	}
	if (conn && in_txn)
		pg_exec(conn, "ROLLBACK", 0, NULL, 0, NULL);
	pg_close(conn);
	config_secret_free(password);
	free(snapshot);
	free(server_version);
	lock_release(lock);
	return rc;
}

/* ---- cron reporting ------------------------------------------------------ */

/* The value of `metric{kind="K"} VALUE` in previous, or -1. */
static double previous_value(const char *previous, const char *metric, const char *kind)
{
	char want[160];
	const char *p;

	if (!previous)
		return -1;
	snprintf(want, sizeof(want), "%s{kind=\"%s\"} ", metric, kind);
	for (p = previous; (p = strstr(p, want)) != NULL; p += strlen(want))
		if (p == previous || p[-1] == '\n')
			return strtod(p + strlen(want), NULL);
	return -1;
}

int backup_metrics_render(const struct backup_report *r, const char *previous, struct sbuf *out,
			  struct st_error *err)
{
	const char *kind = backup_kind_name(r->kind);
	double last_success = r->ok ? r->finished : previous_value(previous, "spilttea_backup_last_success_timestamp_seconds", kind);
	double size = r->ok ? (double)r->size : previous_value(previous, "spilttea_backup_last_success_size_bytes", kind);
	int rc = 0;

	rc |= sbuf_printf(out,
			  "# HELP spilttea_backup_last_run_timestamp_seconds When the last backup run ended.\n"
			  "# TYPE spilttea_backup_last_run_timestamp_seconds gauge\n"
			  "spilttea_backup_last_run_timestamp_seconds{kind=\"%s\"} %.3f\n"
			  "# HELP spilttea_backup_last_run_success 1 when the last backup run published a verified backup.\n"
			  "# TYPE spilttea_backup_last_run_success gauge\n"
			  "spilttea_backup_last_run_success{kind=\"%s\"} %d\n"
			  "# HELP spilttea_backup_last_run_duration_seconds How long the last backup run took.\n"
			  "# TYPE spilttea_backup_last_run_duration_seconds gauge\n"
			  "spilttea_backup_last_run_duration_seconds{kind=\"%s\"} %.3f\n",
			  kind, r->finished, kind, r->ok ? 1 : 0, kind, r->duration);
	if (last_success >= 0)
		rc |= sbuf_printf(out,
				  "# HELP spilttea_backup_last_success_timestamp_seconds When the last verified backup was published.\n"
				  "# TYPE spilttea_backup_last_success_timestamp_seconds gauge\n"
				  "spilttea_backup_last_success_timestamp_seconds{kind=\"%s\"} %.3f\n",
				  kind, last_success);
	if (size >= 0)
		rc |= sbuf_printf(out,
				  "# HELP spilttea_backup_last_success_size_bytes Size of the last verified backup file.\n"
				  "# TYPE spilttea_backup_last_success_size_bytes gauge\n"
				  "spilttea_backup_last_success_size_bytes{kind=\"%s\"} %.0f\n",
				  kind, size);
	return rc ? st_error_set(err, ST_ENOMEM, "out of memory") : 0;
}

int backup_metrics_write(const char *path, const struct backup_report *r, struct st_error *err)
{
	struct sbuf out = SBUF_INIT;
	struct st_error rerr = { 0 };
	char *prev = NULL;
	int rc;

	/* The other kinds' lines of the previous file are kept; a file that
	 * cannot be read (none yet) has none. */
	if (text_read_file(path, 1024 * 1024, 0, "metrics file", &prev, NULL, &rerr) != 0)
		prev = NULL;
	rc = backup_metrics_render(r, prev && *prev ? prev : NULL, &out, err);
	if (rc == 0)
		rc = atomic_file_write_all(path, out.buf, out.len, 0644, err);
	if (rc)
		st_error_wrap(err, "cannot write metrics file '%s'", path);
	sbuf_release(&out);
	free(prev);
	return rc;
}

char *backup_webhook_body(const struct backup_report *r)
{
	char host[256] = "", when[40];
	json_t *j;
	char *s;

	gethostname(host, sizeof(host) - 1);
	j = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:f}", "event", r->ok ? "backup_succeeded" : "backup_failed",
		      "host", host, "database", r->database ? r->database : "", "kind",
		      backup_kind_name(r->kind), "error", r->error ? r->error : "", "time",
		      time_format_rfc3339(r->finished, when, sizeof(when)), "duration_seconds", r->duration);
	if (!j)
		return NULL;
	s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(j);
	return s;
}

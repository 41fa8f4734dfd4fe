/*
 * migrate.c - Prisma migration status (folders vs _prisma_migrations),
 * the backend's migrate commands through Docker exec, and migrate up with
 * its backup, checks, journal and lock (see migrate.h).
 */
#include "migrate.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atomic_file.h"
#include "container.h"
#include "journal.h"
#include "lock.h"
#include "sbuf.h"
#include "services.h"
#include "timeutil.h"

/* What migrate up and resolve change (lock.h): the database, and the
 * container Prisma runs in (up restarts it too). */
static int take_locks(const struct st_config *cfg, const char *command_line, struct lock_set **out,
		      struct st_error *err)
{
	char db[LOCK_NAME_MAX], svc[LOCK_NAME_MAX];
	const char *names[2] = { db, svc };
	int rc;

	if ((rc = lock_name_db(db, sizeof(db), cfg->postgres.database, err)) != 0 ||
	    (rc = lock_name_service(svc, sizeof(svc), cfg->migrate.service, err)) != 0)
		return rc;
	return lock_acquire_set(cfg->state_dir, names, 2, command_line, out, NULL, err);
}
#define MIGRATE_SQL "migration.sql"

const char *migrate_state_name(enum migrate_state s)
{
	switch (s) {
	case MIGRATE_APPLIED: return "applied";
	case MIGRATE_FAILED: return "failed";
	case MIGRATE_PENDING: return "pending";
	case MIGRATE_ROLLED_BACK: return "rolled back";
	case MIGRATE_MISSING: return "missing";
	}
	return "?";
}

int migrate_status_clean(const struct migrate_status *st)
{
	return st->failed == 0 && st->pending == 0;
}

/* ---- folders ------------------------------------------------------------- */

static int sha256_file(const char *path, char hex[65], struct st_error *err)
{
	unsigned char buf[65536], md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0, i;
	EVP_MD_CTX *ctx = NULL;
	ssize_t n;
	int fd = -1, rc = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = st_error_set(err, ST_EIO, "cannot read '%s': %s", path, strerror(errno));
		goto out;
	}
	ctx = EVP_MD_CTX_new();
	if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
		rc = st_error_set(err, ST_ENOMEM, "cannot start a SHA-256 digest");
		goto out;
	}
	while ((n = read(fd, buf, sizeof(buf))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = st_error_set(err, ST_EIO, "cannot read '%s': %s", path, strerror(errno));
			goto out;
		}
		EVP_DigestUpdate(ctx, buf, (size_t)n);
	}
	EVP_DigestFinal_ex(ctx, md, &mdlen);
	for (i = 0; i < mdlen && i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	hex[64] = '\0';
out:
	EVP_MD_CTX_free(ctx);
	if (fd >= 0)
		close(fd);
	return rc;
}

static int folder_cmp(const void *a, const void *b)
{
	return strcmp(((const struct migrate_folder *)a)->name, ((const struct migrate_folder *)b)->name);
}

void migrate_folders_free(struct migrate_folder *f, size_t count)
{
	size_t i;

	for (i = 0; f && i < count; i++) {
		free(f[i].name);
		free(f[i].path);
	}
	free(f);
}

int migrate_scan(const char *dir, struct migrate_folder **out, size_t *count, struct st_error *err)
{
	struct migrate_folder *list = NULL, *grown;
	size_t n = 0, cap = 0;
	struct dirent *de;
	DIR *d = NULL;
	int rc = 0;

	*out = NULL;
	*count = 0;
	d = opendir(dir);
	if (!d) {
		if (errno == ENOENT || errno == ENOTDIR) {
			rc = st_error_set(err, ST_ENOTFOUND, "migrations directory '%s' does not exist", dir);
			st_error_hint(err, "set migrate.dir to the release's prisma/migrations folder");
		} else {
			rc = st_error_set(err, ST_EIO, "cannot read migrations directory '%s': %s", dir,
					  strerror(errno));
		}
		goto out;
	}
	while ((errno = 0, de = readdir(d)) != NULL) {
		struct sbuf path = SBUF_INIT;
		struct stat st;

		if (de->d_name[0] == '.')
			continue;
		if (sbuf_printf(&path, "%s/%s/%s", dir, de->d_name, MIGRATE_SQL) != 0) {
			rc = st_error_set(err, ST_ENOMEM, "out of memory");
			goto out;
		}
		/* Prisma's folders hold migration.sql; anything else
		 * (migration_lock.toml, a README) is not a migration. */
		if (stat(sbuf_str(&path), &st) != 0 || !S_ISREG(st.st_mode)) {
			sbuf_release(&path);
			continue;
		}
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			grown = realloc(list, cap * sizeof(*list));
			if (!grown) {
				sbuf_release(&path);
				rc = st_error_set(err, ST_ENOMEM, "out of memory");
				goto out;
			}
			list = grown;
		}
		memset(&list[n], 0, sizeof(list[n]));
		list[n].name = strdup(de->d_name);
		list[n].path = sbuf_detach(&path);
		n++;
		if (!list[n - 1].name || !list[n - 1].path) {
			rc = st_error_set(err, ST_ENOMEM, "out of memory");
			goto out;
		}
		if ((rc = sha256_file(list[n - 1].path, list[n - 1].checksum, err)) != 0)
			goto out;
	}
	if (errno) {
		rc = st_error_set(err, ST_EIO, "cannot read migrations directory '%s': %s", dir, strerror(errno));
		goto out;
	}
	if (n)
		qsort(list, n, sizeof(*list), folder_cmp);
	*out = list;
	*count = n;
	list = NULL;
	n = 0;
out:
	if (d)
		closedir(d);
	migrate_folders_free(list, n);
	return rc;
}

/* ---- rows ---------------------------------------------------------------- */

void migrate_rows_free(struct migrate_row *r, size_t count)
{
	size_t i;

	for (i = 0; r && i < count; i++) {
		free(r[i].id);
		free(r[i].name);
		free(r[i].checksum);
		free(r[i].logs);
	}
	free(r);
}

static double cell_time(PGresult *res, int row, int col)
{
	double v = 0;

	if (PQgetisnull(res, row, col) || pg_parse_double(PQgetvalue(res, row, col), &v) != 0)
		return 0;
	return v;
}

static char *cell_dup(PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? NULL : strdup(PQgetvalue(res, row, col));
}

int migrate_load_rows(struct pg_conn *pg, double timeout, struct migrate_row **out, size_t *count,
		      int *table_exists, struct st_error *err)
{
	static const char exists_sql[] = "SELECT to_regclass('_prisma_migrations') IS NOT NULL";
	static const char rows_sql[] =
		"SELECT id, checksum, migration_name, logs, extract(epoch FROM started_at), "
		"extract(epoch FROM finished_at), extract(epoch FROM rolled_back_at), applied_steps_count "
		"FROM _prisma_migrations ORDER BY started_at, migration_name";
	struct migrate_row *rows = NULL;
	PGresult *res = NULL;
	char *exists = NULL;
	int i, n = 0, rc;

	*out = NULL;
	*count = 0;
	*table_exists = 0;
	if ((rc = pg_query_text(pg, exists_sql, 0, NULL, timeout, &exists, err)) != 0) {
		st_error_wrap(err, "cannot read _prisma_migrations");
		goto out;
	}
	if (!exists || strcmp(exists, "t") != 0)
		goto out;
	*table_exists = 1;
	if ((rc = pg_query(pg, rows_sql, 0, NULL, timeout, &res, err)) != 0) {
		st_error_wrap(err, "cannot read _prisma_migrations");
		goto out;
	}
	n = PQntuples(res);
	rows = calloc(n ? (size_t)n : 1, sizeof(*rows));
	if (!rows) {
		rc = st_error_set(err, ST_ENOMEM, "out of memory");
		goto out;
	}
	for (i = 0; i < n; i++) {
		long long steps = 0;

		rows[i].id = cell_dup(res, i, 0);
		rows[i].checksum = cell_dup(res, i, 1);
		rows[i].name = cell_dup(res, i, 2);
		rows[i].logs = cell_dup(res, i, 3);
		rows[i].started_at = cell_time(res, i, 4);
		rows[i].finished_at = cell_time(res, i, 5);
		rows[i].rolled_back_at = cell_time(res, i, 6);
		if (!PQgetisnull(res, i, 7))
			pg_parse_long(PQgetvalue(res, i, 7), &steps);
		rows[i].steps = (long)steps;
		if (!rows[i].id || !rows[i].checksum || !rows[i].name) {
			rc = st_error_set(err, ST_ENOMEM, "out of memory");
			goto out;
		}
	}
	*out = rows;
	*count = (size_t)n;
	rows = NULL;
out:
	migrate_rows_free(rows, (size_t)n);
	PQclear(res);
	free(exists);
	return rc;
}

/* ---- status -------------------------------------------------------------- */

void migrate_status_release(struct migrate_status *st)
{
	size_t i;

	if (!st)
		return;
	for (i = 0; i < st->count; i++) {
		free(st->entries[i].name);
		free(st->entries[i].path);
		free(st->entries[i].logs);
	}
	free(st->entries);
	memset(st, 0, sizeof(*st));
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int judge(const char *name, const struct migrate_folder *folder, const struct migrate_row *rows,
		 size_t nrows, struct migrate_entry *e)
{
	const struct migrate_row *applied = NULL, *failed = NULL;
	size_t i;

	memset(e, 0, sizeof(*e));
	for (i = 0; i < nrows; i++) {
		const struct migrate_row *r = &rows[i];
		if (strcmp(r->name, name) != 0)
			continue;
		if (r->rolled_back_at > 0)
			e->rolled_back_rows++;
		else if (r->finished_at > 0)
			applied = r;   /* rows are in start order: the last wins */
		else
			failed = r;
	}
	e->name = strdup(name);
	e->has_folder = folder != NULL;
	e->path = folder ? strdup(folder->path) : NULL;
	if (!e->name || (folder && !e->path))
		return ST_ENOMEM;
	if (applied) {
		e->state = folder ? MIGRATE_APPLIED : MIGRATE_MISSING;
		e->modified = folder && strcmp(applied->checksum, folder->checksum) != 0;
		e->started_at = applied->started_at;
		e->finished_at = applied->finished_at;
	} else if (failed) {
		/* A failed row blocks Prisma whether or not its folder exists. */
		e->state = MIGRATE_FAILED;
		e->started_at = failed->started_at;
		if (failed->logs && !(e->logs = strdup(failed->logs)))
			return ST_ENOMEM;
	} else {
		e->state = folder ? MIGRATE_PENDING : MIGRATE_ROLLED_BACK;
	}
	return 0;
}

int migrate_status_build(const struct migrate_folder *folders, size_t nfolders,
			 const struct migrate_row *rows, size_t nrows, struct migrate_status *st,
			 struct st_error *err)
{
	const char **names = NULL;
	size_t n = 0, i, j;
	int rc = 0;

	memset(st, 0, sizeof(*st));
	st->table_exists = 1;
	names = calloc(nfolders + nrows + 1, sizeof(*names));
	if (!names)
		goto oom;
	for (i = 0; i < nfolders; i++)
		names[n++] = folders[i].name;
	for (i = 0; i < nrows; i++)
		names[n++] = rows[i].name;
	if (n)
		qsort(names, n, sizeof(*names), name_cmp);
	for (i = j = 0; i < n; i++)
		if (j == 0 || strcmp(names[j - 1], names[i]) != 0)
			names[j++] = names[i];
	n = j;
	st->entries = calloc(n ? n : 1, sizeof(*st->entries));
	if (!st->entries)
		goto oom;
	for (i = 0; i < n; i++) {
		const struct migrate_folder *folder = NULL;
		struct migrate_entry *e = &st->entries[i];

		for (j = 0; j < nfolders; j++)
			if (!strcmp(folders[j].name, names[i]))
				folder = &folders[j];
		st->count++;
		if (judge(names[i], folder, rows, nrows, e) != 0)
			goto oom;
		switch (e->state) {
		case MIGRATE_APPLIED: st->applied++; break;
		case MIGRATE_FAILED: st->failed++; break;
		case MIGRATE_PENDING: st->pending++; break;
		case MIGRATE_ROLLED_BACK: st->rolled_back++; break;
		case MIGRATE_MISSING: st->missing++; break;
		}
		if (e->modified)
			st->modified++;
	}
	goto out;
oom:
	rc = st_error_set(err, ST_ENOMEM, "out of memory judging migrations");
	migrate_status_release(st);
out:
	free(names);
	return rc;
}

int migrate_status_read(const struct st_config *cfg, struct pg_conn *pg, struct migrate_status *st,
			struct st_error *err)
{
	struct migrate_folder *folders = NULL;
	struct migrate_row *rows = NULL;
	size_t nf = 0, nr = 0;
	int exists = 0, rc;

	memset(st, 0, sizeof(*st));
	if ((rc = migrate_scan(cfg->migrate.dir, &folders, &nf, err)) != 0)
		goto out;
	if ((rc = migrate_load_rows(pg, cfg->postgres.statement_timeout, &rows, &nr, &exists, err)) != 0)
		goto out;
	if ((rc = migrate_status_build(folders, nf, rows, nr, st, err)) != 0)
		goto out;
	st->table_exists = exists;
out:
	migrate_folders_free(folders, nf);
	migrate_rows_free(rows, nr);
	return rc;
}

/* ---- exec ---------------------------------------------------------------- */

struct exec_fwd {
	migrate_output_fn out;
	void *ud;
	char tail[512];              /* the last bytes of output, for messages */
	size_t tail_len;
};

static void keep_tail(struct exec_fwd *f, const char *data, size_t len)
{
	if (len >= sizeof(f->tail) - 1) {
		memcpy(f->tail, data + len - (sizeof(f->tail) - 1), sizeof(f->tail) - 1);
		f->tail_len = sizeof(f->tail) - 1;
	} else {
		if (f->tail_len + len > sizeof(f->tail) - 1) {
			size_t drop = f->tail_len + len - (sizeof(f->tail) - 1);
			memmove(f->tail, f->tail + drop, f->tail_len - drop);
			f->tail_len -= drop;
		}
		memcpy(f->tail + f->tail_len, data, len);
		f->tail_len += len;
	}
	f->tail[f->tail_len] = '\0';
}

static int fwd_stdout(void *ud, const char *data, size_t len)
{
	struct exec_fwd *f = ud;

	keep_tail(f, data, len);
	if (f->out)
		f->out(f->ud, 1, data, len);
	return 0;
}

static int fwd_stderr(void *ud, const char *data, size_t len)
{
	struct exec_fwd *f = ud;

	keep_tail(f, data, len);
	if (f->out)
		f->out(f->ud, 2, data, len);
	return 0;
}

/* The last non-empty line of the output kept in f. */
static void last_line(const struct exec_fwd *f, char *buf, size_t size)
{
	const char *end = f->tail + f->tail_len, *start;

	while (end > f->tail && (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' '))
		end--;
	start = end;
	while (start > f->tail && start[-1] != '\n')
		start--;
	snprintf(buf, size, "%.*s", (int)(end - start), start);
}

static int exec_argv(const struct st_config *cfg, struct docker_client *d, const struct config_list *argv,
		     const char *const *extra, struct exec_fwd *fwd, int *exit_code, char *shown,
		     size_t shown_size, struct st_error *err)
{
	const char **full = NULL;
	const char *container;
	struct docker_exec_opts o;
	struct docker_exec_result res;
	struct sbuf words = SBUF_INIT;
	size_t n = 0, i, nextra = 0;
	int rc;

	*exit_code = -1;
	if ((rc = services_container(cfg, cfg->migrate.service, &container, err)) != 0)
		return rc;
	while (extra && extra[nextra])
		nextra++;
	full = calloc(argv->count + nextra + 1, sizeof(*full));
	if (!full)
		return st_error_set(err, ST_ENOMEM, "out of memory");
	for (i = 0; i < argv->count; i++)
		full[n++] = argv->items[i];
	for (i = 0; i < nextra; i++)
		full[n++] = extra[i];
	for (i = 0; i < n; i++)
		sbuf_printf(&words, "%s%s", i ? " " : "", full[i]);
	snprintf(shown, shown_size, "%s", sbuf_str(&words));
	memset(&o, 0, sizeof(o));
	o.argv = full;
	o.on_stdout = fwd_stdout;
	o.on_stderr = fwd_stderr;
	o.ud = fwd;
	o.timeout = cfg->migrate.timeout;
	memset(&res, 0, sizeof(res));
	rc = docker_exec(d, container, &o, &res, err);
	if (rc != 0)
		st_error_wrap(err, "cannot run '%s' in '%s'", sbuf_str(&words), container);
	else
		*exit_code = res.exit_code;
	sbuf_release(&words);
	free(full);
	return rc;
}

int migrate_exec(const struct st_config *cfg, struct docker_client *d, const struct config_list *argv,
		 const char *const *extra, migrate_output_fn out, void *ud, int *exit_code,
		 struct st_error *err)
{
	struct exec_fwd fwd;
	char shown[512];

	memset(&fwd, 0, sizeof(fwd));
	fwd.out = out;
	fwd.ud = ud;
	return exec_argv(cfg, d, argv, extra, &fwd, exit_code, shown, sizeof(shown), err);
}

/* ---- last.json ------------------------------------------------------------ */

static int last_path(const char *state_dir, struct sbuf *p)
{
	return sbuf_printf(p, "%s/migrate/last.json", state_dir);
}

int migrate_last_load(const char *state_dir, struct migrate_last *out, struct st_error *err)
{
	struct sbuf p = SBUF_INIT;
	json_error_t jerr;
	json_t *j = NULL;
	const char *bp = NULL, *t = NULL, *r = NULL, *id = NULL;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	if (last_path(state_dir, &p) != 0) {
		rc = st_error_set(err, ST_ENOMEM, "out of memory");
		goto out;
	}
	if (access(sbuf_str(&p), F_OK) != 0) {
		rc = st_error_set(err, ST_ENOTFOUND, "no migrate up has run here ('%s' does not exist)",
				  sbuf_str(&p));
		goto out;
	}
	j = json_load_file(sbuf_str(&p), 0, &jerr);
	if (!j || json_unpack(j, "{s:s, s:s, s:s, s?s}", "backup", &bp, "time", &t, "result", &r, "run", &id) != 0) {
		rc = st_error_set(err, ST_EPROTO, "cannot read '%s': %s", sbuf_str(&p),
				  j ? "not a migrate record" : jerr.text);
		goto out;
	}
	snprintf(out->backup_path, sizeof(out->backup_path), "%s", bp);
	snprintf(out->time, sizeof(out->time), "%s", t);
	snprintf(out->result, sizeof(out->result), "%s", r);
	snprintf(out->run_id, sizeof(out->run_id), "%s", id ? id : "");
out:
	json_decref(j);
	sbuf_release(&p);
	return rc;
}

int migrate_last_save(const char *state_dir, const struct migrate_last *m, struct st_error *err)
{
	struct sbuf p = SBUF_INIT, dir = SBUF_INIT;
	json_t *j = NULL;
	char *text = NULL;
	int rc = 0;

	j = json_pack("{s:s, s:s, s:s, s:s}", "backup", m->backup_path, "time", m->time, "result", m->result,
		      "run", m->run_id);
	if (!j || last_path(state_dir, &p) != 0 || sbuf_printf(&dir, "%s/migrate", state_dir) != 0 ||
	    !(text = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS))) {
		rc = st_error_set(err, ST_ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = atomic_file_mkdirs(sbuf_str(&dir), 0700, err)) != 0 ||
	    (rc = atomic_file_write_all(sbuf_str(&p), text, strlen(text), 0600, err)) != 0)
		goto out;
out:
	free(text);
	json_decref(j);
	sbuf_release(&p);
	sbuf_release(&dir);
	return rc;
}

/* ---- migrate up ----------------------------------------------------------- */

struct up_run {
	const struct migrate_up_request *rq;
	struct migrate_up_result *res;
	struct journal *journal;
	struct journal_run jrun;
	int journal_ok;
	const char *step;
	double t_step;
};

static void step_start(struct up_run *u, const char *step, const char *what)
{
	u->step = step;
	u->t_step = time_monotonic();
	if (u->rq->ui && u->rq->ui->step)
		u->rq->ui->step(u->rq->ui->ud, step, what);
}

/* Ends the running step: tells the UI and journals it. rc 0 is ok. */
static void step_end(struct up_run *u, int rc, const struct st_error *err, json_t *args)
{
	struct journal_step js;
	struct st_error jerr = { 0 };

	if (u->rq->ui && u->rq->ui->step_done)
		u->rq->ui->step_done(u->rq->ui->ud, u->step, rc == 0, rc == 0 ? NULL : err->message);
	if (u->journal_ok) {
		memset(&js, 0, sizeof(js));
		js.step = u->step;
		js.action = "migrate.up";
		js.phase = "act";
		js.result = rc == 0 ? "ok" : rc == ST_EABORTED ? "aborted" : "failed";
		js.duration = time_monotonic() - u->t_step;
		js.args = args;
		js.error = rc == 0 ? NULL : err->message;
		journal_step(u->journal, &u->jrun, &js, &jerr);
	}
	json_decref(args);
}

static void fill_restore(struct migrate_up_result *res, const struct st_config *cfg)
{
	char dir[4096];

	if (!res->backup_path[0])
		return;
	snprintf(dir, sizeof(dir), "%s", res->backup_path);
	/* In backup.dir a name is enough; elsewhere the path. */
	if (!strcmp(dirname(dir), cfg->backup.dir))
		snprintf(res->restore_command, sizeof(res->restore_command), "spilttea-ops restore %s",
			 res->backup_name);
	else
		snprintf(res->restore_command, sizeof(res->restore_command), "spilttea-ops restore %s",
			 res->backup_path);
}

/* The hint after a failure past the backup. */
static void restore_hint(struct st_error *err, const struct migrate_up_result *res, const char *failed)
{
	if (res->restore_command[0] && failed)
		st_error_hint(err, "restore the pre-migration backup: %s (or: spilttea-ops rollback db); "
			      "or mark the migration rolled back: spilttea-ops migrate resolve --rolled-back %s",
			      res->restore_command, failed);
	else if (res->restore_command[0])
		st_error_hint(err, "restore the pre-migration backup: %s (or: spilttea-ops rollback db)",
			      res->restore_command);
	else if (failed)
		st_error_hint(err, "no pre-migration backup was taken (--no-backup); mark it rolled back: "
			      "spilttea-ops migrate resolve --rolled-back %s", failed);
}

/* "a, b and c" of the names of entries in state s (at most 5). */
static void names_in(const struct migrate_status *st, enum migrate_state s, char *buf, size_t size)
{
	size_t i, n = 0, len = 0;

	buf[0] = '\0';
	for (i = 0; i < st->count && len < size; i++) {
		if (st->entries[i].state != s)
			continue;
		if (++n > 5) {
			len += (size_t)snprintf(buf + len, size - len, ", ...");
			break;
		}
		len += (size_t)snprintf(buf + len, size - len, "%s'%s'", n > 1 ? ", " : "", st->entries[i].name);
	}
}

static int up_cancelled(const struct migrate_up_request *rq)
{
	return rq->cancel && *rq->cancel;
}

/* Interrupted before the step named what could start: nothing of it ran. */
static int interrupted_before(struct up_run *u, const char *step, const char *what, struct st_error *err)
{
	step_start(u, step, what);
	st_error_set(err, ST_EABORTED, "interrupted before '%s': no migration applied", step);
	step_end(u, ST_EABORTED, err, NULL);
	return ST_EABORTED;
}

static const char *first_in(const struct migrate_status *st, enum migrate_state s)
{
	size_t i;

	for (i = 0; i < st->count; i++)
		if (st->entries[i].state == s)
			return st->entries[i].name;
	return NULL;
}

int migrate_up(const struct migrate_up_request *rq, struct migrate_up_result *res, struct st_error *err)
{
	const struct st_config *cfg = rq->cfg;
	struct migrate_status before, after;
	struct lock_set *locks = NULL;
	struct up_run u;
	struct migrate_last last;
	struct exec_fwd fwd;
	struct st_error jerr = { 0 };
	const struct config_service *svc;
	const char *container = NULL;
	char names[512], shown[512], line[256], stamp[40];
	char failed_name[256] = "";
	json_t *params = NULL;
	int rc, last_written = 0;

	memset(res, 0, sizeof(*res));
	memset(&before, 0, sizeof(before));
	memset(&after, 0, sizeof(after));
	memset(&u, 0, sizeof(u));
	memset(&last, 0, sizeof(last));
	res->exit_code = -1;
	u.rq = rq;
	u.res = res;

	if (rq->no_backup && (!rq->reason || !*rq->reason)) {
		rc = st_error_set(err, ST_EUSAGE, "--no-backup needs --reason TEXT: why this migration runs "
				  "without a backup is journaled");
		return rc;
	}
	if (!rq->no_backup && !rq->backup)
		return st_error_set(err, ST_EUSAGE, "migrate up needs a way to take a backup");
	if ((rc = services_container(cfg, cfg->migrate.service, &container, err)) != 0)
		return rc;
	if ((rc = take_locks(cfg, rq->command_line, &locks, err)) != 0)
		return rc;

	params = json_pack("{s:b, s:s?}", "no_backup", rq->no_backup, "reason",
			   rq->no_backup ? rq->reason : NULL);
	u.jrun.runbook = "migrate-up";
	u.jrun.command_line = rq->command_line;
	u.jrun.params = params;
	if (journal_open(cfg->state_dir, &u.journal, &jerr) == 0 && journal_start(u.journal, &u.jrun, &jerr) == 0) {
		u.journal_ok = 1;
		snprintf(res->run_id, sizeof(res->run_id), "%s", u.jrun.id);
	}

	/* 1. what is there to do */
	step_start(&u, "status", "read _prisma_migrations and the migration folders");
	rc = migrate_status_read(cfg, rq->pg, &before, err);
	if (rc == 0 && before.failed) {
		names_in(&before, MIGRATE_FAILED, names, sizeof(names));
		snprintf(failed_name, sizeof(failed_name), "%s", first_in(&before, MIGRATE_FAILED));
		rc = st_error_set(err, ST_EABORTED, "failed migration%s recorded: %s; nothing applied",
				  before.failed == 1 ? "" : "s", names);
		st_error_hint(err, "after repairing the database: spilttea-ops migrate resolve --rolled-back %s "
			      "(or restore: spilttea-ops rollback db)", failed_name);
	}
	step_end(&u, rc, err, rc == 0 ? json_pack("{s:i, s:i}", "pending", (int)before.pending, "applied",
						  (int)before.applied) : NULL);
	if (rc != 0)
		goto out;
	res->pending_before = before.pending;
	if (before.pending == 0)
		goto out;

	/* 2. a verified backup first */
	if (up_cancelled(rq)) {
		rc = interrupted_before(&u, "backup", "take a verified backup of the database", err);
		goto out;
	}
	if (rq->no_backup) {
		step_start(&u, "backup", "no backup (--no-backup)");
		step_end(&u, 0, err, json_pack("{s:b, s:s}", "skipped", 1, "reason", rq->reason));
	} else {
		step_start(&u, "backup", "take a verified backup of the database");
		rc = rq->backup(rq->backup_ud, res->backup_path, sizeof(res->backup_path), err);
		if (rc != 0) {
			st_error_wrap(err, "no migration applied: the pre-migration backup failed");
		} else {
			char tmp[4096];
			snprintf(tmp, sizeof(tmp), "%s", res->backup_path);
			snprintf(res->backup_name, sizeof(res->backup_name), "%s", basename(tmp));
			fill_restore(res, cfg);
		}
		step_end(&u, rc, err, rc == 0 ? json_pack("{s:s}", "backup", res->backup_name) : NULL);
		if (rc != 0)
			goto out;
	}
	/* The last moment to stop with nothing applied (the backup may have
	 * ended because of the interrupt, or just before it). */
	if (up_cancelled(rq)) {
		rc = interrupted_before(&u, "migrate", "apply the pending migrations", err);
		goto out;
	}
	snprintf(last.backup_path, sizeof(last.backup_path), "%s", res->backup_path);
	snprintf(last.time, sizeof(last.time), "%s", time_format_rfc3339(time_wall(), stamp, sizeof(stamp)));
	snprintf(last.result, sizeof(last.result), "running");
	snprintf(last.run_id, sizeof(last.run_id), "%s", res->run_id);
	if ((rc = migrate_last_save(cfg->state_dir, &last, err)) != 0) {
		restore_hint(err, res, NULL);
		goto out;
	}
	last_written = 1;

	/* 3. the configured command, in the backend container */
	memset(&fwd, 0, sizeof(fwd));
	fwd.out = rq->ui ? rq->ui->output : NULL;
	fwd.ud = rq->ui ? rq->ui->ud : NULL;
	names_in(&before, MIGRATE_PENDING, names, sizeof(names));
	snprintf(line, sizeof(line), "apply %zu pending migration%s in '%s'", before.pending,
		 before.pending == 1 ? "" : "s", container);
	step_start(&u, "migrate", line);
	res->applied_any = 1;
	rc = exec_argv(cfg, rq->docker, &cfg->migrate.command, NULL, &fwd, &res->exit_code, shown,
		       sizeof(shown), err);
	if (rc == 0 && res->exit_code != 0) {
		last_line(&fwd, line, sizeof(line));
		rc = st_error_set(err, ST_EFAILED, "'%s' in '%s' exited %d%s%s", shown, container, res->exit_code,
				  line[0] ? ": " : "", line);
	}
	step_end(&u, rc, err, json_pack("{s:s, s:i, s:s}", "command", shown, "exit_code", res->exit_code,
					"pending", names));
	/* Whatever the command said, the table tells what happened. */
	if (rc != 0) {
		struct st_error e2 = { 0 };
		if (migrate_status_read(cfg, rq->pg, &after, &e2) == 0 && after.failed)
			snprintf(failed_name, sizeof(failed_name), "%s", first_in(&after, MIGRATE_FAILED));
		restore_hint(err, res, failed_name[0] ? failed_name : NULL);
		goto out;
	}

	/* 4. the status must be clean now */
	step_start(&u, "verify", "check that nothing is failed or pending");
	rc = migrate_status_read(cfg, rq->pg, &after, err);
	if (rc == 0 && !migrate_status_clean(&after)) {
		char f[512], p[512];
		names_in(&after, MIGRATE_FAILED, f, sizeof(f));
		names_in(&after, MIGRATE_PENDING, p, sizeof(p));
		if (after.failed)
			snprintf(failed_name, sizeof(failed_name), "%s", first_in(&after, MIGRATE_FAILED));
		rc = st_error_set(err, ST_EFAILED, "'%s' exited 0 but the database is not up to date:%s%s%s%s",
				  shown, after.failed ? " failed " : "", f, after.pending ? " pending " : "", p);
	}
	step_end(&u, rc, err, rc == 0 ? json_pack("{s:i}", "applied", (int)after.applied) : NULL);
	if (rc != 0) {
		restore_hint(err, res, failed_name[0] ? failed_name : NULL);
		goto out;
	}

	/* 5. restart the backend and wait for it */
	step_start(&u, "restart", "restart the backend so it loads the new schema");
	rc = docker_container_restart(rq->docker, container, 10, 0, err);
	step_end(&u, rc, err, NULL);
	if (rc != 0) {
		restore_hint(err, res, NULL);
		goto out;
	}
	step_start(&u, "health", "wait until the backend is healthy");
	svc = config_service(cfg, cfg->migrate.service);
	rc = container_wait_ready_cancel(rq->docker, container,
					 svc ? (svc->health_url ? svc->health_url : svc->url) : NULL,
					 rq->health_timeout > 0 ? rq->health_timeout : 120, 0.5, rq->cancel, NULL, err);
	if (rc == ST_EABORTED) {
		st_error_set(err, ST_EABORTED, "interrupted while waiting for '%s' to become healthy: the "
			     "migrations are applied and it was restarted", container);
		st_error_hint(err, "check it: spilttea-ops health");
	}
	step_end(&u, rc, err, NULL);
	if (rc != 0 && rc != ST_EABORTED)
		restore_hint(err, res, NULL);
out:
	if (last_written) {
		struct st_error e2 = { 0 };
		snprintf(last.result, sizeof(last.result), "%s", rc == 0 ? "ok" : "failed");
		migrate_last_save(cfg->state_dir, &last, &e2);
	}
	if (u.journal_ok)
		journal_end(u.journal, &u.jrun, rc == 0 ? "ok" : rc == ST_EABORTED ? "aborted" : "failed", rc,
			    rc == 0 ? NULL : err->message, &jerr);
	journal_close(u.journal);
	json_decref(params);
	migrate_status_release(&before);
	migrate_status_release(&after);
	lock_release_set(locks);
	return rc;
}

/* ---- resolve --------------------------------------------------------------- */

int migrate_resolve(const struct st_config *cfg, struct docker_client *d, struct pg_conn *pg,
		    const char *how, const char *name, const char *command_line, migrate_output_fn out,
		    void *ud, int *exit_code, struct st_error *err)
{
	struct migrate_status st;
	const struct migrate_entry *e = NULL;
	struct lock_set *locks = NULL;
	struct journal *j = NULL;
	struct journal_run jrun;
	struct journal_step js;
	struct exec_fwd fwd;
	struct st_error jerr = { 0 };
	const char *extra[3];
	const char *container = NULL;
	char shown[512], line[256];
	json_t *params = NULL, *args = NULL;
	double t0;
	size_t i;
	int rc, code = -1, journaled = 0;

	memset(&st, 0, sizeof(st));
	memset(&jrun, 0, sizeof(jrun));
	if (exit_code)
		*exit_code = -1;
	if (strcmp(how, "--rolled-back") && strcmp(how, "--applied"))
		return st_error_set(err, ST_EUSAGE, "resolve needs --rolled-back NAME or --applied NAME");
	if ((rc = services_container(cfg, cfg->migrate.service, &container, err)) != 0)
		return rc;
	if ((rc = take_locks(cfg, command_line, &locks, err)) != 0)
		return rc;
	if ((rc = migrate_status_read(cfg, pg, &st, err)) != 0)
		goto out;
	for (i = 0; i < st.count; i++)
		if (!strcmp(st.entries[i].name, name))
			e = &st.entries[i];
	if (!e) {
		rc = st_error_set(err, ST_ENOTFOUND, "no migration '%s' in '%s' or _prisma_migrations", name,
				  cfg->migrate.dir);
		st_error_hint(err, "spilttea-ops migrate status");
		goto out;
	}
	if (!strcmp(how, "--rolled-back") ? e->state != MIGRATE_FAILED :
	    e->state != MIGRATE_FAILED && e->state != MIGRATE_PENDING) {
		rc = st_error_set(err, ST_EABORTED, "migration '%s' is %s: %s is for a %s one", name,
				  migrate_state_name(e->state), how,
				  !strcmp(how, "--rolled-back") ? "failed" : "failed or pending");
		st_error_hint(err, "spilttea-ops migrate status");
		goto out;
	}

	params = json_pack("{s:s, s:s}", "how", how, "name", name);
	jrun.runbook = "migrate-resolve";
	jrun.command_line = command_line;
	jrun.params = params;
	if (journal_open(cfg->state_dir, &j, &jerr) == 0 && journal_start(j, &jrun, &jerr) == 0)
		journaled = 1;
	extra[0] = how;
	extra[1] = name;
	extra[2] = NULL;
	memset(&fwd, 0, sizeof(fwd));
	fwd.out = out;
	fwd.ud = ud;
	t0 = time_monotonic();
	rc = exec_argv(cfg, d, &cfg->migrate.resolve_command, extra, &fwd, &code, shown, sizeof(shown), err);
	if (rc == 0 && code != 0) {
		last_line(&fwd, line, sizeof(line));
		rc = st_error_set(err, ST_EFAILED, "'%s' in '%s' exited %d%s%s", shown, container, code,
				  line[0] ? ": " : "", line);
	}
	if (journaled) {
		args = json_pack("{s:s, s:i}", "command", shown, "exit_code", code);
		memset(&js, 0, sizeof(js));
		js.step = "resolve";
		js.action = "migrate.resolve";
		js.phase = "act";
		js.result = rc == 0 ? "ok" : rc == ST_EABORTED ? "aborted" : "failed";
		js.duration = time_monotonic() - t0;
		js.args = args;
		js.error = rc == 0 ? NULL : err->message;
		journal_step(j, &jrun, &js, &jerr);
		journal_end(j, &jrun, rc == 0 ? "ok" : "failed", rc, rc == 0 ? NULL : err->message, &jerr);
	}
out:
	if (exit_code)
		*exit_code = code;
	json_decref(args);
	json_decref(params);
	journal_close(j);
	migrate_status_release(&st);
	lock_release_set(locks);
	return rc;
}

/*
 * checklist.c - the pre-deploy checklist: machine checks, attestations and
 * the text, JSON and JUnit renderings (see checklist.h).
 */
#include "checklist.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "docker.h"
#include "envfile.h"
#include "migrate.h"
#include "pg.h"
#include "services.h"
#include "text.h"
#include "timeutil.h"

#define ENV_FILE_MAX (1024 * 1024)

const char *checklist_status_name(enum checklist_status s)
{
	switch (s) {
	case CHECKLIST_PASS: return "pass";
	case CHECKLIST_FAIL: return "fail";
	case CHECKLIST_SKIP: return "skip";
	}
	return "?";
}

void checklist_report_release(struct checklist_report *r)
{
	if (!r)
		return;
	free(r->items);
	memset(r, 0, sizeof(*r));
}

int checklist_add(struct checklist_report *r, const struct checklist_item *item, struct st_error *err)
{
	struct checklist_item *grown = realloc(r->items, (r->count + 1) * sizeof(*r->items));

	if (!grown)
		return st_error_set(err, ST_ENOMEM, "out of memory");
	r->items = grown;
	r->items[r->count++] = *item;
	if (item->status == CHECKLIST_PASS)
		r->passed++;
	else if (item->status == CHECKLIST_FAIL)
		r->failed++;
	else
		r->skipped++;
	return 0;
}

int checklist_passed(const struct checklist_report *r)
{
	return r->failed == 0;
}

/* ---- env files ------------------------------------------------------------ */

size_t checklist_env_missing(const char *text, const char *const *required, size_t nrequired,
			     char *missing, size_t size)
{
	struct envfile ef = ENVFILE_INIT;
	size_t i, n = 0, len = 0;

	if (size)
		missing[0] = '\0';
	/* Out of memory reads as an empty file: everything is reported missing. */
	envfile_parse(text, strlen(text), &ef, NULL);
	for (i = 0; i < nrequired; i++) {
		const char *v = envfile_get(&ef, required[i]);

		if (v && *v)
			continue;
		n++;
		if (len < size)
			len += (size_t)snprintf(missing + len, size - len, "%s%s", n > 1 ? ", " : "", required[i]);
	}
	envfile_release(&ef);
	return n;
}

/* ---- attestations --------------------------------------------------------- */

void checklist_attest_free(char **set)
{
	size_t i;

	for (i = 0; set && set[i]; i++)
		free(set[i]);
	free(set);
}

static int attest_has(char *const *set, const char *name)
{
	size_t i;

	for (i = 0; set && set[i]; i++)
		if (!strcmp(set[i], name))
			return 1;
	return 0;
}

int checklist_attest_parse(const char *text, char ***set, struct st_error *err)
{
	const char *p = text;
	size_t n = 0;

	while (*set && (*set)[n])
		n++;
	while (p && *p) {
		size_t len;
		char *name, **grown;

		p += strspn(p, ", \t\n");
		len = strcspn(p, ", \t\n");
		if (!len)
			break;
		if (strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") < len)
			return st_error_set(err, ST_EUSAGE, "attestation '%.*s' may contain only letters, "
					    "digits, '_' and '-'", (int)len, p);
		name = strndup(p, len);
		if (!name)
			return st_error_set(err, ST_ENOMEM, "out of memory");
		if (attest_has(*set, name)) {
			free(name);
		} else {
			grown = realloc(*set, (n + 2) * sizeof(*grown));
			if (!grown) {
				free(name);
				return st_error_set(err, ST_ENOMEM, "out of memory");
			}
			*set = grown;
			(*set)[n++] = name;
			(*set)[n] = NULL;
		}
		p += len;
	}
	return 0;
}

/* ---- rendering ------------------------------------------------------------ */

int checklist_render_text(const struct checklist_report *r, int color, struct sbuf *out, struct st_error *err)
{
	size_t i, w = 0;
	char dur[32];
	int rc = 0;

	for (i = 0; i < r->count; i++)
		if (strlen(r->items[i].id) > w)
			w = strlen(r->items[i].id);
	rc |= sbuf_puts(out, "pre-deploy checklist\n");
	for (i = 0; i < r->count; i++) {
		const struct checklist_item *it = &r->items[i];
		const char *on = "", *off = "";

		if (color) {
			on = it->status == CHECKLIST_PASS ? "\033[32m" : it->status == CHECKLIST_FAIL ? "\033[31m" :
				"\033[2m";
			off = "\033[0m";
		}
		rc |= sbuf_printf(out, "  %s%-4s%s  %-*s  %s: %s\n", on,
				  it->status == CHECKLIST_PASS ? "ok" : it->status == CHECKLIST_FAIL ? "FAIL" : "skip",
				  off, (int)w, it->id, it->title, it->message);
		if (it->status == CHECKLIST_FAIL && it->hint[0])
			rc |= sbuf_printf(out, "  %*s  hint: %s\n", (int)w + 6, "", it->hint);
	}
	rc |= sbuf_printf(out, "%zu item%s: %zu passed, %zu failed, %zu skipped (%s)\n", r->count,
			  r->count == 1 ? "" : "s", r->passed, r->failed, r->skipped,
			  time_format_duration(r->duration, dur, sizeof(dur)));
	return rc ? st_error_set(err, ST_ENOMEM, "out of memory") : 0;
}

int checklist_render_json(const struct checklist_report *r, struct sbuf *out, struct st_error *err)
{
	json_t *root = NULL, *items = NULL;
	char stamp[40], *text = NULL;
	size_t i;
	int rc = 0;

	items = json_array();
	root = json_pack("{s:s, s:b, s:s, s:f, s:{s:i, s:i, s:i, s:i}}", "checklist", "pre-deploy",
			 "passed", checklist_passed(r), "started",
			 time_format_rfc3339(r->started, stamp, sizeof(stamp)), "duration", r->duration, "counts",
			 "total", (int)r->count, "passed", (int)r->passed, "failed", (int)r->failed, "skipped",
			 (int)r->skipped);
	if (!items || !root)
		goto oom;
	for (i = 0; i < r->count; i++) {
		const struct checklist_item *it = &r->items[i];
		json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:f}", "id", it->id, "kind", it->kind, "title",
				      it->title, "status", checklist_status_name(it->status), "message", it->message,
				      "seconds", it->seconds);
		if (!o || (it->hint[0] && json_object_set_new(o, "hint", json_string(it->hint)) != 0) ||
		    json_array_append_new(items, o) != 0) {
			json_decref(o);
			goto oom;
		}
	}
	if (json_object_set(root, "items", items) != 0)
		goto oom;
	text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (!text || sbuf_puts(out, text) != 0 || sbuf_puts(out, "\n") != 0)
		goto oom;
	goto out;
oom:
	rc = st_error_set(err, ST_ENOMEM, "out of memory rendering the checklist");
out:
	free(text);
	json_decref(items);
	json_decref(root);
	return rc;
}

/* Appends s escaped for XML text and attribute values. Characters XML 1.0
 * does not allow (controls other than tab, newline, return) are dropped. */
static int xml_escape(struct sbuf *out, const char *s)
{
	int rc = 0;

	for (; *s && rc == 0; s++) {
		unsigned char c = (unsigned char)*s;
		switch (c) {
		case '&': rc = sbuf_puts(out, "&amp;"); break;
		case '<': rc = sbuf_puts(out, "&lt;"); break;
		case '>': rc = sbuf_puts(out, "&gt;"); break;
		case '"': rc = sbuf_puts(out, "&quot;"); break;
		case '\'': rc = sbuf_puts(out, "&apos;"); break;
		case '\n': rc = sbuf_puts(out, "&#10;"); break;
		case '\r': rc = sbuf_puts(out, "&#13;"); break;
		case '\t': rc = sbuf_puts(out, "&#9;"); break;
		default:
			if (c >= 0x20 && c != 0x7f)
				rc = sbuf_append(out, s, 1);
			break;
		}
	}
	return rc;
}

int checklist_render_junit(const struct checklist_report *r, struct sbuf *out, struct st_error *err)
{
	char stamp[40];
	size_t i;
	int rc = 0;

	time_format_rfc3339(r->started, stamp, sizeof(stamp));
	stamp[19] = '\0'; /* JUnit's timestamp has no fraction or zone */
	rc |= sbuf_puts(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
	rc |= sbuf_printf(out, "<testsuites name=\"spilttea-ops deploy --checklist\" tests=\"%zu\" "
			  "failures=\"%zu\" errors=\"0\" skipped=\"%zu\" time=\"%.3f\">\n",
			  r->count, r->failed, r->skipped, r->duration);
	rc |= sbuf_printf(out, "  <testsuite name=\"pre-deploy-checklist\" tests=\"%zu\" failures=\"%zu\" "
			  "errors=\"0\" skipped=\"%zu\" time=\"%.3f\" timestamp=\"%s\">\n",
			  r->count, r->failed, r->skipped, r->duration, stamp);
	for (i = 0; i < r->count && rc == 0; i++) {
		const struct checklist_item *it = &r->items[i];

		rc |= sbuf_puts(out, "    <testcase classname=\"checklist.");
		rc |= xml_escape(out, it->kind);
		rc |= sbuf_puts(out, "\" name=\"");
		rc |= xml_escape(out, it->id);
		rc |= sbuf_printf(out, "\" time=\"%.3f\"", it->seconds);
		if (it->status == CHECKLIST_PASS) {
			rc |= sbuf_puts(out, ">\n      <system-out>");
			rc |= xml_escape(out, it->title);
			rc |= sbuf_puts(out, ": ");
			rc |= xml_escape(out, it->message);
			rc |= sbuf_puts(out, "</system-out>\n    </testcase>\n");
		} else if (it->status == CHECKLIST_SKIP) {
			rc |= sbuf_puts(out, ">\n      <skipped message=\"");
			rc |= xml_escape(out, it->message);
			rc |= sbuf_puts(out, "\"/>\n    </testcase>\n");
		} else {
			rc |= sbuf_puts(out, ">\n      <failure type=\"failed\" message=\"");
			rc |= xml_escape(out, it->message);
			rc |= sbuf_puts(out, "\">");
			rc |= xml_escape(out, it->title);
			rc |= sbuf_puts(out, ": ");
			rc |= xml_escape(out, it->message);
			if (it->hint[0]) {
				rc |= sbuf_puts(out, "&#10;hint: ");
				rc |= xml_escape(out, it->hint);
			}
			rc |= sbuf_puts(out, "</failure>\n    </testcase>\n");
		}
	}
	rc |= sbuf_puts(out, "  </testsuite>\n</testsuites>\n");
	return rc ? st_error_set(err, ST_ENOMEM, "out of memory rendering the checklist") : 0;
}

/* ---- the checks ------------------------------------------------------------- */

struct run {
	const struct checklist_request *rq;
	const struct st_config *cfg;
	struct checklist_report *rep;
	struct docker_client *docker;   /* when reachable */
	struct pg_conn *pg;             /* when reachable */
	double now;
};

static void item_init(struct checklist_item *it, const char *kind, const char *title)
{
	memset(it, 0, sizeof(*it));
	snprintf(it->kind, sizeof(it->kind), "%s", kind);
	snprintf(it->title, sizeof(it->title), "%s", title);
	it->seconds = time_monotonic();
}

static int item_done(struct run *r, struct checklist_item *it, struct st_error *err)
{
	it->seconds = time_monotonic() - it->seconds;
	if (it->seconds < 0)
		it->seconds = 0;
	return checklist_add(r->rep, it, err);
}

static void fail(struct checklist_item *it, const char *hint, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void fail(struct checklist_item *it, const char *hint, const char *fmt, ...)
{
	va_list ap;

	it->status = CHECKLIST_FAIL;
	va_start(ap, fmt);
	vsnprintf(it->message, sizeof(it->message), fmt, ap);
	va_end(ap);
	snprintf(it->hint, sizeof(it->hint), "%s", hint ? hint : "");
}

static int check_env_files(struct run *r, struct st_error *err)
{
	size_t i;
	int rc;

	for (i = 0; i < r->cfg->checklist.n_env_files; i++) {
		const struct config_env_file *ef = &r->cfg->checklist.env_files[i];
		struct checklist_item it;
		char title[sizeof(it.title)], missing[700];
		struct st_error e = { 0 };
		char *text = NULL;
		size_t n = 0, got;

		snprintf(title, sizeof(title), "required variables in %s", ef->path);
		item_init(&it, "machine", title);
		snprintf(it.id, sizeof(it.id), "env.%s", ef->name);
		if ((rc = text_read_file(ef->path, ENV_FILE_MAX, TEXT_READ_WIPE, "env file", &text, &n, &e)) != 0) {
			if (rc == ST_ENOMEM)
				return st_error_set(err, ST_ENOMEM, "out of memory");
			fail(&it, rc == ST_ENOTFOUND ? "create it (runbook: Environment variables configured)"
						     : "make it a regular file this user can read",
			     "%s", e.message);
		} else {
			got = checklist_env_missing(text, (const char *const *)ef->required.items, ef->required.count,
						    missing, sizeof(missing));
			text_free_wiped(text, n);
			if (got)
				fail(&it, "set them (values are never shown here)", "%zu of %zu missing or empty: %s",
				     got, ef->required.count, missing);
			else
				snprintf(it.message, sizeof(it.message), "all %zu set", ef->required.count);
		}
		if ((rc = item_done(r, &it, err)) != 0)
			return rc;
	}
	return 0;
}

static int check_docker(struct run *r, struct st_error *err)
{
	struct checklist_item it;
	struct st_error e = { 0 };
	double t = r->cfg->docker.timeout < 5 ? r->cfg->docker.timeout : 5;

	item_init(&it, "machine", "Docker daemon reachable");
	snprintf(it.id, sizeof(it.id), "docker");
	if (services_docker_open(r->cfg, &r->docker, &e) != 0 || docker_ping(r->docker, t, &e) != 0) {
		fail(&it, e.hint[0] ? e.hint : NULL, "%s", e.message);
		docker_client_free(r->docker);
		r->docker = NULL;
	} else {
		snprintf(it.message, sizeof(it.message), "answers at %s", docker_client_host(r->docker));
	}
	return item_done(r, &it, err);
}

static int check_database(struct run *r, struct st_error *err)
{
	struct checklist_item it;
	struct st_error e = { 0 };
	long long one = 0;

	item_init(&it, "machine", "database reachable");
	snprintf(it.id, sizeof(it.id), "database");
	if (services_pg_connect(r->cfg, NULL, "spilttea-ops-checklist", &r->pg, &e) != 0 ||
	    pg_query_long(r->pg, "SELECT 1", 0, NULL, r->cfg->postgres.statement_timeout, &one, &e) != 0) {
		fail(&it, e.hint[0] ? e.hint : NULL, "%s", e.message);
		pg_close(r->pg);
		r->pg = NULL;
	} else {
		snprintf(it.message, sizeof(it.message), "%s database '%s' answers", pg_label(r->pg),
			 r->cfg->postgres.database);
	}
	return item_done(r, &it, err);
}

/* Up to size bytes of "'a', 'b'" for entries in state s. */
static void list_state(const struct migrate_status *st, enum migrate_state s, char *buf, size_t size)
{
	size_t i, len = 0, n = 0;

	buf[0] = '\0';
	for (i = 0; i < st->count && len < size; i++)
		if (st->entries[i].state == s)
			len += (size_t)snprintf(buf + len, size - len, "%s%s", n++ ? ", " : "", st->entries[i].name);
}

/* Fills *pending (-1 when unknown). */
static int check_migrations(struct run *r, long *pending, struct st_error *err)
{
	struct checklist_item failed_it, pending_it;
	struct migrate_status st;
	struct st_error e = { 0 };
	char names[700];
	int rc;

	*pending = -1;
	item_init(&failed_it, "machine", "no failed migrations");
	snprintf(failed_it.id, sizeof(failed_it.id), "migrations.failed");
	item_init(&pending_it, "machine", "pending migrations");
	snprintf(pending_it.id, sizeof(pending_it.id), "migrations.pending");
	memset(&st, 0, sizeof(st));
	if (!r->pg) {
		fail(&failed_it, "see the database item", "unknown: the database is unreachable");
		fail(&pending_it, "see the database item", "unknown: the database is unreachable");
	} else if (migrate_status_read(r->cfg, r->pg, &st, &e) != 0) {
		fail(&failed_it, e.hint[0] ? e.hint : NULL, "%s", e.message);
		fail(&pending_it, e.hint[0] ? e.hint : NULL, "%s", e.message);
	} else {
		if (st.failed) {
			list_state(&st, MIGRATE_FAILED, names, sizeof(names));
			fail(&failed_it, "repair, then: spilttea-ops migrate resolve --rolled-back NAME "
			     "(or spilttea-ops rollback db)", "%zu failed: %s", st.failed, names);
		} else {
			snprintf(failed_it.message, sizeof(failed_it.message), "none (%zu applied)", st.applied);
		}
		*pending = (long)st.pending;
		if (st.pending) {
			list_state(&st, MIGRATE_PENDING, names, sizeof(names));
			snprintf(pending_it.message, sizeof(pending_it.message), "%zu pending: %s", st.pending, names);
		} else {
			snprintf(pending_it.message, sizeof(pending_it.message), "none");
		}
	}
	migrate_status_release(&st);
	if ((rc = item_done(r, &failed_it, err)) != 0)
		return rc;
	return item_done(r, &pending_it, err);
}

static int check_backup(struct run *r, long pending, struct st_error *err)
{
	struct checklist_item it;
	struct st_error e = { 0 };
	char name[256], path[4096], age[32], max[32];
	double t = 0;
	int rc;

	item_init(&it, "machine", "verified backup before migrations");
	snprintf(it.id, sizeof(it.id), "backup");
	time_format_duration(r->cfg->checklist.backup_max_age, max, sizeof(max));
	if (pending == 0) {
		it.status = CHECKLIST_SKIP;
		snprintf(it.message, sizeof(it.message), "no migration pending: no backup needed");
	} else if (r->rq->take_backup) {
		if ((rc = r->rq->take(r->rq->backup_ud, path, sizeof(path), &e)) != 0)
			fail(&it, e.hint[0] ? e.hint : NULL, "taking a backup failed: %s", e.message);
		else
			snprintf(it.message, sizeof(it.message), "taken now (--backup): %.900s", path);
	} else {
		rc = r->rq->find_backup(r->rq->backup_ud, &t, name, sizeof(name), &e);
		if (rc == ST_ENOTFOUND) {
			fail(&it, "spilttea-ops backup, or run the checklist with --backup",
			     "no verified full backup%s", pending < 0 ? " (pending migrations unknown)" : "");
		} else if (rc != 0) {
			fail(&it, e.hint[0] ? e.hint : NULL, "cannot list backups: %s", e.message);
		} else if (r->now - t > r->cfg->checklist.backup_max_age) {
			fail(&it, "spilttea-ops backup, or run the checklist with --backup",
			     "newest verified backup %s is %s old (checklist.backup_max_age %s)", name,
			     time_format_duration(r->now - t, age, sizeof(age)), max);
		} else {
			snprintf(it.message, sizeof(it.message), "%s, verified, %s old (at most %s)", name,
				 time_format_duration(r->now - t > 0 ? r->now - t : 0, age, sizeof(age)), max);
		}
	}
	return item_done(r, &it, err);
}

/* Free percent of the file system holding path, or of its nearest existing
 * parent. -1 when none can be asked. */
static double free_percent(const char *path, char *where, size_t size)
{
	char buf[4096];
	struct statvfs sv;
	char *slash;

	snprintf(buf, sizeof(buf), "%s", path);
	for (;;) {
		if (statvfs(buf, &sv) == 0 && sv.f_blocks > 0) {
			snprintf(where, size, "%s", buf);
			return 100.0 * (double)sv.f_bavail / (double)sv.f_blocks;
		}
		slash = strrchr(buf, '/');
		if (!slash || slash == buf) {
			if (statvfs("/", &sv) == 0 && sv.f_blocks > 0 && strcmp(buf, "/")) {
				snprintf(where, size, "/");
				return 100.0 * (double)sv.f_bavail / (double)sv.f_blocks;
			}
			return -1;
		}
		*slash = '\0';
	}
}

static int check_disk(struct run *r, struct st_error *err)
{
	struct checklist_item it;
	const char *paths[3];
	char docker_root[1024] = "", where[4096];
	size_t n = 0, i, len = 0;
	int low = 0;

	item_init(&it, "machine", "free disk space");
	snprintf(it.id, sizeof(it.id), "disk");
	paths[n++] = r->cfg->backup.dir;
	paths[n++] = r->cfg->state_dir;
	if (r->docker) {
		json_t *info = NULL;
		struct st_error e = { 0 };
		if (docker_info(r->docker, 5, &info, &e) == 0) {
			const char *root = json_string_value(json_object_get(info, "DockerRootDir"));
			/* Only a daemon on this machine has its data root here. */
			if (root && access(root, F_OK) == 0) {
				snprintf(docker_root, sizeof(docker_root), "%s", root);
				paths[n++] = docker_root;
			}
		}
		json_decref(info);
	}
	for (i = 0; i < n; i++) {
		double pct = free_percent(paths[i], where, sizeof(where));
		if (pct < 0) {
			len += (size_t)snprintf(it.message + len, sizeof(it.message) - len, "%s%s: cannot stat",
						i ? "; " : "", paths[i]);
			low = 1;
			continue;
		}
		if (pct < r->cfg->checklist.disk_min_free_percent)
			low = 1;
		if (len < sizeof(it.message))
			len += (size_t)snprintf(it.message + len, sizeof(it.message) - len, "%s%s %.0f%% free",
						i ? "; " : "", paths[i], floor(pct));
	}
	if (low) {
		char msg[sizeof(it.message)];
		snprintf(msg, sizeof(msg), "%s", it.message);
		fail(&it, "free space (spilttea-ops backup prune, docker image prune)",
		     "below %.0f%% free: %s", r->cfg->checklist.disk_min_free_percent, msg);
	}
	return item_done(r, &it, err);
}

static const char *attest_title(const char *name)
{
	if (!strcmp(name, "tests"))
		return "all tests passing (npm run test)";
	if (!strcmp(name, "code-review"))
		return "code review completed";
	if (!strcmp(name, "security-review"))
		return "security review completed (auth/input handling changes)";
	return NULL;
}

static int check_attestations(struct run *r, struct st_error *err)
{
	const struct config_list *want = &r->cfg->checklist.attestations;
	size_t i;
	int rc;

	for (i = 0; i < want->count; i++) {
		struct checklist_item it;
		const char *title = attest_title(want->items[i]);
		char buf[sizeof(it.title)], hint[sizeof(it.hint)];

		if (!title) {
			snprintf(buf, sizeof(buf), "%s attested", want->items[i]);
			title = buf;
		}
		item_init(&it, "human", title);
		snprintf(it.id, sizeof(it.id), "attest.%s", want->items[i]);
		if (attest_has(r->rq->attested, want->items[i])) {
			snprintf(it.message, sizeof(it.message), "attested (%s)",
				 r->rq->attest_source ? r->rq->attest_source : "--attest");
		} else {
			snprintf(hint, sizeof(hint), "once it is done: --attest %s (or SPILTTEA_ATTEST=%s)",
				 want->items[i], want->items[i]);
			fail(&it, hint, "not attested");
		}
		if ((rc = item_done(r, &it, err)) != 0)
			return rc;
	}
	return 0;
}

int checklist_run(const struct checklist_request *rq, struct checklist_report *out, struct st_error *err)
{
	const struct config_list *want = &rq->cfg->checklist.attestations;
	struct run r;
	double t0 = time_monotonic();
	long pending = -1;
	size_t i, j;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	for (i = 0; rq->attested && rq->attested[i]; i++) {
		int known = 0;
		for (j = 0; j < want->count; j++)
			if (!strcmp(want->items[j], rq->attested[i]))
				known = 1;
		if (!known) {
			struct sbuf names = SBUF_INIT;
			for (j = 0; j < want->count; j++)
				sbuf_printf(&names, "%s%s", j ? ", " : "", want->items[j]);
			st_error_set(err, ST_EUSAGE, "'%s' is not an attestation of the checklist", rq->attested[i]);
			st_error_hint(err, "checklist.attestations: %s", names.len ? sbuf_str(&names) : "(none)");
			sbuf_release(&names);
			return ST_EUSAGE;
		}
	}
	if (rq->take_backup && !rq->take)
		return st_error_set(err, ST_EUSAGE, "--backup needs a way to take a backup");
	if (!rq->find_backup)
		return st_error_set(err, ST_EUSAGE, "the checklist needs a way to find backups");
	memset(&r, 0, sizeof(r));
	r.rq = rq;
	r.cfg = rq->cfg;
	r.rep = out;
	r.now = rq->now > 0 ? rq->now : time_wall();
	out->started = r.now;
	if ((rc = check_env_files(&r, err)) != 0 || (rc = check_docker(&r, err)) != 0 ||
	    (rc = check_database(&r, err)) != 0 || (rc = check_migrations(&r, &pending, err)) != 0 ||
	    (rc = check_backup(&r, pending, err)) != 0 || (rc = check_disk(&r, err)) != 0 ||
	    (rc = check_attestations(&r, err)) != 0)
		goto out;
out:
	out->duration = time_monotonic() - t0;
	pg_close(r.pg);
	docker_client_free(r.docker);
	if (rc != 0)
		checklist_report_release(out);
	return rc;
}

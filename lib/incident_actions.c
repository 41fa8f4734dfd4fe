/*
 * incident_actions.c - the incident.* actions and the runbooks of
 * `spilttea-ops incident ...` (see incident_actions.h).
 */
#include "incident_actions.h"
#include "actions_util.h"
#include "atomic_file.h"
#include "config.h"
#include "docker.h"
#include "envfile.h"
#include "expr.h"
#include "lock.h"
#include "pg.h"
#include "redis.h"
#include "runbook.h"
#include "text.h"
#include "timeutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int oom(struct st_error *err)
{
	return st_error_set(err, ST_ENOMEM, "out of memory");
}

/* ---- session ------------------------------------------------------------------- */

void incident_session_init(struct incident_session *s, const struct st_config *cfg, const char *id)
{
	memset(s, 0, sizeof(*s));
	s->cfg = cfg;
	s->state_dir = cfg->state_dir;
	snprintf(s->id, sizeof(s->id), "%s", id ? id : "");
	services_init(&s->svc, cfg);
	s->output = json_object();
}

static void free_secret(char *p)
{
	if (p) {
		explicit_bzero(p, strlen(p));
		free(p);
	}
}

void incident_session_release(struct incident_session *s)
{
	size_t i;

	if (!s)
		return;
	services_release(&s->svc);
	json_decref(s->output);
	free_secret(s->secret);
	for (i = 0; i < s->nsaved_files; i++) {
		free(s->saved_files[i].path);
		text_free_wiped(s->saved_files[i].content, s->saved_files[i].len);
	}
	free(s->saved_files);
	for (i = 0; i < s->nsaved_env; i++) {
		free(s->saved_env[i].service);
		free_secret(s->saved_env[i].entry);
	}
	free(s->saved_env);
	memset(s, 0, sizeof(*s));
}

const json_t *incident_session_output(const struct incident_session *s, const char *step)
{
	return json_object_get(s->output, step);
}

/* engine_call.services is the session's first member (see the header). */
static struct incident_session *session_of(struct engine_call *call)
{
	if (!call->services)
		return NULL;
	return (struct incident_session *)(void *)((char *)call->services -
						    offsetof(struct incident_session, svc));
}

/* Keeps a copy of result as the step's output for the command to print. */
static void keep(struct engine_call *call, const json_t *result)
{
	struct incident_session *s = session_of(call);

	if (s && s->output && result && call->phase == ENGINE_PHASE_ACT)
		json_object_set_new(s->output, call->step, json_deep_copy(result));
}

/* Journals a fact; a failure to do so is kept in the output as a warning
 * (the change itself happened and must not be reported as failed). */
static void fact(struct engine_call *call, const char *event, json_t *detail, json_t *result)
{
	struct incident_session *s = session_of(call);
	struct st_error err = { 0 };

	if (incident_event(s->state_dir, s->id, event, detail, &err) != 0 && result)
		json_object_set_new(result, "journal_warning", json_string(err.message));
	json_decref(detail);
}

static const char *arg_str(const json_t *args, const char *name)
{
	return json_string_value(json_object_get(args, name));
}

/* ---- incidents ------------------------------------------------------------------- */

static int act_open(struct engine_call *call, const json_t *args, json_t **result,
		    struct st_error *err)
{
	struct incident_session *s = session_of(call);
	struct incident_info info;
	char dir[PATH_MAX];
	int rc;

	if ((rc = incident_open(s->state_dir, s->id, arg_str(args, "title"), &info, err)) != 0)
		return rc;
	incident_path(s->state_dir, info.id, NULL, dir, sizeof(dir), err);
	*result = json_pack("{s:s,s:s,s:s}", "id", info.id, "title", info.title, "dir", dir);
	keep(call, *result);
	return *result ? 0 : oom(err);
}

static int act_close(struct engine_call *call, const json_t *args, json_t **result,
		     struct st_error *err)
{
	struct incident_session *s = session_of(call);
	struct incident_info info;
	int rc;

	(void)args;
	if ((rc = incident_close(s->state_dir, s->id, &info, err)) != 0)
		return rc;
	*result = json_pack("{s:s,s:s}", "id", info.id, "title", info.title);
	keep(call, *result);
	return *result ? 0 : oom(err);
}

/* ---- evidence --------------------------------------------------------------------- */

static int act_snapshot(struct engine_call *call, const json_t *args, json_t **result,
			struct st_error *err)
{
	struct incident_session *s = session_of(call);
	struct incident_snapshot_request rq;
	struct incident_snapshot_result res;
	json_t *r = NULL, *detail;
	int rc;

	memset(&rq, 0, sizeof(rq));
	rq.cfg = s->cfg;
	rq.svc = call->services;
	rq.state_dir = s->state_dir;
	rq.id = s->id;
	rq.tool_version = s->tool_version;
	rq.archive = json_is_true(json_object_get(args, "archive"));
	rq.command_line = s->command_line;
	rq.cancel = call->cancel;
	rc = incident_snapshot_take(&rq, &res, err);
	r = json_pack("{s:s,s:I,s:I,s:I,s:O}", "dir", res.dir, "files", (json_int_t)res.files, "bytes",
		      (json_int_t)res.bytes, "failed", (json_int_t)res.failed, "artefacts",
		      res.artefacts ? res.artefacts : json_null());
	if (r && res.archive[0]) {
		json_object_set_new(r, "archive", json_string(res.archive));
		json_object_set_new(r, "archive_sha256", json_string(res.archive_sha256));
	}
	if (!r) {
		rc = rc ? rc : oom(err);
		goto out;
	}
	if (rc == 0) {
		detail = json_pack("{s:s,s:I,s:I,s:I}", "dir", res.dir, "files", (json_int_t)res.files,
				   "bytes", (json_int_t)res.bytes, "failed", (json_int_t)res.failed);
		if (detail && res.archive[0]) {
			json_object_set_new(detail, "archive", json_string(res.archive));
			json_object_set_new(detail, "archive_sha256", json_string(res.archive_sha256));
		}
		fact(call, "snapshot", detail, r);
	}
	keep(call, r);
	if (rc == 0 && res.failed && !json_is_true(json_object_get(args, "allow_partial"))) {
		size_t i;
		json_t *a = NULL;

		json_array_foreach(res.artefacts, i, a)
			if (json_object_get(a, "error"))
				break;
		rc = st_error_set(err, ST_EFAILED, "%zu artefact%s could not be collected, first %s: %s",
				  res.failed, res.failed == 1 ? "" : "s", arg_str(a, "what"),
				  arg_str(a, "error"));
		st_error_hint(err, "the rest is in '%s' (its SHA256SUMS verifies it)", res.dir);
		goto out;
	}
	if (rc == 0) {
		*result = r;
		r = NULL;
	}
out:
	json_decref(r);
	incident_snapshot_release(&res);
	return rc;
}

static int act_has_snapshot(struct engine_call *call, const json_t *args, json_t **result,
			    struct st_error *err)
{
	struct incident_session *s = session_of(call);
	struct st_error lerr = { 0 };
	char dir[PATH_MAX];
	int rc;

	(void)args;
	rc = incident_snapshot_latest(s->state_dir, s->id, dir, sizeof(dir), &lerr);
	if (rc && rc != ST_ENOTFOUND) {
		*err = lerr;
		return rc;
	}
	*result = rc ? json_pack("{s:b}", "exists", 0) : json_pack("{s:b,s:s}", "exists", 1, "dir", dir);
	return *result ? 0 : oom(err);
}

/* ---- containment ------------------------------------------------------------------- */

static int act_stop(struct engine_call *call, const json_t *args, json_t **result,
		    struct st_error *err)
{
	struct incident_session *s = session_of(call);
	const char *service = arg_str(args, "service"), *container;
	struct docker_client *d;
	json_t *j = NULL;
	int rc, was_running;

	if ((rc = services_container(s->cfg, service, &container, err)) != 0 ||
	    (rc = actions_docker_client(call, &d, err)) != 0 ||
	    (rc = docker_container_inspect(d, container, DOCKER_TIMEOUT_DEFAULT, &j, err)) != 0)
		return rc;
	was_running = json_is_true(json_object_get(json_object_get(j, "State"), "Running"));
	json_decref(j);
	j = NULL;
	/* Stop, never remove: the container, its file system and its logs are evidence. */
	if ((rc = docker_container_stop(d, container, -1, DOCKER_TIMEOUT_DEFAULT, err)) != 0 ||
	    (rc = docker_container_inspect(d, container, DOCKER_TIMEOUT_DEFAULT, &j, err)) != 0)
		return rc;
	if (json_is_true(json_object_get(json_object_get(j, "State"), "Running"))) {
		json_decref(j);
		return st_error_set(err, ST_EFAILED, "container '%s' still runs after stop", container);
	}
	json_decref(j);
	*result = json_pack("{s:s,s:s,s:b}", "service", service, "container", container, "was_running",
			    was_running);
	if (!*result)
		return oom(err);
	fact(call, "service_stopped", json_pack("{s:s,s:s,s:b}", "service", service, "container",
						container, "was_running", was_running), *result);
	keep(call, *result);
	return 0;
}

/* ---- investigation -------------------------------------------------------------------- */

static int act_investigate(struct engine_call *call, const json_t *args, json_t **result,
			   struct st_error *err)
{
	struct incident_session *s = session_of(call);
	struct incident_investigate_opts o;
	struct pg_conn *pg = NULL;
	json_t *res = NULL, *ids, *row;
	size_t failed = 0, i;
	int rc, owned = 0;

	memset(&o, 0, sizeof(o));
	o.window = json_real_value(json_object_get(args, "window"));
	o.threshold = (long)json_integer_value(json_object_get(args, "threshold"));
	o.recent = json_real_value(json_object_get(args, "recent"));
	o.limit = (long)json_integer_value(json_object_get(args, "limit"));
	o.timeout = s->cfg->postgres.statement_timeout;
	if ((rc = actions_pg_conn(call, NULL, &pg, &owned, err)) != 0)
		return rc;
	rc = incident_investigate(pg, &o, &res, &failed, err);
	actions_pg_done(pg, owned);
	if (rc)
		return rc;
	keep(call, res);
	ids = json_array();
	json_array_foreach(json_object_get(json_object_get(res, "brute_force"), "rows"), i, row)
		json_array_append(ids, json_object_get(row, "id"));
#define COUNT(sec) json_integer_value(json_object_get(json_object_get(res, sec), "count"))
	fact(call, "investigated",
	     json_pack("{s:I,s:I,s:f,s:I,s:I,s:I,s:o}", "brute_force", COUNT("brute_force"), "threshold",
		       (json_int_t)o.threshold, "window", o.window, "recent_accounts",
		       COUNT("recent_accounts"), "recent_posts", COUNT("recent_posts"), "reports",
		       COUNT("reports"), "brute_force_ids", ids ? ids : json_array()),
	     res);
#undef COUNT
	if (failed) {
		json_decref(res);
		return st_error_set(err, ST_EFAILED, "%zu of the investigation queries failed (see above)",
				    failed);
	}
	*result = res;
	return 0;
}

/* ---- users ----------------------------------------------------------------------------- */

/* The ids argument as C strings (borrowed from args). *ids: caller frees. */
static int ids_of(const json_t *args, const char ***ids, size_t *n, struct st_error *err)
{
	const json_t *arr = json_object_get(args, "ids");
	size_t i;

	*n = json_array_size(arr);
	*ids = calloc(*n ? *n : 1, sizeof(**ids));
	if (!*ids)
		return oom(err);
	for (i = 0; i < *n; i++) {
		(*ids)[i] = json_string_value(json_array_get(arr, i));
		if (!(*ids)[i] || !incident_user_id_syntax_ok((*ids)[i])) {
			free(*ids);
			*ids = NULL;
			return st_error_set(err, ST_EUSAGE, "user ids must be strings of letters, digits, '_', '-'");
		}
	}
	return 0;
}

static int act_find_users(struct engine_call *call, const json_t *args, json_t **result,
			  struct st_error *err)
{
	struct incident_session *s = session_of(call);
	enum incident_id_kind kind;
	struct pg_conn *pg = NULL;
	const char **ids = NULL;
	struct sbuf list = SBUF_INIT;
	json_t *res = NULL, *u;
	size_t n, i;
	int rc, owned = 0;

	if ((rc = ids_of(args, &ids, &n, err)) != 0)
		return rc;
	if ((rc = actions_pg_conn(call, NULL, &pg, &owned, err)) != 0 ||
	    (rc = incident_user_id_kind(pg, s->cfg->postgres.statement_timeout, &kind, err)) != 0 ||
	    (rc = incident_users_find(pg, kind, ids, n, s->cfg->postgres.statement_timeout, &res, err)) != 0)
		goto out;
	json_array_foreach(json_object_get(res, "found"), i, u) {
		json_t *id = json_object_get(u, "id");
		char num[32];
		const char *ids_text = json_string_value(id);

		if (!ids_text) {
			snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(id));
			ids_text = num;
		}
		if (sbuf_printf(&list, "%s%s (%s%s)", i ? ", " : "", ids_text,
				arg_str(u, "email") ? arg_str(u, "email") : "?",
				json_is_false(json_object_get(u, "isActive")) ? ", inactive" : "")) {
			rc = oom(err);
			goto out;
		}
	}
	if (json_object_set_new(res, "count", json_integer((json_int_t)json_array_size(json_object_get(res, "found")))) ||
	    json_object_set_new(res, "list", json_string(sbuf_str(&list)))) {
		rc = oom(err);
		goto out;
	}
	keep(call, res);
	if (json_array_size(json_object_get(res, "found")) == 0) {
		if (n == 1)
			rc = st_error_set(err, ST_EABORTED, "user id '%s' does not exist", ids[0]);
		else
			rc = st_error_set(err, ST_EABORTED, "none of the %zu user ids exists", n);
		goto out;
	}
	*result = res;
	res = NULL;
out:
	actions_pg_done(pg, owned);
	free(ids);
	sbuf_release(&list);
	json_decref(res);
	return rc;
}

static int act_lock_users(struct engine_call *call, const json_t *args, json_t **result,
			  struct st_error *err)
{
	struct incident_session *s = session_of(call);
	enum incident_id_kind kind;
	struct pg_conn *pg = NULL;
	const char **ids = NULL;
	json_t *locked = NULL;
	size_t n;
	int rc, owned = 0;

	if ((rc = ids_of(args, &ids, &n, err)) != 0)
		return rc;
	if ((rc = actions_pg_conn(call, NULL, &pg, &owned, err)) != 0 ||
	    (rc = incident_user_id_kind(pg, s->cfg->postgres.statement_timeout, &kind, err)) != 0 ||
	    (rc = incident_users_lock(pg, kind, ids, n, s->cfg->postgres.statement_timeout, &locked, err)) != 0)
		goto out;
	*result = json_pack("{s:I,s:I,s:O}", "requested", (json_int_t)n, "count",
			    (json_int_t)json_array_size(locked), "locked", locked);
	if (!*result) {
		rc = oom(err);
		goto out;
	}
	fact(call, "users_locked", json_pack("{s:O}", "ids", locked), *result);
	keep(call, *result);
out:
	actions_pg_done(pg, owned);
	free(ids);
	json_decref(locked);
	return rc;
}

/* ---- sessions ----------------------------------------------------------------------------- */

static int act_count_keys(struct engine_call *call, const json_t *args, json_t **result,
			  struct st_error *err)
{
	struct redis_conn *r;
	long long n = 0;
	int rc;

	if ((rc = actions_redis_conn(call, &r, err)) != 0 ||
	    (rc = redis_count_matching(r, arg_str(args, "pattern"), &n, err)) != 0)
		return rc;
	*result = json_pack("{s:s,s:I}", "pattern", arg_str(args, "pattern"), "keys", (json_int_t)n);
	keep(call, *result);
	return *result ? 0 : oom(err);
}

static int act_flush_sessions(struct engine_call *call, const json_t *args, json_t **result,
			      struct st_error *err)
{
	const char *pattern = arg_str(args, "pattern");
	struct redis_conn *r;
	long long deleted = 0;
	int rc;

	if (!pattern || !*pattern || !strcmp(pattern, "*"))
		return st_error_set(err, ST_EUSAGE, "pattern '%s' would delete every key; that is --all",
				    pattern ? pattern : "");
	if ((rc = actions_redis_conn(call, &r, err)) != 0)
		return rc;
	rc = redis_delete_matching(r, pattern, &deleted, err);
	*result = json_pack("{s:s,s:I}", "pattern", pattern, "deleted", (json_int_t)deleted);
	if (!*result)
		return rc ? rc : oom(err);
	/* Keys deleted before a failure are deleted: journal them either way. */
	if (deleted || rc == 0)
		fact(call, "sessions_flushed", json_pack("{s:s,s:I}", "pattern", pattern, "deleted",
							 (json_int_t)deleted), *result);
	keep(call, *result);
	if (rc) {
		json_decref(*result);
		*result = NULL;
	}
	return rc;
}

static int act_flushall(struct engine_call *call, const json_t *args, json_t **result,
			struct st_error *err)
{
	struct redis_info info = REDIS_INFO_INIT;
	struct redis_info_summary sum;
	struct redis_conn *r;
	redisReply *reply = NULL;
	int rc;

	(void)args;
	if ((rc = actions_redis_conn(call, &r, err)) != 0 ||
	    (rc = redis_info(r, "keyspace", &info, err)) != 0)
		return rc;
	redis_info_summarize(&info, &sum);
	redis_info_release(&info);
	/* ASYNC: the server frees memory in the background, so a large
	 * keyspace does not block it (or this call's timeout). */
	if ((rc = redis_command(r, &reply, err, "FLUSHALL", "ASYNC", NULL)) != 0)
		return st_error_wrap(err, "FLUSHALL failed");
	freeReplyObject(reply);
	*result = json_pack("{s:I}", "keys", (json_int_t)sum.keys);
	if (!*result)
		return oom(err);
	/* "deleted", not "keys": the journal hides members named like a key. */
	fact(call, "flushall", json_pack("{s:I}", "deleted", (json_int_t)sum.keys), *result);
	keep(call, *result);
	return 0;
}

/* ---- secrets ------------------------------------------------------------------------------ */

/* Saved .env files are the secrets' own files: anything this large is not one. */
#define SAVED_FILE_MAX (16 * 1024 * 1024)

static int save_file(struct incident_session *s, const char *path, struct st_error *err)
{
	struct incident_saved_file *nf;
	char *buf = NULL;
	size_t len = 0;
	int rc;

	if ((rc = text_read_file(path, SAVED_FILE_MAX, TEXT_READ_WIPE, "file", &buf, &len, err)) != 0)
		return rc;
	nf = realloc(s->saved_files, (s->nsaved_files + 1) * sizeof(*nf));
	if (!nf || !(nf[s->nsaved_files].path = strdup(path))) {
		if (nf)
			s->saved_files = nf;
		text_free_wiped(buf, len);
		return oom(err);
	}
	s->saved_files = nf;
	nf[s->nsaved_files].content = buf;
	nf[s->nsaved_files].len = len;
	s->nsaved_files++;
	return 0;
}

/* Forgets the saved files from index keep on (zeroing their content). */
static void drop_saved(struct incident_session *s, size_t keep)
{
	while (s->nsaved_files > keep) {
		struct incident_saved_file *f = &s->saved_files[--s->nsaved_files];

		free(f->path);
		text_free_wiped(f->content, f->len);
	}
}

static void release_texts(struct sbuf *texts, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (texts[i].buf)
			explicit_bzero(texts[i].buf, texts[i].cap);
		sbuf_release(&texts[i]);
	}
	free(texts);
}

/*
 * The new value goes into every file or into none: each file is read and
 * rewritten in memory first (a file that cannot take the value fails the
 * step before anything is written), then written; when a write fails, the
 * files written before it get their old content back. The failed step has
 * no undo of its own (the engine undoes only steps that acted), so this is
 * the only chance to leave the files consistent.
 */
static int act_env_set(struct engine_call *call, const json_t *args, json_t **result,
		       struct st_error *err)
{
	struct incident_session *s = session_of(call);
	const char *variable = arg_str(args, "variable"), *from_env = arg_str(args, "from_env");
	const json_t *files = json_object_get(args, "files");
	json_t *written = NULL, *f;
	struct sbuf *texts = NULL;
	size_t i, nfiles = json_array_size(files), first_saved = s->nsaved_files, done = 0;
	int rc = 0;

	if (!envfile_key_valid(variable))
		return st_error_set(err, ST_EUSAGE, "'%s' is not a variable name", variable ? variable : "");
	free_secret(s->secret);
	s->secret = NULL;
	if (from_env) {
		const char *v = getenv(from_env);

		if (!v || !*v)
			return st_error_set(err, ST_EUSAGE, "environment variable '%s' is not set or empty",
					    from_env);
		if (!(s->secret = strdup(v)))
			return oom(err);
	} else {
		if (!(s->secret = malloc(INCIDENT_SECRET_HEX)))
			return oom(err);
		if ((rc = incident_secret_generate(s->secret, err)) != 0)
			return rc;
	}
	if (!(written = json_array()) || !(texts = calloc(nfiles ? nfiles : 1, sizeof(*texts))))
		return oom(err);
	/* In memory first. */
	json_array_foreach(files, i, f) {
		const char *path = json_string_value(f);
		const struct incident_saved_file *saved;
		size_t lines = 0;

		if (!path) {
			rc = st_error_set(err, ST_EUSAGE, "files[%zu] is not a path", i);
			goto out;
		}
		if ((rc = save_file(s, path, err)) != 0)
			goto out;
		saved = &s->saved_files[s->nsaved_files - 1];
		if ((rc = envfile_set(saved->content ? saved->content : "", saved->len, variable, s->secret, 0,
				      &texts[i], &lines, err)) != 0) {
			st_error_wrap(err, "cannot update '%s'", path);
			goto out;
		}
		if (lines == 0) {
			rc = st_error_set(err, ST_ECONFLICT, "'%s' no longer assigns %s", path, variable);
			goto out;
		}
		if (json_array_append_new(written, json_pack("{s:s,s:I}", "path", path, "lines", (json_int_t)lines))) {
			rc = oom(err);
			goto out;
		}
	}
	/* Then to disk, all or none. */
	for (done = 0; done < nfiles; done++) {
		const char *path = json_string_value(json_array_get(files, done));

		if ((rc = atomic_file_write_all(path, texts[done].buf, texts[done].len,
						0600 | ATOMIC_FILE_PRESERVE_MODE, err)) != 0)
			break;
	}
	if (rc) {
		size_t k, failed = 0;

		for (k = 0; k < done; k++) {
			const struct incident_saved_file *sv = &s->saved_files[first_saved + k];
			struct st_error rerr = { 0 };

			if (atomic_file_write_all(sv->path, sv->content ? sv->content : "", sv->len,
						  0600 | ATOMIC_FILE_PRESERVE_MODE, &rerr) != 0)
				failed++;
		}
		if (failed)
			st_error_hint(err, "%zu of the %zu files written before it could not be put back: "
				      "check them by hand", failed, done);
		json_array_clear(written);
	}
out:
	release_texts(texts, nfiles);
	if (rc)
		drop_saved(s, first_saved);
	if (json_array_size(written) || rc == 0) {
		json_t *paths = json_array(), *w;

		json_array_foreach(written, i, w)
			json_array_append(paths, json_object_get(w, "path"));
		*result = json_pack("{s:s,s:s,s:O}", "variable", variable, "source",
				    from_env ? "environment" : "generated", "files", written);
		if (*result)
			fact(call, "secret_rotated",
			     json_pack("{s:s,s:s,s:o,s:O*}", "variable", variable, "source",
				       from_env ? "environment" : "generated", "files", paths ? paths : json_array(),
				       "restart", json_object_get(args, "services")),
			     *result);
		else
			json_decref(paths);
		keep(call, *result);
		if (rc) {
			json_decref(*result);
			*result = NULL;
		} else if (!*result) {
			rc = oom(err);
		}
	}
	json_decref(written);
	return rc;
}

static int act_env_restore(struct engine_call *call, const json_t *args, json_t **result,
			   struct st_error *err)
{
	struct incident_session *s = session_of(call);
	size_t i;
	int rc, failed = 0;

	(void)args;
	for (i = 0; i < s->nsaved_files; i++) {
		struct st_error ferr = { 0 };

		rc = atomic_file_write_all(s->saved_files[i].path, s->saved_files[i].content,
					   s->saved_files[i].len, 0600 | ATOMIC_FILE_PRESERVE_MODE, &ferr);
		if (rc && !failed++)
			*err = ferr;
	}
	if (failed)
		return st_error_wrap(err, "cannot restore %d env file%s", failed, failed == 1 ? "" : "s");
	*result = json_pack("{s:I}", "restored", (json_int_t)s->nsaved_files);
	return *result ? 0 : oom(err);
}

static const char *saved_entry(const struct incident_session *s, const char *service)
{
	size_t i;

	for (i = s->nsaved_env; i > 0; i--)
		if (!strcmp(s->saved_env[i - 1].service, service))
			return s->saved_env[i - 1].entry;
	return NULL;
}

/* Remembers how the container had variable before, to undo with. */
static int save_env(struct incident_session *s, struct docker_client *d, const char *service,
		    const char *container, const char *variable, struct st_error *err)
{
	struct incident_saved_env *ne;
	json_t *j = NULL, *e;
	const char *found = NULL;
	size_t i, vl = strlen(variable);
	char *entry;
	int rc;

	if ((rc = docker_container_inspect(d, container, DOCKER_TIMEOUT_DEFAULT, &j, err)) != 0)
		return rc;
	json_array_foreach(json_object_get(json_object_get(j, "Config"), "Env"), i, e) {
		const char *v = json_string_value(e);
		if (v && !strncmp(v, variable, vl) && v[vl] == '=')
			found = v;
	}
	entry = strdup(found ? found : variable);
	json_decref(j);
	ne = entry ? realloc(s->saved_env, (s->nsaved_env + 1) * sizeof(*ne)) : NULL;
	if (!ne || !(ne[s->nsaved_env].service = strdup(service))) {
		if (ne)
			s->saved_env = ne;
		free_secret(entry);
		return oom(err);
	}
	s->saved_env = ne;
	ne[s->nsaved_env].entry = entry;
	s->nsaved_env++;
	return 0;
}

static int act_recreate(struct engine_call *call, const json_t *args, json_t **result,
			struct st_error *err)
{
	struct incident_session *s = session_of(call);
	const char *service = arg_str(args, "service"), *variable = arg_str(args, "variable");
	int restore = json_is_true(json_object_get(args, "restore"));
	const struct config_service *svc = config_service(s->cfg, service);
	struct incident_recreate_opts o;
	struct docker_client *d;
	const char *set_env[2] = { NULL, NULL };
	char *entry = NULL, logs[PATH_MAX];
	json_t *info = NULL;
	int rc;

	if (!svc)
		return st_error_set(err, ST_ECONFIG, "service '%s' is not configured", service);
	if ((rc = actions_docker_client(call, &d, err)) != 0)
		return rc;
	if (restore) {
		const char *old = saved_entry(s, service);

		if (!old)
			return st_error_set(err, ST_EFAILED, "the old %s of '%s' is not known", variable, service);
		entry = strdup(old);
	} else {
		size_t n;

		if (!s->secret)
			return st_error_set(err, ST_EFAILED, "no new value of %s to give '%s'", variable, service);
		if ((rc = save_env(s, d, service, svc->container, variable, err)) != 0)
			return rc;
		n = strlen(variable) + 1 + strlen(s->secret) + 1;
		if ((entry = malloc(n)))
			snprintf(entry, n, "%s=%s", variable, s->secret);
	}
	if (!entry)
		return oom(err);
	set_env[0] = entry;
	memset(&o, 0, sizeof(o));
	o.container = svc->container;
	o.set_env = set_env;
	o.health_url = svc->health_url;
	o.timeout = s->cfg->incident.restart_timeout;
	o.stop_grace = -1;
	o.cancel = call->cancel;
	{
		char stamp[32], name[128];

		time_format_compact(time_wall(), stamp, sizeof(stamp));
		snprintf(name, sizeof(name), "replaced-%s-%s.log", svc->container, stamp);
		if (incident_path(s->state_dir, s->id, name, logs, sizeof(logs), err) == 0)
			o.old_logs = logs;
	}
	rc = incident_recreate_container(d, &o, &info, err);
	free_secret(entry);
	if (rc)
		return rc;
	*result = json_pack("{s:s,s:s,s:O,s:b}", "service", service, "container", svc->container,
			    "healthy_after", json_object_get(info, "healthy_after"), "restored", restore);
	if (*result && json_object_get(info, "old_kept"))
		json_object_set(*result, "old_kept", json_object_get(info, "old_kept"));
	else if (*result && o.old_logs)
		json_object_set_new(*result, "old_logs", json_string(o.old_logs));
	json_decref(info);
	if (!*result)
		return oom(err);
	fact(call, "service_recreated",
	     json_pack("{s:s,s:s,s:O,s:s,s:b,s:O*,s:O*}", "service", service, "container", svc->container,
		       "healthy_after", json_object_get(*result, "healthy_after"), "variable", variable,
		       "restored", restore, "old_logs", json_object_get(*result, "old_logs"), "old_kept",
		       json_object_get(*result, "old_kept")),
	     *result);
	keep(call, *result);
	return 0;
}

/* ---- network ------------------------------------------------------------------------------ */

static int trust_of(const struct st_config *cfg, struct accesslog_trust *t, struct st_error *err)
{
	return accesslog_trust_parse((const char *const *)cfg->incident.trusted_proxies.items,
				     cfg->incident.trusted_proxies.count, t, err);
}

static int act_top_ips(struct engine_call *call, const json_t *args, json_t **result,
		       struct st_error *err)
{
	struct incident_session *s = session_of(call);
	struct accesslog_trust trust = ACCESSLOG_TRUST_INIT;
	struct incident_top_ips_opts o;
	struct docker_client *d;
	const char *container;
	json_t *res = NULL, *first;
	double window = json_real_value(json_object_get(args, "since"));
	int rc;

	if ((rc = services_container(s->cfg, arg_str(args, "service"), &container, err)) != 0 ||
	    (rc = actions_docker_client(call, &d, err)) != 0 || (rc = trust_of(s->cfg, &trust, err)) != 0)
		return rc;
	memset(&o, 0, sizeof(o));
	o.container = container;
	o.since = window > 0 ? time_wall() - window : 0;
	o.limit = (size_t)json_integer_value(json_object_get(args, "limit"));
	o.trust = &trust;
	o.timeout = 300;
	rc = incident_top_ips(d, &o, &res, err);
	accesslog_trust_release(&trust);
	if (rc)
		return rc;
	first = json_array_get(json_object_get(res, "top"), 0);
	fact(call, "top_ips",
	     json_pack("{s:s,s:f,s:O,s:O,s:O*,s:O*}", "container", container, "window", window, "requests",
		       json_object_get(res, "requests"), "distinct", json_object_get(res, "distinct"),
		       "top_ip", json_object_get(first, "ip"), "top_requests",
		       json_object_get(first, "requests")),
	     res);
	keep(call, res);
	*result = res;
	return 0;
}

static int act_block(struct engine_call *call, const json_t *args, json_t **result,
		     struct st_error *err, int apply)
{
	struct incident_session *s = session_of(call);
	struct accesslog_trust trust = ACCESSLOG_TRUST_INIT;
	char canon[ACCESSLOG_IP_MAX], rule[256];
	int family, already = 0, rc;

	if ((rc = trust_of(s->cfg, &trust, err)) != 0)
		return rc;
	family = incident_block_check(arg_str(args, "ip"), &trust, incident_ssh_connection(), canon,
				      sizeof(canon), err);
	accesslog_trust_release(&trust);
	if (family < 0)
		return family;
	incident_block_text(canon, family, s->cfg->incident.firewall_chain, rule, sizeof(rule));
	if (apply && (rc = incident_block_apply(canon, family, s->cfg->incident.firewall_chain,
						INCIDENT_FIREWALL_TIMEOUT, &already, err)) != 0)
		return rc;
	*result = json_pack("{s:s,s:s,s:b,s:b}", "ip", canon, "rule", rule, "applied", apply, "already",
			    already);
	if (!*result)
		return oom(err);
	fact(call, "ip_blocked", json_pack("{s:s,s:s,s:b,s:b}", "ip", canon, "rule", rule, "applied",
					   apply, "already", already),
	     *result);
	keep(call, *result);
	return 0;
}

static int act_block_rule(struct engine_call *call, const json_t *args, json_t **result,
			  struct st_error *err)
{
	return act_block(call, args, result, err, 0);
}

static int act_block_apply(struct engine_call *call, const json_t *args, json_t **result,
			   struct st_error *err)
{
	return act_block(call, args, result, err, 1);
}

/* ---- report ---------------------------------------------------------------------------------- */

static int act_report(struct engine_call *call, const json_t *args, json_t **result,
		      struct st_error *err)
{
	struct incident_session *s = session_of(call);
	const char *output = arg_str(args, "output");
	struct incident_info info;
	struct sbuf md = SBUF_INIT;
	char journal[PATH_MAX];
	json_t *runs = NULL, *evidence = NULL, *run;
	size_t i;
	int rc;

	snprintf(journal, sizeof(journal), "%s/journal.jsonl", s->state_dir);
	if ((rc = incident_load(s->state_dir, s->id, &info, err)) != 0 ||
	    (rc = incident_report_load(journal, s->id, &runs, err)) != 0 ||
	    (rc = incident_evidence_load(s->state_dir, s->id, &evidence, err)) != 0)
		goto out;
	/* This report's own run has no end yet: say so instead of "no end". */
	json_array_foreach(runs, i, run)
		if (json_integer_value(json_object_get(run, "pid")) == (json_int_t)getpid() &&
		    json_is_null(json_object_get(run, "result")))
			json_object_set_new(run, "result", json_string("running (this report)"));
	if ((rc = incident_report_render(&info, runs, evidence, time_wall(), &md, err)) != 0)
		goto out;
	if (output && (rc = atomic_file_write_all(output, md.buf, md.len, 0600, err)) != 0)
		goto out;
	*result = json_pack("{s:s,s:s*,s:I}", "markdown", sbuf_str(&md), "output", output, "runs",
			    (json_int_t)json_array_size(runs));
	if (!*result) {
		rc = oom(err);
		goto out;
	}
	keep(call, *result);
out:
	json_decref(runs);
	json_decref(evidence);
	sbuf_release(&md);
	return rc;
}

/* ---- the table -------------------------------------------------------------------------------- */

static const struct engine_arg_spec open_args[] = {
	{ "title", ENGINE_ARG_STRING, 0, "", "what happened, in a few words" },
	{ NULL, 0, 0, NULL, NULL },
};
static const struct engine_arg_spec no_args[] = {
	{ NULL, 0, 0, NULL, NULL },
};
static const struct engine_arg_spec snapshot_args[] = {
	{ "archive", ENGINE_ARG_BOOL, 0, "false", "also write a tar.gz of the evidence folder" },
	{ "allow_partial", ENGINE_ARG_BOOL, 0, "false", "succeed when some artefacts could not be collected" },
	{ NULL, 0, 0, NULL, NULL },
};
static const struct engine_arg_spec service_args[] = {
	{ "service", ENGINE_ARG_STRING, ENGINE_ARG_REQUIRED, NULL, "a configured service" },
	{ NULL, 0, 0, NULL, NULL },
};
static const struct engine_arg_spec investigate_args[] = {
	{ "window", ENGINE_ARG_DURATION, 0, "1h", "failed logins within" },
	{ "threshold", ENGINE_ARG_INT, 0, "5", "more than this many failed logins" },
	{ "recent", ENGINE_ARG_DURATION, 0, "24h", "new accounts, posts and reports within" },
	{ "limit", ENGINE_ARG_INT, 0, "20", "rows listed per section" },
	{ NULL, 0, 0, NULL, NULL },
};
static const struct engine_arg_spec ids_args[] = {
	{ "ids", ENGINE_ARG_ARRAY, ENGINE_ARG_REQUIRED, NULL, "user ids" },
	{ NULL, 0, 0, NULL, NULL },
};
static const struct engine_arg_spec pattern_args[] = {
	{ "pattern", ENGINE_ARG_STRING, ENGINE_ARG_REQUIRED, NULL, "SCAN MATCH pattern" },
	{ NULL, 0, 0, NULL, NULL },
};
static const struct engine_arg_spec env_set_args[] = {
	{ "variable", ENGINE_ARG_STRING, ENGINE_ARG_REQUIRED, NULL, "the variable to give a new value" },
	{ "from_env", ENGINE_ARG_STRING, 0, NULL, "take the value from this environment variable "
						  "(default: 64 random bytes as hex)" },
	{ "files", ENGINE_ARG_ARRAY, ENGINE_ARG_REQUIRED, NULL, "env files assigning it" },
	{ "services", ENGINE_ARG_ARRAY, 0, NULL, "services that must pick the value up (recorded)" },
	{ NULL, 0, 0, NULL, NULL },
};
static const struct engine_arg_spec env_restore_args[] = {
	{ "variable", ENGINE_ARG_STRING, ENGINE_ARG_REQUIRED, NULL, "the variable" },
	{ NULL, 0, 0, NULL, NULL },
};
static const struct engine_arg_spec recreate_args[] = {
	{ "service", ENGINE_ARG_STRING, ENGINE_ARG_REQUIRED, NULL, "a configured service" },
	{ "variable", ENGINE_ARG_STRING, ENGINE_ARG_REQUIRED, NULL, "the variable that changed" },
	{ "restore", ENGINE_ARG_BOOL, 0, "false", "give it back its old value (undo)" },
	{ NULL, 0, 0, NULL, NULL },
};
static const struct engine_arg_spec top_args[] = {
	{ "service", ENGINE_ARG_STRING, 0, "backend", "whose logs" },
	{ "since", ENGINE_ARG_DURATION, 0, "1h", "how far back" },
	{ "limit", ENGINE_ARG_INT, 0, "20", "addresses listed" },
	{ NULL, 0, 0, NULL, NULL },
};
static const struct engine_arg_spec ip_args[] = {
	{ "ip", ENGINE_ARG_STRING, ENGINE_ARG_REQUIRED, NULL, "the address to block" },
	{ NULL, 0, 0, NULL, NULL },
};
static const struct engine_arg_spec report_args[] = {
	{ "output", ENGINE_ARG_STRING, 0, NULL, "write the report to this file (0600)" },
	{ NULL, 0, 0, NULL, NULL },
};

const struct engine_action incident_actions[] = {
	{ "incident.open", "open an incident (state_dir/incidents/ID)", open_args, 0, act_open },
	{ "incident.close", "close the open incident", no_args, 0, act_close },
	{ "incident.snapshot", "collect evidence into a checksummed folder", snapshot_args, 0, act_snapshot },
	{ "incident.has_snapshot", "whether the incident has evidence", no_args, ENGINE_ACTION_READ_ONLY,
	  act_has_snapshot },
	/* Not flagged destructive: nothing is lost (start brings it back), and
	 * contain asks once for all of its stops. */
	{ "incident.stop", "stop (never remove) a service's container", service_args, 0, act_stop },
	{ "incident.investigate", "brute force, new accounts, posts and reports", investigate_args,
	  ENGINE_ACTION_READ_ONLY, act_investigate },
	{ "incident.find_users", "look user ids up", ids_args, ENGINE_ACTION_READ_ONLY, act_find_users },
	{ "incident.lock_users", "password 'LOCKED' and inactive, in one transaction", ids_args,
	  ENGINE_ACTION_DESTRUCTIVE, act_lock_users },
	{ "incident.count_keys", "count Redis keys matching a pattern (SCAN)", pattern_args,
	  ENGINE_ACTION_READ_ONLY, act_count_keys },
	{ "incident.flush_sessions", "delete Redis keys matching a pattern (SCAN + UNLINK)", pattern_args,
	  ENGINE_ACTION_DESTRUCTIVE, act_flush_sessions },
	{ "incident.flushall", "Redis FLUSHALL", no_args, ENGINE_ACTION_DESTRUCTIVE, act_flushall },
	{ "incident.env_set", "give a variable a new value in env files", env_set_args,
	  ENGINE_ACTION_DESTRUCTIVE, act_env_set },
	{ "incident.env_restore", "put back the env files of this run", env_restore_args, 0,
	  act_env_restore },
	{ "incident.recreate", "recreate a service's container with the changed variable",
	  recreate_args, ENGINE_ACTION_DESTRUCTIVE, act_recreate },
	{ "incident.top_ips", "requests per client address in a service's logs", top_args,
	  ENGINE_ACTION_READ_ONLY, act_top_ips },
	{ "incident.block_rule", "the firewall rule blocking an address", ip_args,
	  ENGINE_ACTION_READ_ONLY, act_block_rule },
	{ "incident.block_apply", "add the firewall rule blocking an address", ip_args,
	  ENGINE_ACTION_DESTRUCTIVE, act_block_apply },
	{ "incident.report", "the post-incident report", report_args, 0, act_report },
	{ NULL, NULL, NULL, 0, NULL },
};

/* ---- runbooks ------------------------------------------------------------------------------------ */

/* Where an incident runbook says it comes from (the plan's "source:"). */
#define INCIDENT_RB_SOURCE "(incident runbook)"

struct step_spec {
	const char *name;
	const char *description;      /* literal */
	const char *action;
	json_t *args;                 /* literal values; owned by the caller */
	const char *confirm;          /* a template (may use ${steps...}), or NULL */
	const char *confirm_word;
	const char *check_action;     /* a read-only check whose false result skips the step */
	json_t *check_expect;
	json_t *undo_args;            /* with undo_action */
	const char *undo_action;
	int continue_on_error;
};

/* Borrowed from incident_actions[]; NULL when name is not one of them. */
static const struct engine_action *incident_action(const char *name)
{
	const struct engine_action *a;

	for (a = incident_actions; a->name; a++)
		if (!strcmp(a->name, name))
			return a;
	return NULL;
}

/* A call of action with literal args (quoted, so a "${" in a value stays
 * text) and expect; 0, or -1 with err filled for an unknown action and
 * left alone on ENOMEM. */
static int make_call(struct runbook_call *c, const char *action, const json_t *args,
		     const json_t *expect, struct st_error *err)
{
	if (!(c->action = incident_action(action))) {
		st_error_set(err, ST_EFAILED, "incident runbook uses unknown action '%s'", action);
		st_error_hint(err, "this is a bug in spilttea-ops: please report it with the command line");
		return -1;
	}
	c->args = args ? expr_quote_json(args) : json_object();
	if (!c->args || (expect && !(c->expect = expr_quote_json(expect))))
		return -1;
	return 0;
}

static int rb_header(struct runbook **out, const char *name, const char *description, const char *lock)
{
	struct runbook *rb = calloc(1, sizeof(*rb));

	*out = rb;
	if (!rb || !(rb->name = strdup(name)) || !(rb->description = strdup(description)) ||
	    !(rb->source = strdup(INCIDENT_RB_SOURCE)) || (lock && runbook_add_lock(rb, lock, NULL)))
		return -1;
	return 0;
}

/* The header of a runbook that stops or recreates services: the incident
 * lock and each service's (svc:NAME, lock.h), so a deploy, migrate,
 * restore or restart of the same container cannot run meanwhile. */
static int rb_header_services(struct runbook **out, const char *name, const char *description,
			      const char *const *services, size_t n)
{
	char lock[LOCK_NAME_MAX];
	size_t i;

	if (rb_header(out, name, description, INCIDENT_LOCK))
		return -1;
	for (i = 0; i < n; i++)
		if (lock_name_service(lock, sizeof(lock), services[i], NULL) != 0 ||
		    runbook_add_lock(*out, lock, NULL) != 0)
			return -1;
	return 0;
}

/* Appends the step s describes to rb. */
static int rb_step(struct runbook *rb, const struct step_spec *s, struct st_error *err)
{
	struct runbook_step *steps = realloc(rb->steps, (rb->nsteps + 1) * sizeof(*steps)), *st;

	if (!steps)
		return -1;
	rb->steps = steps;
	st = &steps[rb->nsteps++];
	memset(st, 0, sizeof(*st));
	st->verify_timeout = RUNBOOK_VERIFY_TIMEOUT;
	st->verify_interval = RUNBOOK_VERIFY_INTERVAL;
	st->continue_on_error = s->continue_on_error;
	if (!(st->name = strdup(s->name)) || (s->description && !(st->description = strdup(s->description))) ||
	    make_call(&st->act, s->action, s->args, NULL, err))
		return -1;
	if (s->check_action) {
		st->on_fail = RUNBOOK_ON_FAIL_SKIP;
		if (!(st->check = calloc(1, sizeof(*st->check))) ||
		    make_call(st->check, s->check_action, NULL, s->check_expect, err))
			return -1;
	}
	if (s->confirm && (!(st->confirm = strdup(s->confirm)) ||
			   (s->confirm_word && !(st->confirm_word = strdup(s->confirm_word)))))
		return -1;
	if (s->undo_action && (!(st->undo = calloc(1, sizeof(*st->undo))) ||
			       make_call(st->undo, s->undo_action, s->undo_args, NULL, err)))
		return -1;
	return 0;
}

/* Hands rb to *out, or frees it when building failed. */
static int built(int failed, struct runbook *rb, struct runbook **out, struct st_error *err)
{
	*out = NULL;
	if (failed) {
		runbook_free(rb);
		return err->code ? err->code : oom(err);
	}
	*out = rb;
	return 0;
}

int incident_rb_start(const char *title, struct runbook **out, struct st_error *err)
{
	struct runbook *rb = NULL;
	struct step_spec s = { "open", "Open the incident (its folder, the current incident)",
			       "incident.open", NULL, NULL, NULL, NULL, NULL, NULL, NULL, 0 };
	int bad;

	s.args = json_pack("{s:s}", "title", title ? title : "");
	bad = !s.args || rb_header(&rb, "incident-start", "Open an incident", INCIDENT_LOCK) ||
	      rb_step(rb, &s, err);
	json_decref(s.args);
	return built(bad, rb, out, err);
}

int incident_rb_close(struct runbook **out, struct st_error *err)
{
	struct runbook *rb = NULL;
	struct step_spec s = { "close", "Close the incident", "incident.close", NULL, NULL, NULL, NULL,
			       NULL, NULL, NULL, 0 };
	int bad = rb_header(&rb, "incident-close", "Close the open incident", INCIDENT_LOCK) ||
		  rb_step(rb, &s, err);

	return built(bad, rb, out, err);
}

int incident_rb_snapshot(int archive, struct runbook **out, struct st_error *err)
{
	struct runbook *rb = NULL;
	struct step_spec s = { "snapshot",
			       "Collect logs, inspect data, a database dump, Redis INFO and the journal",
			       "incident.snapshot", NULL, NULL, NULL, NULL, NULL, NULL, NULL, 0 };
	int bad;

	s.args = json_pack("{s:b}", "archive", archive);
	bad = !s.args ||
	      rb_header(&rb, "incident-snapshot", "Collect evidence before anything changes", INCIDENT_LOCK) ||
	      rb_step(rb, &s, err);
	json_decref(s.args);
	return built(bad, rb, out, err);
}

int incident_rb_contain(const struct st_config *cfg, struct runbook **out, struct st_error *err)
{
	struct runbook *rb = NULL;
	struct step_spec s;
	struct sbuf prompt = SBUF_INIT, names = SBUF_INIT;
	const char **order = NULL;
	size_t n = 0, i, j;
	int bad = 0;

	order = calloc(cfg->n_services + 1, sizeof(*order));
	if (!order)
		return oom(err);
	/* The runbook's order: what faces users first, then what holds data. */
	if (config_service(cfg, "frontend"))
		order[n++] = "frontend";
	if (config_service(cfg, "backend"))
		order[n++] = "backend";
	for (i = 0; i < cfg->n_services; i++) {
		int seen = 0;
		for (j = 0; j < n; j++)
			seen |= !strcmp(order[j], cfg->services[i].name);
		if (!seen)
			order[n++] = cfg->services[i].name;
	}
	for (i = 0; i < n && !bad; i++)
		bad = sbuf_printf(&names, "%s%s", i ? (i + 1 == n ? " and " : ", ") : "", order[i]);
	bad = bad || sbuf_puts(&prompt, "Stop ") || expr_quote(sbuf_str(&names), &prompt) ||
	      sbuf_puts(&prompt, "? Containers are stopped, not removed (they, their logs and volumes stay "
				 "for forensics); the site is down until they are started again.");

	bad = bad || rb_header_services(&rb, "incident-contain",
					"Stop all services without losing evidence (snapshot first)", order, n);
	memset(&s, 0, sizeof(s));
	s.name = "snapshot";
	s.description = "Collect evidence before anything is stopped (skipped when the incident has some)";
	s.action = "incident.snapshot";
	s.args = json_pack("{s:b,s:b}", "archive", 0, "allow_partial", 1);
	s.check_action = "incident.has_snapshot";
	s.check_expect = json_pack("{s:b}", "exists", 0);
	bad = bad || !s.args || !s.check_expect || rb_step(rb, &s, err);
	json_decref(s.args);
	json_decref(s.check_expect);
	for (i = 0; i < n && !bad; i++) {
		struct sbuf name = SBUF_INIT, desc = SBUF_INIT;

		memset(&s, 0, sizeof(s));
		bad = sbuf_printf(&name, "stop-%s", order[i]) ||
		      sbuf_printf(&desc, "Stop %s (%s)", order[i], config_service(cfg, order[i])->container);
		s.name = sbuf_str(&name);
		s.description = sbuf_str(&desc);
		s.action = "incident.stop";
		s.args = json_pack("{s:s}", "service", order[i]);
		/* One question for all; a service that will not stop must not
		 * keep the others running. */
		s.confirm = i == 0 ? sbuf_str(&prompt) : NULL;
		s.continue_on_error = 1;
		bad = bad || !s.args || rb_step(rb, &s, err);
		json_decref(s.args);
		sbuf_release(&name);
		sbuf_release(&desc);
	}
	sbuf_release(&prompt);
	sbuf_release(&names);
	free(order);
	return built(bad, rb, out, err);
}

int incident_rb_investigate(const struct incident_investigate_opts *o, struct runbook **out,
			    struct st_error *err)
{
	struct runbook *rb = NULL;
	struct step_spec s = { "investigate",
			       "Failed logins per user, new accounts, new posts and reports",
			       "incident.investigate", NULL, NULL, NULL, NULL, NULL, NULL, NULL, 0 };
	char w[32], r[32];
	int bad;

	snprintf(w, sizeof(w), "%.3fs", o->window);
	snprintf(r, sizeof(r), "%.3fs", o->recent);
	s.args = json_pack("{s:s,s:I,s:s,s:I}", "window", w, "threshold", (json_int_t)o->threshold,
			   "recent", r, "limit", (json_int_t)o->limit);
	bad = !s.args || rb_header(&rb, "incident-investigate", "Investigate a suspected breach", NULL) ||
	      rb_step(rb, &s, err);
	json_decref(s.args);
	return built(bad, rb, out, err);
}

int incident_rb_lock_users(const char *const *ids, size_t n, struct runbook **out, struct st_error *err)
{
	struct runbook *rb = NULL;
	struct step_spec find = { "find", "Look the users up", "incident.find_users", NULL, NULL, NULL,
				  NULL, NULL, NULL, NULL, 0 };
	struct step_spec lock = { "lock", "Set password 'LOCKED' and \"isActive\" false, in one transaction",
				  "incident.lock_users", NULL,
				  "Lock ${steps.find.count} user(s): ${steps.find.list}? Their password becomes "
				  "'LOCKED' and their accounts inactive.",
				  NULL, NULL, NULL, NULL, NULL, 0 };
	json_t *arr = json_array();
	size_t i;
	int bad = !arr;

	for (i = 0; i < n && !bad; i++)
		bad = json_array_append_new(arr, json_string(ids[i]));
	find.args = json_pack("{s:O}", "ids", arr);
	lock.args = json_pack("{s:O}", "ids", arr);
	bad = bad || !find.args || !lock.args ||
	      rb_header(&rb, "incident-lock-users", "Lock suspicious user accounts", INCIDENT_LOCK) ||
	      rb_step(rb, &find, err) || rb_step(rb, &lock, err);
	json_decref(find.args);
	json_decref(lock.args);
	json_decref(arr);
	return built(bad, rb, out, err);
}

int incident_rb_flush_sessions(const char *pattern, int all, struct runbook **out, struct st_error *err)
{
	struct runbook *rb = NULL;
	struct step_spec count = { "count", "Count the session keys (SCAN)", "incident.count_keys", NULL,
				   NULL, NULL, NULL, NULL, NULL, NULL, 0 };
	struct step_spec flush = { "flush", "Delete the session keys (SCAN + UNLINK)",
				   "incident.flush_sessions", NULL, NULL, NULL, NULL, NULL, NULL, NULL, 0 };
	struct sbuf prompt = SBUF_INIT;
	int bad;

	if (all) {
		struct step_spec s = { "flushall", "Delete every key of every Redis database (FLUSHALL)",
				       "incident.flushall", NULL,
				       "FLUSHALL deletes EVERY key in Redis: sessions, cache and rate limits.",
				       "FLUSHALL", NULL, NULL, NULL, NULL, 0 };

		bad = rb_header(&rb, "incident-flushall", "Clear all sessions (Redis FLUSHALL)", INCIDENT_LOCK) ||
		      rb_step(rb, &s, err);
		return built(bad, rb, out, err);
	}
	count.args = json_pack("{s:s}", "pattern", pattern);
	flush.args = json_pack("{s:s}", "pattern", pattern);
	bad = !count.args || !flush.args || sbuf_puts(&prompt, "Delete ${steps.count.keys} key(s) matching '") ||
	      expr_quote(pattern, &prompt) ||
	      sbuf_puts(&prompt, "'? Everyone logged in must log in again.");
	flush.confirm = sbuf_str(&prompt);
	bad = bad ||
	      rb_header(&rb, "incident-flush-sessions", "Clear login sessions from Redis", INCIDENT_LOCK) ||
	      rb_step(rb, &count, err) || rb_step(rb, &flush, err);
	json_decref(count.args);
	json_decref(flush.args);
	sbuf_release(&prompt);
	return built(bad, rb, out, err);
}

int incident_rb_rotate(const struct st_config *cfg, const char *variable, const char *from_env,
		       const struct incident_rotate_plan *plan, int restart, struct runbook **out,
		       struct st_error *err)
{
	struct runbook *rb = NULL;
	struct step_spec s;
	struct sbuf prompt = SBUF_INIT, desc = SBUF_INIT;
	json_t *files = json_array(), *services = json_array();
	size_t i;
	int bad = !files || !services;

	for (i = 0; i < plan->nfiles && !bad; i++)
		bad = json_array_append_new(files, json_string(plan->files[i]));
	for (i = 0; i < plan->nservices && !bad; i++)
		bad = json_array_append_new(services, json_string(plan->services[i]));
	bad = bad || rb_header_services(&rb, "incident-rotate-secret", "Rotate a secret in the env files and "
					"the containers that use it", (const char *const *)plan->services,
					restart ? plan->nservices : 0);
	if (plan->nfiles && !bad) {
		memset(&s, 0, sizeof(s));
		bad = sbuf_printf(&desc, "Write a new %s into the env files", variable) ||
		      sbuf_printf(&prompt, "Replace %s in ", variable);
		for (i = 0; i < plan->nfiles && !bad; i++)
			bad = sbuf_puts(&prompt, i ? ", " : "") ||
			      expr_quote(plan->files[i], &prompt);
		bad = bad || sbuf_printf(&prompt, " with %s?", from_env ? "the value of $" : "a new random value");
		if (from_env)
			bad = bad || sbuf_puts(&prompt, from_env);
		s.name = "write";
		s.description = sbuf_str(&desc);
		s.action = "incident.env_set";
		s.args = from_env ? json_pack("{s:s,s:s,s:O,s:O}", "variable", variable, "from_env", from_env,
					      "files", files, "services", services)
				  : json_pack("{s:s,s:O,s:O}", "variable", variable, "files", files,
					      "services", services);
		s.confirm = sbuf_str(&prompt);
		s.undo_action = "incident.env_restore";
		s.undo_args = json_pack("{s:s}", "variable", variable);
		bad = bad || !s.args || !s.undo_args || rb_step(rb, &s, err);
		json_decref(s.args);
		json_decref(s.undo_args);
	} else if (!bad) {
		/* No file holds it: the value lives only in the containers. */
		memset(&s, 0, sizeof(s));
		s.name = "generate";
		s.description = "Choose the new value (no env file assigns the variable)";
		s.action = "incident.env_set";
		s.args = from_env ? json_pack("{s:s,s:s,s:[],s:O}", "variable", variable, "from_env", from_env,
					      "files", "services", services)
				  : json_pack("{s:s,s:[],s:O}", "variable", variable, "files", "services", services);
		bad = sbuf_printf(&prompt, "Give %s a new value (it is in no env file, so it lasts only as "
					   "long as the recreated containers)?", variable);
		s.confirm = sbuf_str(&prompt);
		bad = bad || !s.args || rb_step(rb, &s, err);
		json_decref(s.args);
	}
	for (i = 0; restart && i < plan->nservices && !bad; i++) {
		const struct config_service *svc = config_service(cfg, plan->services[i]);
		struct sbuf name = SBUF_INIT, d2 = SBUF_INIT, p2 = SBUF_INIT;

		memset(&s, 0, sizeof(s));
		bad = !svc || sbuf_printf(&name, "recreate-%s", plan->services[i]) ||
		      sbuf_printf(&d2, "Recreate %s (%s) with the new %s and wait until it is healthy",
				  plan->services[i], svc->container, variable) ||
		      sbuf_printf(&p2, "Recreate %s (%s) so it uses the new %s? It is down while it starts; "
				       "if it does not come up healthy the old container is put back.",
				  plan->services[i], svc->container, variable);
		s.name = sbuf_str(&name);
		s.description = sbuf_str(&d2);
		s.action = "incident.recreate";
		s.args = json_pack("{s:s,s:s}", "service", plan->services[i], "variable", variable);
		s.confirm = sbuf_str(&p2);
		s.undo_action = "incident.recreate";
		s.undo_args = json_pack("{s:s,s:s,s:b}", "service", plan->services[i], "variable", variable,
					"restore", 1);
		bad = bad || !s.args || !s.undo_args || rb_step(rb, &s, err);
		json_decref(s.args);
		json_decref(s.undo_args);
		sbuf_release(&name);
		sbuf_release(&d2);
		sbuf_release(&p2);
	}
	sbuf_release(&prompt);
	sbuf_release(&desc);
	json_decref(files);
	json_decref(services);
	return built(bad, rb, out, err);
}

int incident_rb_top_ips(const char *service, double since, size_t limit, struct runbook **out,
			struct st_error *err)
{
	struct runbook *rb = NULL;
	struct step_spec s = { "count", "Count requests per client address in the logs",
			       "incident.top_ips", NULL, NULL, NULL, NULL, NULL, NULL, NULL, 0 };
	char w[32];
	int bad;

	snprintf(w, sizeof(w), "%.3fs", since);
	s.args = json_pack("{s:s,s:s,s:I}", "service", service, "since", w, "limit", (json_int_t)limit);
	bad = !s.args || rb_header(&rb, "incident-top-ips", "Requests per client address", NULL) ||
	      rb_step(rb, &s, err);
	json_decref(s.args);
	return built(bad, rb, out, err);
}

int incident_rb_block_ip(const char *ip, int apply, struct runbook **out, struct st_error *err)
{
	struct runbook *rb = NULL;
	struct step_spec rule = { "rule", "The firewall rule that blocks the address", "incident.block_rule",
				  NULL, NULL, NULL, NULL, NULL, NULL, NULL, 0 };
	struct step_spec add = { "apply", "Insert the rule at the top of its chain (incident.firewall_chain)", "incident.block_apply", NULL,
				 "Run '${steps.rule.rule}' on this host?", NULL, NULL, NULL, NULL, NULL, 0 };
	int bad;

	rule.args = json_pack("{s:s}", "ip", ip);
	add.args = json_pack("{s:s}", "ip", ip);
	bad = !rule.args || !add.args ||
	      rb_header(&rb, "incident-block-ip", "Block a client address at the firewall",
			apply ? INCIDENT_LOCK : NULL) ||
	      rb_step(rb, &rule, err) || (apply && rb_step(rb, &add, err));
	json_decref(rule.args);
	json_decref(add.args);
	return built(bad, rb, out, err);
}

int incident_rb_report(const char *output, struct runbook **out, struct st_error *err)
{
	struct runbook *rb = NULL;
	struct step_spec s = { "report", "Render the post-incident report from the journal",
			       "incident.report", NULL, NULL, NULL, NULL, NULL, NULL, NULL, 0 };
	int bad;

	s.args = output ? json_pack("{s:s}", "output", output) : json_object();
	bad = !s.args || rb_header(&rb, "incident-report", "The post-incident report", NULL) ||
	      rb_step(rb, &s, err);
	json_decref(s.args);
	return built(bad, rb, out, err);
}

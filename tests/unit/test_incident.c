/*
 * test_incident.c - the parts of `incident` that need no service:
 * incidents on disk, user id checks, secrets, the runbooks each subcommand
 * builds, the evidence manifest and archive, and the report (journal
 * reading and Markdown rendering) from a canned journal.
 */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "config.h"
#include "engine.h"
#include "expr.h"
#include "incident.h"
#include "incident_actions.h"
#include "journal.h"
#include "redact.h"
#include "runbook.h"
#include "timeutil.h"
#include "testutil.h"

/* fsync() of a temporary file of an env file whose name holds
 * fail_fsync_of fails (a disk error while the second of two files is
 * written): this definition takes the place of libc's in this program. */
static const char *fail_fsync_of;

int fsync(int fd)
{
	char link[64], target[1024];
	ssize_t n;

	if (fail_fsync_of) {
		snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
		n = readlink(link, target, sizeof(target) - 1);
		if (n > 0) {
			target[n] = '\0';
			if (strstr(target, fail_fsync_of) && strstr(target, ".partial")) {
				errno = EIO;
				return -1;
			}
		}
	}
	return (int)syscall(SYS_fsync, fd);
}

/* ---- incidents -------------------------------------------------------------------- */

static void test_ids(void **state)
{
	char buf[64];

	(void)state;
	assert_true(incident_id_valid("INC-20261127-223416"));
	assert_true(incident_id_valid("SEC-42"));
	assert_true(incident_id_valid("a.b_c-1"));
	assert_false(incident_id_valid(""));
	assert_false(incident_id_valid("-x"));
	assert_false(incident_id_valid(".hidden"));
	assert_false(incident_id_valid("a/b"));
	assert_false(incident_id_valid("../x"));
	assert_false(incident_id_valid("current"));
	assert_false(incident_id_valid("0123456789012345678901234567890123456789"));
	assert_string_equal(incident_id_format(1795818856.5, buf, sizeof(buf)), "INC-20261127-223416");
}

static void test_open_close(void **state)
{
	const char *dir = *state;
	struct incident_info info, again;
	struct st_error err = { 0 };
	char id[INCIDENT_ID_MAX], path[1024];
	size_t malformed = 0;
	char *journal;

	assert_int_equal(incident_current(dir, id, sizeof(id), &err), ST_ENOTFOUND);
	assert_non_null(strstr(err.hint, "incident start"));
	assert_int_equal(incident_latest(dir, id, sizeof(id), &err), ST_ENOTFOUND);

	assert_int_equal(incident_open(dir, "SEC-1", "stolen keys | found", &info, &err), 0);
	assert_string_equal(info.id, "SEC-1");
	assert_int_equal(incident_current(dir, id, sizeof(id), &err), 0);
	assert_string_equal(id, "SEC-1");
	snprintf(path, sizeof(path), "%s/incidents/SEC-1", dir);
	assert_int_equal(tu_mode(path), 0700);
	snprintf(path, sizeof(path), "%s/incidents/SEC-1/incident.json", dir);
	assert_int_equal(tu_mode(path), 0600);
	assert_int_equal(incident_load(dir, "SEC-1", &again, &err), 0);
	assert_string_equal(again.title, "stolen keys | found");
	assert_true(again.opened > 0 && again.closed == 0);
	assert_non_null(strchr(again.opened_by, '@'));

	/* One open at a time. */
	assert_int_equal(incident_open(dir, NULL, NULL, NULL, &err), ST_ECONFLICT);
	assert_non_null(strstr(err.message, "'SEC-1' is still open"));
	assert_int_equal(incident_close(dir, "SEC-2", NULL, &err), ST_ECONFLICT);
	assert_int_equal(incident_close(dir, "SEC-1", &again, &err), 0);
	assert_true(again.closed >= again.opened);
	assert_int_equal(incident_current(dir, id, sizeof(id), &err), ST_ENOTFOUND);
	assert_int_equal(incident_latest(dir, id, sizeof(id), &err), 0);
	assert_string_equal(id, "SEC-1");
	/* An id is used once. */
	assert_int_equal(incident_open(dir, "SEC-1", NULL, NULL, &err), ST_ECONFLICT);
	assert_int_equal(incident_open(dir, "../x", NULL, NULL, &err), ST_EUSAGE);
	assert_int_equal(incident_load(dir, "SEC-9", &again, &err), ST_ENOTFOUND);

	/* Both ends are in the journal, as incident records. */
	snprintf(path, sizeof(path), "%s/journal.jsonl", dir);
	journal = tu_read(path);
	assert_non_null(journal);
	assert_non_null(strstr(journal, "\"type\":\"incident\""));
	assert_non_null(strstr(journal, "\"event\":\"opened\""));
	assert_non_null(strstr(journal, "\"event\":\"closed\""));
	free(journal);
	(void)malformed;
}

/* ---- users, secrets -------------------------------------------------------------- */

static void test_user_ids(void **state)
{
	const char *ok_int[] = { "7", "42", "2147483647", "0" };
	const char *uuid[] = { "123e4567-e89b-12d3-a456-426614174000" };
	const char *cuid[] = { "ckl1q2w3e0000abc", "V1StGXR8_Z5jdHi6B-myT" };
	struct st_error err = { 0 };
	const char *one[1];

	(void)state;
	assert_int_equal(incident_user_ids_check(INCIDENT_ID_INT, ok_int, 4, &err), 0);
	assert_int_equal(incident_user_ids_check(INCIDENT_ID_UUID, uuid, 1, &err), 0);
	assert_int_equal(incident_user_ids_check(INCIDENT_ID_TEXT, cuid, 2, &err), 0);
#define BAD(kind, id) do { one[0] = id; assert_int_equal(incident_user_ids_check(kind, one, 1, &err), ST_EUSAGE); } while (0)
	BAD(INCIDENT_ID_INT, "2147483648");
	BAD(INCIDENT_ID_INT, "-1");
	BAD(INCIDENT_ID_INT, "+1");
	BAD(INCIDENT_ID_INT, "007");
	BAD(INCIDENT_ID_INT, "1 OR 1=1");
	BAD(INCIDENT_ID_INT, "1); DROP TABLE \"User\"; --");
	BAD(INCIDENT_ID_INT, "");
	BAD(INCIDENT_ID_INT, "abc");
	BAD(INCIDENT_ID_BIGINT, "9223372036854775808");
	BAD(INCIDENT_ID_UUID, "123e4567e89b12d3a456426614174000");
	BAD(INCIDENT_ID_UUID, "123e4567-e89b-12d3-a456-42661417400g");
	BAD(INCIDENT_ID_TEXT, "a'b");
	BAD(INCIDENT_ID_TEXT, "NULL\"}");
#undef BAD
	one[0] = "9223372036854775807";
	assert_int_equal(incident_user_ids_check(INCIDENT_ID_BIGINT, one, 1, &err), 0);
	assert_int_equal(incident_user_ids_check(INCIDENT_ID_INT, one, 0, &err), ST_EUSAGE);
	{
		const char *dup[] = { "7", "7" };
		assert_int_equal(incident_user_ids_check(INCIDENT_ID_INT, dup, 2, &err), ST_EUSAGE);
		assert_non_null(strstr(err.message, "twice"));
	}
	assert_true(incident_user_id_syntax_ok("7"));
	assert_false(incident_user_id_syntax_ok("7;"));
	assert_false(incident_user_id_syntax_ok(""));
}

static void test_secret(void **state)
{
	char a[INCIDENT_SECRET_HEX], b[INCIDENT_SECRET_HEX];
	struct st_error err = { 0 };

	(void)state;
	assert_int_equal(incident_secret_generate(a, &err), 0);
	assert_int_equal(incident_secret_generate(b, &err), 0);
	assert_int_equal(strlen(a), 128);
	assert_int_equal(strspn(a, "0123456789abcdef"), 128);
	assert_string_not_equal(a, b);
}

/* ---- runbooks ------------------------------------------------------------------------ */

static struct st_config *config_in(const char *dir)
{
	char path[1024];
	struct st_config *cfg = NULL;
	struct st_error err = { 0 };

	snprintf(path, sizeof(path), "%s/c.yaml", dir);
	tu_write(path, "state_dir: ./state\n"
		       "services:\n"
		       "  postgres: { container: pg }\n"
		       "  redis: { container: rd }\n"
		       "  backend: { container: be, env_file: ./backend.env, health_url: 'http://127.0.0.1:1/health' }\n"
		       "  frontend: { container: fe }\n"
		       "  worker: { container: wk }\n"
		       "postgres: { host: db, user: u, database: d }\n"
		       "redis: { host: r }\n");
	if (config_load_file(path, "--config", &cfg, &err) != 0)
		fail_msg("config: %s", err.message);
	return cfg;
}

struct ref_check {
	const struct runbook *rb;
	size_t step;                  /* index of the step whose text is scanned */
};

/* A confirm may use ${steps.X} of an earlier step or of its own (its
 * check's result), nothing else: what the runbook loader enforced. */
static int confirm_ref(void *ud, enum expr_ns ns, const char *path, size_t pathlen, struct st_error *err)
{
	const struct ref_check *rc = ud;
	size_t i, n = strcspn(path, ".");

	(void)err;
	assert_int_equal(ns, EXPR_NS_STEPS);
	assert_true(n < pathlen);
	for (i = 0; i <= rc->step; i++)
		if (strlen(rc->rb->steps[i].name) == n && !strncmp(rc->rb->steps[i].name, path, n))
			return 0;
	fail_msg("confirm of step '%s' refers to '%.*s'", rc->rb->steps[rc->step].name, (int)pathlen, path);
	return -1;
}

/* No string in v is a template: command-line values are literals. */
static void assert_literal(const json_t *v)
{
	const char *k;
	json_t *e;
	size_t i;

	if (json_is_string(v))
		assert_false(expr_has_refs(json_string_value(v)));
	json_array_foreach(v, i, e)
		assert_literal(e);
	json_object_foreach((json_t *)v, k, e)
		assert_literal(e);
}

/* The checks the runbook loader made of the YAML these runbooks once
 * were: known actions and arguments of the right types, read-only checks,
 * a confirm on every destructive step, references to earlier steps only. */
static void assert_call(const struct runbook_call *c, int read_only)
{
	const struct engine_arg_spec *spec;
	struct st_error err = { 0 };
	const char *k;
	json_t *v, *conv = NULL;

	assert_non_null(c->action);
	assert_true(json_is_object(c->args));
	if (read_only)
		assert_true(c->action->flags & ENGINE_ACTION_READ_ONLY);
	json_object_foreach(c->args, k, v)
		assert_non_null(engine_action_arg(c->action, k));
	for (spec = c->action->args; spec && spec->name; spec++) {
		v = json_object_get(c->args, spec->name);
		if (!v) {
			assert_false((spec->flags & ENGINE_ARG_REQUIRED) && !spec->def);
			continue;
		}
		assert_int_equal(engine_arg_convert(spec, v, &conv, &err), 0);
		json_decref(conv);
	}
	assert_literal(c->args);
}

static struct runbook *checked(struct runbook *rb)
{
	struct st_error err = { 0 };
	size_t i, j;

	assert_non_null(rb);
	assert_string_equal(rb->source, "(incident runbook)");
	assert_non_null(rb->description);
	assert_true(rb->nsteps > 0);
	for (i = 0; i < rb->nsteps; i++) {
		const struct runbook_step *st = &rb->steps[i];
		struct ref_check rc = { rb, i };

		for (j = 0; j < i; j++)
			assert_string_not_equal(rb->steps[j].name, st->name);
		assert_call(&st->act, 0);
		if (st->act.action->flags & ENGINE_ACTION_DESTRUCTIVE)
			assert_non_null(st->confirm);
		if (st->check)
			assert_call(st->check, 1);
		if (st->undo)
			assert_call(st->undo, 0);
		if (st->confirm)
			assert_int_equal(expr_scan(st->confirm, confirm_ref, &rc, &err), 0);
		assert_true(st->verify_interval > 0);
	}
	return rb;
}

/* Runs the rotation runbook for JWT_SECRET over files (no restarts),
 * confirmed; returns the number of failed steps (the run stops at one). */
static size_t rotate_files(const char *dir, char **files, size_t n)
{
	struct st_config *cfg = config_in(dir);
	struct incident_rotate_plan plan;
	struct incident_session sess;
	struct engine_options eo;
	struct engine_report rep;
	struct st_error err = { 0 };
	struct runbook *rb;
	json_t *params = NULL;
	char state[1024];
	size_t failed;

	memset(&plan, 0, sizeof(plan));
	plan.files = files;
	plan.nfiles = n;
	assert_int_equal(incident_rb_rotate(cfg, "JWT_SECRET", NULL, &plan, 0, &rb, &err), 0);
	checked(rb);
	assert_int_equal(engine_params_parse(rb, 0, NULL, &params, &err), 0);
	snprintf(state, sizeof(state), "%s/state", dir);
	incident_session_init(&sess, cfg, "INC-20261127-000000");
	memset(&eo, 0, sizeof(eo));
	eo.state_dir = state;
	eo.command_line = "test";
	eo.incident = sess.id;
	eo.assume_yes = 1;
	eo.config = cfg;
	eo.services = &sess.svc;
	memset(&rep, 0, sizeof(rep));
	failed = engine_run(rb, params, &eo, &rep, &err) != 0 ? 1 : rep.failed;
	incident_session_release(&sess);
	json_decref(params);
	runbook_free(rb);
	config_free(cfg);
	return failed;
}

/* Review 2 item 6: the secret goes into every file or into none. A file
 * that cannot take it, or a write that fails half way, must leave the
 * files written before it as they were (the failed step has no undo). */
static void test_env_set_all_or_nothing(void **state)
{
	const char *dir = *state;
	char a[600], b[600], *files[2], *text;

	snprintf(a, sizeof(a), "%s/a.env", dir);
	snprintf(b, sizeof(b), "%s/b.env", dir);
	files[0] = a;
	files[1] = b;

	/* The second file's value cannot be rewritten (a multi-line value). */
	tu_write(a, "A=1\nJWT_SECRET=old-a\n");
	tu_write(b, "JWT_SECRET=\"multi\nline\"\n");
	assert_int_equal(rotate_files(dir, files, 2), 1);
	text = tu_read(a);
	assert_string_equal(text, "A=1\nJWT_SECRET=old-a\n");
	free(text);
	text = tu_read(b);
	assert_string_equal(text, "JWT_SECRET=\"multi\nline\"\n");
	free(text);

	/* Writing the second file fails: the first is put back. */
	tu_write(b, "JWT_SECRET=old-b\n");
	fail_fsync_of = "/.b.env.";
	assert_int_equal(rotate_files(dir, files, 2), 1);
	fail_fsync_of = NULL;
	text = tu_read(a);
	assert_string_equal(text, "A=1\nJWT_SECRET=old-a\n");
	free(text);
	text = tu_read(b);
	assert_string_equal(text, "JWT_SECRET=old-b\n");
	free(text);

	/* And when both can be written, both are. */
	assert_int_equal(rotate_files(dir, files, 2), 0);
	text = tu_read(a);
	assert_non_null(strstr(text, "A=1\nJWT_SECRET="));
	assert_null(strstr(text, "old-a"));
	free(text);
	text = tu_read(b);
	assert_null(strstr(text, "old-b"));
	free(text);
}

/* Review 2 item 9: evidence hides secrets wherever Docker shows them, not
 * only in Env: command lines, health checks, labels, and any string that
 * holds a known secret's value. */
static void test_redact_inspect(void **state)
{
	static const char doc[] =
		"{\"Path\": \"redis-server\","
		" \"Args\": [\"--requirepass\", \"literal-pw-1\", \"--port\", \"6379\"],"
		" \"Config\": {"
		"  \"Env\": [\"REDIS_PASSWORD=envsecret42\", \"DATABASE_URL=postgres://app:dbpw7788@db/app\","
		"           \"PLAIN=visible\", \"API_TOKEN=x\"],"
		"  \"Cmd\": [\"sh\", \"-c\", \"exec redis-server --requirepass envsecret42 --masterauth m4ster\"],"
		"  \"Entrypoint\": [\"app\", \"--db-password=inline99\", \"--verbose\"],"
		"  \"Healthcheck\": {\"Test\": [\"CMD-SHELL\", \"redis-cli -a $REDIS_PASSWORD ping\"]},"
		"  \"Labels\": {\"com.example.api_key\": \"label-key-5\", \"maintainer\": \"ops\"},"
		"  \"Hostname\": \"h\", \"Note\": \"connects with dbpw7788 and cfgsecret99\""
		" },"
		" \"Command\": \"postgres -c password=cfgsecret99 -a short\""
		"}";
	struct redact_set known = REDACT_SET_INIT;
	struct st_error err = { 0 };
	json_error_t jerr;
	json_t *j = json_loads(doc, 0, &jerr), *cfg;
	char *text;

	(void)state;
	assert_non_null(j);
	assert_int_equal(redact_set_add(&known, "cfgsecret99"), 0);
	assert_int_equal(incident_redact_inspect(j, &known, &err), 0);
	text = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);
	/* No secret survives anywhere. */
	assert_null(strstr(text, "literal-pw-1"));
	assert_null(strstr(text, "envsecret42"));
	assert_null(strstr(text, "dbpw7788"));
	assert_null(strstr(text, "m4ster"));
	assert_null(strstr(text, "inline99"));
	assert_null(strstr(text, "label-key-5"));
	assert_null(strstr(text, "cfgsecret99"));
	free(text);
	/* What is not secret stays readable. */
	cfg = json_object_get(j, "Config");
	assert_string_equal(json_string_value(json_array_get(json_object_get(j, "Args"), 0)), "--requirepass");
	assert_string_equal(json_string_value(json_array_get(json_object_get(j, "Args"), 1)), "***");
	assert_string_equal(json_string_value(json_array_get(json_object_get(j, "Args"), 3)), "6379");
	assert_string_equal(json_string_value(json_array_get(json_object_get(cfg, "Env"), 0)), "REDIS_PASSWORD=***");
	assert_string_equal(json_string_value(json_array_get(json_object_get(cfg, "Env"), 1)),
			    "DATABASE_URL=postgres://app:***@db/app");
	assert_string_equal(json_string_value(json_array_get(json_object_get(cfg, "Env"), 2)), "PLAIN=visible");
	assert_string_equal(json_string_value(json_array_get(json_object_get(cfg, "Env"), 3)), "API_TOKEN=***");
	assert_string_equal(json_string_value(json_array_get(json_object_get(cfg, "Cmd"), 2)),
			    "exec redis-server --requirepass *** --masterauth ***");
	assert_string_equal(json_string_value(json_array_get(json_object_get(cfg, "Entrypoint"), 1)),
			    "--db-password=***");
	assert_string_equal(json_string_value(json_array_get(json_object_get(cfg, "Entrypoint"), 2)), "--verbose");
	assert_string_equal(json_string_value(json_array_get(
				    json_object_get(json_object_get(cfg, "Healthcheck"), "Test"), 1)),
			    "redis-cli -a *** ping");
	assert_string_equal(json_string_value(json_object_get(json_object_get(cfg, "Labels"), "maintainer")), "ops");
	assert_string_equal(json_string_value(json_object_get(cfg, "Note")), "connects with *** and ***");
	assert_string_equal(json_string_value(json_object_get(j, "Command")), "postgres -c password=*** -a ***");
	/* The short secret-named value is hidden in Env, not searched for elsewhere. */
	assert_string_equal(json_string_value(json_object_get(cfg, "Hostname")), "h");
	json_decref(j);
	redact_set_release(&known);
}

static void test_runbooks(void **state)
{
	struct st_config *cfg = config_in(*state);
	struct incident_investigate_opts io = { 3600, 5, 86400, 20, 30 };
	struct incident_rotate_plan plan;
	struct st_error err = { 0 };
	struct runbook *rb;
	char *files[] = { "/srv/app/.env", "/srv/app/backend/${HOME}.env", NULL };
	char *services[] = { "backend", "worker", NULL };
	const char *ids[] = { "7", "42" };
	struct engine_registry *reg = NULL;

	/* The table the runbooks take their actions from is a valid one. */
	assert_int_equal(engine_registry_new(0, &reg, &err), 0);
	assert_int_equal(engine_registry_add(reg, incident_actions, &err), 0);
	engine_registry_free(reg);

	/* contain: snapshot unless there is one, then frontend, backend, the rest. */
	assert_int_equal(incident_rb_contain(cfg, &rb, &err), 0);
	checked(rb);
	assert_int_equal(rb->nsteps, 6);
	assert_string_equal(rb->steps[0].name, "snapshot");
	assert_non_null(rb->steps[0].check);
	assert_int_equal(rb->steps[0].on_fail, RUNBOOK_ON_FAIL_SKIP);
	assert_string_equal(rb->steps[1].name, "stop-frontend");
	assert_non_null(rb->steps[1].confirm);
	assert_non_null(strstr(rb->steps[1].confirm, "frontend, backend, postgres, redis and worker"));
	assert_string_equal(rb->steps[2].name, "stop-backend");
	assert_string_equal(rb->steps[3].name, "stop-postgres");
	assert_string_equal(rb->steps[5].name, "stop-worker");
	assert_true(rb->steps[5].continue_on_error);
	/* The incident's lock and every container it stops (review 2 item 4). */
	assert_int_equal(rb->nlocks, 6);
	assert_string_equal(rb->locks[0], INCIDENT_LOCK);
	assert_string_equal(rb->locks[1], "svc:frontend");
	assert_string_equal(rb->locks[2], "svc:backend");
	assert_string_equal(rb->locks[5], "svc:worker");
	runbook_free(rb);

	/* rotate: the paths are literals even when they hold "${". */
	memset(&plan, 0, sizeof(plan));
	plan.files = files;
	plan.nfiles = 2;
	plan.services = services;
	plan.nservices = 2;
	assert_int_equal(incident_rb_rotate(cfg, "JWT_SECRET", NULL, &plan, 1, &rb, &err), 0);
	checked(rb);
	assert_int_equal(rb->nsteps, 3);
	assert_string_equal(rb->steps[0].act.action->name, "incident.env_set");
	assert_non_null(rb->steps[0].undo);
	assert_string_equal(json_string_value(json_array_get(json_object_get(rb->steps[0].act.args, "files"), 1)),
			    "/srv/app/backend/$${HOME}.env");
	assert_string_equal(rb->steps[1].name, "recreate-backend");
	assert_string_equal(rb->steps[1].undo->action->name, "incident.recreate");
	assert_true(json_is_true(json_object_get(rb->steps[1].undo->args, "restore")));
	/* Recreating takes the containers' locks too. */
	assert_int_equal(rb->nlocks, 3);
	assert_string_equal(rb->locks[0], INCIDENT_LOCK);
	assert_string_equal(rb->locks[1], "svc:backend");
	runbook_free(rb);
	assert_int_equal(incident_rb_rotate(cfg, "SMTP_PASSWORD", "NEW_SMTP", &plan, 0, &rb, &err), 0);
	checked(rb);
	assert_int_equal(rb->nsteps, 1);
	assert_string_equal(json_string_value(json_object_get(rb->steps[0].act.args, "from_env")), "NEW_SMTP");
	runbook_free(rb);

	/* The others are well formed and have the steps their commands print. */
	assert_int_equal(incident_rb_lock_users(ids, 2, &rb, &err), 0);
	checked(rb);
	assert_string_equal(rb->steps[0].name, "find");
	assert_string_equal(rb->steps[1].name, "lock");
	assert_non_null(strstr(rb->steps[1].confirm, "${steps.find.list}"));
	runbook_free(rb);
	assert_int_equal(incident_rb_flush_sessions("sess:${x}*", 0, &rb, &err), 0);
	checked(rb);
	assert_non_null(strstr(rb->steps[1].confirm, "'sess:$${x}*'"));
	runbook_free(rb);
	assert_int_equal(incident_rb_flush_sessions(NULL, 1, &rb, &err), 0);
	checked(rb);
	assert_string_equal(rb->steps[0].confirm_word, "FLUSHALL");
	runbook_free(rb);
	assert_int_equal(incident_rb_start("a \"quoted\" ${title}", &rb, &err), 0);
	checked(rb);
	assert_string_equal(json_string_value(json_object_get(rb->steps[0].act.args, "title")),
			    "a \"quoted\" $${title}");
	runbook_free(rb);
	assert_int_equal(incident_rb_close(&rb, &err), 0);
	runbook_free(checked(rb));
	assert_int_equal(incident_rb_snapshot(1, &rb, &err), 0);
	runbook_free(checked(rb));
	assert_int_equal(incident_rb_investigate(&io, &rb, &err), 0);
	checked(rb);
	assert_int_equal(rb->nlocks, 0);
	runbook_free(rb);
	assert_int_equal(incident_rb_top_ips("backend", 600, 20, &rb, &err), 0);
	runbook_free(checked(rb));
	assert_int_equal(incident_rb_block_ip("203.0.113.7", 1, &rb, &err), 0);
	checked(rb);
	assert_int_equal(rb->nsteps, 2);
	runbook_free(rb);
	assert_int_equal(incident_rb_report("/tmp/r.md", &rb, &err), 0);
	runbook_free(checked(rb));
	config_free(cfg);
}

/* ---- evidence manifest and archive ------------------------------------------------ */

static void test_sums_and_archive(void **state)
{
	const char *dir = *state;
	char ev[1024], path[1200], cmd[2600], sha[65];
	struct st_error err = { 0 };
	unsigned long long bytes = 0;
	size_t files = 0;
	char *sums;

	snprintf(ev, sizeof(ev), "%s/evidence-20261127T223416Z", dir);
	snprintf(path, sizeof(path), "%s/logs", ev);
	assert_int_equal(mkdir(ev, 0700), 0);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/logs/spilttea-backend.log", ev);
	tu_write(path, "2026-11-27T22:34:16.000000001Z stdout hello\n");
	snprintf(path, sizeof(path), "%s/collection.json", ev);
	tu_write(path, "{}\n");
	snprintf(path, sizeof(path), "%s/.collection.json.abc123.partial", ev);
	tu_write(path, "left over");
	assert_int_equal(incident_sums_write(ev, &files, &bytes, &err), 0);
	assert_int_equal(files, 2);
	assert_int_equal(bytes, 47);
	snprintf(path, sizeof(path), "%s/" INCIDENT_SUMS, ev);
	assert_int_equal(tu_mode(path), 0600);
	sums = tu_read(path);
	assert_non_null(strstr(sums, "  collection.json\n"));
	assert_non_null(strstr(sums, "  logs/spilttea-backend.log\n"));
	assert_null(strstr(sums, "partial"));
	assert_null(strstr(sums, INCIDENT_SUMS));
	free(sums);
	snprintf(path, sizeof(path), "%s/.collection.json.abc123.partial", ev);
	unlink(path);
	snprintf(cmd, sizeof(cmd), "cd '%s' && sha256sum --strict --quiet -c " INCIDENT_SUMS, ev);
	assert_int_equal(system(cmd), 0);
	/* A changed byte is caught. */
	snprintf(path, sizeof(path), "%s/collection.json", ev);
	tu_write(path, "{ }\n");
	assert_int_not_equal(system(cmd), 0);

	snprintf(path, sizeof(path), "%s.tar.gz", ev);
	assert_int_equal(incident_archive(ev, path, sha, &err), 0);
	assert_int_equal(strlen(sha), 64);
	assert_int_equal(tu_mode(path), 0600);
	snprintf(cmd, sizeof(cmd),
		 "cd '%s' && sha256sum --quiet -c evidence-20261127T223416Z.tar.gz.sha256 && "
		 "tar tzf evidence-20261127T223416Z.tar.gz | grep -qx 'evidence-20261127T223416Z/logs/spilttea-backend.log'",
		 dir);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(incident_snapshot_latest(dir, "nope", path, sizeof(path), &err), ST_ENOTFOUND);
}

/* ---- report ----------------------------------------------------------------------------- */

static void append(const char *path, const char *line)
{
	FILE *f = fopen(path, "a");

	assert_non_null(f);
	fputs(line, f);
	fputc('\n', f);
	fclose(f);
}

/* A journal with two runs of INC-1 (one with an event), a run of another
 * incident, a run without incident, an event outside any run, a torn line
 * and a run that never ended. */
static void canned_journal(const char *path)
{
	append(path, "{\"type\":\"incident\",\"time\":\"2026-11-27T22:00:00.000Z\",\"incident\":\"INC-1\","
		     "\"event\":\"opened\",\"user\":\"root\",\"host\":\"db1\",\"pid\":10,\"detail\":{\"title\":\"creds\"}}");
	append(path, "{\"type\":\"start\",\"run\":\"r1\",\"time\":\"2026-11-27T22:01:00.000Z\",\"user\":\"root\","
		     "\"host\":\"db1\",\"pid\":11,\"command\":\"spilttea-ops incident lock-users 7\","
		     "\"runbook\":\"incident-lock-users\",\"incident\":\"INC-1\"}");
	append(path, "{\"type\":\"start\",\"run\":\"x1\",\"time\":\"2026-11-27T22:01:01.000Z\",\"pid\":12,"
		     "\"command\":\"spilttea-ops run selftest\",\"runbook\":\"selftest\"}");
	append(path, "{\"type\":\"step\",\"run\":\"r1\",\"time\":\"2026-11-27T22:01:02.100Z\",\"step\":\"find\","
		     "\"action\":\"incident.find_users\",\"phase\":\"act\",\"result\":\"ok\",\"duration\":0.1}");
	append(path, "{\"type\":\"incident\",\"time\":\"2026-11-27T22:01:02.200Z\",\"incident\":\"INC-1\","
		     "\"event\":\"users_locked\",\"user\":\"root\",\"host\":\"db1\",\"pid\":11,\"detail\":{\"ids\":[7]}}");
	append(path, "{\"type\":\"step\",\"run\":\"r1\",\"time\":\"2026-11-27T22:01:02.300Z\",\"step\":\"lock\","
		     "\"action\":\"incident.lock_users\",\"phase\":\"act\",\"result\":\"ok\",\"duration\":0.05}");
	append(path, "{\"type\":\"end\",\"run\":\"r1\",\"time\":\"2026-11-27T22:01:02.400Z\",\"result\":\"ok\","
		     "\"code\":\"ok\",\"duration\":1.4}");
	append(path, "{\"type\":\"start\",\"run\":\"o1\",\"time\":\"2026-11-27T22:02:00.000Z\",\"pid\":13,"
		     "\"command\":\"spilttea-ops incident snapshot\",\"incident\":\"INC-2\"}");
	append(path, "{\"type\":\"step\",\"run\":\"x1\",\"time\":\"2026-11-27T22:02:01.000Z\",\"step\":\"s\","
		     "\"phase\":\"act\",\"result\":\"ok\",\"duration\":0.1}");
	append(path, "{\"type\":\"start\",\"run\":\"r2\",\"time\":\"2026-11-27T22:03:00.000Z\",\"pid\":14,"
		     "\"command\":\"spilttea-ops incident snapshot | tee\",\"runbook\":\"incident-snapshot\",\"incident\":\"INC-1\"}");
	append(path, "{\"type\":\"incident\",\"time\":\"2026-11-27T22:03:01.000Z\",\"incident\":\"INC-1\","
		     "\"event\":\"snapshot\",\"pid\":14,\"detail\":{\"dir\":\"/s/incidents/INC-1/evidence-x\","
		     "\"files\":21,\"bytes\":1000,\"failed\":1}}");
	append(path, "{\"type\":\"end\",\"run\":\"r2\",\"time\":\"2026-11-27T22:03:02.000Z\",\"result\":\"failed\","
		     "\"code\":\"failed\",\"duration\":2.0,\"error\":\"step 'snapshot' failed: 1 artefact\"}");
	append(path, "{\"type\":\"sta");
	append(path, "{\"type\":\"start\",\"run\":\"r3\",\"time\":\"2026-11-27T22:04:00.000Z\",\"pid\":15,"
		     "\"command\":\"spilttea-ops incident contain\",\"runbook\":\"incident-contain\",\"incident\":\"INC-1\"}");
}

static void test_report_load(void **state)
{
	char path[1024];
	struct st_error err = { 0 };
	json_t *runs = NULL, *r;

	snprintf(path, sizeof(path), "%s/journal.jsonl", (const char *)*state);
	canned_journal(path);
	assert_int_equal(incident_report_load(path, "INC-1", &runs, &err), 0);
	assert_int_equal(json_array_size(runs), 4);
	/* The opened event has no run: a line of its own. */
	r = json_array_get(runs, 0);
	assert_true(json_is_null(json_object_get(r, "command")));
	assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(r, "events"), 0), "event")),
			    "opened");
	r = json_array_get(runs, 1);
	assert_string_equal(json_string_value(json_object_get(r, "run")), "r1");
	assert_int_equal(json_array_size(json_object_get(r, "steps")), 2);
	assert_int_equal(json_array_size(json_object_get(r, "events")), 1);
	assert_string_equal(json_string_value(json_object_get(r, "result")), "ok");
	r = json_array_get(runs, 2);
	assert_string_equal(json_string_value(json_object_get(r, "result")), "failed");
	assert_int_equal(json_array_size(json_object_get(r, "events")), 1);
	r = json_array_get(runs, 3);
	assert_true(json_is_null(json_object_get(r, "result")));
	json_decref(runs);
	/* A missing journal is an empty one. */
	snprintf(path, sizeof(path), "%s/none.jsonl", (const char *)*state);
	assert_int_equal(incident_report_load(path, "INC-1", &runs, &err), 0);
	assert_int_equal(json_array_size(runs), 0);
	json_decref(runs);
}

static void test_report_render(void **state)
{
	char path[1024];
	struct st_error err = { 0 };
	struct incident_info info;
	struct sbuf md = SBUF_INIT;
	json_t *runs = NULL, *evidence;
	const char *t, *p1, *p2, *p3;

	snprintf(path, sizeof(path), "%s/journal.jsonl", (const char *)*state);
	canned_journal(path);
	assert_int_equal(incident_report_load(path, "INC-1", &runs, &err), 0);
	memset(&info, 0, sizeof(info));
	snprintf(info.id, sizeof(info.id), "INC-1");
	snprintf(info.title, sizeof(info.title), "credential stuffing | login");
	snprintf(info.opened_by, sizeof(info.opened_by), "root@db1");
	info.opened = 1795816800; /* 2026-11-27T22:00:00Z */
	evidence = json_pack("[{s:s,s:s,s:s,s:s,s:[{s:s,s:s}],s:[{s:s,s:s}]}]", "dir", "/s/incidents/INC-1/evidence-x",
			     "collected", "2026-11-27T22:03:00.500Z", "collector", "root@db1", "tool",
			     "spilttea-ops 0.1.0", "files", "path", "logs/spilttea-backend.log", "sha256",
			     "abababababababababababababababababababababababababababababababab", "failed", "what",
			     "database dump", "error", "connection refused");
	assert_int_equal(incident_report_render(&info, runs, evidence, 1795817100, &md, &err), 0);
	t = sbuf_str(&md);
	assert_non_null(strstr(t, "# Incident INC-1: credential stuffing \\| login\n"));
	assert_non_null(strstr(t, "- Status: open\n"));
	/* The timeline lists every command in order. */
	p1 = strstr(t, "incident opened: creds");
	p2 = strstr(t, "`spilttea-ops incident lock-users 7` — ok in 1.4s");
	p3 = strstr(t, "`spilttea-ops incident contain` — no end recorded");
	assert_non_null(p1);
	assert_non_null(p2);
	assert_non_null(p3);
	assert_true(p1 < p2 && p2 < p3);
	assert_non_null(strstr(t, "`spilttea-ops incident snapshot \\| tee` — failed in 2.0s"));
	assert_non_null(strstr(t, "Error: step 'snapshot' failed: 1 artefact"));
	assert_non_null(strstr(t, "| 22:01:02.100Z | find | incident.find_users | act | ok | 100ms |  |\n"));
	assert_non_null(strstr(t, "1 user(s) locked (password 'LOCKED', inactive): ids 7"));
	assert_null(strstr(t, "selftest"));
	assert_null(strstr(t, "INC-2"));
	/* Evidence. */
	assert_non_null(strstr(t, "| `abababababababababababababababababababababababababababababababab` | `logs/spilttea-backend.log` |"));
	assert_non_null(strstr(t, "- database dump: connection refused"));
	assert_non_null(strstr(t, "sha256sum -c SHA256SUMS"));
	/* Checklists: users were locked before any evidence was taken. */
	assert_non_null(strstr(t, "- [ ] Evidence preserved before anything was stopped or changed"));
	assert_non_null(strstr(t, "after the first change at 2026-11-27 22:01:02 UTC"));
	assert_non_null(strstr(t, "- [x] Suspicious users locked (2026-11-27 22:01:02 UTC)"));
	assert_non_null(strstr(t, "- [ ] Services stopped"));
	assert_non_null(strstr(t, "- [ ] Sessions cleared"));
	assert_non_null(strstr(t, "## Post-Incident Checklist\n\n- [ ] Document what happened\n"));
	assert_non_null(strstr(t, "- [x] Document resolution steps (the timeline above records 3 commands)"));
	assert_non_null(strstr(t, "- [ ] Schedule post-mortem meeting"));
	json_decref(runs);
	json_decref(evidence);
	sbuf_release(&md);

	/* Nothing journaled: said so, nothing ticked. */
	runs = json_array();
	evidence = json_array();
	info.closed = info.opened + 60;
	snprintf(info.closed_by, sizeof(info.closed_by), "alice(root)@db1");
	assert_int_equal(incident_report_render(&info, runs, evidence, 1795817100, &md, &err), 0);
	t = sbuf_str(&md);
	assert_non_null(strstr(t, "- Closed: 2026-11-27 22:01:00 UTC by alice(root)@db1\n"));
	assert_non_null(strstr(t, "Nothing is journaled for this incident."));
	assert_non_null(strstr(t, "No evidence was collected"));
	assert_null(strstr(t, "[x]"));
	json_decref(runs);
	json_decref(evidence);
	sbuf_release(&md);
}

static void test_env_files(void **state)
{
	const char *dir = *state;
	char path[1024], want[1100];
	struct st_config *cfg = NULL;
	struct st_error err = { 0 };
	char **files = NULL;
	size_t n = 0, i;

	snprintf(path, sizeof(path), "%s/c.yaml", dir);
	tu_write(path, "state_dir: ./state\n"
		       "env_files: [./.env, ./backend/.env]\n"
		       "compose_file: ./app/docker-compose.yml\n"
		       "services:\n"
		       "  backend: { container: be, env_file: ./backend/.env }\n"
		       "  worker: { container: wk, env_file: ./worker.env }\n"
		       "postgres: { host: db, user: u, database: d }\n"
		       "redis: { host: r }\n");
	if (config_load_file(path, "--config", &cfg, &err) != 0)
		fail_msg("config: %s", err.message);
	assert_int_equal(incident_env_files(cfg, &files, &n, &err), 0);
	assert_int_equal(n, 4);
	snprintf(want, sizeof(want), "%s/.env", cfg->dir);
	assert_string_equal(files[0], want);
	snprintf(want, sizeof(want), "%s/backend/.env", cfg->dir);
	assert_string_equal(files[1], want);
	snprintf(want, sizeof(want), "%s/app/.env", cfg->dir);
	assert_string_equal(files[2], want);
	snprintf(want, sizeof(want), "%s/worker.env", cfg->dir);
	assert_string_equal(files[3], want);
	assert_null(files[4]);
	for (i = 0; i < n; i++)
		free(files[i]);
	free(files);
	config_free(cfg);
}

/* ---- the firewall command ----------------------------------------------------------- */

/* A stand-in iptables in a directory put first in PATH. */
static void fake_iptables(const char *dir, const char *body)
{
	char path[600], text[2048];

	snprintf(path, sizeof(path), "%s/iptables", dir);
	snprintf(text, sizeof(text), "#!/bin/sh\necho \"$*\" >>%s/calls\n%s\n", dir, body);
	tu_write(path, text);
	assert_int_equal(chmod(path, 0755), 0);
}

/* iptables that writes more than a pipe holds to stderr must not hang the
 * run (the old runner stopped reading at 511 bytes and then waited for
 * the child, which waited for the pipe), and one that never ends (the
 * xtables lock held by another program) is stopped at the timeout
 * (review 2 item 16). Needs root, as incident_block_apply does. */
static void test_block_apply_runner(void **state)
{
	const char *dir = *state;
	char *old_path = getenv("PATH") ? strdup(getenv("PATH")) : NULL, path[700], calls[600], *text;
	struct st_error err = { 0 };
	int already = -1;
	double t0;

	assert_int_equal(geteuid(), 0);
	snprintf(path, sizeof(path), "%s:/usr/bin:/bin", dir);
	setenv("PATH", path, 1);
	snprintf(calls, sizeof(calls), "%s/calls", dir);
	/* A failing test would otherwise hang here for good. */
	alarm(60);

	fake_iptables(dir, "i=0\nwhile [ $i -lt 4000 ]; do echo \"iptables: complaint $i about the rule\" >&2; "
			   "i=$((i+1)); done\nexit 1");
	assert_int_equal(incident_block_apply("203.0.113.7", AF_INET, "DOCKER-USER", 20, &already, &err),
			 ST_EFAILED);
	assert_int_equal(already, 0);
	assert_non_null(strstr(err.message, "iptables -I DOCKER-USER -s 203.0.113.7 -j DROP failed (exit 1): "
					    "iptables: complaint 0 about the rule"));
	text = tu_read(calls);
	/* -C first, then -I, each waiting at most a few seconds for the xtables lock. */
	assert_string_equal(text, "-w 5 -C DOCKER-USER -s 203.0.113.7 -j DROP\n"
				  "-w 5 -I DOCKER-USER -s 203.0.113.7 -j DROP\n");
	free(text);
	unlink(calls);

	fake_iptables(dir, "exec sleep 30");
	t0 = time_monotonic();
	assert_int_equal(incident_block_apply("203.0.113.7", AF_INET, "INPUT", 1, &already, &err), ST_ETIMEOUT);
	assert_true(time_monotonic() - t0 < 5 * tu_time_scale());
	assert_non_null(strstr(err.message, "did not finish within 1 s"));

	/* The rule exists: -C answers 0 and nothing is inserted. */
	unlink(calls);
	fake_iptables(dir, "exit 0");
	assert_int_equal(incident_block_apply("203.0.113.7", AF_INET, "INPUT", 20, &already, &err), 0);
	assert_int_equal(already, 1);
	text = tu_read(calls);
	assert_string_equal(text, "-w 5 -C INPUT -s 203.0.113.7 -j DROP\n");
	free(text);
	alarm(0);
	if (old_path)
		setenv("PATH", old_path, 1);
	free(old_path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ids),
		tu_dir_test(test_open_close),
		cmocka_unit_test(test_user_ids),
		cmocka_unit_test(test_secret),
		cmocka_unit_test(test_redact_inspect),
		tu_dir_test(test_runbooks),
		tu_dir_test(test_env_set_all_or_nothing),
		tu_dir_test(test_env_files),
		tu_dir_test(test_sums_and_archive),
		tu_dir_test(test_report_load),
		tu_dir_test(test_report_render),
		tu_dir_test(test_block_apply_runner),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

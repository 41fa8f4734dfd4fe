#include "journal.h"
#include "atomic_file.h"
#include "redact.h"
#include "text.h"
#include "timeutil.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct journal {
	int fd;
	char *path;
	int torn;   /* the last record was cut short: start the next on a new line */
};

int journal_open(const char *state_dir, struct journal **out, struct st_error *err)
{
	struct journal *j = NULL;
	size_t n;
	int rc = 0;

	*out = NULL;
	if ((rc = atomic_file_mkdirs(state_dir, 0700, err)) != 0)
		return st_error_wrap(err, "cannot open the journal");
	j = calloc(1, sizeof(*j));
	n = strlen(state_dir) + sizeof("/" JOURNAL_FILE);
	if (!j || !(j->path = malloc(n))) {
		rc = st_error_set(err, ST_ENOMEM, "out of memory opening the journal");
		goto out;
	}
	snprintf(j->path, n, "%s/" JOURNAL_FILE, state_dir);
	j->fd = open(j->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (j->fd < 0) {
		rc = st_error_set(err, ST_EIO, "cannot open journal '%s': %s", j->path, strerror(errno));
		st_error_hint(err, "check that the state_dir '%s' is writable by this user", state_dir);
		goto out;
	}
	*out = j;
	j = NULL;
out:
	if (j) {
		free(j->path);
		free(j);
	}
	return rc;
}

void journal_close(struct journal *j)
{
	if (!j)
		return;
	if (j->fd >= 0)
		close(j->fd);
	free(j->path);
	free(j);
}

const char *journal_path(const struct journal *j)
{
	return j->path;
}

/* write() until all of len is out; the bytes written in *done. */
static int write_all(int fd, const char *p, size_t len, size_t *done)
{
	ssize_t n;

	*done = 0;
	while (*done < len) {
		n = write(fd, p + *done, len - *done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? errno : ENOSPC;
		*done += (size_t)n;
	}
	return 0;
}

int journal_append(struct journal *j, const json_t *record, struct st_error *err)
{
	json_t *clean = NULL;
	char *text = NULL;
	size_t len, done = 0, skip;
	int rc = 0, e;

	clean = redact_json(record);
	if (!clean || !(text = json_dumps(clean, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII |
						   JSON_REAL_PRECISION(9)))) {
		rc = st_error_set(err, ST_ENOMEM, "out of memory writing the journal");
		goto out;
	}
	len = strlen(text);
	/* json_dumps gives no newline; add it so the line goes out in one write
	 * (and a newline before it when the previous record was torn). */
	{
		char *line = realloc(text, len + 3);
		if (!line) {
			rc = st_error_set(err, ST_ENOMEM, "out of memory writing the journal");
			goto out;
		}
		text = line;
		memmove(text + 1, text, len);
		text[0] = '\n';
		len++;
		text[len++] = '\n';
		text[len] = '\0';
	}
	skip = j->torn ? 0 : 1;
	e = write_all(j->fd, text + skip, len - skip, &done);
	if (e) {
		/* A partial line would swallow the next record: end it if we can,
		 * else the next record starts with a newline. */
		if (done > 0 && write_all(j->fd, "\n", 1, &done) != 0)
			j->torn = 1;
		rc = st_error_set(err, ST_EIO, "cannot append to journal '%s': %s", j->path,
				  strerror(e));
		goto out;
	}
	j->torn = 0;
out:
	free(text);
	json_decref(clean);
	return rc;
}

/* Adds key -> value (a new reference), skipping NULL values; 0 or -1. */
static int put(json_t *obj, const char *key, json_t *value)
{
	if (!value)
		return -1;
	return json_object_set_new(obj, key, value);
}

/* Text from outside (a server's message, a command line) may not be UTF-8,
 * which JSON needs: such text is repaired rather than the record lost. */
static int put_str(json_t *obj, const char *key, const char *s)
{
	json_t *v;
	char *fixed;

	if (!s)
		return 0;
	v = json_string(s);
	if (!v && !text_utf8_valid(s, strlen(s))) {
		fixed = text_utf8_repair(s, strlen(s), NULL);
		v = fixed ? json_string(fixed) : NULL;
		free(fixed);
	}
	return put(obj, key, v);
}

static json_t *new_record(const char *type, const char *run_id)
{
	char now[40];
	json_t *r = json_object();

	if (!r)
		return NULL;
	if (put_str(r, "type", type) || put_str(r, "run", run_id) ||
	    put_str(r, "time", time_format_rfc3339(time_wall(), now, sizeof(now)))) {
		json_decref(r);
		return NULL;
	}
	return r;
}

static int append_and_free(struct journal *j, json_t *r, int build_failed, struct st_error *err)
{
	int rc;

	if (!r || build_failed)
		rc = st_error_set(err, ST_ENOMEM, "out of memory writing the journal");
	else
		rc = journal_append(j, r, err);
	json_decref(r);
	return rc;
}

int journal_start(struct journal *j, struct journal_run *run, struct st_error *err)
{
	char compact[32], host[256];
	struct passwd pw, *pwp = NULL;
	char pwbuf[1024];
	const char *sudo_user = getenv("SUDO_USER");
	json_t *r;
	int bad = 0;

	run->started = time_wall();
	snprintf(run->id, sizeof(run->id), "%s-%ld",
		 time_format_compact(run->started, compact, sizeof(compact)), (long)getpid());
	if (gethostname(host, sizeof(host)) != 0)
		strcpy(host, "unknown");
	host[sizeof(host) - 1] = '\0';
	if (getpwuid_r(geteuid(), &pw, pwbuf, sizeof(pwbuf), &pwp) != 0)
		pwp = NULL;

	r = new_record("start", run->id);
	if (r) {
		if (pwp)
			bad |= put_str(r, "user", pwp->pw_name);
		else
			bad |= put(r, "uid", json_integer((json_int_t)geteuid()));
		if (sudo_user && *sudo_user)
			bad |= put_str(r, "sudo_user", sudo_user);
		bad |= put_str(r, "host", host);
		bad |= put(r, "pid", json_integer((json_int_t)getpid()));
		bad |= put_str(r, "command", run->command_line);
		bad |= put_str(r, "runbook", run->runbook);
		bad |= put_str(r, "incident", run->incident);
		if (run->params)
			bad |= put(r, "params", json_deep_copy(run->params));
	}
	return append_and_free(j, r, bad, err);
}

int journal_step(struct journal *j, const struct journal_run *run,
		 const struct journal_step *step, struct st_error *err)
{
	json_t *r = new_record("step", run->id);
	int bad = 0;

	if (r) {
		bad |= put_str(r, "step", step->step);
		bad |= put_str(r, "action", step->action);
		bad |= put_str(r, "phase", step->phase);
		bad |= put_str(r, "result", step->result);
		bad |= put(r, "duration", json_real(step->duration));
		if (step->attempts > 0)
			bad |= put(r, "attempts", json_integer(step->attempts));
		if (step->args)
			bad |= put(r, "args", json_deep_copy(step->args));
		if (step->error && *step->error)
			bad |= put_str(r, "error", step->error);
		if (step->finding) {
			bad |= put_str(r, "finding", step->finding);
			if (step->message)
				bad |= put_str(r, "message", step->message);
		}
	}
	return append_and_free(j, r, bad, err);
}

int journal_end(struct journal *j, const struct journal_run *run, const char *result, int code,
		const char *error, struct st_error *err)
{
	json_t *r = new_record("end", run->id);
	int bad = 0;

	if (r) {
		bad |= put_str(r, "result", result);
		bad |= put_str(r, "code", st_code_name(code));
		bad |= put(r, "duration", json_real(time_wall() - run->started));
		if (error && *error)
			bad |= put_str(r, "error", error);
	}
	return append_and_free(j, r, bad, err);
}

int journal_foreach(const char *path, journal_record_fn fn, void *ud, size_t *malformed,
		    struct st_error *err)
{
	FILE *f = NULL;
	char *line = NULL;
	size_t cap = 0, lineno = 0;
	ssize_t n;
	int rc = 0;

	if (malformed)
		*malformed = 0;
	f = fopen(path, "re");
	if (!f) {
		if (errno == ENOENT)
			return 0;
		return st_error_set(err, ST_EIO, "cannot read journal '%s': %s", path, strerror(errno));
	}
	while ((n = getline(&line, &cap, f)) >= 0) {
		json_t *rec;
		json_error_t jerr;

		lineno++;
		if (n > 0 && line[n - 1] == '\n')
			line[--n] = '\0';
		if (n == 0)
			continue;
		rec = json_loadb(line, (size_t)n, JSON_REJECT_DUPLICATES, &jerr);
		if (!rec || !json_is_object(rec)) {
			json_decref(rec);
			if (malformed)
				(*malformed)++;
			continue;
		}
		rc = fn(ud, rec, lineno);
		json_decref(rec);
		if (rc)
			goto out;
	}
	if (ferror(f))
		rc = st_error_set(err, ST_EIO, "cannot read journal '%s': %s", path, strerror(errno));
out:
	free(line);
	fclose(f);
	return rc;
}

/* ---- unfinished runs -------------------------------------------------------- */

void journal_unfinished_release(struct journal_unfinished *u)
{
	size_t i;

	if (!u)
		return;
	for (i = 0; i < u->nsteps; i++)
		free(u->steps[i]);
	free(u->steps);
	memset(u, 0, sizeof(*u));
}

struct unfinished_scan {
	long long pid;
	struct journal_unfinished *u;
	int open;                   /* u describes a run without an end so far */
	int oom;
};

static const char *rec_str(const json_t *rec, const char *key)
{
	const char *s = json_string_value(json_object_get(rec, key));

	return s ? s : "";
}

static void unfinished_drop_step(struct journal_unfinished *u, const char *step)
{
	size_t i;

	for (i = 0; i < u->nsteps; i++) {
		if (strcmp(u->steps[i], step) == 0) {
			free(u->steps[i]);
			memmove(u->steps + i, u->steps + i + 1, (u->nsteps - i - 1) * sizeof(*u->steps));
			u->nsteps--;
			return;
		}
	}
}

static int unfinished_record(void *ud, const json_t *rec, size_t line)
{
	struct unfinished_scan *s = ud;
	const char *type = rec_str(rec, "type"), *run = rec_str(rec, "run");
	json_t *pid = json_object_get(rec, "pid");

	(void)line;
	if (!strcmp(type, "start")) {
		if (!json_is_integer(pid) || json_integer_value(pid) != s->pid)
			return 0;
		journal_unfinished_release(s->u);
		snprintf(s->u->run, sizeof(s->u->run), "%s", run);
		snprintf(s->u->runbook, sizeof(s->u->runbook), "%s", rec_str(rec, "runbook"));
		snprintf(s->u->time, sizeof(s->u->time), "%s", rec_str(rec, "time"));
		s->open = 1;
		return 0;
	}
	if (!s->open || strcmp(run, s->u->run) != 0)
		return 0;
	if (!strcmp(type, "end")) {
		s->open = 0;
	} else if (!strcmp(type, "step")) {
		const char *step = rec_str(rec, "step"), *phase = rec_str(rec, "phase"),
			   *result = rec_str(rec, "result");

		if (!strcmp(phase, "act") && !strcmp(result, "ok") && !json_object_get(rec, "finding")) {
			char **grown = realloc(s->u->steps, (s->u->nsteps + 1) * sizeof(*grown));

			if (!grown || !(grown[s->u->nsteps] = strdup(step))) {
				if (grown)
					s->u->steps = grown;
				s->oom = 1;
				return 1;
			}
			s->u->steps = grown;
			s->u->nsteps++;
		} else if (!strcmp(phase, "undo") && !strcmp(result, "undone")) {
			unfinished_drop_step(s->u, step);
		}
	}
	return 0;
}

int journal_find_unfinished(const char *path, long long pid, struct journal_unfinished *out, int *found,
			    struct st_error *err)
{
	struct unfinished_scan s = { pid, out, 0, 0 };
	int rc;

	memset(out, 0, sizeof(*out));
	*found = 0;
	rc = journal_foreach(path, unfinished_record, &s, NULL, err);
	if (s.oom)
		rc = st_error_set(err, ST_ENOMEM, "out of memory reading the journal");
	if (rc == 0 && s.open)
		*found = 1;
	else
		journal_unfinished_release(out);
	return rc;
}

int journal_end_unfinished(struct journal *j, const struct journal_unfinished *u, const char *error,
			   struct st_error *err)
{
	json_t *r = new_record("end", u->run);
	int bad = 0;

	if (r) {
		bad |= put_str(r, "result", "aborted");
		bad |= put_str(r, "code", st_code_name(ST_EABORTED));
		if (error && *error)
			bad |= put_str(r, "error", error);
	}
	return append_and_free(j, r, bad, err);
}

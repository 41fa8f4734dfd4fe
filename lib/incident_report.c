/*
 * incident_report.c - the post-incident report: the journal's runs and
 * incident records of one incident, the evidence folders, and a Markdown
 * rendering with the runbook's checklists ticked where the journal proves
 * the item was done.
 */
#include "incident.h"
#include "journal.h"
#include "text.h"
#include "timeutil.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static int oom(struct st_error *err)
{
	return st_error_set(err, ST_ENOMEM, "out of memory building the report");
}

/* ---- loading the journal ------------------------------------------------------- */

struct load {
	const char *id;
	json_t *runs;       /* array, in order */
	json_t *by_run;     /* run id -> run (borrowed references) */
	json_t *open_pid;   /* "pid" -> run whose end has not been seen */
	int failed;
};

static json_t *str_or_null(const json_t *rec, const char *key)
{
	const json_t *v = json_object_get(rec, key);
	return v ? json_deep_copy(v) : json_null();
}

static int copy_keys(json_t *dst, const json_t *src, const char *const *keys)
{
	size_t i;

	for (i = 0; keys[i]; i++)
		if (json_object_set_new(dst, keys[i], str_or_null(src, keys[i])))
			return -1;
	return 0;
}

static int on_record(void *ud, const json_t *rec, size_t line)
{
	static const char *const start_keys[] = { "run", "time", "command", "user", "host", "runbook", "pid", NULL };
	static const char *const step_keys[] = { "time", "step", "action", "phase", "result", "duration", "error", NULL };
	static const char *const event_keys[] = { "time", "event", "user", "host", "detail", NULL };
	struct load *l = ud;
	const char *type = json_string_value(json_object_get(rec, "type"));
	const char *run_id = json_string_value(json_object_get(rec, "run"));
	char pid[32];
	json_t *run;

	(void)line;
	if (!type)
		return 0;
	snprintf(pid, sizeof(pid), "%lld", (long long)json_integer_value(json_object_get(rec, "pid")));
	if (!strcmp(type, "start")) {
		const char *inc = json_string_value(json_object_get(rec, "incident"));

		if (!inc || strcmp(inc, l->id) || !run_id)
			return 0;
		run = json_object();
		if (!run || copy_keys(run, rec, start_keys) ||
		    json_object_set_new(run, "result", json_null()) ||
		    json_object_set_new(run, "duration", json_null()) ||
		    json_object_set_new(run, "error", json_null()) ||
		    json_object_set_new(run, "steps", json_array()) ||
		    json_object_set_new(run, "events", json_array()) || json_array_append(l->runs, run) ||
		    json_object_set(l->by_run, run_id, run) || json_object_set(l->open_pid, pid, run)) {
			json_decref(run);
			l->failed = 1;
			return 1;
		}
		json_decref(run);
		return 0;
	}
	if (!strcmp(type, "step") || !strcmp(type, "end")) {
		json_t *s;

		if (!run_id || !(run = json_object_get(l->by_run, run_id)))
			return 0;
		if (!strcmp(type, "end")) {
			json_t *open;

			if (json_object_set_new(run, "result", str_or_null(rec, "result")) ||
			    json_object_set_new(run, "duration", str_or_null(rec, "duration")) ||
			    json_object_set_new(run, "error", str_or_null(rec, "error")) ||
			    json_object_set_new(run, "end", str_or_null(rec, "time"))) {
				l->failed = 1;
				return 1;
			}
			snprintf(pid, sizeof(pid), "%lld",
				 (long long)json_integer_value(json_object_get(run, "pid")));
			open = json_object_get(l->open_pid, pid);
			if (open == run)
				json_object_del(l->open_pid, pid);
			return 0;
		}
		s = json_object();
		if (!s || copy_keys(s, rec, step_keys)) {
			json_decref(s);
			l->failed = 1;
			return 1;
		}
		if (json_array_append_new(json_object_get(run, "steps"), s)) {
			l->failed = 1;
			return 1;
		}
		return 0;
	}
	if (!strcmp(type, "incident")) {
		const char *inc = json_string_value(json_object_get(rec, "incident"));
		json_t *ev;

		if (!inc || strcmp(inc, l->id))
			return 0;
		run = json_object_get(l->open_pid, pid);
		if (!run) {
			/* Not inside a run (opened directly): a line of its own. */
			run = json_object();
			if (!run || json_array_append_new(l->runs, run) ||
			    json_object_set_new(run, "run", json_null()) ||
			    json_object_set_new(run, "time", str_or_null(rec, "time")) ||
			    json_object_set_new(run, "command", json_null()) ||
			    json_object_set_new(run, "user", str_or_null(rec, "user")) ||
			    json_object_set_new(run, "host", str_or_null(rec, "host")) ||
			    json_object_set_new(run, "result", json_string("ok")) ||
			    json_object_set_new(run, "steps", json_array()) ||
			    json_object_set_new(run, "events", json_array())) {
				l->failed = 1;
				return 1;
			}
		}
		ev = json_object();
		if (!ev || copy_keys(ev, rec, event_keys)) {
			json_decref(ev);
			l->failed = 1;
			return 1;
		}
		if (json_array_append_new(json_object_get(run, "events"), ev)) {
			l->failed = 1;
			return 1;
		}
		return 0;
	}
	return 0;
}

int incident_report_load(const char *journal_path, const char *id, json_t **out,
			 struct st_error *err)
{
	struct load l;
	int rc;

	*out = NULL;
	memset(&l, 0, sizeof(l));
	l.id = id;
	l.runs = json_array();
	l.by_run = json_object();
	l.open_pid = json_object();
	if (!l.runs || !l.by_run || !l.open_pid) {
		rc = oom(err);
		goto out;
	}
	rc = journal_foreach(journal_path, on_record, &l, NULL, err);
	if (l.failed) {
		rc = oom(err);
		goto out;
	}
	if (rc)
		goto out;
	*out = l.runs;
	l.runs = NULL;
out:
	json_decref(l.runs);
	json_decref(l.by_run);
	json_decref(l.open_pid);
	return rc;
}

/* ---- evidence ------------------------------------------------------------------- */

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static int evidence_dir(const struct dirent *d)
{
	return !strncmp(d->d_name, "evidence-", 9) && !strstr(d->d_name, ".tar.gz");
}

static json_t *read_sums(const char *path)
{
	FILE *f = fopen(path, "re");
	json_t *files = json_array();
	char line[8192];

	if (!files || !f) {
		if (f)
			fclose(f);
		return files;
	}
	while (fgets(line, sizeof(line), f)) {
		size_t n = strcspn(line, "\n");

		line[n] = '\0';
		if (n > 66 && line[64] == ' ' && line[65] == ' ') {
			line[64] = '\0';
			json_array_append_new(files, json_pack("{s:s,s:s}", "path", line + 66, "sha256", line));
		}
	}
	fclose(f);
	return files;
}

int incident_evidence_load(const char *state_dir, const char *id, json_t **out,
			   struct st_error *err)
{
	struct dirent **list = NULL;
	char top[PATH_MAX];
	json_t *res = NULL;
	int n, i, rc;

	*out = NULL;
	if ((rc = incident_path(state_dir, id, NULL, top, sizeof(top), err)) != 0)
		return rc;
	if (!(res = json_array()))
		return oom(err);
	n = scandir(top, &list, evidence_dir, by_name);
	if (n < 0) {
		if (errno != ENOENT) {
			json_decref(res);
			return st_error_set(err, ST_EIO, "cannot list '%s': %s", top, strerror(errno));
		}
		n = 0;
	}
	for (i = 0; i < n; i++) {
		char dir[PATH_MAX + 300], p[PATH_MAX + 400];
		json_t *coll, *e, *failed;
		json_error_t jerr;
		struct stat st;
		size_t k;
		json_t *a;

		snprintf(dir, sizeof(dir), "%s/%s", top, list[i]->d_name);
		if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
			continue;
		snprintf(p, sizeof(p), "%s/" INCIDENT_COLLECTION, dir);
		coll = json_load_file(p, 0, &jerr);
		snprintf(p, sizeof(p), "%s/" INCIDENT_SUMS, dir);
		e = json_pack("{s:s,s:o,s:o,s:o,s:o}", "dir", dir, "collected",
			      str_or_null(coll, "collected"), "collector", str_or_null(coll, "collector"),
			      "tool", str_or_null(coll, "tool"), "files", read_sums(p));
		failed = json_array();
		json_array_foreach(json_object_get(coll, "artefacts"), k, a)
			if (json_object_get(a, "error"))
				json_array_append(failed, a);
		if (e && failed)
			json_object_set(e, "failed", failed);
		json_decref(failed);
		json_decref(coll);
		snprintf(p, sizeof(p), "%s.tar.gz.sha256", dir);
		{
			FILE *f = fopen(p, "re");
			char line[PATH_MAX + 80];

			if (f && e && fgets(line, sizeof(line), f) && strlen(line) > 64) {
				line[64] = '\0';
				snprintf(p, sizeof(p), "%s.tar.gz", dir);
				json_object_set_new(e, "archive", json_pack("{s:s,s:s}", "path", p, "sha256", line));
			}
			if (f)
				fclose(f);
		}
		if (!e || json_array_append_new(res, e)) {
			rc = oom(err);
			break;
		}
	}
	for (i = 0; i < n; i++)
		free(list[i]);
	free(list);
	if (rc) {
		json_decref(res);
		return rc;
	}
	*out = res;
	return 0;
}

/* ---- rendering ---------------------------------------------------------------------- */

/* Text safe inside a Markdown table cell or a line: no newlines, no '|'. */
static int md_text(struct sbuf *out, const char *s)
{
	for (; s && *s; s++) {
		int rc;

		if (*s == '\n' || *s == '\r' || *s == '\t')
			rc = sbuf_puts(out, " ");
		else if (*s == '|')
			rc = sbuf_puts(out, "\\|");
		else
			rc = sbuf_append(out, s, 1);
		if (rc)
			return rc;
	}
	return 0;
}

/* `code`, with a longer fence when the text holds a backtick. */
static int md_code(struct sbuf *out, const char *s)
{
	const char *fence = strchr(s, '`') ? "`` " : "`";
	const char *close = strchr(s, '`') ? " ``" : "`";

	return sbuf_puts(out, fence) || md_text(out, s) || sbuf_puts(out, close);
}

/* "2026-11-27 22:34:16" from an RFC 3339 journal time (UTC). */
static const char *short_time(const char *t, char *buf, size_t size)
{
	if (!t || strlen(t) < 19) {
		snprintf(buf, size, "%s", t ? t : "?");
		return buf;
	}
	snprintf(buf, size, "%.10s %.8s", t, t + 11);
	return buf;
}

static const char *jstr(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static long long jint(const json_t *o, const char *k)
{
	const json_t *v = json_object_get(o, k);
	return json_is_integer(v) ? (long long)json_integer_value(v) : text_double_to_ll(json_number_value(v));
}

static int list_strings(struct sbuf *out, const json_t *arr)
{
	size_t i;
	json_t *v;

	json_array_foreach(arr, i, v) {
		char num[32];
		const char *s = json_string_value(v);

		if (!s && json_is_integer(v)) {
			snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(v));
			s = num;
		}
		if (sbuf_puts(out, i ? ", " : "") || md_text(out, s ? s : "?"))
			return -1;
	}
	return 0;
}

/* One line for an incident record. */
static int render_event(struct sbuf *out, const json_t *ev)
{
	const char *e = jstr(ev, "event");
	const json_t *d = json_object_get(ev, "detail");
	char t[32];
	int rc;

	if (!e)
		return 0;
	rc = sbuf_printf(out, "- %s ", short_time(jstr(ev, "time"), t, sizeof(t)));
	if (rc)
		return rc;
	if (!strcmp(e, "opened")) {
		rc = sbuf_puts(out, "incident opened");
		if (!rc && jstr(d, "title") && *jstr(d, "title"))
			rc = sbuf_puts(out, ": ") || md_text(out, jstr(d, "title"));
	} else if (!strcmp(e, "closed")) {
		rc = sbuf_puts(out, "incident closed");
	} else if (!strcmp(e, "snapshot")) {
		rc = sbuf_puts(out, "evidence collected in ") || md_code(out, jstr(d, "dir") ? jstr(d, "dir") : "?") ||
		     sbuf_printf(out, " (%lld files, %lld bytes, %lld artefacts not collected)",
				 jint(d, "files"), jint(d, "bytes"), jint(d, "failed"));
		if (!rc && jstr(d, "archive"))
			rc = sbuf_puts(out, "; archive ") || md_code(out, jstr(d, "archive")) ||
			     sbuf_printf(out, " sha256 %s", jstr(d, "archive_sha256") ? jstr(d, "archive_sha256") : "?");
	} else if (!strcmp(e, "investigated")) {
		rc = sbuf_printf(out, "investigated: %lld accounts with more than %lld failed logins "
				      "in the window, %lld new accounts, %lld new posts, %lld reports",
				 jint(d, "brute_force"), jint(d, "threshold"), jint(d, "recent_accounts"),
				 jint(d, "recent_posts"), jint(d, "reports"));
		if (!rc && json_array_size(json_object_get(d, "brute_force_ids")))
			rc = sbuf_puts(out, " (brute force on user ids ") ||
			     list_strings(out, json_object_get(d, "brute_force_ids")) || sbuf_puts(out, ")");
	} else if (!strcmp(e, "users_locked")) {
		rc = sbuf_printf(out, "%lld user(s) locked (password 'LOCKED', inactive): ids ",
				 (long long)json_array_size(json_object_get(d, "ids"))) ||
		     list_strings(out, json_object_get(d, "ids"));
	} else if (!strcmp(e, "sessions_flushed")) {
		rc = sbuf_printf(out, "%lld session keys deleted (pattern ", jint(d, "deleted")) ||
		     md_code(out, jstr(d, "pattern") ? jstr(d, "pattern") : "?") || sbuf_puts(out, ")");
	} else if (!strcmp(e, "flushall")) {
		rc = sbuf_printf(out, "Redis FLUSHALL: %lld keys deleted", jint(d, "deleted"));
	} else if (!strcmp(e, "secret_rotated")) {
		rc = sbuf_puts(out, "new value of ") || md_code(out, jstr(d, "variable") ? jstr(d, "variable") : "?") ||
		     sbuf_puts(out, " written to ") || list_strings(out, json_object_get(d, "files"));
		if (!rc && json_array_size(json_object_get(d, "restart")))
			rc = sbuf_puts(out, "; services using it: ") ||
			     list_strings(out, json_object_get(d, "restart"));
	} else if (!strcmp(e, "service_recreated")) {
		rc = sbuf_puts(out, "service ") || md_text(out, jstr(d, "service")) ||
		     sbuf_puts(out, " recreated with the new environment (container ") ||
		     md_text(out, jstr(d, "container")) ||
		     sbuf_printf(out, ", healthy after %.1f s)", json_number_value(json_object_get(d, "healthy_after")));
		if (!rc && jstr(d, "old_logs"))
			rc = sbuf_puts(out, "; the old container's logs are in ") || md_code(out, jstr(d, "old_logs"));
		if (!rc && jstr(d, "old_kept"))
			rc = sbuf_puts(out, "; the old container is kept, stopped, as ") ||
			     md_code(out, jstr(d, "old_kept"));
	} else if (!strcmp(e, "service_stopped")) {
		rc = sbuf_puts(out, "service ") || md_text(out, jstr(d, "service")) ||
		     sbuf_puts(out, " stopped (container ") || md_text(out, jstr(d, "container")) ||
		     sbuf_puts(out, ", kept for forensics)");
	} else if (!strcmp(e, "top_ips")) {
		rc = sbuf_printf(out, "%lld requests from %lld addresses counted", jint(d, "requests"),
				 jint(d, "distinct"));
		if (!rc && jstr(d, "top_ip"))
			rc = sbuf_puts(out, "; busiest ") || md_text(out, jstr(d, "top_ip")) ||
			     sbuf_printf(out, " with %lld", jint(d, "top_requests"));
	} else if (!strcmp(e, "ip_blocked")) {
		rc = sbuf_puts(out, json_is_true(json_object_get(d, "applied")) ? "firewall rule added: "
				    : "firewall rule prepared (not applied): ") ||
		     md_code(out, jstr(d, "rule") ? jstr(d, "rule") : "?");
		if (!rc && json_is_true(json_object_get(d, "already")))
			rc = sbuf_puts(out, " (it was there already)");
	} else {
		rc = sbuf_puts(out, "event ") || md_text(out, e);
	}
	return rc || sbuf_puts(out, "\n");
}

static int render_run(struct sbuf *out, const json_t *run)
{
	const json_t *steps = json_object_get(run, "steps"), *events = json_object_get(run, "events");
	const char *cmd = jstr(run, "command"), *result = jstr(run, "result");
	char t[32], dur[32];
	size_t i;
	json_t *s;
	int rc;

	rc = sbuf_printf(out, "### %s ", short_time(jstr(run, "time"), t, sizeof(t)));
	if (!rc && cmd)
		rc = md_code(out, cmd);
	else if (!rc)
		rc = sbuf_puts(out, "(recorded outside a command)");
	if (!rc && cmd) {
		if (!result)
			rc = sbuf_puts(out, " — no end recorded (still running, or killed)");
		else if (json_is_number(json_object_get(run, "duration")))
			rc = sbuf_printf(out, " — %s in %s", result,
					 time_format_duration(json_number_value(json_object_get(run, "duration")),
							      dur, sizeof(dur)));
		else
			rc = sbuf_printf(out, " — %s", result);
	}
	if (rc || sbuf_puts(out, "\n\n"))
		return -1;
	if (jstr(run, "user") || jstr(run, "host")) {
		if (sbuf_puts(out, "By ") || md_text(out, jstr(run, "user") ? jstr(run, "user") : "?") ||
		    sbuf_puts(out, "@") || md_text(out, jstr(run, "host") ? jstr(run, "host") : "?"))
			return -1;
		if (jstr(run, "runbook") &&
		    (sbuf_puts(out, ", runbook ") || md_code(out, jstr(run, "runbook"))))
			return -1;
		if (jstr(run, "run") && (sbuf_puts(out, ", journal run ") || md_code(out, jstr(run, "run"))))
			return -1;
		if (sbuf_puts(out, ".\n\n"))
			return -1;
	}
	if (jstr(run, "error") && (sbuf_puts(out, "Error: ") || md_text(out, jstr(run, "error")) ||
				   sbuf_puts(out, "\n\n")))
		return -1;
	if (json_array_size(steps)) {
		if (sbuf_puts(out, "| Time (UTC) | Step | Action | Phase | Result | Duration | Detail |\n"
				   "|---|---|---|---|---|---|---|\n"))
			return -1;
		json_array_foreach(steps, i, s) {
			const char *st = jstr(s, "time");

			if (sbuf_printf(out, "| %s | ", st && strlen(st) >= 23 ? st + 11 : (st ? st : "?")) ||
			    md_text(out, jstr(s, "step")) || sbuf_puts(out, " | ") ||
			    md_text(out, jstr(s, "action") ? jstr(s, "action") : "-") || sbuf_puts(out, " | ") ||
			    md_text(out, jstr(s, "phase")) || sbuf_puts(out, " | ") ||
			    md_text(out, jstr(s, "result")) ||
			    sbuf_printf(out, " | %s | ",
					time_format_duration(json_number_value(json_object_get(s, "duration")), dur,
							     sizeof(dur))) ||
			    md_text(out, jstr(s, "error") ? jstr(s, "error") : "") || sbuf_puts(out, " |\n"))
				return -1;
		}
		if (sbuf_puts(out, "\n"))
			return -1;
	}
	json_array_foreach(events, i, s)
		if (render_event(out, s))
			return -1;
	if (json_array_size(events) && sbuf_puts(out, "\n"))
		return -1;
	return 0;
}

/* Time of the first event named one of names (NULL-terminated), or NULL. */
static const char *first_event(const json_t *runs, const char *const *names, const json_t **detail)
{
	size_t i, j, k;
	json_t *run, *ev;

	json_array_foreach(runs, i, run) {
		json_array_foreach(json_object_get(run, "events"), j, ev) {
			const char *e = jstr(ev, "event");

			for (k = 0; e && names[k]; k++) {
				if (strcmp(e, names[k]))
					continue;
				/* A rule only printed is not a block. */
				if (!strcmp(e, "ip_blocked") &&
				    !json_is_true(json_object_get(json_object_get(ev, "detail"), "applied")))
					continue;
				if (detail)
					*detail = json_object_get(ev, "detail");
				return jstr(ev, "time");
			}
		}
	}
	return NULL;
}

static size_t count_commands(const json_t *runs)
{
	size_t i, n = 0;
	json_t *run;

	json_array_foreach(runs, i, run)
		n += jstr(run, "command") != NULL;
	return n;
}

static int check_item(struct sbuf *out, int done, const char *text, const char *when)
{
	char t[32];

	if (sbuf_printf(out, "- [%c] %s", done ? 'x' : ' ', text))
		return -1;
	if (when && sbuf_printf(out, " (%s UTC)", short_time(when, t, sizeof(t))))
		return -1;
	return sbuf_puts(out, "\n");
}

static const char *const CHANGES[] = { "service_stopped", "users_locked", "sessions_flushed", "flushall",
				       "secret_rotated", "service_recreated", "ip_blocked", NULL };

static int render_checklists(struct sbuf *out, const json_t *runs)
{
	static const char *const snap[] = { "snapshot", NULL }, *const stop[] = { "service_stopped", NULL },
				 *const inv[] = { "investigated", NULL }, *const lock[] = { "users_locked", NULL },
				 *const sess[] = { "sessions_flushed", "flushall", NULL },
				 *const rot[] = { "secret_rotated", NULL }, *const top[] = { "top_ips", NULL },
				 *const blk[] = { "ip_blocked", NULL };
	const char *t_snap = first_event(runs, snap, NULL), *t_change = first_event(runs, CHANGES, NULL);
	const json_t *rot_detail = NULL;
	const char *t_rot = first_event(runs, rot, &rot_detail);
	char line[256];
	int before = t_snap && (!t_change || strcmp(t_snap, t_change) <= 0);
	size_t ncmd = count_commands(runs);

	if (sbuf_puts(out, "## Response (runbook: Security Incident Response)\n\n"
			   "Ticked where the journal records the step done.\n\n"))
		return -1;
	if (check_item(out, before, "Evidence preserved before anything was stopped or changed "
				    "(logs, inspect, database dump, Redis INFO, journal)", t_snap))
		return -1;
	if (t_snap && !before) {
		char a[32], b[32];
		if (sbuf_printf(out, "  - evidence was first collected at %s UTC, after the first change at %s UTC\n",
				short_time(t_snap, a, sizeof(a)), short_time(t_change, b, sizeof(b))))
			return -1;
	}
	snprintf(line, sizeof(line), "Secret rotated%s%s%s", rot_detail && jstr(rot_detail, "variable") ? " (" : "",
		 rot_detail && jstr(rot_detail, "variable") ? jstr(rot_detail, "variable") : "",
		 rot_detail && jstr(rot_detail, "variable") ? ")" : "");
	if (check_item(out, first_event(runs, stop, NULL) != NULL, "Services stopped (contained, not removed)",
		       first_event(runs, stop, NULL)) ||
	    check_item(out, first_event(runs, inv, NULL) != NULL,
		       "Brute force, new accounts, new posts and reports investigated", first_event(runs, inv, NULL)) ||
	    check_item(out, t_rot != NULL, line, t_rot) ||
	    check_item(out, first_event(runs, lock, NULL) != NULL, "Suspicious users locked",
		       first_event(runs, lock, NULL)) ||
	    check_item(out, first_event(runs, sess, NULL) != NULL, "Sessions cleared",
		       first_event(runs, sess, NULL)) ||
	    check_item(out, first_event(runs, top, NULL) != NULL, "Top client addresses counted",
		       first_event(runs, top, NULL)) ||
	    check_item(out, first_event(runs, blk, NULL) != NULL, "Abusive addresses blocked at the firewall",
		       first_event(runs, blk, NULL)))
		return -1;

	if (sbuf_puts(out, "\n## Post-Incident Checklist\n\n"))
		return -1;
	snprintf(line, sizeof(line), "Document resolution steps (the timeline above records %zu command%s)",
		 ncmd, ncmd == 1 ? "" : "s");
	if (check_item(out, 0, "Document what happened", NULL) ||
	    check_item(out, 0, "Document root cause", NULL) ||
	    check_item(out, t_change != NULL, t_change ? line : "Document resolution steps", NULL) ||
	    check_item(out, 0, "Update runbook with lessons learned", NULL) ||
	    check_item(out, 0, "Schedule post-mortem meeting", NULL) ||
	    check_item(out, 0, "Implement preventive measures", NULL) ||
	    check_item(out, 0, "Test incident response procedures", NULL))
		return -1;
	return 0;
}

static int render_evidence(struct sbuf *out, const json_t *evidence)
{
	size_t i, j;
	json_t *e, *f;
	char t[32];

	if (sbuf_puts(out, "## Evidence\n\n"))
		return -1;
	if (!json_array_size(evidence))
		return sbuf_puts(out, "No evidence was collected for this incident.\n\n");
	json_array_foreach(evidence, i, e) {
		const char *dir = jstr(e, "dir");
		const char *base = dir && strrchr(dir, '/') ? strrchr(dir, '/') + 1 : dir;

		if (sbuf_puts(out, "### ") || md_text(out, base ? base : "?") || sbuf_puts(out, "\n\n") ||
		    sbuf_printf(out, "Collected %s UTC by ", short_time(jstr(e, "collected"), t, sizeof(t))) ||
		    md_text(out, jstr(e, "collector") ? jstr(e, "collector") : "?") || sbuf_puts(out, " with ") ||
		    md_text(out, jstr(e, "tool") ? jstr(e, "tool") : "?") || sbuf_puts(out, ". Verify with `cd ") ||
		    md_text(out, dir ? dir : "?") || sbuf_puts(out, " && sha256sum -c " INCIDENT_SUMS "`.\n\n"))
			return -1;
		if (json_object_get(e, "archive") &&
		    (sbuf_puts(out, "Archive: ") || md_code(out, jstr(json_object_get(e, "archive"), "path")) ||
		     sbuf_printf(out, ", SHA-256 `%s`.\n\n", jstr(json_object_get(e, "archive"), "sha256"))))
			return -1;
		if (json_array_size(json_object_get(e, "failed"))) {
			if (sbuf_puts(out, "Not collected:\n\n"))
				return -1;
			json_array_foreach(json_object_get(e, "failed"), j, f)
				if (sbuf_puts(out, "- ") || md_text(out, jstr(f, "what")) || sbuf_puts(out, ": ") ||
				    md_text(out, jstr(f, "error")) || sbuf_puts(out, "\n"))
					return -1;
			if (sbuf_puts(out, "\n"))
				return -1;
		}
		if (sbuf_puts(out, "| SHA-256 | File |\n|---|---|\n"))
			return -1;
		json_array_foreach(json_object_get(e, "files"), j, f)
			if (sbuf_printf(out, "| `%s` | ", jstr(f, "sha256")) || md_code(out, jstr(f, "path")) ||
			    sbuf_puts(out, " |\n"))
				return -1;
		if (sbuf_puts(out, "\n"))
			return -1;
	}
	return 0;
}

int incident_report_render(const struct incident_info *info, const json_t *runs,
			   const json_t *evidence, double now, struct sbuf *out, struct st_error *err)
{
	char t1[40], t2[40];
	size_t i;
	json_t *run;

	if (sbuf_puts(out, "# Incident ") || md_text(out, info->id) ||
	    (info->title[0] && (sbuf_puts(out, ": ") || md_text(out, info->title))) ||
	    sbuf_puts(out, "\n\n"))
		return oom(err);
	time_format_rfc3339(info->opened, t1, sizeof(t1));
	if (sbuf_printf(out, "- Opened: %s UTC by ", short_time(t1, t2, sizeof(t2))) ||
	    md_text(out, info->opened_by) || sbuf_puts(out, "\n"))
		return oom(err);
	if (info->closed > 0) {
		time_format_rfc3339(info->closed, t1, sizeof(t1));
		if (sbuf_printf(out, "- Closed: %s UTC by ", short_time(t1, t2, sizeof(t2))) ||
		    md_text(out, info->closed_by) || sbuf_puts(out, "\n"))
			return oom(err);
	} else if (sbuf_puts(out, "- Status: open\n")) {
		return oom(err);
	}
	time_format_rfc3339(now, t1, sizeof(t1));
	if (sbuf_printf(out, "- Report generated: %s UTC from the journal\n\n", short_time(t1, t2, sizeof(t2))) ||
	    sbuf_puts(out, "## What happened\n\n_To be written._\n\n## Root cause\n\n_To be written._\n\n"))
		return oom(err);

	if (sbuf_printf(out, "## Timeline\n\nEvery command run for this incident, in order, with its "
			     "steps and what it established. Times are UTC.\n\n"))
		return oom(err);
	if (!json_array_size(runs) && sbuf_puts(out, "Nothing is journaled for this incident.\n\n"))
		return oom(err);
	json_array_foreach(runs, i, run)
		if (render_run(out, run))
			return oom(err);
	if (render_evidence(out, evidence) || render_checklists(out, runs) ||
	    sbuf_puts(out, "\n## Lessons learned\n\n_To be written._\n"))
		return oom(err);
	return 0;
}

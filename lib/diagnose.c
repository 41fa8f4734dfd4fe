/*
 * diagnose.c - the diagnose result model and its renderers (diagnose.h).
 */
#include "diagnose.h"
#include "expr.h"
#include "runbook.h"
#include "sbuf.h"
#include "texttable.h"

#include <stdlib.h>
#include <string.h>

const struct diag_issue_def diag_issue_defs[] = {
	{ "backend-crash", "Backend container crashes on startup" },
	{ "frontend-network", "Frontend shows \"Network Error\" / cannot connect to the backend" },
	{ "db-pool", "Database connection pool exhausted" },
	{ "redis-oom", "Redis out of memory" },
	{ "s3-upload", "S3 upload failures" },
	{ "email", "Email verification not sending" },
	{ "trending", "Trending posts not updating" },
	{ NULL, NULL },
};

/* Longest evidence text shown per value, and list items per value. */
#define EVIDENCE_TEXT_MAX 240
#define EVIDENCE_ITEMS_MAX 10

const struct diag_issue_def *diag_issue_def(const char *id)
{
	const struct diag_issue_def *d;

	for (d = diag_issue_defs; id && d->id; d++)
		if (!strcmp(d->id, id))
			return d;
	return NULL;
}

const char *diag_fix_result_name(enum diag_fix_result r)
{
	switch (r) {
	case DIAG_FIX_PENDING: return "pending";
	case DIAG_FIX_DONE: return "done";
	case DIAG_FIX_FAILED: return "failed";
	case DIAG_FIX_REFUSED: return "refused";
	case DIAG_FIX_LOCKED: return "locked";
	}
	return "?";
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

/* ---- model ------------------------------------------------------------- */

int diag_set_add(struct diag_set *set, const char *id, const char *runbook, const char *title,
		 struct diag_issue **out)
{
	struct diag_issue *items = realloc(set->items, (set->n + 1) * sizeof(*items)), *is;

	*out = NULL;
	if (!items)
		return ST_ENOMEM;
	set->items = items;
	is = &items[set->n];
	memset(is, 0, sizeof(*is));
	is->id = strdup(id);
	is->runbook = strdup(runbook);
	is->title = strdup(title ? title : id);
	if (!is->id || !is->runbook || !is->title) {
		free(is->id);
		free(is->runbook);
		free(is->title);
		return ST_ENOMEM;
	}
	set->n++;
	*out = is;
	return 0;
}

static void raise_status(struct diag_issue *is, enum engine_finding_status s)
{
	if (s > is->status)
		is->status = s;
}

int diag_issue_add_finding(struct diag_issue *is, const struct engine_finding *f)
{
	struct diag_finding *fs = realloc(is->findings, (is->nfindings + 1) * sizeof(*fs)), *d;
	const char *title = f->step->description ? f->step->description : f->step->name;

	if (!fs)
		return ST_ENOMEM;
	is->findings = fs;
	d = &fs[is->nfindings];
	memset(d, 0, sizeof(*d));
	d->status = f->status;
	d->check = strdup(f->step->name);
	d->title = strdup(title);
	d->message = strdup(f->message ? f->message : "");
	d->why = dup_or_null(f->why);
	d->error = dup_or_null(f->error);
	d->fix = dup_or_null(f->fix);
	d->fix_runbook = dup_or_null(f->fix_runbook);
	d->evidence = f->evidence ? json_deep_copy(f->evidence) : json_object();
	d->fix_params = f->fix_params ? json_deep_copy(f->fix_params) : json_object();
	is->nfindings++;
	if (!d->check || !d->title || !d->message || (f->why && !d->why) || (f->error && !d->error) ||
	    (f->fix && !d->fix) || (f->fix_runbook && !d->fix_runbook) || !d->evidence ||
	    !d->fix_params)
		return ST_ENOMEM;
	raise_status(is, f->status);
	return 0;
}

int diag_issue_add_skipped(struct diag_issue *is, const char *check, const char *title,
			   const char *reason)
{
	struct diag_skipped *s = realloc(is->skipped, (is->nskipped + 1) * sizeof(*s)), *d;

	if (!s)
		return ST_ENOMEM;
	is->skipped = s;
	d = &s[is->nskipped++];
	d->check = strdup(check);
	d->title = strdup(title ? title : check);
	d->reason = strdup(reason ? reason : "");
	return d->check && d->title && d->reason ? 0 : ST_ENOMEM;
}

int diag_issue_add_unchecked(struct diag_issue *is, const char *check, const char *title,
			     const char *reason, enum engine_finding_status severity)
{
	int rc = diag_issue_add_skipped(is, check, title, reason);

	raise_status(is, severity);
	return rc;
}

int diag_issue_set_error(struct diag_issue *is, const char *error)
{
	free(is->error);
	is->error = strdup(error);
	raise_status(is, ENGINE_FINDING_PROBLEM);
	return is->error ? 0 : ST_ENOMEM;
}

enum engine_finding_status diag_set_status(const struct diag_set *set)
{
	enum engine_finding_status s = ENGINE_FINDING_OK;
	size_t i;

	for (i = 0; i < set->n; i++)
		if (set->items[i].status > s)
			s = set->items[i].status;
	return s;
}

void diag_set_count(const struct diag_set *set, size_t counts[3])
{
	size_t i;

	counts[0] = counts[1] = counts[2] = 0;
	for (i = 0; i < set->n; i++)
		counts[set->items[i].status]++;
}

int diag_collect_fixes(struct diag_report *rep)
{
	size_t i, j, k;

	for (i = 0; i < rep->before.n; i++) {
		const struct diag_issue *is = &rep->before.items[i];

		for (j = 0; j < is->nfindings; j++) {
			const struct diag_finding *f = &is->findings[j];
			struct diag_fix *fix = NULL;
			char who[256];

			if (f->status == ENGINE_FINDING_OK || !f->fix_runbook)
				continue;
			for (k = 0; k < rep->nfixes && !fix; k++)
				if (!strcmp(rep->fixes[k].runbook, f->fix_runbook) &&
				    json_equal(rep->fixes[k].params, f->fix_params))
					fix = &rep->fixes[k];
			if (!fix) {
				struct diag_fix *fx = realloc(rep->fixes, (rep->nfixes + 1) * sizeof(*fx));

				if (!fx)
					return ST_ENOMEM;
				rep->fixes = fx;
				fix = &fx[rep->nfixes];
				memset(fix, 0, sizeof(*fix));
				rep->nfixes++;
				fix->runbook = strdup(f->fix_runbook);
				fix->params = json_deep_copy(f->fix_params);
				fix->needed_by = json_array();
				if (!fix->runbook || !fix->params || !fix->needed_by)
					return ST_ENOMEM;
			}
			snprintf(who, sizeof(who), "%s/%s", is->id, f->check);
			if (json_array_append_new(fix->needed_by, json_string(who)))
				return ST_ENOMEM;
		}
	}
	return 0;
}

static void finding_release(struct diag_finding *f)
{
	free(f->check);
	free(f->title);
	free(f->message);
	free(f->why);
	free(f->error);
	free(f->fix);
	free(f->fix_runbook);
	json_decref(f->evidence);
	json_decref(f->fix_params);
}

void diag_set_release(struct diag_set *set)
{
	size_t i, j;

	for (i = 0; i < set->n; i++) {
		struct diag_issue *is = &set->items[i];

		for (j = 0; j < is->nfindings; j++)
			finding_release(&is->findings[j]);
		for (j = 0; j < is->nskipped; j++) {
			free(is->skipped[j].check);
			free(is->skipped[j].title);
			free(is->skipped[j].reason);
		}
		free(is->findings);
		free(is->skipped);
		free(is->id);
		free(is->runbook);
		free(is->title);
		free(is->error);
	}
	free(set->items);
	set->items = NULL;
	set->n = 0;
}

void diag_report_release(struct diag_report *rep)
{
	size_t i;

	diag_set_release(&rep->before);
	diag_set_release(&rep->after);
	for (i = 0; i < rep->nfixes; i++) {
		free(rep->fixes[i].runbook);
		json_decref(rep->fixes[i].params);
		json_decref(rep->fixes[i].needed_by);
		free(rep->fixes[i].error);
	}
	free(rep->fixes);
	rep->fixes = NULL;
	rep->nfixes = 0;
}

/* ---- text -------------------------------------------------------------- */

static enum texttable_color status_color(enum engine_finding_status s)
{
	return s == ENGINE_FINDING_OK ? TEXTTABLE_GREEN
	       : s == ENGINE_FINDING_WARN ? TEXTTABLE_YELLOW : TEXTTABLE_RED;
}

static const char *on(const struct diag_render_opts *o, enum engine_finding_status s)
{
	if (!o->color)
		return "";
	return s == ENGINE_FINDING_OK ? "\033[32m" : s == ENGINE_FINDING_WARN ? "\033[33m" : "\033[31m";
}

static const char *off(const struct diag_render_opts *o)
{
	return o->color ? "\033[0m" : "";
}

/* Appends text cut to max characters (on a UTF-8 boundary) with "…". */
static int put_cut(struct sbuf *sb, const char *text, size_t max)
{
	size_t n = 0, chars = 0;

	while (text[n] && chars < max) {
		n++;
		while (((unsigned char)text[n] & 0xC0) == 0x80)
			n++;
		chars++;
	}
	if (sbuf_append(sb, text, n))
		return ST_ENOMEM;
	return text[n] ? sbuf_puts(sb, "…") : 0;
}

/* One evidence value on the current line (scalars, short lists), or one
 * line per item for lists of text (log samples). */
static int render_evidence(struct sbuf *sb, const json_t *evidence, const char *indent)
{
	const char *k;
	json_t *v;
	int inline_open = 0;

	json_object_foreach((json_t *)evidence, k, v) {
		char *t;
		size_t i;

		if (json_is_array(v) && json_array_size(v) &&
		    json_is_string(json_array_get(v, 0)) &&
		    strlen(json_string_value(json_array_get(v, 0))) > 40) {
			json_t *item;

			if (inline_open && sbuf_puts(sb, "\n"))
				return ST_ENOMEM;
			inline_open = 0;
			if (sbuf_printf(sb, "%s%s:\n", indent, k))
				return ST_ENOMEM;
			json_array_foreach(v, i, item) {
				if (i == EVIDENCE_ITEMS_MAX) {
					if (sbuf_printf(sb, "%s  (%zu more)\n", indent, json_array_size(v) - i))
						return ST_ENOMEM;
					break;
				}
				if (sbuf_printf(sb, "%s  ", indent) ||
				    put_cut(sb, json_string_value(item) ? json_string_value(item) : "",
					    EVIDENCE_TEXT_MAX) ||
				    sbuf_puts(sb, "\n"))
					return ST_ENOMEM;
			}
			continue;
		}
		/* Empty values say nothing in text (JSON keeps them). */
		if (json_is_null(v) || (json_is_string(v) && !json_string_length(v)))
			continue;
		t = expr_to_text(v);
		if (!t)
			return ST_ENOMEM;
		if (sbuf_printf(sb, "%s%s=", inline_open ? " " : indent, k) ||
		    put_cut(sb, t, EVIDENCE_TEXT_MAX)) {
			free(t);
			return ST_ENOMEM;
		}
		free(t);
		inline_open = 1;
	}
	if (inline_open && sbuf_puts(sb, "\n"))
		return ST_ENOMEM;
	return 0;
}

static int add_issue_rows(struct texttable *t, const struct diag_issue *is)
{
	size_t j;
	int first = 1;

	if (is->error) {
		const char *cells[] = { is->id, "-", "problem", is->error };

		if (texttable_add_row(t, cells))
			return ST_ENOMEM;
		texttable_color_last(t, 2, TEXTTABLE_RED);
		first = 0;
	}
	for (j = 0; j < is->nfindings; j++) {
		const struct diag_finding *f = &is->findings[j];
		const char *cells[] = { first ? is->id : "", f->check,
					engine_finding_status_name(f->status), f->message };
		struct sbuf msg = SBUF_INIT;

		if (f->error) {
			if (sbuf_printf(&msg, "cannot check: %s", f->error)) {
				sbuf_release(&msg);
				return ST_ENOMEM;
			}
			cells[3] = sbuf_str(&msg);
		}
		if (texttable_add_row(t, cells)) {
			sbuf_release(&msg);
			return ST_ENOMEM;
		}
		sbuf_release(&msg);
		texttable_color_last(t, 2, status_color(f->status));
		first = 0;
	}
	for (j = 0; j < is->nskipped; j++) {
		const struct diag_skipped *s = &is->skipped[j];
		struct sbuf msg = SBUF_INIT;
		const char *cells[] = { first ? is->id : "", s->check, "-", NULL };
		int rc;

		rc = sbuf_printf(&msg, "not checked: %s", s->reason);
		cells[3] = sbuf_str(&msg);
		if (rc || texttable_add_row(t, cells)) {
			sbuf_release(&msg);
			return ST_ENOMEM;
		}
		sbuf_release(&msg);
		texttable_color_last(t, 2, TEXTTABLE_DIM);
		texttable_color_last(t, 3, TEXTTABLE_DIM);
		first = 0;
	}
	return 0;
}

static int render_table(struct sbuf *sb, const struct diag_set *set, const struct diag_render_opts *o)
{
	static const char *const headers[] = { "ISSUE", "CHECK", "STATUS", "FINDING" };
	struct texttable *t = NULL;
	size_t i;
	int rc;

	if ((rc = texttable_new(4, headers, &t)) != 0)
		return rc;
	for (i = 0; i < set->n && !rc; i++)
		rc = add_issue_rows(t, &set->items[i]);
	if (!rc)
		rc = texttable_render(t, o->color, sb);
	texttable_free(t);
	return rc;
}

static int render_details(struct sbuf *sb, const struct diag_set *set, const struct diag_render_opts *o)
{
	size_t i, j;

	for (i = 0; i < set->n; i++) {
		const struct diag_issue *is = &set->items[i];
		int header = 0;

		for (j = 0; j < is->nfindings; j++) {
			const struct diag_finding *f = &is->findings[j];

			if (f->status == ENGINE_FINDING_OK && !o->verbose)
				continue;
			if (!header) {
				if (sbuf_printf(sb, "\n%s: %s (%s%s%s)\n", is->id, is->title, on(o, is->status),
						engine_finding_status_name(is->status), off(o)))
					return ST_ENOMEM;
				header = 1;
			}
			if (sbuf_printf(sb, "  %s%s%s %s: %s\n", on(o, f->status),
					engine_finding_status_name(f->status), off(o), f->check, f->message) ||
			    (f->error && sbuf_printf(sb, "      cannot check: %s\n", f->error)) ||
			    (f->why && sbuf_printf(sb, "      %s\n", f->why)) ||
			    render_evidence(sb, f->evidence, "      ") ||
			    (f->fix && sbuf_printf(sb, "      fix: %s\n", f->fix)))
				return ST_ENOMEM;
			if (f->fix_runbook) {
				const char *k;
				json_t *v;

				if (sbuf_printf(sb, "      safe fix: %s", f->fix_runbook))
					return ST_ENOMEM;
				json_object_foreach(f->fix_params, k, v) {
					char *t = expr_to_text(v);

					if (!t || sbuf_printf(sb, " %s=%s", k, t)) {
						free(t);
						return ST_ENOMEM;
					}
					free(t);
				}
				if (sbuf_puts(sb, "\n"))
					return ST_ENOMEM;
			}
		}
		if (is->error && !header &&
		    sbuf_printf(sb, "\n%s: %s (%sproblem%s)\n  cannot run %s: %s\n", is->id, is->title,
				on(o, ENGINE_FINDING_PROBLEM), off(o), is->runbook, is->error))
			return ST_ENOMEM;
	}
	return 0;
}

static int render_counts(struct sbuf *sb, const char *what, const struct diag_set *set,
			 const struct diag_render_opts *o)
{
	size_t c[3];
	enum engine_finding_status s = diag_set_status(set);

	diag_set_count(set, c);
	return sbuf_printf(sb, "%s: %s%s%s - %zu issue%s: %zu problem, %zu warning, %zu ok\n", what,
			   on(o, s), engine_finding_status_name(s), off(o), set->n, set->n == 1 ? "" : "s",
			   c[ENGINE_FINDING_PROBLEM], c[ENGINE_FINDING_WARN], c[ENGINE_FINDING_OK]);
}

static int params_text(struct sbuf *sb, const json_t *params)
{
	const char *k;
	json_t *v;

	json_object_foreach((json_t *)params, k, v) {
		char *t = expr_to_text(v);

		if (!t || sbuf_printf(sb, " %s=%s", k, t)) {
			free(t);
			return ST_ENOMEM;
		}
		free(t);
	}
	return 0;
}

static int render_fixes(struct sbuf *sb, const struct diag_report *rep, const struct diag_render_opts *o)
{
	size_t i, j;

	if (!rep->nfixes)
		return 0;
	if (!rep->fix_requested) {
		if (sbuf_puts(sb, "safe fixes:"))
			return ST_ENOMEM;
		for (i = 0; i < rep->nfixes; i++)
			if (sbuf_printf(sb, "%s %s", i ? "," : "", rep->fixes[i].runbook) ||
			    params_text(sb, rep->fixes[i].params))
				return ST_ENOMEM;
		return sbuf_printf(sb, "\napply them (each step confirmed): %s --fix\n",
				   o->command ? o->command : "spilttea-ops diagnose");
	}
	if (sbuf_puts(sb, "\nfixes:\n"))
		return ST_ENOMEM;
	for (i = 0; i < rep->nfixes; i++) {
		const struct diag_fix *f = &rep->fixes[i];
		enum engine_finding_status s = f->result == DIAG_FIX_DONE ? ENGINE_FINDING_OK
					       : f->result == DIAG_FIX_PENDING ? ENGINE_FINDING_WARN
									   : ENGINE_FINDING_PROBLEM;
		json_t *v;

		if (sbuf_printf(sb, "  %s%-7s%s %s", on(o, s), diag_fix_result_name(f->result), off(o),
				f->runbook) ||
		    params_text(sb, f->params) || sbuf_puts(sb, " (for"))
			return ST_ENOMEM;
		json_array_foreach(f->needed_by, j, v)
			if (sbuf_printf(sb, "%s %s", j ? "," : "", json_string_value(v)))
				return ST_ENOMEM;
		if (sbuf_puts(sb, ")") || (f->run_id[0] && sbuf_printf(sb, " journal run %s", f->run_id)) ||
		    (f->error && sbuf_printf(sb, "\n          %s", f->error)) || sbuf_puts(sb, "\n"))
			return ST_ENOMEM;
	}
	return 0;
}

char *diag_render_text(const struct diag_report *rep, const struct diag_render_opts *o)
{
	struct sbuf sb = SBUF_INIT;

	if (o->part != DIAG_PART_OUTCOME &&
	    (render_table(&sb, &rep->before, o) || render_details(&sb, &rep->before, o) ||
	     sbuf_puts(&sb, "\n") || render_counts(&sb, "diagnosis", &rep->before, o)))
		goto fail;
	if (o->part != DIAG_PART_OUTCOME && !rep->fix_requested && render_fixes(&sb, rep, o))
		goto fail;
	if (o->part == DIAG_PART_DIAGNOSIS)
		return sbuf_detach(&sb);
	if (rep->fix_requested && render_fixes(&sb, rep, o))
		goto fail;
	if (rep->after.n) {
		if (sbuf_puts(&sb, "\nchecked again after the fixes:\n") ||
		    render_table(&sb, &rep->after, o) || render_details(&sb, &rep->after, o) ||
		    sbuf_puts(&sb, "\n") || render_counts(&sb, "after the fixes", &rep->after, o))
			goto fail;
	}
	return sbuf_detach(&sb);
fail:
	sbuf_release(&sb);
	return NULL;
}

/* ---- JSON -------------------------------------------------------------- */

static int set_str(json_t *o, const char *k, const char *v)
{
	return v ? json_object_set_new(o, k, json_string(v)) : 0;
}

static json_t *issue_json(const struct diag_issue *is)
{
	json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s}", "id", is->id, "title", is->title, "runbook",
			      is->runbook, "status", engine_finding_status_name(is->status), "run_id",
			      is->run_id);
	json_t *findings = json_array(), *skipped = json_array();
	size_t j;
	int bad = !o || !findings || !skipped;

	if (!bad && is->error)
		bad |= set_str(o, "error", is->error);
	for (j = 0; !bad && j < is->nfindings; j++) {
		const struct diag_finding *f = &is->findings[j];
		json_t *fo = json_pack("{s:s,s:s,s:s,s:s,s:O}", "check", f->check, "title", f->title,
				       "status", engine_finding_status_name(f->status), "message",
				       f->message, "evidence", f->evidence);

		bad |= !fo;
		if (!bad) {
			bad |= set_str(fo, "why", f->why) | set_str(fo, "error", f->error) |
			       set_str(fo, "fix", f->fix) | set_str(fo, "fix_runbook", f->fix_runbook);
			if (f->fix_runbook)
				bad |= json_object_set(fo, "fix_params", f->fix_params);
		}
		bad |= json_array_append_new(findings, fo);
	}
	for (j = 0; !bad && j < is->nskipped; j++)
		bad |= json_array_append_new(skipped, json_pack("{s:s,s:s,s:s}", "check",
								 is->skipped[j].check, "title",
								 is->skipped[j].title, "reason",
								 is->skipped[j].reason));
	if (!bad)
		bad |= json_object_set(o, "findings", findings) | json_object_set(o, "skipped", skipped);
	json_decref(findings);
	json_decref(skipped);
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *set_json(const struct diag_set *set, json_t **issues_out)
{
	size_t c[3], i;
	json_t *o, *issues = json_array();
	int bad = !issues;

	diag_set_count(set, c);
	for (i = 0; !bad && i < set->n; i++)
		bad |= json_array_append_new(issues, issue_json(&set->items[i]));
	o = bad ? NULL
		: json_pack("{s:s,s:{s:I,s:I,s:I}}", "status",
			    engine_finding_status_name(diag_set_status(set)), "counts", "ok",
			    (json_int_t)c[ENGINE_FINDING_OK], "warn", (json_int_t)c[ENGINE_FINDING_WARN],
			    "problem", (json_int_t)c[ENGINE_FINDING_PROBLEM]);
	if (!o) {
		json_decref(issues);
		return NULL;
	}
	*issues_out = issues;
	return o;
}

json_t *diag_render_json(const struct diag_report *rep)
{
	json_t *o = NULL, *issues = NULL, *fixes = json_array(), *after = NULL, *after_issues = NULL;
	size_t i;
	int bad = !fixes;

	if (!bad && !(o = set_json(&rep->before, &issues)))
		bad = 1;
	if (!bad)
		bad |= json_object_set_new(o, "issues", issues);
	for (i = 0; !bad && i < rep->nfixes; i++) {
		const struct diag_fix *f = &rep->fixes[i];
		json_t *fo = json_pack("{s:s,s:O,s:O,s:s}", "runbook", f->runbook, "params", f->params,
				       "needed_by", f->needed_by, "result", diag_fix_result_name(f->result));

		bad |= !fo;
		if (!bad) {
			bad |= set_str(fo, "error", f->error);
			if (f->run_id[0])
				bad |= set_str(fo, "run_id", f->run_id);
		}
		bad |= json_array_append_new(fixes, fo);
	}
	if (!bad)
		bad |= json_object_set(o, "fixes", fixes);
	if (!bad && rep->after.n) {
		after = set_json(&rep->after, &after_issues);
		bad |= !after || json_object_set_new(after, "issues", after_issues) ||
		       json_object_set(o, "after", after);
		json_decref(after);
	}
	json_decref(fixes);
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

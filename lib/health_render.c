/*
 * health_render.c - text table, JSON, Nagios and Prometheus renderings of a
 * health report. Pure functions: a report in, a string out (caller frees).
 * Every rendering ends with a newline so it can be printed or written to a
 * file as is.
 */
#include "health.h"
#include "sbuf.h"
#include "timeutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ANSI_RED "\033[31m"
#define ANSI_GREEN "\033[32m"
#define ANSI_YELLOW "\033[33m"
#define ANSI_MAGENTA "\033[35m"
#define ANSI_BOLD "\033[1m"
#define ANSI_RESET "\033[0m"

/* Counts results per status into counts[4]. */
static void count_statuses(const struct health_report *rep, size_t counts[4])
{
	size_t i;

	memset(counts, 0, 4 * sizeof(counts[0]));
	for (i = 0; i < rep->n; i++) {
		int s = rep->results[i].status;
		counts[s >= 0 && s <= 3 ? s : HEALTH_UNKNOWN]++;
	}
}

static const char *status_color(int status)
{
	switch (status) {
	case HEALTH_OK: return ANSI_GREEN;
	case HEALTH_WARNING: return ANSI_YELLOW;
	case HEALTH_CRITICAL: return ANSI_RED;
	default: return ANSI_MAGENTA;
	}
}

/* Appends s with control characters turned into spaces and at most max
 * bytes (then "..."); max 0 = no limit. */
static int put_clean(struct sbuf *sb, const char *s, size_t max)
{
	size_t i, n = strlen(s);
	int rc = 0;

	for (i = 0; i < n && !rc; i++) {
		unsigned char c = (unsigned char)s[i];

		if (max && i == max) {
			rc = sbuf_puts(sb, "...");
			break;
		}
		rc = sbuf_append(sb, c < 0x20 || c == 0x7f ? " " : &s[i], 1);
	}
	return rc;
}

/* ---- text ------------------------------------------------------------- */

static int put_json_inline(struct sbuf *sb, const json_t *v)
{
	char *s;
	int rc;

	switch (json_typeof(v)) {
	case JSON_STRING:
		return put_clean(sb, json_string_value(v), 160);
	case JSON_INTEGER:
		return sbuf_printf(sb, "%lld", (long long)json_integer_value(v));
	case JSON_REAL:
		return sbuf_printf(sb, "%.3f", json_real_value(v));
	case JSON_TRUE:
		return sbuf_puts(sb, "true");
	case JSON_FALSE:
		return sbuf_puts(sb, "false");
	case JSON_NULL:
		return sbuf_puts(sb, "-");
	case JSON_OBJECT: {
		const char *k;
		json_t *e;
		int first = 1;

		rc = 0;
		json_object_foreach((json_t *)v, k, e) {
			if (rc)
				break;
			rc = sbuf_printf(sb, "%s%s=", first ? "" : " ", k);
			if (!rc)
				rc = put_json_inline(sb, e);
			first = 0;
		}
		return rc;
	}
	default:
		s = json_dumps(v, JSON_COMPACT);
		if (!s)
			return ST_ENOMEM;
		rc = put_clean(sb, s, 160);
		free(s);
		return rc;
	}
}

/* Details as indented lines: scalars "key: value", arrays one "- item" line
 * per element, nested objects indented further. */
static int put_details(struct sbuf *sb, const json_t *d, int indent)
{
	const char *k;
	json_t *v;
	size_t i;
	int rc = 0;

	if (!json_is_object(d)) {
		rc = sbuf_printf(sb, "%*s", indent, "");
		if (!rc)
			rc = put_json_inline(sb, d);
		return rc ? rc : sbuf_puts(sb, "\n");
	}
	json_object_foreach((json_t *)d, k, v) {
		if (rc)
			break;
		if (json_is_array(v)) {
			rc = sbuf_printf(sb, "%*s%s:%s\n", indent, "", k,
					 json_array_size(v) ? "" : " (none)");
			for (i = 0; i < json_array_size(v) && !rc; i++) {
				rc = sbuf_printf(sb, "%*s- ", indent + 2, "");
				if (!rc)
					rc = put_json_inline(sb, json_array_get(v, i));
				if (!rc)
					rc = sbuf_puts(sb, "\n");
			}
		} else if (json_is_object(v)) {
			rc = sbuf_printf(sb, "%*s%s:\n", indent, "", k);
			if (!rc)
				rc = put_details(sb, v, indent + 2);
		} else {
			rc = sbuf_printf(sb, "%*s%s: ", indent, "", k);
			if (!rc)
				rc = put_json_inline(sb, v);
			if (!rc)
				rc = sbuf_puts(sb, "\n");
		}
	}
	return rc;
}

char *health_render_text(const struct health_report *rep, const struct health_render_opts *o)
{
	struct sbuf sb = SBUF_INIT;
	size_t i, width = 5, counts[4];
	char dur[32];
	int color = o && o->color, rc;

	for (i = 0; i < rep->n; i++)
		if (strlen(rep->results[i].name) > width)
			width = strlen(rep->results[i].name);
	rc = sbuf_printf(&sb, "%s%-8s  %-*s  %6s  %s%s\n", color ? ANSI_BOLD : "", "STATUS",
			 (int)width, "CHECK", "TIME", "SUMMARY", color ? ANSI_RESET : "");
	for (i = 0; i < rep->n && !rc; i++) {
		const struct health_result *r = &rep->results[i];

		time_format_duration(r->duration > 0 ? r->duration : 0, dur, sizeof(dur));
		rc = sbuf_printf(&sb, "%s%-8s%s  %-*s  %6s  ", color ? status_color(r->status) : "",
				 health_status_name(r->status), color ? ANSI_RESET : "", (int)width,
				 r->name, dur);
		if (!rc)
			rc = put_clean(&sb, r->summary ? r->summary : "", 0);
		if (!rc)
			rc = sbuf_puts(&sb, "\n");
		if (!rc && o && o->verbose && r->details)
			rc = put_details(&sb, r->details, 10);
	}
	count_statuses(rep, counts);
	time_format_duration(rep->duration, dur, sizeof(dur));
	if (!rc)
		rc = sbuf_printf(&sb, "\n%s%s%s: %zu checks, %zu ok, %zu warning, %zu critical, %zu unknown, in %s\n",
				 color ? status_color(rep->status) : "", health_status_name(rep->status),
				 color ? ANSI_RESET : "", rep->n, counts[HEALTH_OK],
				 counts[HEALTH_WARNING], counts[HEALTH_CRITICAL], counts[HEALTH_UNKNOWN], dur);
	if (rc) {
		sbuf_release(&sb);
		return NULL;
	}
	return sbuf_detach(&sb);
}

/* ---- JSON ------------------------------------------------------------- */

/* Integral values become JSON integers so byte counts stay exact. */
static json_t *json_number(double v)
{
	if (!isfinite(v))
		return json_null();
	if (v == floor(v) && fabs(v) < 9e15)
		return json_integer((json_int_t)v);
	return json_real(v);
}

static json_t *json_opt_number(int has, double v)
{
	return has ? json_number(v) : json_null();
}

static json_t *metric_json(const struct health_metric *m)
{
	return json_pack("{s:o, s:s, s:o, s:o, s:o, s:o}", "value", json_number(m->value), "unit",
			 health_unit_uom(m->unit), "warn", json_opt_number(m->th.has_warn, m->th.warn),
			 "crit", json_opt_number(m->th.has_crit, m->th.crit), "min",
			 json_opt_number(m->has_min, m->min), "max", json_opt_number(m->has_max, m->max));
}

static json_int_t ms_of(double seconds)
{
	return seconds > 0 ? (json_int_t)llround(seconds * 1000.0) : 0;
}

char *health_render_json(const struct health_report *rep, const struct health_render_opts *o)
{
	json_t *root = NULL, *checks = NULL;
	char when[64], *out = NULL, *text = NULL;
	size_t i, j, counts[4];

	count_statuses(rep, counts);
	time_format_rfc3339(rep->generated_at, when, sizeof(when));
	checks = json_array();
	if (!checks)
		goto out;
	for (i = 0; i < rep->n; i++) {
		const struct health_result *r = &rep->results[i];
		json_t *metrics = json_object(), *c;

		for (j = 0; metrics && j < r->n_metrics; j++) {
			if (json_object_set_new(metrics, r->metrics[j].label, metric_json(&r->metrics[j]))) {
				json_decref(metrics);
				goto out;
			}
		}
		/* "o" takes metrics' reference even when packing fails. */
		c = json_pack("{s:s, s:s, s:i, s:s, s:I, s:o, s:O}", "name", r->name, "status",
			      health_status_name(r->status), "exit_code", r->status, "summary",
			      r->summary ? r->summary : "", "duration_ms", ms_of(r->duration),
			      "metrics", metrics, "details", r->details ? r->details : json_null());
		if (!c || json_array_append_new(checks, c))
			goto out;
	}
	root = json_pack("{s:s, s:i, s:s, s:I, s:s, s:{s:I, s:I, s:I, s:I}, s:O}", "status",
			 health_status_name(rep->status), "exit_code", rep->status, "generated_at",
			 when, "duration_ms", ms_of(rep->duration), "tool_version",
			 o && o->tool_version ? o->tool_version : "unknown", "counts", "OK",
			 (json_int_t)counts[HEALTH_OK], "WARNING", (json_int_t)counts[HEALTH_WARNING],
			 "CRITICAL", (json_int_t)counts[HEALTH_CRITICAL], "UNKNOWN",
			 (json_int_t)counts[HEALTH_UNKNOWN], "checks", checks);
	if (!root)
		goto out;
	text = json_dumps(root, JSON_INDENT(2));
	if (text && asprintf(&out, "%s\n", text) < 0)
		out = NULL;
out:
	free(text);
	json_decref(root);
	json_decref(checks);
	return out;
}

/* ---- Nagios ----------------------------------------------------------- */

/* Perfdata numbers are [-0-9.] only: no exponent, no "inf". */
static void fmt_plain(double v, char *buf, size_t size)
{
	size_t n;

	if (!isfinite(v)) {
		snprintf(buf, size, "U");
		return;
	}
	if (v == floor(v) && fabs(v) < 1e18) {
		snprintf(buf, size, "%.0f", v);
	} else {
		snprintf(buf, size, "%.6f", v);
		n = strlen(buf);
		while (n > 0 && buf[n - 1] == '0')
			buf[--n] = '\0';
		if (n > 0 && buf[n - 1] == '.')
			buf[--n] = '\0';
	}
	if (!strcmp(buf, "-0"))
		snprintf(buf, size, "0");
}

static int label_needs_quotes(const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '.' || c == '-'))
			return 1;
	}
	return 0;
}

static int put_perf_label(struct sbuf *sb, const char *label)
{
	int quote = label_needs_quotes(label), rc = 0;
	const char *p;

	if (quote)
		rc = sbuf_puts(sb, "'");
	for (p = label; *p && !rc; p++) {
		if (*p == '\'')
			rc = sbuf_puts(sb, "''");
		else if (*p == '=')
			rc = sbuf_puts(sb, "_");
		else if ((unsigned char)*p < 0x20)
			rc = sbuf_puts(sb, " ");
		else
			rc = sbuf_append(sb, p, 1);
	}
	if (!rc && quote)
		rc = sbuf_puts(sb, "'");
	return rc;
}

static int put_perf(struct sbuf *sb, const struct health_metric *m)
{
	char f[5][64];
	int has[5], last, i, rc;

	fmt_plain(m->value, f[0], sizeof(f[0]));
	has[0] = 1;
	has[1] = m->th.has_warn;
	has[2] = m->th.has_crit;
	has[3] = m->has_min;
	has[4] = m->has_max;
	fmt_plain(m->th.warn, f[1], sizeof(f[1]));
	fmt_plain(m->th.crit, f[2], sizeof(f[2]));
	fmt_plain(m->min, f[3], sizeof(f[3]));
	fmt_plain(m->max, f[4], sizeof(f[4]));
	for (last = 4; last > 0 && !has[last]; last--)
		;
	rc = put_perf_label(sb, m->label);
	if (!rc)
		rc = sbuf_printf(sb, "=%s%s", f[0], health_unit_uom(m->unit));
	for (i = 1; i <= last && !rc; i++)
		rc = sbuf_printf(sb, ";%s", has[i] ? f[i] : "");
	return rc;
}

/* Plugin text must not contain '|' (it starts perfdata) or newlines. */
static int put_plugin_text(struct sbuf *sb, const char *s)
{
	int rc = 0;

	for (; *s && !rc; s++) {
		if (*s == '|')
			rc = sbuf_puts(sb, "/");
		else if ((unsigned char)*s < 0x20)
			rc = sbuf_puts(sb, " ");
		else
			rc = sbuf_append(sb, s, 1);
	}
	return rc;
}

char *health_render_nagios(const struct health_report *rep, const struct health_render_opts *o)
{
	static const int order[] = { HEALTH_CRITICAL, HEALTH_WARNING, HEALTH_UNKNOWN };
	struct sbuf sb = SBUF_INIT;
	size_t i, j, k, counts[4], problems = 0;
	int rc;

	count_statuses(rep, counts);
	rc = sbuf_printf(&sb, "HEALTH %s - ", health_status_name(rep->status));
	for (k = 0; k < 3 && !rc; k++) {
		for (i = 0; i < rep->n && !rc; i++) {
			const struct health_result *r = &rep->results[i];

			if (r->status != order[k])
				continue;
			rc = sbuf_printf(&sb, "%s%s: ", problems++ ? "; " : "", r->name);
			if (!rc)
				rc = put_plugin_text(&sb, r->summary ? r->summary : "");
		}
	}
	if (!rc && !problems)
		rc = sbuf_printf(&sb, "%zu checks OK", counts[HEALTH_OK]);
	else if (!rc && counts[HEALTH_OK])
		rc = sbuf_printf(&sb, " (%zu OK)", counts[HEALTH_OK]);
	for (i = 0, k = 0; i < rep->n && !rc; i++)
		for (j = 0; j < rep->results[i].n_metrics && !rc; j++) {
			rc = sbuf_puts(&sb, k++ ? " " : " | ");
			if (!rc)
				rc = put_perf(&sb, &rep->results[i].metrics[j]);
		}
	if (!rc)
		rc = sbuf_puts(&sb, "\n");
	for (i = 0; o && o->verbose && i < rep->n && !rc; i++) {
		const struct health_result *r = &rep->results[i];

		rc = sbuf_printf(&sb, "[%s] %s: ", health_status_name(r->status), r->name);
		if (!rc)
			rc = put_plugin_text(&sb, r->summary ? r->summary : "");
		if (!rc)
			rc = sbuf_puts(&sb, "\n");
	}
	if (rc) {
		sbuf_release(&sb);
		return NULL;
	}
	return sbuf_detach(&sb);
}

/* ---- Prometheus ------------------------------------------------------- */

static void fmt_prom(double v, char *buf, size_t size)
{
	if (isnan(v))
		snprintf(buf, size, "NaN");
	else if (isinf(v))
		snprintf(buf, size, v > 0 ? "+Inf" : "-Inf");
	else if (v == floor(v) && fabs(v) < 1e15)
		snprintf(buf, size, "%.0f", v);
	else
		snprintf(buf, size, "%.15g", v);
}

/* Escapes for label values (quote too) or HELP text (no quote). */
static int put_prom_escaped(struct sbuf *sb, const char *s, int label_value)
{
	int rc = 0;

	for (; *s && !rc; s++) {
		if (*s == '\\')
			rc = sbuf_puts(sb, "\\\\");
		else if (*s == '\n')
			rc = sbuf_puts(sb, "\\n");
		else if (*s == '"' && label_value)
			rc = sbuf_puts(sb, "\\\"");
		else
			rc = sbuf_append(sb, s, 1);
	}
	return rc;
}

static int put_family_header(struct sbuf *sb, const char *name, const char *help, const char *type)
{
	int rc = sbuf_printf(sb, "# HELP spilttea_%s ", name);

	if (!rc)
		rc = put_prom_escaped(sb, help ? help : name, 0);
	if (!rc)
		rc = sbuf_printf(sb, "\n# TYPE spilttea_%s %s\n", name, type);
	return rc;
}

/* One sample: name{check="..."[,extra="..."]} value */
static int put_sample(struct sbuf *sb, const char *name, const char *check, const char *extra,
		      const char *extra_value, double v)
{
	char num[64];
	int rc = sbuf_printf(sb, "spilttea_%s", name);

	if (!rc && check) {
		rc = sbuf_puts(sb, "{check=\"");
		if (!rc)
			rc = put_prom_escaped(sb, check, 1);
		if (!rc && extra && extra_value) {
			rc = sbuf_printf(sb, "\",%s=\"", extra);
			if (!rc)
				rc = put_prom_escaped(sb, extra_value, 1);
		}
		if (!rc)
			rc = sbuf_puts(sb, "\"}");
	}
	fmt_prom(v, num, sizeof(num));
	if (!rc)
		rc = sbuf_printf(sb, " %s\n", num);
	return rc;
}

/* Durations to the microsecond: more digits would be noise. */
static double micro(double seconds)
{
	return seconds > 0 ? round(seconds * 1e6) / 1e6 : 0;
}

static double prom_value(const struct health_metric *m)
{
	return m->unit == HEALTH_UNIT_PERCENT ? m->value / 100.0 : m->value;
}

/* 1 when an earlier metric (in report order) already carried this family. */
static int family_seen_before(const struct health_report *rep, size_t ri, size_t mi)
{
	const char *name = rep->results[ri].metrics[mi].prom_name;
	size_t i, j;

	for (i = 0; i <= ri; i++)
		for (j = 0; j < (i == ri ? mi : rep->results[i].n_metrics); j++)
			if (rep->results[i].metrics[j].prom_name &&
			    !strcmp(rep->results[i].metrics[j].prom_name, name))
				return 1;
	return 0;
}

char *health_render_prometheus(const struct health_report *rep, const struct health_render_opts *o)
{
	struct sbuf sb = SBUF_INIT;
	size_t i, j, i2, j2;
	int rc;

	(void)o;
	rc = put_family_header(&sb, "health_status",
			       "Worst status of the last health run (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN).",
			       "gauge");
	if (!rc)
		rc = put_sample(&sb, "health_status", NULL, NULL, NULL, rep->status);
	if (!rc)
		rc = put_family_header(&sb, "health_last_run_timestamp_seconds",
				       "When the last health run started, seconds since the epoch.", "gauge");
	if (!rc)
		rc = put_sample(&sb, "health_last_run_timestamp_seconds", NULL, NULL, NULL,
				floor(rep->generated_at * 1000.0) / 1000.0);
	if (!rc)
		rc = put_family_header(&sb, "health_run_duration_seconds",
				       "How long the last health run took.", "gauge");
	if (!rc)
		rc = put_sample(&sb, "health_run_duration_seconds", NULL, NULL, NULL, micro(rep->duration));
	if (!rc)
		rc = put_family_header(&sb, "health_check_status",
				       "Status of one check (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN).",
				       "gauge");
	for (i = 0; i < rep->n && !rc; i++)
		rc = put_sample(&sb, "health_check_status", rep->results[i].name, NULL, NULL,
				rep->results[i].status);
	if (!rc)
		rc = put_family_header(&sb, "health_check_duration_seconds",
				       "How long one check took.", "gauge");
	for (i = 0; i < rep->n && !rc; i++)
		rc = put_sample(&sb, "health_check_duration_seconds", rep->results[i].name, NULL,
				NULL, micro(rep->results[i].duration));

	/* Metric families, each written once with all its samples together
	 * (the textfile collector rejects a family that appears twice). */
	for (i = 0; i < rep->n && !rc; i++) {
		for (j = 0; j < rep->results[i].n_metrics && !rc; j++) {
			const struct health_metric *m = &rep->results[i].metrics[j];

			if (!m->prom_name || family_seen_before(rep, i, j))
				continue;
			rc = put_family_header(&sb, m->prom_name, m->help,
					       m->unit == HEALTH_UNIT_COUNTER ? "counter" : "gauge");
			for (i2 = i; i2 < rep->n && !rc; i2++)
				for (j2 = i2 == i ? j : 0; j2 < rep->results[i2].n_metrics && !rc; j2++) {
					const struct health_metric *m2 = &rep->results[i2].metrics[j2];

					if (!m2->prom_name || strcmp(m2->prom_name, m->prom_name))
						continue;
					rc = put_sample(&sb, m2->prom_name, rep->results[i2].name,
							m2->prom_label, m2->prom_label_value,
							prom_value(m2));
				}
		}
	}
	if (rc) {
		sbuf_release(&sb);
		return NULL;
	}
	return sbuf_detach(&sb);
}

char *health_render(const struct health_report *rep, enum health_format fmt,
		    const struct health_render_opts *o)
{
	switch (fmt) {
	case HEALTH_FORMAT_JSON: return health_render_json(rep, o);
	case HEALTH_FORMAT_NAGIOS: return health_render_nagios(rep, o);
	case HEALTH_FORMAT_PROMETHEUS: return health_render_prometheus(rep, o);
	default: return health_render_text(rep, o);
	}
}

/*
 * health.c - the result model: statuses, thresholds, results and metrics.
 */
#include "health.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *health_status_name(int status)
{
	switch (status) {
	case HEALTH_OK: return "OK";
	case HEALTH_WARNING: return "WARNING";
	case HEALTH_CRITICAL: return "CRITICAL";
	default: return "UNKNOWN";
	}
}

/* Severity rank for "worst": CRITICAL > WARNING > UNKNOWN > OK. */
static int status_rank(int status)
{
	switch (status) {
	case HEALTH_OK: return 0;
	case HEALTH_UNKNOWN: return 1;
	case HEALTH_WARNING: return 2;
	case HEALTH_CRITICAL: return 3;
	default: return 1;
	}
}

int health_status_worst(int a, int b)
{
	return status_rank(a) >= status_rank(b) ? a : b;
}

int health_threshold_eval(const struct health_threshold *t, double value)
{
	if (isnan(value))
		return HEALTH_UNKNOWN;
	if (!t)
		return HEALTH_OK;
	if (t->has_crit && value > t->crit)
		return HEALTH_CRITICAL;
	if (t->has_warn && value > t->warn)
		return HEALTH_WARNING;
	return HEALTH_OK;
}

const char *health_unit_uom(enum health_unit unit)
{
	switch (unit) {
	case HEALTH_UNIT_SECONDS: return "s";
	case HEALTH_UNIT_PERCENT: return "%";
	case HEALTH_UNIT_BYTES: return "B";
	case HEALTH_UNIT_COUNTER: return "c";
	default: return "";
	}
}

int health_result_init(struct health_result *r, const char *name)
{
	memset(r, 0, sizeof(*r));
	r->status = HEALTH_UNKNOWN;
	r->duration = -1;
	r->name = strdup(name);
	r->summary = strdup("check did not report");
	if (!r->name || !r->summary) {
		health_result_release(r);
		return ST_ENOMEM;
	}
	return 0;
}

static void metric_release(struct health_metric *m)
{
	free(m->label);
	free(m->prom_label_value);
}

void health_result_release(struct health_result *r)
{
	size_t i;

	if (!r)
		return;
	for (i = 0; i < r->n_metrics; i++)
		metric_release(&r->metrics[i]);
	free(r->metrics);
	free(r->name);
	free(r->summary);
	json_decref(r->details);
	memset(r, 0, sizeof(*r));
}

int health_result_set(struct health_result *r, int status, const char *fmt, ...)
{
	va_list ap;
	char *s = NULL, *p;
	int n;

	r->status = status;
	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		return ST_ENOMEM;
	for (p = s; *p; p++)
		if (*p == '\n' || *p == '\r' || *p == '\t')
			*p = ' ';
	free(r->summary);
	r->summary = s;
	return 0;
}

struct health_metric *health_result_add_metric(struct health_result *r, const char *label,
					       double value, enum health_unit unit,
					       const char *prom_name, const char *help,
					       const char *prom_label, const char *prom_label_value)
{
	struct health_metric *grown, *m;

	grown = realloc(r->metrics, (r->n_metrics + 1) * sizeof(*grown));
	if (!grown)
		return NULL;
	r->metrics = grown;
	m = &r->metrics[r->n_metrics];
	memset(m, 0, sizeof(*m));
	m->label = strdup(label);
	m->prom_label_value = prom_label_value ? strdup(prom_label_value) : NULL;
	if (!m->label || (prom_label_value && !m->prom_label_value)) {
		metric_release(m);
		return NULL;
	}
	m->value = value;
	m->unit = unit;
	m->prom_name = prom_name;
	m->help = help;
	m->prom_label = prom_label_value ? prom_label : NULL;
	r->n_metrics++;
	return m;
}

int health_metric_threshold(struct health_metric *m, const struct health_threshold *t)
{
	if (t)
		m->th = *t;
	return health_threshold_eval(&m->th, m->value);
}

void health_result_set_details(struct health_result *r, json_t *d)
{
	json_decref(r->details);
	r->details = d;
}

void health_report_release(struct health_report *rep)
{
	size_t i;

	if (!rep)
		return;
	for (i = 0; i < rep->n; i++)
		health_result_release(&rep->results[i]);
	free(rep->results);
	memset(rep, 0, sizeof(*rep));
}

void health_report_update_status(struct health_report *rep)
{
	size_t i;
	int s = HEALTH_OK;

	if (rep->n == 0) {
		rep->status = HEALTH_UNKNOWN;
		return;
	}
	for (i = 0; i < rep->n; i++)
		s = health_status_worst(s, rep->results[i].status);
	rep->status = s;
}

int health_name_matches(const char *name, const char *pattern)
{
	size_t n = strlen(pattern);

	if (!n)
		return 0;
	if (strncmp(name, pattern, n) != 0)
		return 0;
	return name[n] == '\0' || name[n] == '.' || pattern[n - 1] == '.';
}

int health_format_parse(const char *s, enum health_format *out)
{
	if (!s || !strcmp(s, "text") || !strcmp(s, "table"))
		*out = HEALTH_FORMAT_TEXT;
	else if (!strcmp(s, "json"))
		*out = HEALTH_FORMAT_JSON;
	else if (!strcmp(s, "nagios"))
		*out = HEALTH_FORMAT_NAGIOS;
	else if (!strcmp(s, "prometheus") || !strcmp(s, "prom"))
		*out = HEALTH_FORMAT_PROMETHEUS;
	else
		return ST_EUSAGE;
	return 0;
}

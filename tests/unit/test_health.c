/*
 * test_health.c - health model, thresholds, --check matching, the concurrent
 * runner, and the four renderers. Each rendering is PARSED back (JSON with
 * jansson, Nagios and Prometheus with the small parsers below) rather than
 * compared as text, so the tests check what a monitoring system would read.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "health.h"
#include "testutil.h"
#include "timeutil.h"

/* ---- a report to render ----------------------------------------------- */

static void build_report(struct health_report *rep)
{
	struct health_result *r;
	struct health_metric *m;
	struct health_threshold th = { 80, 90, 1, 1 };

	memset(rep, 0, sizeof(*rep));
	rep->results = calloc(4, sizeof(*rep->results));
	assert_non_null(rep->results);
	rep->generated_at = 1795819456.5;
	rep->duration = 0.8125;

	r = &rep->results[rep->n++];
	assert_int_equal(health_result_init(r, "postgres.connections"), 0);
	m = health_result_add_metric(r, "postgres.connections", 85, HEALTH_UNIT_PERCENT,
				     "postgres_connections_used_ratio", "Used connections.", NULL, NULL);
	assert_non_null(m);
	assert_int_equal(health_metric_threshold(m, &th), HEALTH_WARNING);
	m->has_min = m->has_max = 1;
	m->min = 0;
	m->max = 100;
	health_result_set(r, HEALTH_WARNING, "85 of 100 connections | pipes\nand newline");
	r->duration = 0.0123;

	/* no maxmemory: no thresholds, no max */
	r = &rep->results[rep->n++];
	assert_int_equal(health_result_init(r, "redis.memory"), 0);
	m = health_result_add_metric(r, "redis.used_memory", 1048576, HEALTH_UNIT_BYTES,
				     "redis_memory_used_bytes", "Redis used_memory.", NULL, NULL);
	assert_non_null(m);
	m->has_min = 1;
	health_result_set(r, HEALTH_OK, "1.0 MiB used, no maxmemory limit (maxmemory 0)");
	r->duration = 0.002;

	/* labels that need quoting and escaping */
	r = &rep->results[rep->n++];
	assert_int_equal(health_result_init(r, "container_cpu.odd \"name\""), 0);
	m = health_result_add_metric(r, "cpu of it's x=1", 12.5, HEALTH_UNIT_PERCENT,
				     "container_cpu_ratio", "CPU \\ usage\nper core.", "container",
				     "odd \"name\"\\\n");
	assert_non_null(m);
	health_result_set(r, HEALTH_CRITICAL, "cannot connect");
	r->duration = 1.5;

	r = &rep->results[rep->n++];
	assert_int_equal(health_result_init(r, "redis.evictions"), 0);
	m = health_result_add_metric(r, "redis.evicted_keys", 7, HEALTH_UNIT_COUNTER,
				     "redis_evicted_keys_total", "Evicted keys.", NULL, NULL);
	assert_non_null(m);
	health_result_set_details(r, json_pack("{s:[{s:i, s:s}]}", "top", "pid", 42, "query",
					       "select\n1"));
	health_result_set(r, HEALTH_UNKNOWN, "no data");
	health_report_update_status(rep);
}

/* ---- model ------------------------------------------------------------ */

static void test_threshold(void **state)
{
	struct health_threshold t = { 80, 90, 1, 1 }, none = { 0, 0, 0, 0 }, low = { 0.001, 0.002, 1, 1 };

	(void)state;
	assert_int_equal(health_threshold_eval(&t, 0), HEALTH_OK);
	assert_int_equal(health_threshold_eval(&t, 80), HEALTH_OK);   /* range 0..80 inclusive */
	assert_int_equal(health_threshold_eval(&t, 80.01), HEALTH_WARNING);
	assert_int_equal(health_threshold_eval(&t, 90), HEALTH_WARNING);
	assert_int_equal(health_threshold_eval(&t, 90.5), HEALTH_CRITICAL);
	assert_int_equal(health_threshold_eval(&t, NAN), HEALTH_UNKNOWN);
	assert_int_equal(health_threshold_eval(&none, 1e12), HEALTH_OK);
	assert_int_equal(health_threshold_eval(&low, 1), HEALTH_CRITICAL);
	assert_int_equal(health_threshold_eval(NULL, 1), HEALTH_OK);
}

static void test_worst(void **state)
{
	(void)state;
	assert_int_equal(health_status_worst(HEALTH_OK, HEALTH_UNKNOWN), HEALTH_UNKNOWN);
	assert_int_equal(health_status_worst(HEALTH_UNKNOWN, HEALTH_WARNING), HEALTH_WARNING);
	assert_int_equal(health_status_worst(HEALTH_CRITICAL, HEALTH_UNKNOWN), HEALTH_CRITICAL);
	assert_int_equal(health_status_worst(HEALTH_WARNING, HEALTH_CRITICAL), HEALTH_CRITICAL);
	assert_int_equal(health_status_worst(HEALTH_OK, HEALTH_OK), HEALTH_OK);
	assert_string_equal(health_status_name(HEALTH_CRITICAL), "CRITICAL");
	assert_string_equal(health_status_name(17), "UNKNOWN");
}

static void test_name_matches(void **state)
{
	(void)state;
	assert_true(health_name_matches("postgres.size", "postgres"));
	assert_true(health_name_matches("postgres.size", "postgres."));
	assert_true(health_name_matches("postgres.size", "postgres.size"));
	assert_false(health_name_matches("postgres.size", "postgres.s"));
	assert_false(health_name_matches("postgres.size", "post"));
	assert_false(health_name_matches("container_cpu.x", "container"));
	assert_true(health_name_matches("container.spilttea-redis", "container"));
	assert_true(health_name_matches("container_cpu.spilttea-redis", "container_cpu.spilttea-redis"));
	assert_false(health_name_matches("redis.memory", ""));
}

static void test_format_parse(void **state)
{
	enum health_format f;

	(void)state;
	assert_int_equal(health_format_parse("json", &f), 0);
	assert_int_equal(f, HEALTH_FORMAT_JSON);
	assert_int_equal(health_format_parse("nagios", &f), 0);
	assert_int_equal(f, HEALTH_FORMAT_NAGIOS);
	assert_int_equal(health_format_parse("prometheus", &f), 0);
	assert_int_equal(f, HEALTH_FORMAT_PROMETHEUS);
	assert_int_equal(health_format_parse(NULL, &f), 0);
	assert_int_equal(f, HEALTH_FORMAT_TEXT);
	assert_int_equal(health_format_parse("xml", &f), ST_EUSAGE);
}

/* ---- JSON ------------------------------------------------------------- */

static void test_render_json(void **state)
{
	struct health_report rep;
	struct health_render_opts o = { 0, 0, "9.9.9" };
	json_error_t jerr;
	json_t *root, *checks, *c, *m;
	char *out;

	(void)state;
	build_report(&rep);
	out = health_render_json(&rep, &o);
	assert_non_null(out);
	assert_int_equal(out[strlen(out) - 1], '\n');
	root = json_loads(out, 0, &jerr);
	assert_non_null(root);
	assert_string_equal(json_string_value(json_object_get(root, "status")), "CRITICAL");
	assert_int_equal(json_integer_value(json_object_get(root, "exit_code")), 2);
	assert_string_equal(json_string_value(json_object_get(root, "generated_at")),
			    "2026-11-27T22:44:16.500Z");
	assert_string_equal(json_string_value(json_object_get(root, "tool_version")), "9.9.9");
	assert_int_equal(json_integer_value(json_object_get(root, "duration_ms")), 813);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(root, "counts"), "WARNING")), 1);
	checks = json_object_get(root, "checks");
	assert_int_equal(json_array_size(checks), 4);

	c = json_array_get(checks, 0);
	assert_string_equal(json_string_value(json_object_get(c, "name")), "postgres.connections");
	assert_string_equal(json_string_value(json_object_get(c, "status")), "WARNING");
	assert_int_equal(json_integer_value(json_object_get(c, "exit_code")), 1);
	assert_int_equal(json_integer_value(json_object_get(c, "duration_ms")), 12);
	assert_non_null(strstr(json_string_value(json_object_get(c, "summary")), "| pipes and newline"));
	m = json_object_get(json_object_get(c, "metrics"), "postgres.connections");
	assert_non_null(m);
	assert_true(json_number_value(json_object_get(m, "value")) == 85);
	assert_string_equal(json_string_value(json_object_get(m, "unit")), "%");
	assert_true(json_number_value(json_object_get(m, "warn")) == 80);
	assert_true(json_number_value(json_object_get(m, "crit")) == 90);
	assert_true(json_number_value(json_object_get(m, "max")) == 100);
	assert_true(json_is_null(json_object_get(c, "details")));

	/* no limit: null thresholds and max, exact integer bytes */
	c = json_array_get(checks, 1);
	m = json_object_get(json_object_get(c, "metrics"), "redis.used_memory");
	assert_true(json_is_integer(json_object_get(m, "value")));
	assert_int_equal(json_integer_value(json_object_get(m, "value")), 1048576);
	assert_string_equal(json_string_value(json_object_get(m, "unit")), "B");
	assert_true(json_is_null(json_object_get(m, "warn")));
	assert_true(json_is_null(json_object_get(m, "crit")));
	assert_true(json_is_null(json_object_get(m, "max")));
	assert_true(json_number_value(json_object_get(m, "min")) == 0);

	c = json_array_get(checks, 2);
	assert_string_equal(json_string_value(json_object_get(c, "name")), "container_cpu.odd \"name\"");
	assert_non_null(json_object_get(json_object_get(c, "metrics"), "cpu of it's x=1"));

	c = json_array_get(checks, 3);
	assert_int_equal(json_integer_value(json_object_get(
		json_array_get(json_object_get(json_object_get(c, "details"), "top"), 0), "pid")), 42);
	json_decref(root);
	free(out);
	health_report_release(&rep);
}

/* ---- Nagios ----------------------------------------------------------- */

struct perf {
	char label[128];
	double value;
	char uom[8];
	char f[4][32]; /* warn, crit, min, max as written ("" when empty) */
};

/* Parses "label=value[UOM][;warn[;crit[;min[;max]]]]" items separated by
 * spaces; labels may be single-quoted with '' for a quote. Returns the count
 * or -1 on a syntax error. */
static int parse_perfdata(const char *s, struct perf *out, int max)
{
	int n = 0;

	while (*s) {
		struct perf *p;
		size_t l = 0;
		char num[64];
		int k, i;

		while (*s == ' ')
			s++;
		if (!*s)
			break;
		if (n == max)
			return -1;
		p = &out[n];
		memset(p, 0, sizeof(*p));
		if (*s == '\'') {
			for (s++;; s++) {
				if (!*s)
					return -1;
				if (*s == '\'' && s[1] == '\'') {
					p->label[l++] = '\'';
					s++;
				} else if (*s == '\'') {
					s++;
					break;
				} else {
					p->label[l++] = *s;
				}
			}
		} else {
			while (*s && *s != '=' && *s != ' ' && *s != '\'')
				p->label[l++] = *s++;
		}
		p->label[l] = '\0';
		if (*s++ != '=' || !l)
			return -1;
		for (i = 0; *s && strchr("-0123456789.", *s); s++)
			num[i++] = *s;
		num[i] = '\0';
		if (!i)
			return -1;
		p->value = strtod(num, NULL);
		for (i = 0; *s && *s != ';' && *s != ' '; s++)
			p->uom[i++] = *s;
		p->uom[i] = '\0';
		if (*p->uom && strcmp(p->uom, "s") && strcmp(p->uom, "ms") && strcmp(p->uom, "us") &&
		    strcmp(p->uom, "%") && strcmp(p->uom, "B") && strcmp(p->uom, "KB") &&
		    strcmp(p->uom, "MB") && strcmp(p->uom, "TB") && strcmp(p->uom, "c"))
			return -1;
		for (k = 0; k < 4 && *s == ';'; k++) {
			s++;
			for (i = 0; *s && strchr("-0123456789.", *s); s++)
				p->f[k][i++] = *s;
			p->f[k][i] = '\0';
		}
		if (*s && *s != ' ')
			return -1;
		n++;
	}
	return n;
}

static void test_render_nagios(void **state)
{
	struct health_report rep;
	struct health_render_opts o = { 0, 0, "1" };
	struct perf p[8];
	char *out, *bar, *nl;
	int n;

	(void)state;
	build_report(&rep);
	out = health_render_nagios(&rep, &o);
	assert_non_null(out);
	/* one line without -v */
	nl = strchr(out, '\n');
	assert_non_null(nl);
	assert_int_equal(nl[1], '\0');
	*nl = '\0';
	assert_true(!strncmp(out, "HEALTH CRITICAL - ", 18));
	/* worst first, and the text carries no '|' of its own */
	bar = strchr(out, '|');
	assert_non_null(bar);
	assert_null(strchr(bar + 1, '|'));
	assert_true(strstr(out, "container_cpu.odd \"name\": cannot connect") <
		    strstr(out, "postgres.connections: 85 of 100 connections / pipes and newline"));
	assert_non_null(strstr(out, "redis.evictions: no data"));
	assert_non_null(strstr(out, "(1 OK)"));

	n = parse_perfdata(bar + 1, p, 8);
	assert_int_equal(n, 4);
	assert_string_equal(p[0].label, "postgres.connections");
	assert_true(p[0].value == 85);
	assert_string_equal(p[0].uom, "%");
	assert_string_equal(p[0].f[0], "80");
	assert_string_equal(p[0].f[1], "90");
	assert_string_equal(p[0].f[2], "0");
	assert_string_equal(p[0].f[3], "100");
	/* no limit: empty warn/crit, min 0, no max field */
	assert_string_equal(p[1].label, "redis.used_memory");
	assert_true(p[1].value == 1048576);
	assert_string_equal(p[1].uom, "B");
	assert_string_equal(p[1].f[0], "");
	assert_string_equal(p[1].f[1], "");
	assert_string_equal(p[1].f[2], "0");
	assert_string_equal(p[1].f[3], "");
	assert_null(strstr(bar, "'redis.used_memory'")); /* quoted only when needed */
	/* spaces and quote force quoting; '=' is not allowed in labels */
	assert_string_equal(p[2].label, "cpu of it's x_1");
	assert_non_null(strstr(bar, "'cpu of it''s x_1'=12.5%"));
	assert_true(p[2].value == 12.5);
	assert_string_equal(p[3].uom, "c");
	free(out);

	/* -v: one long-output line per check after the status line */
	o.verbose = 1;
	out = health_render_nagios(&rep, &o);
	assert_non_null(out);
	assert_non_null(strstr(out, "\n[WARNING] postgres.connections: 85 of 100"));
	assert_non_null(strstr(out, "\n[OK] redis.memory: 1.0 MiB used"));
	n = 0;
	for (nl = out; (nl = strchr(nl, '\n')); nl++)
		n++;
	assert_int_equal(n, 5);
	free(out);
	health_report_release(&rep);
}

static void test_render_nagios_all_ok(void **state)
{
	struct health_report rep;
	struct health_result r[2];
	struct health_metric *m;
	struct perf p[2];
	char *out;

	(void)state;
	memset(&rep, 0, sizeof(rep));
	assert_int_equal(health_result_init(&r[0], "backend.health"), 0);
	health_result_set(&r[0], HEALTH_OK, "200 ok in 12ms");
	m = health_result_add_metric(&r[0], "backend.latency", 0.0125, HEALTH_UNIT_SECONDS,
				     "backend_health_latency_seconds", "Latency.", NULL, NULL);
	assert_non_null(m);
	m->th.has_warn = m->th.has_crit = 1;
	m->th.warn = 1;
	m->th.crit = 2;
	assert_int_equal(health_result_init(&r[1], "frontend.reachable"), 0);
	health_result_set(&r[1], HEALTH_OK, "200");
	m = health_result_add_metric(&r[1], "tiny", 1e-9, HEALTH_UNIT_SECONDS, NULL, NULL, NULL, NULL);
	assert_non_null(m);
	rep.results = r;
	rep.n = 2;
	health_report_update_status(&rep);
	out = health_render_nagios(&rep, NULL);
	assert_non_null(out);
	assert_true(!strncmp(out, "HEALTH OK - 2 checks OK | ", 26));
	assert_string_equal(strchr(out, '\n'), "\n");
	*strchr(out, '\n') = '\0';
	assert_int_equal(parse_perfdata(strchr(out, '|') + 1, p, 2), 2);
	assert_string_equal(p[0].label, "backend.latency");
	assert_true(fabs(p[0].value - 0.0125) < 1e-9);
	assert_string_equal(p[0].uom, "s");
	assert_string_equal(p[0].f[0], "1");
	assert_string_equal(p[0].f[1], "2");
	/* 1e-9 parsed: parse_perfdata rejects exponents (an 'e' is no UOM) */
	assert_true(p[1].value == 0);
	free(out);
	health_result_release(&r[0]);
	health_result_release(&r[1]);
}

/* ---- Prometheus ------------------------------------------------------- */

struct sample {
	char name[128];
	char labels[4][2][128]; /* name, unescaped value */
	int n_labels;
	double value;
};

/* Parses one sample line of the text exposition format. 0 or -1. */
static int parse_sample(const char *s, struct sample *out)
{
	size_t i = 0;
	char *end;

	memset(out, 0, sizeof(*out));
	while (*s && (isalnum((unsigned char)*s) || *s == '_' || *s == ':'))
		out->name[i++] = *s++;
	if (!i)
		return -1;
	if (*s == '{') {
		s++;
		while (*s != '}') {
			char (*l)[128];
			size_t k = 0;

			if (out->n_labels == 4)
				return -1;
			l = out->labels[out->n_labels++];
			while (*s && *s != '=')
				l[0][k++] = *s++;
			if (*s++ != '=' || *s++ != '"')
				return -1;
			for (k = 0; *s != '"'; s++) {
				if (!*s || *s == '\n')
					return -1;
				if (*s == '\\') {
					s++;
					if (*s == 'n')
						l[1][k++] = '\n';
					else if (*s == '\\' || *s == '"')
						l[1][k++] = *s;
					else
						return -1;
				} else {
					l[1][k++] = *s;
				}
			}
			s++;
			if (*s == ',')
				s++;
			else if (*s != '}')
				return -1;
		}
		s++;
	}
	if (*s++ != ' ')
		return -1;
	if (!strcmp(s, "NaN") || !strcmp(s, "+Inf") || !strcmp(s, "-Inf")) {
		out->value = strtod(s, NULL);
		return 0;
	}
	out->value = strtod(s, &end);
	return end != s && *end == '\0' ? 0 : -1;
}

static const char *label_of(const struct sample *s, const char *name)
{
	int i;

	for (i = 0; i < s->n_labels; i++)
		if (!strcmp(s->labels[i][0], name))
			return s->labels[i][1];
	return NULL;
}

static void test_render_prometheus(void **state)
{
	struct health_report rep;
	char *out, *line, *save = NULL;
	char families[32][128], typed[32][128];
	int n_fam = 0, n_typed = 0, i, samples = 0, saw_cpu = 0, saw_mem = 0, saw_status = 0;

	(void)state;
	build_report(&rep);
	out = health_render_prometheus(&rep, NULL);
	assert_non_null(out);
	assert_int_equal(out[strlen(out) - 1], '\n');
	for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		struct sample s;
		char name[128], type[32];

		if (!strncmp(line, "# HELP ", 7)) {
			assert_int_equal(sscanf(line + 7, "%127s", name), 1);
			for (i = 0; i < n_fam; i++)
				assert_string_not_equal(families[i], name); /* each family once */
			strcpy(families[n_fam++], name);
			assert_null(strchr(line, '\n'));
			continue;
		}
		if (!strncmp(line, "# TYPE ", 7)) {
			assert_int_equal(sscanf(line + 7, "%127s %31s", name, type), 2);
			assert_string_equal(name, families[n_fam - 1]);
			assert_true(!strcmp(type, "gauge") || !strcmp(type, "counter"));
			if (!strcmp(type, "counter"))
				assert_non_null(strstr(name, "_total"));
			strcpy(typed[n_typed++], name);
			continue;
		}
		assert_int_not_equal(line[0], '#');
		assert_int_equal(parse_sample(line, &s), 0);
		samples++;
		/* every sample belongs to the family declared just before */
		assert_string_equal(s.name, typed[n_typed - 1]);
		assert_int_equal(strncmp(s.name, "spilttea_", 9), 0);
		if (!strcmp(s.name, "spilttea_container_cpu_ratio")) {
			saw_cpu = 1;
			assert_string_equal(label_of(&s, "check"), "container_cpu.odd \"name\"");
			assert_string_equal(label_of(&s, "container"), "odd \"name\"\\\n");
			assert_true(fabs(s.value - 0.125) < 1e-12);
		}
		if (!strcmp(s.name, "spilttea_redis_memory_used_bytes")) {
			saw_mem = 1;
			assert_true(s.value == 1048576);
		}
		if (!strcmp(s.name, "spilttea_health_check_status") &&
		    !strcmp(label_of(&s, "check"), "postgres.connections")) {
			saw_status = 1;
			assert_true(s.value == 1);
		}
		if (!strcmp(s.name, "spilttea_health_status"))
			assert_true(s.value == 2);
		if (!strcmp(s.name, "spilttea_postgres_connections_used_ratio"))
			assert_true(fabs(s.value - 0.85) < 1e-12);
	}
	assert_int_equal(n_fam, n_typed);
	assert_true(saw_cpu && saw_mem && saw_status);
	/* 3 run-level samples + 4 status + 4 durations + 4 metrics */
	assert_int_equal(samples, 3 + 4 + 4 + 4);
	free(out);
	health_report_release(&rep);
}

static void test_render_text(void **state)
{
	struct health_report rep;
	struct health_render_opts o = { 0, 0, "1" };
	char *out;

	(void)state;
	build_report(&rep);
	out = health_render_text(&rep, &o);
	assert_non_null(out);
	assert_non_null(strstr(out, "STATUS"));
	assert_non_null(strstr(out, "WARNING   postgres.connections"));
	assert_non_null(strstr(out, "CRITICAL: 4 checks, 1 ok, 1 warning, 1 critical, 1 unknown"));
	assert_null(strchr(out, '\033'));
	assert_null(strstr(out, "pid=42"));
	free(out);

	o.color = 1;
	o.verbose = 1;
	out = health_render_text(&rep, &o);
	assert_non_null(out);
	assert_non_null(strstr(out, "\033[31mCRITICAL"));
	assert_non_null(strstr(out, "- pid=42 query=select 1"));
	free(out);
	health_report_release(&rep);
}

/* ---- runner ----------------------------------------------------------- */

struct sleeper {
	double seconds;
	int status;
	atomic_int *freed;   /* threads count their frees here */
};

static void free_sleeper(void *p)
{
	struct sleeper *s = p;

	if (s->freed)
		atomic_fetch_add(s->freed, 1);
	free(s);
}

static void sleeper_task(void *arg, struct health_task_run *run)
{
	struct sleeper *s = arg;
	size_t i;

	time_sleep(s->seconds);
	for (i = 0; i < run->n_results; i++)
		health_result_set(&run->results[i], s->status, "slept %.2fs", s->seconds);
	run->state = json_pack("{s:f, s:b}", "slept", s->seconds, "had_prev", run->prev_state != NULL);
}

static void add_task(struct health_task *t, const char *a, const char *b, double seconds, int status,
		     const char *key, atomic_int *freed)
{
	struct sleeper *s = calloc(1, sizeof(*s));

	assert_non_null(s);
	memset(t, 0, sizeof(*t));
	s->seconds = seconds;
	s->status = status;
	s->freed = freed;
	t->fn = sleeper_task;
	t->arg = s;
	t->free_arg = free_sleeper;
	assert_int_equal(health_task_add_name(t, a), 0);
	if (b)
		assert_int_equal(health_task_add_name(t, b), 0);
	t->state_key = key ? strdup(key) : NULL;
}

static void test_run_concurrent_and_timeout(void **state)
{
	/* Every duration times k: under Valgrind the threads' own work takes a
	 * good part of a second, which would blur 0.2 s against 0.4 s. */
	const double k = tu_time_scale();
	struct health_task tasks[3];
	struct health_run_opts opts = { 0.4 * k, NULL, NULL };
	struct health_report rep;
	struct st_error err;
	json_t *prev, *next = NULL;
	double t0, took;
	atomic_int freed = 0;
	char summary[64];
	int waited;

	(void)state;
	prev = json_pack("{s:{s:i}, s:{s:i}}", "fast", "n", 1, "other", "kept", 1);
	add_task(&tasks[0], "a.one", "a.two", 0.2 * k, HEALTH_OK, "fast", &freed);
	add_task(&tasks[1], "b.one", NULL, 0.25 * k, HEALTH_WARNING, NULL, &freed);
	add_task(&tasks[2], "c.stuck", NULL, 2.0 * k, HEALTH_OK, "stuck", &freed);
	opts.prev_state = prev;
	t0 = time_monotonic();
	assert_int_equal(health_run(tasks, 3, &opts, &rep, &next, &err), 0);
	took = time_monotonic() - t0;
	/* concurrent: 0.2 + 0.25 would be 0.45 in series; the stuck one is cut
	 * at its deadline plus the grace period (0.25 s), not after its 2 s.
	 * 0.8 s on top for a loaded machine: ASan beside a CPU hog went over
	 * the 0.2 s there was when the stuck task slept 1.2 s, too close to
	 * the deadline to allow more. */
	assert_true(took >= 0.4 * k);
	if (took >= 0.4 * k + 0.25 + 0.8 * k)
		fail_msg("health_run took %.2f s", took);
	assert_int_equal(rep.n, 4);
	assert_int_equal(rep.abandoned, 1);
	/* the process knows a thread it gave up on still runs (health: _exit) */
	assert_int_equal(health_abandoned_running(), 1);
	assert_string_equal(rep.results[0].name, "a.one");
	assert_string_equal(rep.results[1].name, "a.two");
	assert_int_equal(rep.results[0].status, HEALTH_OK);
	assert_true(rep.results[0].duration >= 0.19 * k && rep.results[0].duration < 0.4 * k);
	assert_int_equal(rep.results[2].status, HEALTH_WARNING);
	assert_string_equal(rep.results[3].name, "c.stuck");
	assert_int_equal(rep.results[3].status, HEALTH_CRITICAL);
	snprintf(summary, sizeof(summary), "timed out after %gs", 0.4 * k);
	assert_string_equal(rep.results[3].summary, summary);
	assert_int_equal(rep.status, HEALTH_CRITICAL);
	/* state: the finished task's entry replaced (it saw its previous entry),
	 * the others kept, the abandoned task's never written */
	assert_non_null(next);
	assert_true(json_is_true(json_object_get(json_object_get(next, "fast"), "had_prev")));
	assert_non_null(json_object_get(next, "other"));
	assert_null(json_object_get(next, "stuck"));
	assert_int_equal(freed, 2);
	json_decref(next);
	json_decref(prev);
	health_report_release(&rep);
	/* let the abandoned thread finish: it frees its own slot (ASan and
	 * Valgrind check); it sleeps 1.2 s from the start, 10 s is plenty */
	for (waited = 0; waited < 1000 && atomic_load(&freed) < 3; waited++)
		time_sleep(0.01);
	assert_int_equal(freed, 3);
	assert_int_equal(health_abandoned_running(), 0);
}

static void test_run_select(void **state)
{
	struct health_task tasks[2];
	const char *sel[] = { "b", "a.two", NULL };
	const char *bad[] = { "nope", NULL };
	struct health_run_opts opts = { 2, sel, NULL };
	struct health_report rep;
	struct st_error err;
	atomic_int freed = 0;

	(void)state;
	add_task(&tasks[0], "a.one", "a.two", 0.01, HEALTH_OK, NULL, &freed);
	add_task(&tasks[1], "b.one", NULL, 0.01, HEALTH_OK, NULL, &freed);
	assert_int_equal(health_run(tasks, 2, &opts, &rep, NULL, &err), 0);
	assert_int_equal(rep.n, 2);
	assert_string_equal(rep.results[0].name, "a.two");
	assert_string_equal(rep.results[1].name, "b.one");
	assert_int_equal(rep.status, HEALTH_OK);
	assert_int_equal(freed, 2);
	health_report_release(&rep);

	freed = 0;
	add_task(&tasks[0], "a.one", NULL, 0.01, HEALTH_OK, NULL, &freed);
	opts.select = bad;
	assert_int_equal(health_run(tasks, 1, &opts, &rep, NULL, &err), ST_EUSAGE);
	assert_string_equal(err.message, "no health check matches 'nope'");
	assert_string_equal(err.hint, "give a check id or one of its groups: a");
	assert_int_equal(freed, 1);
	assert_int_equal(rep.n, 0);
	health_report_release(&rep);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_threshold),
		cmocka_unit_test(test_worst),
		cmocka_unit_test(test_name_matches),
		cmocka_unit_test(test_format_parse),
		cmocka_unit_test(test_render_json),
		cmocka_unit_test(test_render_nagios),
		cmocka_unit_test(test_render_nagios_all_ok),
		cmocka_unit_test(test_render_prometheus),
		cmocka_unit_test(test_render_text),
		cmocka_unit_test(test_run_concurrent_and_timeout),
		cmocka_unit_test(test_run_select),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

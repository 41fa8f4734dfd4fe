/*
 * cmd_logs.c - `spilttea-ops logs [SERVICE...]`: the runbook's "Log
 * Monitoring" (docker-compose logs [-f] [--tail N]) and "Log Analysis"
 * (its greps, as categories: lib/logfilter.h) through the Docker logs API,
 * both streams, with timestamps.
 *
 * Without --follow the lines of several services are merged by time; with
 * it each service streams on its own thread until Ctrl-C (or until every
 * container stops).
 */
#include "cmd.h"
#include "../lib/actions_util.h"
#include "../lib/config.h"
#include "../lib/docker.h"
#include "../lib/logfilter.h"
#include "../lib/services.h"
#include "../lib/texttable.h"
#include "../lib/timeutil.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char logs_usage[] =
	"usage: spilttea-ops logs [SERVICE...] [--since D] [--tail N] [filters]\n"
	"                         [--summary | --follow]\n"
	"\n"
	"Shows the services' logs (both streams, with timestamps) through the Docker\n"
	"API, merged by time; the runbook's 'docker-compose logs' and its greps.\n"
	"No SERVICE: every configured service.\n"
	"\n"
	"  --since D        from D ago (30s, 10m, 1h, 2d) or from a UTC time\n"
	"                   (2026-11-27T22:00:00Z); default: everything\n"
	"  --tail N         the last N lines of each service (0 with -f: new ones only)\n"
	"  -f, --follow     keep streaming new lines until Ctrl-C\n"
	"  --summary        count the lines of each category per service instead\n"
	"filters (lines in any of those given; case-insensitive, as the runbook's greps):\n"
	"  --errors         error, fatal, exception; HTTP 5xx\n"
	"  --warnings       warn, warning\n"
	"  --db             prisma, database\n"
	"  --auth           unauthorized, forbidden, jwt; HTTP 401/403\n"
	"  --cors           cors\n"
	"  --s3             s3, aws\n"
	"  --email          email, nodemailer, smtp\n"
	"  --view           view, views, viewCount\n"
	"  --format FMT     text (default) or json: one JSON object per line (JSON\n"
	"                   Lines, also while following): {service, container, time,\n"
	"                   stream, categories, text}; with --summary one object\n"
	"\n"
	"exit status: 0 done, 1 Docker could not be asked, 2 usage or configuration error\n"
	"\n"
	"examples:\n"
	"  spilttea-ops logs backend --tail 100\n"
	"  spilttea-ops logs backend --errors --since 1h\n"
	"  spilttea-ops logs --summary --since 24h\n"
	"  spilttea-ops logs backend frontend -f --auth --format json\n";

/* Lines kept in memory to merge several services by time. */
#define LOGS_MERGE_MAX_BYTES (64u * 1024 * 1024)

struct line {
	double time;
	size_t seq;               /* arrival order, for a stable sort */
	size_t service;
	int stream;
	unsigned cats;
	char *ts;
	char *text;
};

struct logs {
	struct ctx *ctx;
	struct docker_client *docker;
	const char **services;    /* names */
	const char **containers;
	size_t nservices;
	size_t name_width;
	unsigned filter;          /* LOGCAT bits; 0 shows everything */
	int json;
	int summary;
	int follow;
	double since;
	int tail;                 /* > 0 the last N, -1 none (--tail 0), 0 all */
	/* merge */
	struct line *lines;
	size_t nlines, cap;
	size_t bytes;
	int direct;               /* print as they come (one service, or following) */
	/* summary */
	unsigned long long (*counts)[LOGCAT_COUNT + 1]; /* per service; [LOGCAT_COUNT] = all lines */
	pthread_mutex_t out_lock;
	int failed;
};

struct service_ctx {
	struct logs *l;
	size_t index;
	struct st_error err;
	int rc;
};

static const enum cmd_color service_colors[] = { COLOR_GREEN, COLOR_YELLOW, COLOR_BOLD, COLOR_DIM };

/* One line as text or JSON on stdout. */
static void print_line(struct logs *l, size_t service, int stream, const char *ts, unsigned cats,
		       const char *text, size_t len)
{
	int c = l->ctx->color_stdout;

	if (l->json) {
		json_t *cl = json_array(), *t = actions_text(text, len), *o;
		char *s = NULL;
		size_t i;

		for (i = 0; cl && i < LOGCAT_COUNT; i++)
			if (cats & LOGCAT_BIT(i))
				json_array_append_new(cl, json_string(logcat_name((enum logcat)i)));
		o = cl && t ? json_pack("{s:s,s:s,s:s,s:s,s:O,s:O}", "service", l->services[service],
					"container", l->containers[service], "time", ts, "stream",
					stream == DOCKER_STREAM_STDERR ? "stderr" : "stdout", "categories",
					cl, "text", t)
			    : NULL;
		s = o ? json_dumps(o, JSON_COMPACT) : NULL;
		if (s)
			puts(s);
		else
			l->failed = 1;
		free(s);
		json_decref(o);
		json_decref(cl);
		json_decref(t);
		return;
	}
	(void)stream;
	printf("%s%-*s%s %s%s%s %.*s\n",
	       cmd_color_on(c, service_colors[service % (sizeof(service_colors) / sizeof(service_colors[0]))]),
	       (int)l->name_width, l->services[service], cmd_color_off(c),
	       cmd_color_on(c, COLOR_DIM), ts,
	       cmd_color_off(c), (int)len, text);
}

static int on_line(void *ud, const struct docker_log_line *ln, struct st_error *err)
{
	struct service_ctx *sc = ud;
	struct logs *l = sc->l;
	unsigned cats = logcat_classify(ln->text, ln->len);

	if (l->summary) {
		size_t i;

		l->counts[sc->index][LOGCAT_COUNT]++;
		for (i = 0; i < LOGCAT_COUNT; i++)
			if (cats & LOGCAT_BIT(i))
				l->counts[sc->index][i]++;
		return 0;
	}
	if (l->filter && !(cats & l->filter))
		return 0;
	if (l->direct) {
		pthread_mutex_lock(&l->out_lock);
		print_line(l, sc->index, ln->stream, ln->timestamp, cats, ln->text, ln->len);
		if (l->follow)
			fflush(stdout);
		pthread_mutex_unlock(&l->out_lock);
		return 0;
	}
	if (l->bytes + ln->len > LOGS_MERGE_MAX_BYTES) {
		st_error_set(err, ST_EFAILED, "more than %u MiB of log lines to merge",
			     LOGS_MERGE_MAX_BYTES >> 20);
		return st_error_hint(err, "narrow them with --since, --tail or a filter, or name one service");
	}
	if (l->nlines == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 1024;
		struct line *v = realloc(l->lines, cap * sizeof(*v));

		if (!v)
			return st_error_set(err, ST_ENOMEM, "out of memory");
		l->lines = v;
		l->cap = cap;
	}
	{
		struct line *x = &l->lines[l->nlines];

		x->time = ln->time;
		x->seq = l->nlines;
		x->service = sc->index;
		x->stream = ln->stream;
		x->cats = cats;
		x->ts = strdup(ln->timestamp);
		x->text = strndup(ln->text, ln->len);
		if (!x->ts || !x->text) {
			free(x->ts);
			free(x->text);
			return st_error_set(err, ST_ENOMEM, "out of memory");
		}
		l->nlines++;
		l->bytes += ln->len + 64;
	}
	return 0;
}

static void *read_service(void *arg)
{
	struct service_ctx *sc = arg;
	struct logs *l = sc->l;
	struct docker_logs_opts o;

	memset(&o, 0, sizeof(o));
	o.since = l->since;
	o.tail = l->tail > 0 ? l->tail : l->tail < 0 ? DOCKER_LOGS_TAIL_NONE : DOCKER_LOGS_TAIL_ALL;
	o.timestamps = 1;
	o.follow = l->follow;
	o.max_line = 64 * 1024;
	o.timeout = l->follow ? DOCKER_TIMEOUT_NONE : 300;
	sc->rc = docker_container_logs(l->docker, l->containers[sc->index], &o, on_line, sc, &sc->err);
	return NULL;
}

static int cmp_line(const void *a, const void *b)
{
	const struct line *x = a, *y = b;

	if (x->time != y->time)
		return x->time < y->time ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* "30m" ago, or an absolute UTC time "2026-11-27T22:00:00Z". */
static int parse_since(const char *s, double *out)
{
	double d;
	struct tm tm;
	const char *end;

	if (time_parse_duration(s, &d) == 0) {
		*out = time_wall() - d;
		return 0;
	}
	memset(&tm, 0, sizeof(tm));
	end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!end || (*end && strcmp(end, "Z")))
		return -1;
	*out = (double)timegm(&tm);
	return 0;
}

static int print_summary(struct logs *l)
{
	const char *headers[LOGCAT_COUNT + 2];
	struct texttable *t = NULL;
	struct sbuf sb = SBUF_INIT;
	char nums[LOGCAT_COUNT + 1][24];
	const char *cells[LOGCAT_COUNT + 2];
	size_t s, c;
	int rc;

	if (l->json) {
		json_t *o = json_object(), *svc = json_object();
		char *text;

		for (s = 0; o && svc && s < l->nservices; s++) {
			json_t *one = json_pack("{s:s,s:I}", "container", l->containers[s], "lines",
						(json_int_t)l->counts[s][LOGCAT_COUNT]);

			for (c = 0; one && c < LOGCAT_COUNT; c++)
				json_object_set_new(one, logcat_name((enum logcat)c),
						    json_integer((json_int_t)l->counts[s][c]));
			json_object_set_new(svc, l->services[s], one);
		}
		if (o && svc) {
			json_object_set(o, "services", svc);
			if (l->since > 0) {
				char ts[40];

				json_object_set_new(o, "since", json_string(time_format_rfc3339(l->since, ts,
												 sizeof(ts))));
			}
		}
		text = o ? json_dumps(o, JSON_INDENT(2)) : NULL;
		json_decref(o);
		json_decref(svc);
		if (!text)
			return ST_ENOMEM;
		puts(text);
		free(text);
		return 0;
	}
	headers[0] = "SERVICE";
	headers[1] = "LINES";
	for (c = 0; c < LOGCAT_COUNT; c++)
		headers[c + 2] = logcat_name((enum logcat)c);
	if ((rc = texttable_new(LOGCAT_COUNT + 2, headers, &t)) != 0)
		return rc;
	for (s = 0; s < l->nservices && !rc; s++) {
		cells[0] = l->services[s];
		snprintf(nums[LOGCAT_COUNT], sizeof(nums[0]), "%llu", l->counts[s][LOGCAT_COUNT]);
		cells[1] = nums[LOGCAT_COUNT];
		for (c = 0; c < LOGCAT_COUNT; c++) {
			snprintf(nums[c], sizeof(nums[c]), "%llu", l->counts[s][c]);
			cells[c + 2] = nums[c];
		}
		rc = texttable_add_row(t, cells);
		for (c = 0; !rc && c < LOGCAT_COUNT; c++)
			if (l->counts[s][c] && (c == LOGCAT_ERROR || c == LOGCAT_AUTH))
				texttable_color_last(t, c + 2, TEXTTABLE_RED);
			else if (l->counts[s][c] && c == LOGCAT_WARN)
				texttable_color_last(t, c + 2, TEXTTABLE_YELLOW);
	}
	if (!rc)
		rc = texttable_render(t, l->ctx->color_stdout, &sb);
	if (!rc)
		fputs(sbuf_str(&sb), stdout);
	sbuf_release(&sb);
	texttable_free(t);
	return rc;
}

int cmd_logs(int argc, char **argv, struct ctx *ctx)
{
	struct logs l;
	struct service_ctx *sc = NULL;
	pthread_t *threads = NULL;
	struct st_error err = { 0 };
	size_t i, started = 0;
	int status = ST_EXIT_OK, lock_ready = 0;

	memset(&l, 0, sizeof(l));
	l.ctx = ctx;
	if (argc >= 2 && !strcmp(argv[1], "--help")) {
		fputs(logs_usage, stdout);
		return ST_EXIT_OK;
	}
	l.services = calloc((size_t)argc + ctx->config->n_services + 1, sizeof(*l.services));
	l.containers = calloc((size_t)argc + ctx->config->n_services + 1, sizeof(*l.containers));
	if (!l.services || !l.containers) {
		fputs("error: out of memory\n", stderr);
		status = ST_EXIT_FAILED;
		goto out;
	}
	for (i = 1; i < (size_t)argc; i++) {
		const char *a = argv[i];
		enum logcat cat;

		if (!strcmp(a, "--since") || !strncmp(a, "--since=", 8) || !strcmp(a, "--tail") ||
		    !strncmp(a, "--tail=", 7)) {
			int is_since = a[2] == 's';
			const char *eq = strchr(a, '=');
			const char *v = eq ? eq + 1 : (i + 1 < (size_t)argc ? argv[++i] : NULL);
			char *end;

			if (!v) {
				status = cmd_usage_error(ctx, "option '%s' needs a value", a);
				goto out;
			}
			if (is_since && parse_since(v, &l.since) != 0) {
				status = cmd_usage_error(ctx, "--since '%s' is neither a duration (1h) nor a UTC "
							 "time (2026-11-27T22:00:00Z)", v);
				goto out;
			}
			if (!is_since) {
				long n = strtol(v, &end, 10);

				if (*v == '\0' || *end || n < 0 || n > 100000000) {
					status = cmd_usage_error(ctx, "--tail '%s' is not a number", v);
					goto out;
				}
				l.tail = n ? (int)n : -1;
			}
		} else if (!strcmp(a, "-f") || !strcmp(a, "--follow")) {
			l.follow = 1;
		} else if (!strcmp(a, "--summary")) {
			l.summary = 1;
		} else if (!strcmp(a, "--errors") || !strcmp(a, "--warnings") || !strcmp(a, "--db") ||
			   !strcmp(a, "--auth") || !strcmp(a, "--cors") || !strcmp(a, "--s3") ||
			   !strcmp(a, "--email") || !strcmp(a, "--view")) {
			if (logcat_parse(a + 2, &cat) != 0) {
				status = cmd_usage_error(ctx, "unknown filter '%s'", a);
				goto out;
			}
			l.filter |= LOGCAT_BIT(cat);
		} else if (!strcmp(a, "--")) {
			continue;
		} else if (a[0] == '-') {
			status = cmd_usage_error(ctx, "unknown option '%s'", a);
			goto out;
		} else {
			const char *container;

			if (services_container(ctx->config, a, &container, &err) != 0) {
				cmd_print_error(ctx, &err);
				status = ST_EXIT_USAGE;
				goto out;
			}
			l.services[l.nservices] = a;
			l.containers[l.nservices++] = container;
		}
	}
	if (ctx->format && strcmp(ctx->format, "text") && strcmp(ctx->format, "json")) {
		status = cmd_usage_error(ctx, "logs has no format '%s' (text or json)", ctx->format);
		goto out;
	}
	l.json = ctx->format && !strcmp(ctx->format, "json");
	if (l.summary && l.follow) {
		status = cmd_usage_error(ctx, "--summary counts what is there; it cannot --follow");
		goto out;
	}
	if (l.summary && l.filter) {
		status = cmd_usage_error(ctx, "--summary counts every category; drop the filters");
		goto out;
	}
	if (l.nservices == 0)
		for (i = 0; i < ctx->config->n_services; i++) {
			l.services[l.nservices] = ctx->config->services[i].name;
			l.containers[l.nservices++] = ctx->config->services[i].container;
		}
	for (i = 0; i < l.nservices; i++)
		if (strlen(l.services[i]) > l.name_width)
			l.name_width = strlen(l.services[i]);
	l.direct = l.follow || l.nservices == 1;
	l.counts = calloc(l.nservices, sizeof(*l.counts));
	sc = calloc(l.nservices, sizeof(*sc));
	threads = calloc(l.nservices, sizeof(*threads));
	if (!l.counts || !sc || !threads || pthread_mutex_init(&l.out_lock, NULL) != 0) {
		fputs("error: out of memory\n", stderr);
		status = ST_EXIT_FAILED;
		goto out;
	}
	lock_ready = 1;
	if (services_docker_open(ctx->config, &l.docker, &err) != 0) {
		cmd_print_error(ctx, &err);
		status = cmd_exit_status(err.code);
		goto out;
	}
	for (i = 0; i < l.nservices; i++) {
		sc[i].l = &l;
		sc[i].index = i;
	}
	if (l.follow) {
		/* One stream per service; Ctrl-C ends the process. */
		for (started = 0; started < l.nservices; started++)
			if (pthread_create(&threads[started], NULL, read_service, &sc[started]) != 0)
				break;
		for (i = 0; i < started; i++)
			pthread_join(threads[i], NULL);
		if (started < l.nservices) {
			fputs("error: cannot start a thread to follow the logs\n", stderr);
			status = ST_EXIT_FAILED;
		}
	} else {
		for (i = 0; i < l.nservices; i++)
			read_service(&sc[i]);
	}
	for (i = 0; i < l.nservices; i++)
		if (sc[i].rc) {
			st_error_wrap(&sc[i].err, "cannot read the logs of %s", l.services[i]);
			cmd_print_error(ctx, &sc[i].err);
			status = cmd_exit_status(sc[i].rc);
			if (status == ST_EXIT_USAGE)
				status = ST_EXIT_FAILED;
		}
	if (status != ST_EXIT_OK)
		goto out;
	if (l.summary) {
		if (print_summary(&l) != 0) {
			fputs("error: out of memory\n", stderr);
			status = ST_EXIT_FAILED;
		}
		goto out;
	}
	if (!l.direct) {
		qsort(l.lines, l.nlines, sizeof(*l.lines), cmp_line);
		for (i = 0; i < l.nlines; i++)
			print_line(&l, l.lines[i].service, l.lines[i].stream, l.lines[i].ts, l.lines[i].cats,
				   l.lines[i].text, strlen(l.lines[i].text));
	}
	if (l.failed) {
		fputs("error: out of memory writing JSON\n", stderr);
		status = ST_EXIT_FAILED;
	}
out:
	for (i = 0; i < l.nlines; i++) {
		free(l.lines[i].ts);
		free(l.lines[i].text);
	}
	free(l.lines);
	free(l.counts);
	free(sc);
	free(threads);
	free(l.services);
	free(l.containers);
	docker_client_free(l.docker);
	if (lock_ready)
		pthread_mutex_destroy(&l.out_lock);
	return status;
}

/*
 * health_eval.c - turns what the clients returned into check results.
 * No I/O here (except sysconf for the host's RAM).
 */
#include "health_eval.h"
#include "docker_stream.h"
#include "redact.h"
#include "sbuf.h"
#include "text.h"
#include "timeutil.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* "1.5 GiB" */
static char *fmt_bytes(double v, char *buf, size_t size)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
	int u = 0;

	while (fabs(v) >= 1024 && u < 5) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, size, "%.0f B", v);
	else
		snprintf(buf, size, "%.1f %s", v, units[u]);
	return buf;
}

static double jnum(const json_t *obj, const char *key)
{
	const json_t *v = json_object_get(obj, key);

	return json_is_number(v) ? json_number_value(v) : 0;
}

/* A count from a daemon's answer or our state file, never negative, so
 * differences of two counts cannot overflow. */
static long long jcount(const json_t *obj, const char *key)
{
	long long n = text_double_to_ll(jnum(obj, key));

	return n > 0 ? n : 0;
}

static const char *jstr(const json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));

	return s ? s : "";
}

static void th_minmax(struct health_metric *m, int has_min, double min, int has_max, double max)
{
	m->has_min = has_min;
	m->min = min;
	m->has_max = has_max;
	m->max = max;
}

/* ---- HTTP ------------------------------------------------------------- */

int health_eval_backend(struct health_result *r, const char *url, long http_status,
			const char *body, double latency, const char *failure,
			const struct health_threshold *th)
{
	struct health_metric *m;
	json_t *doc = NULL;
	const char *st = NULL;
	char lat[32];
	int s, rc;

	m = health_result_add_metric(r, "backend.latency", latency, HEALTH_UNIT_SECONDS,
				     "backend_health_latency_seconds",
				     "Latency of the backend health endpoint.", NULL, NULL);
	if (!m)
		return ST_ENOMEM;
	s = health_metric_threshold(m, th);
	th_minmax(m, 1, 0, 0, 0);
	time_format_duration(latency, lat, sizeof(lat));
	if (failure)
		return health_result_set(r, HEALTH_CRITICAL, "GET %s failed after %s: %s", url, lat,
					 failure);
	if (http_status != 200)
		return health_result_set(r, HEALTH_CRITICAL, "GET %s answered %ld (expected 200) in %s",
					 url, http_status, lat);
	doc = body ? json_loads(body, JSON_DISABLE_EOF_CHECK, NULL) : NULL;
	if (json_is_object(doc))
		st = json_string_value(json_object_get(doc, "status"));
	if (!st || strcmp(st, "ok") != 0) {
		char shown[80];

		snprintf(shown, sizeof(shown), "%s", body ? body : "");
		for (char *p = shown; *p; p++)
			if ((unsigned char)*p < 0x20)
				*p = ' ';
		rc = health_result_set(r, HEALTH_CRITICAL, "GET %s answered 200 but not {\"status\": \"ok\"}: '%s'",
				       url, shown);
		json_decref(doc);
		return rc;
	}
	json_decref(doc);
	if (s != HEALTH_OK)
		return health_result_set(r, s, "status ok but slow: %s (%s above %gs)", lat,
					 s == HEALTH_CRITICAL ? "critical" : "warning",
					 s == HEALTH_CRITICAL ? th->crit : th->warn);
	return health_result_set(r, HEALTH_OK, "status ok in %s", lat);
}

int health_eval_frontend(struct health_result *r, const char *url, long http_status,
			 double latency, const char *failure, const struct health_threshold *th)
{
	struct health_metric *m;
	char lat[32];
	int s;

	m = health_result_add_metric(r, "frontend.latency", latency, HEALTH_UNIT_SECONDS,
				     "frontend_latency_seconds", "Latency of the frontend URL.", NULL,
				     NULL);
	if (!m)
		return ST_ENOMEM;
	s = health_metric_threshold(m, th);
	th_minmax(m, 1, 0, 0, 0);
	time_format_duration(latency, lat, sizeof(lat));
	if (failure)
		return health_result_set(r, HEALTH_CRITICAL, "GET %s failed after %s: %s", url, lat,
					 failure);
	if (http_status < 200 || http_status >= 400)
		return health_result_set(r, HEALTH_CRITICAL, "GET %s answered %ld in %s", url,
					 http_status, lat);
	if (s != HEALTH_OK)
		return health_result_set(r, s, "%ld but slow: %s (above %gs)", http_status, lat,
					 s == HEALTH_CRITICAL ? th->crit : th->warn);
	return health_result_set(r, HEALTH_OK, "%ld in %s", http_status, lat);
}

char *health_url_for_display(const char *url)
{
	return redact_url(url, REDACT_URL_NO_USERINFO | REDACT_URL_NO_QUERY);
}

/* ---- containers ------------------------------------------------------- */

static const char *last_probe_output(const json_t *health, char *buf, size_t size)
{
	const json_t *log = json_object_get(health, "Log");
	const json_t *last = json_array_get(log, json_array_size(log) ? json_array_size(log) - 1 : 0);
	const char *out = jstr(last, "Output");
	size_t i, n = 0;

	for (i = 0; out[i] && n + 1 < size; i++) {
		unsigned char c = (unsigned char)out[i];
		if (c < 0x20)
			c = ' ';
		if (c == ' ' && (n == 0 || buf[n - 1] == ' '))
			continue;
		buf[n++] = (char)c;
	}
	while (n > 0 && buf[n - 1] == ' ')
		n--;
	buf[n] = '\0';
	return buf;
}

int health_eval_container(struct health_result *r, const char *container, const json_t *inspect,
			  const json_t *prev, double now, json_t **state)
{
	const json_t *st = json_object_get(inspect, "State");
	const json_t *health = json_object_get(st, "Health");
	const char *status = jstr(st, "Status");
	const char *hstatus = json_is_object(health) ? jstr(health, "Status") : "";
	const char *id = jstr(inspect, "Id");
	long long restarts = jcount(inspect, "RestartCount");
	long long exit_code = text_double_to_ll(jnum(st, "ExitCode"));
	int running = json_is_true(json_object_get(st, "Running"));
	double started = 0, finished = 0, since;
	char label[512], up[32], probe[200], extra[128] = "";
	struct health_metric *m;
	json_t *details;
	int rc = 0;

	*state = NULL;
	if (!json_is_object(st))
		return health_result_set(r, HEALTH_UNKNOWN, "inspect of '%s' has no State", container);
	/* Go's zero time "0001-01-01T00:00:00Z" (never) is negative */
	if (docker_parse_time(jstr(st, "StartedAt"), strlen(jstr(st, "StartedAt")), &started) ||
	    started < 0)
		started = 0;
	if (docker_parse_time(jstr(st, "FinishedAt"), strlen(jstr(st, "FinishedAt")), &finished) ||
	    finished < 0)
		finished = 0;

	snprintf(label, sizeof(label), "container.%s.restarts", container);
	m = health_result_add_metric(r, label, (double)restarts, HEALTH_UNIT_COUNTER,
				     "container_restarts_total",
				     "Restarts of the container by its restart policy (RestartCount).",
				     "container", container);
	if (!m)
		return ST_ENOMEM;
	if (running && started > 0) {
		snprintf(label, sizeof(label), "container.%s.uptime", container);
		m = health_result_add_metric(r, label, now > started ? now - started : 0,
					     HEALTH_UNIT_SECONDS, "container_uptime_seconds",
					     "Seconds since the container started.", "container",
					     container);
		if (!m)
			return ST_ENOMEM;
	}
	details = json_pack("{s:s, s:s, s:s, s:I, s:s}", "id", id, "image",
			    jstr(json_object_get(inspect, "Config"), "Image"), "state", status,
			    "restart_count", (json_int_t)restarts, "health", *hstatus ? hstatus : "none");
	if (!details)
		return ST_ENOMEM;
	health_result_set_details(r, details);
	*state = json_pack("{s:s, s:I}", "id", id, "restart_count", (json_int_t)restarts);
	if (!*state)
		return ST_ENOMEM;

	since = running ? started : finished;
	time_format_duration(since > 0 && now > since ? now - since : 0, up, sizeof(up));
	if (json_is_true(json_object_get(st, "Restarting")))
		return health_result_set(r, HEALTH_CRITICAL,
					 "restarting (last exit code %lld, %lld restarts)", exit_code,
					 restarts);
	if (json_is_true(json_object_get(st, "Paused")))
		return health_result_set(r, HEALTH_CRITICAL, "paused");
	if (!running) {
		if (json_is_true(json_object_get(st, "OOMKilled")))
			snprintf(extra, sizeof(extra), ", killed for lack of memory");
		if (finished > 0)
			return health_result_set(r, HEALTH_CRITICAL, "%s with code %lld%s %s ago",
						 status, exit_code, extra, up);
		return health_result_set(r, HEALTH_CRITICAL, "%s (not running)", status);
	}
	if (!strcmp(hstatus, "unhealthy")) {
		rc = health_result_set(r, HEALTH_CRITICAL, "running but unhealthy (%lld failed probes): %s",
				       jcount(health, "FailingStreak"),
				       last_probe_output(health, probe, sizeof(probe)));
		return rc;
	}
	if (!strcmp(hstatus, "starting"))
		return health_result_set(r, HEALTH_WARNING, "running, health check still starting, up %s",
					 up);
	if (prev && !strcmp(jstr(prev, "id"), id) && restarts > jcount(prev, "restart_count"))
		return health_result_set(r, HEALTH_WARNING,
					 "running%s, but restarted %lld time(s) since the previous check (%lld in all), up %s",
					 *hstatus ? ", healthy" : "",
					 restarts - jcount(prev, "restart_count"), restarts, up);
	return health_result_set(r, HEALTH_OK, "running, %s, up %s, %lld restart%s",
				 *hstatus ? hstatus : "no healthcheck", up, restarts,
				 restarts == 1 ? "" : "s");
}

int health_stats_parse(const json_t *stats, double at, struct health_stats_sample *out)
{
	const char *id = json_string_value(json_object_get(stats, "id"));

	memset(out, 0, sizeof(*out));
	if (docker_stats_parse(stats, &out->s, NULL, NULL) != 0)
		return ST_EPROTO;
	out->at = at;
	snprintf(out->id, sizeof(out->id), "%s", id ? id : "");
	/* a stopped container answers zeros without system_cpu_usage and an
	 * empty memory_stats */
	out->running = out->s.has_cpu && out->s.has_memory && out->s.cpu_system > 0;
	return 0;
}

json_t *health_stats_to_json(const struct health_stats_sample *s)
{
	return json_pack("{s:s, s:f, s:I, s:I, s:i}", "id", s->id, "at", s->at, "cpu_total",
			 (json_int_t)s->s.cpu_total, "system_cpu", (json_int_t)s->s.cpu_system,
			 "online_cpus", (int)s->s.online_cpus);
}

int health_stats_from_json(const json_t *j, struct health_stats_sample *out)
{
	const json_t *total = json_object_get(j, "cpu_total"), *sys = json_object_get(j, "system_cpu");
	const json_t *cpus = json_object_get(j, "online_cpus");

	memset(out, 0, sizeof(*out));
	if (!json_is_string(json_object_get(j, "id")) || !json_is_number(json_object_get(j, "at")) ||
	    !json_is_integer(total) || !json_is_integer(sys) || json_integer_value(total) < 0 ||
	    json_integer_value(sys) < 0)
		return ST_EPROTO;
	snprintf(out->id, sizeof(out->id), "%s", jstr(j, "id"));
	out->at = jnum(j, "at");
	out->s.cpu_total = (uint64_t)json_integer_value(total);
	out->s.cpu_system = (uint64_t)json_integer_value(sys);
	out->s.online_cpus = json_integer_value(cpus) > 0 ? (unsigned)json_integer_value(cpus) : 1;
	out->s.has_cpu = 1;
	out->running = 1;
	return 0;
}

int health_cpu_percent(const struct health_stats_sample *prev, const struct health_stats_sample *cur,
		       double *pct)
{
	if (!prev || !cur || !prev->running || !cur->running || strcmp(prev->id, cur->id) != 0)
		return -1;
	return docker_stats_cpu_percent(&prev->s, &cur->s, pct) == 0 ? 0 : -1;
}

int health_eval_cpu(struct health_result *r, const char *container,
		    const struct health_stats_sample *prev, const struct health_stats_sample *cur,
		    const struct health_threshold *th)
{
	struct health_metric *m;
	char label[512], iv[32];
	double pct;
	int s;

	if (!cur->running)
		return health_result_set(r, HEALTH_UNKNOWN, "not running: no CPU usage to measure");
	if (health_cpu_percent(prev, cur, &pct) != 0)
		return health_result_set(r, HEALTH_UNKNOWN, "no second stats sample to compare with");
	snprintf(label, sizeof(label), "container_cpu.%s", container);
	m = health_result_add_metric(r, label, pct, HEALTH_UNIT_PERCENT, "container_cpu_usage_ratio",
				     "CPU used by the container, 1 = one core (as docker stats).",
				     "container", container);
	if (!m)
		return ST_ENOMEM;
	s = health_metric_threshold(m, th);
	th_minmax(m, 1, 0, 1, cur->s.online_cpus * 100.0);
	time_format_duration(cur->at - prev->at, iv, sizeof(iv));
	return health_result_set(r, s, "%.1f%% CPU over the last %s (100%% = one core, %u online)",
				 pct, iv, cur->s.online_cpus);
}

int health_eval_memory(struct health_result *r, const char *container,
		       const struct health_stats_sample *cur, double host_ram,
		       const struct health_threshold *th)
{
	struct health_metric *m;
	char label[512], used_s[32], lim_s[32];
	double used = (double)docker_stats_mem_used(&cur->s), limit = (double)cur->s.mem_limit, pct;
	int s, unlimited;

	if (!cur->running)
		return health_result_set(r, HEALTH_UNKNOWN, "not running: no memory usage to measure");
	if (docker_stats_mem_percent(&cur->s, &pct) != 0)
		return health_result_set(r, HEALTH_UNKNOWN, "stats carry no memory limit");
	unlimited = host_ram > 0 && limit >= host_ram * 0.98;
	snprintf(label, sizeof(label), "container_memory.%s", container);
	m = health_result_add_metric(r, label, pct, HEALTH_UNIT_PERCENT, "container_memory_used_ratio",
				     "Memory used without inactive file cache, of the limit (host RAM when unlimited).",
				     "container", container);
	if (!m)
		return ST_ENOMEM;
	s = health_metric_threshold(m, th);
	th_minmax(m, 1, 0, 1, 100);
	snprintf(label, sizeof(label), "container_memory.%s.used", container);
	m = health_result_add_metric(r, label, used, HEALTH_UNIT_BYTES, "container_memory_used_bytes",
				     "Memory used without inactive file cache.", "container", container);
	if (!m)
		return ST_ENOMEM;
	th_minmax(m, 1, 0, 1, limit);
	snprintf(label, sizeof(label), "container_memory.%s.limit", container);
	m = health_result_add_metric(r, label, limit, HEALTH_UNIT_BYTES,
				     "container_memory_limit_bytes",
				     "Memory limit of the container (host RAM when unlimited).",
				     "container", container);
	if (!m)
		return ST_ENOMEM;
	fmt_bytes(used, used_s, sizeof(used_s));
	fmt_bytes(limit, lim_s, sizeof(lim_s));
	return health_result_set(r, s, "%.1f%%: %s of %s%s", pct, used_s, lim_s,
				 unlimited ? " host RAM (no memory limit set)" : " limit");
}

/* Sizes the way `docker system df` computes them. */
int health_eval_df(struct health_result *r, const json_t *df)
{
	static const char *const types[] = { "images", "containers", "volumes", "build_cache" };
	const json_t *arr, *e;
	double total[4] = { 0 }, recl[4] = { 0 }, used_images = 0, all_recl = 0;
	size_t i, counts[4] = { 0 };
	struct health_metric *m;
	char label[64], a[32], b[32], c[32], d[32], rr[32];
	json_t *details;
	int k;

	if (!json_is_object(df) || !json_is_array(json_object_get(df, "Images")))
		return health_result_set(r, HEALTH_UNKNOWN, "system df answer has no Images list");
	total[0] = jnum(df, "LayersSize");
	arr = json_object_get(df, "Images");
	json_array_foreach(arr, i, e) {
		double size = jnum(e, "Size"), shared = jnum(e, "SharedSize");

		counts[0]++;
		if (jnum(e, "Containers") > 0 && size >= 0 && shared >= 0)
			used_images += size - shared;
	}
	recl[0] = total[0] - used_images > 0 ? total[0] - used_images : 0;
	arr = json_object_get(df, "Containers");
	json_array_foreach(arr, i, e) {
		double rw = jnum(e, "SizeRw");

		counts[1]++;
		total[1] += rw;
		if (strcmp(jstr(e, "State"), "running") != 0)
			recl[1] += rw;
	}
	arr = json_object_get(df, "Volumes");
	json_array_foreach(arr, i, e) {
		const json_t *u = json_object_get(e, "UsageData");
		double size = jnum(u, "Size");

		counts[2]++;
		if (size < 0)
			continue;
		total[2] += size;
		if (jnum(u, "RefCount") == 0)
			recl[2] += size;
	}
	arr = json_object_get(df, "BuildCache");
	json_array_foreach(arr, i, e) {
		double size = jnum(e, "Size");

		counts[3]++;
		if (json_is_true(json_object_get(e, "Shared")))
			continue;
		total[3] += size;
		if (!json_is_true(json_object_get(e, "InUse")))
			recl[3] += size;
	}
	details = json_object();
	if (!details)
		return ST_ENOMEM;
	for (k = 0; k < 4; k++) {
		json_t *row;

		all_recl += recl[k];
		snprintf(label, sizeof(label), "docker.%s", types[k]);
		m = health_result_add_metric(r, label, total[k], HEALTH_UNIT_BYTES,
					     "docker_disk_usage_bytes",
					     "Disk used by Docker objects (as docker system df).", "type",
					     types[k]);
		if (!m)
			goto nomem;
		th_minmax(m, 1, 0, 0, 0);
		snprintf(label, sizeof(label), "docker.%s.reclaimable", types[k]);
		m = health_result_add_metric(r, label, recl[k], HEALTH_UNIT_BYTES,
					     "docker_disk_reclaimable_bytes",
					     "Disk space docker system prune could reclaim.", "type",
					     types[k]);
		if (!m)
			goto nomem;
		th_minmax(m, 1, 0, 1, total[k]);
		row = json_pack("{s:I, s:I, s:I}", "count", (json_int_t)counts[k], "size_bytes",
				(json_int_t)text_double_to_ll(total[k]), "reclaimable_bytes",
				(json_int_t)text_double_to_ll(recl[k]));
		if (!row || json_object_set_new(details, types[k], row))
			goto nomem;
	}
	health_result_set_details(r, details);
	return health_result_set(r, HEALTH_OK,
				 "images %s, containers %s, volumes %s, build cache %s; %s reclaimable",
				 fmt_bytes(total[0], a, sizeof(a)), fmt_bytes(total[1], b, sizeof(b)),
				 fmt_bytes(total[2], c, sizeof(c)), fmt_bytes(total[3], d, sizeof(d)),
				 fmt_bytes(all_recl, rr, sizeof(rr)));
nomem:
	json_decref(details);
	return ST_ENOMEM;
}

/* ---- disk ------------------------------------------------------------- */

int health_eval_disk(struct health_result *r, const char *path, const struct statvfs *st,
		     const char *note, const struct health_threshold *th)
{
	double frsize = st->f_frsize ? (double)st->f_frsize : (double)st->f_bsize;
	double size = (double)st->f_blocks * frsize;
	double used = ((double)st->f_blocks - (double)st->f_bfree) * frsize;
	double avail = (double)st->f_bavail * frsize;
	double pct = used + avail > 0 ? used / (used + avail) * 100.0 : 0;
	struct health_metric *m;
	char label[256], a[32], b[32], c[32];
	int s;

	m = health_result_add_metric(r, r->name, pct, HEALTH_UNIT_PERCENT, "disk_used_ratio",
				     "Used share of the filesystem, as df shows it.", "path", path);
	if (!m)
		return ST_ENOMEM;
	s = health_metric_threshold(m, th);
	th_minmax(m, 1, 0, 1, 100);
	snprintf(label, sizeof(label), "%s.used", r->name);
	m = health_result_add_metric(r, label, used, HEALTH_UNIT_BYTES, "disk_used_bytes",
				     "Bytes used on the filesystem.", "path", path);
	if (!m)
		return ST_ENOMEM;
	th_minmax(m, 1, 0, 1, size);
	snprintf(label, sizeof(label), "%s.avail", r->name);
	m = health_result_add_metric(r, label, avail, HEALTH_UNIT_BYTES, "disk_available_bytes",
				     "Bytes available to unprivileged users on the filesystem.", "path",
				     path);
	if (!m)
		return ST_ENOMEM;
	th_minmax(m, 1, 0, 1, size);
	return health_result_set(r, s, "%.1f%% used on %s (%s of %s, %s free)%s%s", pct, path,
				 fmt_bytes(used, a, sizeof(a)), fmt_bytes(size, b, sizeof(b)),
				 fmt_bytes(avail, c, sizeof(c)), note ? "; " : "", note ? note : "");
}

/* ---- logs ------------------------------------------------------------- */

void health_log_count_line(struct health_log_count *c, const char *text, size_t len, int split)
{
	static const char needle[] = "error";
	size_t i;

	for (i = 0; i < len; i++) {
		int ch = tolower((unsigned char)text[i]);

		if (!isspace(ch))
			c->cur_nonblank = 1;
		if (c->cur_error)
			continue;
		/* 'e' occurs only first in "error", so a mismatch restarts at
		 * 0, or at 1 when the mismatching character is an 'e' */
		if (ch == needle[c->matched])
			c->matched++;
		else
			c->matched = ch == 'e';
		if (c->matched == sizeof(needle) - 1)
			c->cur_error = 1;
	}
	if (split)
		return;
	if (c->cur_nonblank) {
		c->lines++;
		c->errors += c->cur_error != 0;
	}
	c->matched = 0;
	c->cur_error = 0;
	c->cur_nonblank = 0;
}

int health_eval_error_rate(struct health_result *r, const struct health_log_count *c,
			   double window, const struct health_threshold *th)
{
	struct health_metric *m;
	char w[32];
	double pct = c->lines ? (double)c->errors / (double)c->lines * 100.0 : 0;
	int s;

	time_format_duration(window, w, sizeof(w));
	m = health_result_add_metric(r, "backend.error_rate", pct, HEALTH_UNIT_PERCENT,
				     "backend_log_error_ratio",
				     "Share of backend log lines containing 'error' in the window.",
				     NULL, NULL);
	if (!m)
		return ST_ENOMEM;
	s = c->lines ? health_metric_threshold(m, th) : (m->th = *th, HEALTH_OK);
	th_minmax(m, 1, 0, 1, 100);
	m = health_result_add_metric(r, "backend.log_lines", (double)c->lines, HEALTH_UNIT_NONE,
				     "backend_log_lines", "Backend log lines in the window.", NULL, NULL);
	if (!m)
		return ST_ENOMEM;
	th_minmax(m, 1, 0, 0, 0);
	m = health_result_add_metric(r, "backend.error_lines", (double)c->errors, HEALTH_UNIT_NONE,
				     "backend_log_error_lines",
				     "Backend log lines containing 'error' in the window.", NULL, NULL);
	if (!m)
		return ST_ENOMEM;
	th_minmax(m, 1, 0, 0, 0);
	if (!c->lines)
		return health_result_set(r, HEALTH_OK, "no log lines in the last %s", w);
	return health_result_set(r, s, "%.2f%%: %llu of %llu log lines in the last %s contain 'error'",
				 pct, c->errors, c->lines, w);
}

/* ---- Postgres and Redis ----------------------------------------------- */

int health_eval_pg_connections(struct health_result *r, int in_use, int usable, int max_connections,
			       int superuser_reserved, const struct health_threshold *th)
{
	struct health_metric *m;
	double pct = usable > 0 ? (double)in_use / usable * 100.0 : 100.0;
	int s;

	m = health_result_add_metric(r, "postgres.connections", pct, HEALTH_UNIT_PERCENT,
				     "postgres_connections_used_ratio",
				     "Client connections of max_connections minus the reserved ones.",
				     NULL, NULL);
	if (!m)
		return ST_ENOMEM;
	s = health_metric_threshold(m, th);
	th_minmax(m, 1, 0, 1, 100);
	m = health_result_add_metric(r, "postgres.connections_in_use", in_use, HEALTH_UNIT_NONE,
				     "postgres_connections_in_use", "Client backends connected.", NULL,
				     NULL);
	if (!m)
		return ST_ENOMEM;
	th_minmax(m, 1, 0, 1, usable);
	return health_result_set(r, s,
				 "%.1f%%: %d of %d usable connections (max_connections %d, %d reserved for superusers%s)",
				 pct, in_use, usable, max_connections, superuser_reserved,
				 max_connections - superuser_reserved > usable ? " and more" : "");
}

int health_eval_redis_memory(struct health_result *r, long long used, long long maxmemory,
			     const char *policy, const struct health_threshold *th)
{
	struct health_metric *m;
	char u[32], l[32];
	double pct;
	int s;

	m = health_result_add_metric(r, "redis.used_memory", (double)used, HEALTH_UNIT_BYTES,
				     "redis_memory_used_bytes", "Redis used_memory.", NULL, NULL);
	if (!m)
		return ST_ENOMEM;
	th_minmax(m, 1, 0, maxmemory > 0, (double)maxmemory);
	m = health_result_add_metric(r, "redis.maxmemory", (double)maxmemory, HEALTH_UNIT_BYTES,
				     "redis_memory_max_bytes", "Redis maxmemory (0 = no limit).", NULL,
				     NULL);
	if (!m)
		return ST_ENOMEM;
	fmt_bytes((double)used, u, sizeof(u));
	if (maxmemory <= 0)
		return health_result_set(r, HEALTH_OK, "%s used, no limit (maxmemory 0)", u);
	pct = (double)used / (double)maxmemory * 100.0;
	m = health_result_add_metric(r, "redis.memory", pct, HEALTH_UNIT_PERCENT,
				     "redis_memory_used_ratio", "Redis used_memory of maxmemory.", NULL,
				     NULL);
	if (!m)
		return ST_ENOMEM;
	s = health_metric_threshold(m, th);
	th_minmax(m, 1, 0, 1, 100);
	return health_result_set(r, s, "%.1f%%: %s of %s maxmemory (policy %s)", pct, u,
				 fmt_bytes((double)maxmemory, l, sizeof(l)),
				 policy && *policy ? policy : "unknown");
}

int health_eval_redis_evictions(struct health_result *r, long long evicted, const char *run_id,
				const char *policy, const json_t *prev, json_t **state)
{
	struct health_metric *m;
	long long grown = 0, before = -1;

	*state = json_pack("{s:s, s:I}", "run_id", run_id ? run_id : "", "evicted_keys",
			   (json_int_t)evicted);
	if (!*state)
		return ST_ENOMEM;
	m = health_result_add_metric(r, "redis.evicted_keys", (double)evicted, HEALTH_UNIT_COUNTER,
				     "redis_evicted_keys_total", "Keys Redis evicted since it started.",
				     NULL, NULL);
	if (!m)
		return ST_ENOMEM;
	if (prev && run_id && *run_id && !strcmp(jstr(prev, "run_id"), run_id))
		before = jcount(prev, "evicted_keys");
	if (before >= 0 && evicted > before)
		grown = evicted - before;
	if (grown > 0)
		return health_result_set(r, HEALTH_WARNING,
					 "%lld keys evicted since the previous check (%lld since start, policy %s): memory is full",
					 grown, evicted, policy && *policy ? policy : "unknown");
	return health_result_set(r, HEALTH_OK, "%lld keys evicted since Redis started%s", evicted,
				 prev ? ", none since the previous check" : "");
}

double health_host_ram(void)
{
	long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);

	return pages > 0 && page > 0 ? (double)pages * (double)page : 0;
}

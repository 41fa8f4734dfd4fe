/*
 * proxy.c - the reverse proxy's upstream file, nginx -t / reload through
 * Docker exec, confirmation and draining (see proxy.h).
 */
#include "proxy.h"

#include <curl/curl.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "atomic_file.h"
#include "container.h"
#include "http.h"
#include "text.h"
#include "timeutil.h"

#define EXEC_OUTPUT_MAX (64 * 1024)
#define DRAIN_MARK "worker process is shutting down"
/* Consecutive error answers named as from the new upstream that end a
 * switch's confirmation early. */
#define PROXY_SWITCH_FAIL_AFTER 5

/* ---- pure helpers ------------------------------------------------------- */

static int render_body(const char *tmpl, const char *host, const char *port_text,
		       const char *container, struct sbuf *out)
{
	const char *p = tmpl;
	int rc = 0;

	while (*p && rc == 0) {
		if (*p == '{' && !strncmp(p, "{host}", 6)) {
			rc = sbuf_puts(out, host);
			p += 6;
		} else if (*p == '{' && !strncmp(p, "{port}", 6)) {
			rc = sbuf_puts(out, port_text);
			p += 6;
		} else if (*p == '{' && !strncmp(p, "{container}", 11)) {
			rc = sbuf_puts(out, container ? container : "");
			p += 11;
		} else {
			rc = sbuf_append(out, p, 1);
			p++;
		}
	}
	return rc;
}

int proxy_render_upstream(const char *tmpl, const char *header, const char *host, long port,
			  const char *container, struct sbuf *out, struct st_error *err)
{
	char port_text[24];
	const char *h;

	if (!tmpl || !strstr(tmpl, "{port}"))
		return st_error_set(err, ST_EUSAGE, "upstream template has no {port}");
	snprintf(port_text, sizeof(port_text), "%ld", port);
	if (header) {
		/* One comment line: a newline in it would end the comment. */
		if (sbuf_puts(out, "# ") != 0)
			goto oom;
		for (h = header; *h; h++)
			if (sbuf_append(out, *h == '\n' || *h == '\r' ? " " : h, 1) != 0)
				goto oom;
		if (sbuf_puts(out, "\n") != 0)
			goto oom;
	}
	if (render_body(tmpl, host ? host : "", port_text, container, out) != 0)
		goto oom;
	return 0;
oom:
	return st_error_set(err, ST_ENOMEM, "out of memory rendering the upstream file");
}

/* Copies text without its comment lines (first non-blank character '#')
 * and without trailing white space. */
static int strip_comments(const char *text, struct sbuf *out)
{
	const char *line = text;

	while (*line) {
		const char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line) + 1 : strlen(line);
		const char *q = line;

		while (q < line + len && (*q == ' ' || *q == '\t'))
			q++;
		if (!(q < line + len && *q == '#') && sbuf_append(out, line, len) != 0)
			return ST_ENOMEM;
		line += len;
	}
	while (out->len && isspace((unsigned char)out->buf[out->len - 1]))
		out->buf[--out->len] = '\0';
	return 0;
}

int proxy_upstream_port(const char *tmpl, const char *host, const char *container, const char *text,
			long *port, struct st_error *err)
{
	struct sbuf want = SBUF_INIT, got = SBUF_INIT, raw = SBUF_INIT;
	const char *mark, *suffix, *digits;
	size_t plen;
	char *end;
	long v;
	int rc = 0;

	/* \001 cannot occur in a template: it stands for the port. */
	if (!tmpl || !strstr(tmpl, "{port}")) {
		rc = st_error_set(err, ST_EUSAGE, "upstream template has no {port}");
		goto out;
	}
	if (render_body(tmpl, host ? host : "", "\001", container, &raw) != 0 ||
	    strip_comments(sbuf_str(&raw), &want) != 0 || strip_comments(text, &got) != 0) {
		rc = st_error_set(err, ST_ENOMEM, "out of memory reading the upstream file");
		goto out;
	}
	mark = strchr(sbuf_str(&want), '\001');
	if (!mark) {
		/* {port} sat in a comment line of the template. */
		rc = st_error_set(err, ST_EUSAGE, "upstream template has {port} only in a comment");
		goto out;
	}
	plen = (size_t)(mark - sbuf_str(&want));
	suffix = mark + 1;
	if (got.len < plen || memcmp(sbuf_str(&got), sbuf_str(&want), plen) != 0) {
		rc = st_error_set(err, ST_ENOTFOUND, "upstream file does not follow the template");
		goto out;
	}
	digits = sbuf_str(&got) + plen;
	errno = 0;
	v = strtol(digits, &end, 10);
	if (end == digits || !isdigit((unsigned char)*digits)) {
		rc = st_error_set(err, ST_ENOTFOUND, "upstream file does not follow the template");
		goto out;
	}
	if (strcmp(end, suffix) != 0) {
		rc = st_error_set(err, ST_ENOTFOUND, "upstream file does not follow the template");
		goto out;
	}
	if (errno == ERANGE || v < 1 || v > 65535) {
		rc = st_error_set(err, ST_EPROTO, "upstream file names port '%.*s', not a port number",
				  (int)(end - digits), digits);
		goto out;
	}
	*port = v;
out:
	sbuf_release(&want);
	sbuf_release(&got);
	sbuf_release(&raw);
	return rc;
}

int proxy_url_with_port(const char *url, long port, char **out, struct st_error *err)
{
	const char *host, *auth_end, *at, *colon = NULL, *p;
	struct sbuf sb = SBUF_INIT;
	int rc = 0;

	*out = NULL;
	if (!strncmp(url, "http://", 7))
		host = url + 7;
	else if (!strncmp(url, "https://", 8))
		host = url + 8;
	else
		return st_error_set(err, ST_EUSAGE, "url '%s' is not http:// or https://", url);
	auth_end = host + strcspn(host, "/?#");
	for (at = NULL, p = host; p < auth_end; p++)
		if (*p == '@')
			at = p;
	if (at)
		host = at + 1;
	if (host == auth_end)
		return st_error_set(err, ST_EUSAGE, "url '%s' has no host", url);
	if (*host == '[') {
		const char *close = memchr(host, ']', (size_t)(auth_end - host));
		if (!close)
			return st_error_set(err, ST_EUSAGE, "url '%s' has an unterminated IPv6 address", url);
		if (close + 1 < auth_end && close[1] == ':')
			colon = close + 1;
	} else {
		colon = memchr(host, ':', (size_t)(auth_end - host));
	}
	if (sbuf_append(&sb, url, (size_t)((colon ? colon : auth_end) - url)) != 0 ||
	    sbuf_printf(&sb, ":%ld%s", port, auth_end) != 0) {
		rc = st_error_set(err, ST_ENOMEM, "out of memory");
		goto out;
	}
	*out = sbuf_detach(&sb);
	if (!*out)
		rc = st_error_set(err, ST_ENOMEM, "out of memory");
out:
	sbuf_release(&sb);
	return rc;
}

const char *proxy_url_path(const char *url)
{
	const char *p = strstr(url, "://");

	p = p ? p + 3 : url;
	p += strcspn(p, "/?#");
	return *p == '/' ? p : "/";
}

void proxy_parse_workers(const char *text, size_t len, struct proxy_workers *w)
{
	const char *line = text, *end = text + len;
	static const char worker[] = "nginx: worker process";

	memset(w, 0, sizeof(*w));
	while (line < end) {
		const char *nl = memchr(line, '\n', (size_t)(end - line));
		const char *le = nl ? nl : end, *p = line, *title;
		long pid = 0;

		while (p < le && isdigit((unsigned char)*p) && pid < 100000000)
			pid = pid * 10 + (*p++ - '0');
		if (p > line && p < le && *p == ' ') {
			title = p + 1;
			if ((size_t)(le - title) >= sizeof(worker) - 1 &&
			    !memcmp(title, worker, sizeof(worker) - 1)) {
				if (memmem(title, (size_t)(le - title), DRAIN_MARK, strlen(DRAIN_MARK)))
					w->draining++;
				else if (w->nactive < PROXY_WORKERS_MAX)
					w->active[w->nactive++] = pid;
				else
					w->active[PROXY_WORKERS_MAX - 1] = pid;
			}
		}
		line = nl ? nl + 1 : end;
	}
}

void proxy_log_count(const char *line, size_t len, const char *upstream, struct proxy_log_stats *st)
{
	const char *end = line + len, *q, *p;
	long status = 0;
	int digits = 0, mine = 0;

	q = memchr(line, '"', len);
	if (!q)
		return;
	/* The request ends at the '"' followed by " NNN " (nginx escapes
	 * quotes inside it as \x22). */
	for (p = q + 1; p + 5 < end; p++) {
		if (p[0] == '"' && p[1] == ' ' && isdigit((unsigned char)p[2]) &&
		    isdigit((unsigned char)p[3]) && isdigit((unsigned char)p[4]) &&
		    (p + 5 == end || p[5] == ' ')) {
			status = (p[2] - '0') * 100 + (p[3] - '0') * 10 + (p[4] - '0');
			digits = 3;
			break;
		}
	}
	if (digits != 3 || status < 100)
		return;
	if (upstream && *upstream) {
		size_t ulen = strlen(upstream);
		for (p = line; p + 9 + ulen <= end; p++) {
			if (!memcmp(p, "upstream=", 9) && (p == line || p[-1] == ' ') &&
			    !memcmp(p + 9, upstream, ulen) && (p + 9 + ulen == end || p[9 + ulen] == ' ' ||
							       p[9 + ulen] == '\n')) {
				mine = 1;
				break;
			}
		}
	}
	st->requests++;
	if (status >= 500)
		st->errors++;
	if (mine) {
		st->to_upstream++;
		if (status >= 500)
			st->errors_upstream++;
	}
}

/* ---- exec in the proxy container ---------------------------------------- */

static int collect(void *ud, const char *data, size_t len)
{
	struct sbuf *sb = ud;

	if (sb->len >= EXEC_OUTPUT_MAX)
		return 0;
	if (len > EXEC_OUTPUT_MAX - sb->len)
		len = EXEC_OUTPUT_MAX - sb->len;
	return sbuf_append(sb, data, len) == 0 ? 0 : 1;
}

/* Runs argv in the proxy; stdout and stderr together into out (bounded). */
static int proxy_exec(struct docker_client *d, const struct config_proxy *cfg, const char *const *argv,
		      struct sbuf *out, int *exit_code, struct st_error *err)
{
	return docker_exec_run(d, cfg->container, argv, NULL, NULL, collect, collect, out, exit_code, err);
}

/* First line of nginx's output that says what is wrong. */
static void first_problem(const struct sbuf *out, char *buf, size_t size)
{
	const char *s = sbuf_str(out), *line = s, *pick = NULL;
	size_t len = 0;

	while (*line) {
		const char *nl = strchr(line, '\n');
		size_t l = nl ? (size_t)(nl - line) : strlen(line);
		if (l && (memmem(line, l, "[emerg]", 7) || memmem(line, l, "[error]", 7) ||
			  memmem(line, l, "[alert]", 7) || memmem(line, l, "failed", 6))) {
			pick = line;
			len = l;
			break;
		}
		if (!pick && l) {
			pick = line;
			len = l;
		}
		line += l + (nl ? 1 : 0);
	}
	if (!pick)
		snprintf(buf, size, "no output");
	else
		snprintf(buf, size, "%.*s", (int)(len > 400 ? 400 : len), pick);
}

int proxy_validate(struct docker_client *d, const struct config_proxy *cfg, struct st_error *err)
{
	static const char *const argv[] = { "nginx", "-t", "-q", NULL };
	struct sbuf out = SBUF_INIT;
	char why[512];
	int rc, code = -1;

	rc = proxy_exec(d, cfg, argv, &out, &code, err);
	if (rc != 0) {
		st_error_wrap(err, "cannot run nginx -t in proxy '%s'", cfg->container);
		goto out;
	}
	if (code != 0) {
		first_problem(&out, why, sizeof(why));
		rc = st_error_set(err, ST_EFAILED, "proxy '%s' rejects its configuration (nginx -t exit %d): %s",
				  cfg->container, code, why);
		st_error_hint(err, "nothing was reloaded; fix the proxy's nginx configuration "
			      "(or proxy.upstream_template), then run again");
	}
out:
	sbuf_release(&out);
	return rc;
}

int proxy_reload(struct docker_client *d, const struct config_proxy *cfg, struct st_error *err)
{
	static const char *const argv[] = { "nginx", "-s", "reload", NULL };
	struct sbuf out = SBUF_INIT;
	char why[512];
	int rc, code = -1;

	rc = proxy_exec(d, cfg, argv, &out, &code, err);
	if (rc != 0) {
		st_error_wrap(err, "cannot reload proxy '%s'", cfg->container);
		goto out;
	}
	if (code != 0) {
		first_problem(&out, why, sizeof(why));
		rc = st_error_set(err, ST_EFAILED, "proxy '%s' did not reload (nginx -s reload exit %d): %s",
				  cfg->container, code, why);
		st_error_hint(err, "docker logs --tail 20 %s", cfg->container);
	}
out:
	sbuf_release(&out);
	return rc;
}

int proxy_workers(struct docker_client *d, const struct config_proxy *cfg, struct proxy_workers *w,
		  struct st_error *err)
{
	/* Process titles from /proc: the proxy image need not have ps. */
	static const char *const argv[] = {
		"sh", "-c",
		"for p in /proc/[0-9]*; do t=$(tr '\\0' ' ' < \"$p/cmdline\") && "
		"printf '%s %s\\n' \"${p#/proc/}\" \"$t\"; done 2>/dev/null; true",
		NULL
	};
	struct sbuf out = SBUF_INIT;
	int rc, code = -1;

	rc = proxy_exec(d, cfg, argv, &out, &code, err);
	if (rc != 0)
		st_error_wrap(err, "cannot list the processes of proxy '%s'", cfg->container);
	else
		proxy_parse_workers(out.buf ? out.buf : "", out.len, w);
	sbuf_release(&out);
	return rc;
}

int proxy_wait_drained(struct docker_client *d, const struct config_proxy *cfg, double timeout,
		       size_t *left, struct st_error *err)
{
	struct proxy_workers w;
	double deadline = time_monotonic() + timeout;
	size_t n = 0;
	int rc = 0;

	for (;;) {
		if ((rc = proxy_workers(d, cfg, &w, err)) != 0)
			goto out;
		n = w.draining;
		if (n == 0 || time_monotonic() >= deadline)
			break;
		time_sleep(0.1);
	}
	if (n) {
		rc = st_error_set(err, ST_ETIMEOUT,
				  "proxy '%s' still has %zu old worker%s finishing requests after %.0f s",
				  cfg->container, n, n == 1 ? "" : "s", timeout);
		st_error_hint(err, "raise proxy.drain_timeout, or look at long requests in 'docker logs %s'",
			      cfg->container);
	}
out:
	if (left)
		*left = n;
	return rc;
}

/* ---- the upstream file -------------------------------------------------- */

int proxy_read_upstream(const struct config_proxy *cfg, char **text, struct st_error *err)
{
	return text_read_file(cfg->upstream_file, 1024 * 1024, 0, "upstream file", text, NULL, err);
}

int proxy_current_port(const struct config_proxy *cfg, long *port, struct st_error *err)
{
	char *text = NULL;
	int rc;

	rc = proxy_read_upstream(cfg, &text, err);
	if (rc == 0 && (rc = proxy_upstream_port(cfg->upstream_template, cfg->upstream_host, NULL, text,
						 port, err)) != 0)
		st_error_wrap(err, "upstream file '%s'", cfg->upstream_file);
	free(text);
	return rc;
}

/* ---- requests through the proxy ----------------------------------------- */

static size_t discard_body(char *data, size_t size, size_t n, void *ud)
{
	(void)data;
	(void)ud;
	return size * n;
}

static size_t capture_header(char *data, size_t size, size_t n, void *ud)
{
	struct proxy_answer *ans = ud;
	size_t len = size * n;

	if (len > 11 && !strncasecmp(data, "X-Upstream:", 11)) {
		const char *v = data + 11;
		size_t vl = len - 11;
		while (vl && (*v == ' ' || *v == '\t')) {
			v++;
			vl--;
		}
		while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
			vl--;
		snprintf(ans->upstream, sizeof(ans->upstream), "%.*s", (int)vl, v);
	}
	return len;
}

int proxy_request(const struct config_proxy *cfg, const char *path, double timeout,
		  struct proxy_answer *ans, struct st_error *err)
{
	struct sbuf url = SBUF_INIT;
	CURL *h = NULL;
	CURLcode cc;
	double t0 = time_monotonic();
	size_t blen = strlen(cfg->url);
	int rc = 0;

	memset(ans, 0, sizeof(*ans));
	if ((rc = http_global_init(err)) != 0)
		goto out;
	while (blen && cfg->url[blen - 1] == '/')
		blen--;
	if (sbuf_append(&url, cfg->url, blen) != 0 ||
	    sbuf_puts(&url, path && *path == '/' ? path : "/") != 0 ||
	    (path && *path && *path != '/' && sbuf_puts(&url, path) != 0)) {
		rc = st_error_set(err, ST_ENOMEM, "out of memory");
		goto out;
	}
	h = curl_easy_init();
	if (!h) {
		rc = st_error_set(err, ST_ENOMEM, "cannot create a curl handle");
		goto out;
	}
	curl_easy_setopt(h, CURLOPT_URL, sbuf_str(&url));
	curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_FORBID_REUSE, 1L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)(timeout * 1000.0 > 1 ? timeout * 1000.0 : 1));
	curl_easy_setopt(h, CURLOPT_USERAGENT, "spilttea-ops-proxy-check");
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard_body);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, capture_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, ans);
	cc = curl_easy_perform(h);
	ans->latency = time_monotonic() - t0;
	if (cc != CURLE_OK) {
		snprintf(ans->error, sizeof(ans->error), "%s", curl_easy_strerror(cc));
		rc = st_error_set(err, cc == CURLE_OPERATION_TIMEDOUT ? ST_ETIMEOUT : ST_ESERVICE,
				  "no answer from proxy at '%s': %s", cfg->url, ans->error);
		goto out;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &ans->status);
out:
	if (h)
		curl_easy_cleanup(h);
	sbuf_release(&url);
	return rc;
}

/* ---- switching ---------------------------------------------------------- */

/* Reloads and waits (up to timeout) until every worker that ran before
 * the reload has stopped taking connections: until then an old worker may
 * still route a new connection to the old upstream. */
static int reload_settled(struct docker_client *d, const struct config_proxy *cfg, double timeout,
			  struct st_error *err)
{
	struct proxy_workers before, now;
	double deadline;
	size_t i, j, old;
	int rc;

	if ((rc = proxy_workers(d, cfg, &before, err)) != 0 || (rc = proxy_reload(d, cfg, err)) != 0)
		return rc;
	deadline = time_monotonic() + timeout;
	for (;;) {
		if ((rc = proxy_workers(d, cfg, &now, err)) != 0)
			return rc;
		for (old = 0, i = 0; i < now.nactive; i++)
			for (j = 0; j < before.nactive; j++)
				if (now.active[i] == before.active[j])
					old++;
		if (!old)
			return 0;
		if (time_monotonic() >= deadline) {
			st_error_set(err, ST_ETIMEOUT,
				     "proxy '%s' still runs %zu worker%s from before the reload %.0f s after it",
				     cfg->container, old, old == 1 ? "" : "s", timeout);
			return st_error_hint(err, "docker logs --tail 20 %s", cfg->container);
		}
		time_sleep(0.02);
	}
}

/* Puts the previous upstream back (or removes the new file when there was
 * none) and reloads; best effort: failures are appended to err's message. */
static void switch_back(struct docker_client *d, const struct config_proxy *cfg, const char *previous,
			struct st_error *err)
{
	struct st_error e2 = { 0 };
	int rc;

	if (previous)
		rc = atomic_file_write_all(cfg->upstream_file, previous, strlen(previous), 0644, &e2);
	else
		rc = unlink(cfg->upstream_file) == 0 || errno == ENOENT ? 0 :
			st_error_set(&e2, ST_EIO, "cannot remove '%s': %s", cfg->upstream_file, strerror(errno));
	if (rc == 0 && previous)
		rc = proxy_validate(d, cfg, &e2);
	if (rc == 0 && previous)
		rc = reload_settled(d, cfg, 10, &e2);
	if (rc != 0) {
		size_t len = strlen(err->message);
		snprintf(err->message + len, sizeof(err->message) - len,
			 "; putting the previous upstream back failed too: %s", e2.message);
	}
}

/* The confirmation's probe (container_wait): one request through the
 * proxy. */
struct confirm {
	const struct config_proxy *cfg;
	const char *path;
	char want[160];                 /* "host:port" of the new upstream */
	struct proxy_switch_result *res;
};

static enum container_probe_verdict confirm_probe(void *ud, double timeout, struct container_wait_report *r)
{
	struct confirm *c = ud;
	struct proxy_answer ans;
	struct st_error e2 = { 0 };

	if (proxy_request(c->cfg, c->path, timeout < 2 ? timeout : 2, &ans, &e2) != 0) {
		c->res->last_status = 0;
		snprintf(c->res->last_upstream, sizeof(c->res->last_upstream), "%.120s", ans.error);
		snprintf(r->answer, sizeof(r->answer), "proxy '%s' did not answer at '%s'", c->cfg->container,
			 c->cfg->url);
		text_copy(r->body, sizeof(r->body), ans.error);
		return CONTAINER_PROBE_NO_ANSWER;
	}
	c->res->last_status = ans.status;
	r->http_status = ans.status;
	snprintf(c->res->last_upstream, sizeof(c->res->last_upstream), "%s", ans.upstream);
	if (ans.status >= 200 && ans.status < 300 && (!ans.upstream[0] || !strcmp(ans.upstream, c->want))) {
		c->res->confirmed_by_header = ans.upstream[0] != 0;
		return CONTAINER_PROBE_OK;
	}
	if (!strcmp(ans.upstream, c->want)) {
		/* The new upstream itself answers errors (it died, or refuses):
		 * no point waiting for the timeout. */
		snprintf(r->answer, sizeof(r->answer), "proxy '%s' answered %ld from the new upstream %s",
			 c->cfg->container, ans.status, c->want);
		return CONTAINER_PROBE_BAD;
	}
	/* An old worker, or an answer that names no upstream: not yet. */
	snprintf(r->answer, sizeof(r->answer), "proxy '%s' answered %ld from '%s' (not 2xx from %s)",
		 c->cfg->container, ans.status, ans.upstream[0] ? ans.upstream : "an unnamed upstream", c->want);
	return CONTAINER_PROBE_NO_ANSWER;
}

int proxy_switch(struct docker_client *d, const struct config_proxy *cfg, long port,
		 const char *container, const char *path, double timeout, volatile sig_atomic_t *cancel,
		 struct proxy_switch_result *res, struct st_error *err)
{
	struct proxy_switch_result local;
	struct sbuf text = SBUF_INIT;
	struct container_wait_opts wo;
	struct container_wait_report *wr = NULL;
	struct confirm c;
	char *previous = NULL;
	char header[256], stamp[40];
	double deadline;
	int rc;

	if (!res)
		res = &local;
	memset(res, 0, sizeof(*res));
	rc = proxy_read_upstream(cfg, &previous, err);
	if (rc == ST_ENOTFOUND) {
		st_error_clear(err);
		rc = 0;
	} else if (rc != 0) {
		goto out;
	} else {
		res->had_previous = 1;
		if (proxy_upstream_port(cfg->upstream_template, cfg->upstream_host, NULL, previous,
					&res->previous_port, NULL) != 0)
			res->previous_port = 0;
	}
	snprintf(header, sizeof(header), "written by spilttea-ops at %s: %s on port %ld",
		 time_format_rfc3339(time_wall(), stamp, sizeof(stamp)), container ? container : "service",
		 port);
	if ((rc = proxy_render_upstream(cfg->upstream_template, header, cfg->upstream_host, port, container,
					&text, err)) != 0)
		goto out;
	if ((rc = atomic_file_write_all(cfg->upstream_file, sbuf_str(&text), text.len, 0644, err)) != 0) {
		st_error_wrap(err, "cannot switch proxy '%s'", cfg->container);
		goto out;
	}
	res->t_written = time_monotonic();
	/* Until the workers from before the reload stop taking connections,
	 * an answer from the new upstream proves nothing. */
	deadline = time_monotonic() + timeout;
	if ((rc = proxy_validate(d, cfg, err)) != 0 || (rc = reload_settled(d, cfg, timeout, err)) != 0) {
		switch_back(d, cfg, previous, err);
		goto out;
	}
	res->t_reloaded = time_monotonic();

	/* The proxy answers 2xx from the new upstream: the one waiter
	 * (container.h) with a probe through the proxy and no container. */
	memset(&c, 0, sizeof(c));
	c.cfg = cfg;
	c.path = path;
	c.res = res;
	snprintf(c.want, sizeof(c.want), "%s:%ld", cfg->upstream_host, port);
	memset(&wo, 0, sizeof(wo));
	wo.probe = confirm_probe;
	wo.probe_ud = &c;
	wo.timeout_s = deadline - time_monotonic() > 0.05 ? deadline - time_monotonic() : 0.05;
	wo.interval_s = 0.05;
	wo.cancel = cancel;
	wo.fail_after = PROXY_SWITCH_FAIL_AFTER;
	if (!(wr = calloc(1, sizeof(*wr)))) {
		rc = st_error_set(err, ST_ENOMEM, "out of memory");
		switch_back(d, cfg, previous, err);
		goto out;
	}
	rc = container_wait(NULL, NULL, &wo, wr, err);
	if (rc == 0) {
		res->t_confirmed = time_monotonic();
	} else {
		if (rc == ST_ETIMEOUT && res->last_status == 0)
			st_error_set(err, ST_ETIMEOUT, "proxy '%s' did not answer at '%s' within %.0f s of the switch "
				     "to %s: %s", cfg->container, cfg->url, timeout, c.want, res->last_upstream);
		else if (rc == ST_ETIMEOUT)
			st_error_set(err, ST_ETIMEOUT, "proxy '%s' answered %ld from '%s' (not 2xx from %s) %.0f s "
				     "after the switch", cfg->container, res->last_status,
				     res->last_upstream[0] ? res->last_upstream : "an unnamed upstream", c.want, timeout);
		else if (rc == ST_EABORTED)
			st_error_set(err, ST_EABORTED, "interrupted while confirming the switch of proxy '%s' to %s",
				     cfg->container, c.want);
		else if (rc == ST_EFAILED)
			st_error_wrap(err, "after the switch");
		switch_back(d, cfg, previous, err);
	}
out:
	free(wr);
	free(previous);
	sbuf_release(&text);
	return rc;
}

#include "http.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "failfast.h"
#include "redact.h"
#include "text.h"
#include "timeutil.h"
#include "version.h"

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_OK;

static void global_init_once(void)
{
	global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int http_global_init(struct st_error *err)
{
	pthread_once(&global_once, global_init_once);
	if (global_rc != CURLE_OK)
		return st_error_set(err, ST_ESERVICE, "cannot initialise libcurl: %s", curl_easy_strerror(global_rc));
	return 0;
}

/* What a URL libcurl cannot parse may show: without what looks like
 * user:password@ and without ?query or #fragment, on one line. */
static void rough_url(const char *url, char *out, size_t size)
{
	char *shown = redact_url(url, REDACT_URL_NO_USERINFO | REDACT_URL_NO_QUERY);

	if (shown)
		text_one_line(out, size, shown, strlen(shown), 0);
	else
		text_copy(out, size, "(a URL)");
	free(shown);
}

/* The URL as messages may show it: scheme://host[:port] plus, unless
 * host_only, the path; never user:password or the query. ST_EUSAGE when
 * url is not an http(s) URL (out then holds rough_url's form). */
static int safe_url(const char *url, int host_only, char *out, size_t size, struct st_error *err)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL;
	int rc = 0;

	out[0] = '\0';
	if (!u)
		return st_error_set(err, ST_ENOMEM, "out of memory");
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK) {
		if (!host_only)
			rough_url(url, out, size);
		rc = st_error_set(err, ST_EUSAGE, "%s%.200s%s is not a valid http(s) URL", host_only ? "" : "'",
				  host_only ? "the webhook URL" : out, host_only ? "" : "'");
		goto out;
	}
	if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0) {
		rc = st_error_set(err, ST_EUSAGE, "'%.32s' URLs are not supported, only http and https", scheme);
		goto out;
	}
	if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
		if (!host_only)
			rough_url(url, out, size);
		rc = st_error_set(err, ST_EUSAGE, "%s%.200s%s has no host", host_only ? "" : "'",
				  host_only ? "the webhook URL" : out, host_only ? "" : "'");
		goto out;
	}
	if (curl_url_get(u, CURLUPART_PORT, &port, 0) != CURLUE_OK)
		port = NULL;
	if (host_only || curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK)
		path = NULL;
	snprintf(out, size, "%s://%s%s%s%s", scheme, host, port ? ":" : "", port ? port : "",
		 path && strcmp(path, "/") != 0 ? path : "");
out:
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_free(path);
	curl_url_cleanup(u);
	return rc;
}

struct collector {
	char *buf;
	size_t len;
	size_t max;
	int truncated;
	int nomem;
};

static size_t collect(char *data, size_t size, size_t nmemb, void *ud)
{
	struct collector *c = ud;
	size_t n = size * nmemb, room;

	if (!c->buf) {
		c->buf = malloc(c->max + 1);
		if (!c->buf) {
			c->nomem = 1;
			return 0;
		}
	}
	room = c->max - c->len;
	if (n > room) {
		/* Keep what fits and stop the transfer: the status is known, the
		 * rest is not ours to wait for. */
		memcpy(c->buf + c->len, data, room);
		c->len += room;
		c->buf[c->len] = '\0';
		c->truncated = 1;
		return 0;
	}
	memcpy(c->buf + c->len, data, n);
	c->len += n;
	c->buf[c->len] = '\0';
	return n;
}

/* One line, lowercased first word, from a curl failure. */
static void failure_reason(CURL *h, CURLcode cc, const char *errbuf, char *out, size_t size)
{
	long os_errno = 0;
	char ebuf[128];
	const char *why;

	curl_easy_getinfo(h, CURLINFO_OS_ERRNO, &os_errno);
	if (cc == CURLE_COULDNT_CONNECT && os_errno)
		why = strerror_r((int)os_errno, ebuf, sizeof(ebuf));
	else if (cc == CURLE_COULDNT_RESOLVE_HOST)
		why = "cannot resolve the host name";
	else if (cc == CURLE_GOT_NOTHING)
		why = "the server closed the connection without answering";
	else
		why = errbuf[0] ? errbuf : curl_easy_strerror(cc);
	text_one_line(out, size, why, strlen(why), TEXT_FIRST_LINE | TEXT_LOWER_FIRST);
}

/*
 * Runs one request. post_body NULL: GET. Fills status, latency, the kept
 * body (collector), content type. Returns 0 when a response arrived; else
 * the error code with err (and reason) filled, shown URL being shown.
 */
static int perform(const char *url, const char *shown, const char *post_body, double timeout_s,
		   struct collector *body, long *status, double *latency_s, char *content_type, size_t ct_size,
		   char *reason, size_t reason_size, struct st_error *err)
{
	char errbuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *headers = NULL;
	CURL *h = NULL;
	CURLcode cc;
	curl_off_t total_us = 0;
	double start;
	long timeout_ms;
	char *ct = NULL;
	int rc = 0;

	*status = 0;
	*latency_s = 0;
	if (content_type)
		content_type[0] = '\0';
	reason[0] = '\0';
	rc = http_global_init(err);
	if (rc)
		goto out;
	h = curl_easy_init();
	if (!h) {
		rc = st_error_set(err, ST_ENOMEM, "cannot create a curl handle");
		goto out;
	}
	timeout_ms = timeout_s > 0 ? (long)(timeout_s * 1000.0 + 0.5) : 5000;
	if (timeout_ms < 1)
		timeout_ms = 1;
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(h, CURLOPT_PROXY, "");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "spilttea-ops/" ST_VERSION);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, body);
	if (post_body) {
		headers = curl_slist_append(headers, "Content-Type: application/json");
		if (!headers) {
			rc = st_error_set(err, ST_ENOMEM, "out of memory");
			goto out;
		}
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, post_body);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(post_body));
	}

	start = time_monotonic();
	cc = curl_easy_perform(h);
	*latency_s = time_monotonic() - start;
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
	if (cc == CURLE_WRITE_ERROR && body->truncated)
		cc = CURLE_OK;
	if (body->nomem) {
		rc = st_error_set(err, ST_ENOMEM, "out of memory");
		goto out;
	}
	if (cc != CURLE_OK) {
		failure_reason(h, cc, errbuf, reason, reason_size);
		if (cc == CURLE_OPERATION_TIMEDOUT) {
			snprintf(reason, reason_size, "no response within %gs", timeout_s > 0 ? timeout_s : 5.0);
			rc = st_error_set(err, ST_ETIMEOUT, "request to '%s' failed: %s", shown, reason);
		} else {
			rc = st_error_set(err, ST_ESERVICE, "request to '%s' failed: %s", shown, reason);
		}
		/* Refused, no route, or not even a status line in time. */
		if (cc == CURLE_COULDNT_CONNECT || (cc == CURLE_OPERATION_TIMEDOUT && *status == 0))
			st_error_mark_unreachable(err);
		*status = 0;
		goto out;
	}
	if (!body->truncated && curl_easy_getinfo(h, CURLINFO_TOTAL_TIME_T, &total_us) == CURLE_OK && total_us > 0)
		*latency_s = (double)total_us / 1e6;
	if (content_type && curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct)
		snprintf(content_type, ct_size, "%s", ct);
out:
	curl_slist_free_all(headers);
	if (h)
		curl_easy_cleanup(h);
	return rc;
}

int http_probe(const char *url, double timeout_s, const char *expect_body, struct http_result *res,
	       struct st_error *err)
{
	struct collector body = { NULL, 0, HTTP_BODY_MAX, 0, 0 };
	int rc;

	memset(res, 0, sizeof(*res));
	res->match = expect_body ? HTTP_MATCH_MISSING : HTTP_MATCH_NOT_ASKED;
	rc = safe_url(url, 0, res->url, sizeof(res->url), err);
	if (rc) {
		const char *why = err ? err->message : "invalid URL";
		size_t n = strnlen(why, sizeof(res->error) - 1);

		memcpy(res->error, why, n);
		res->error[n] = '\0';
		goto out;
	}
	rc = perform(url, res->url, NULL, timeout_s, &body, &res->status, &res->latency_s, res->content_type,
		     sizeof(res->content_type), res->error, sizeof(res->error), err);
	if (rc == 0 && expect_body && body.buf && memmem(body.buf, body.len, expect_body, strlen(expect_body)))
		res->match = HTTP_MATCH_FOUND;
	if (rc == 0 && expect_body && !*expect_body)
		res->match = HTTP_MATCH_FOUND;
out:
	if (!body.buf)
		body.buf = calloc(1, 1);
	res->body = body.buf;
	res->body_len = body.buf ? body.len : 0;
	res->body_truncated = body.truncated;
	if (!res->body && rc == 0)
		rc = st_error_set(err, ST_ENOMEM, "out of memory");
	return rc;
}

/* "host:port" of an http(s) URL, the port defaulted from the scheme;
 * 0, or -1 when url does not parse. */
static int url_target(const char *url, char *out, size_t size)
{
	CURLU *u = curl_url();
	char *host = NULL, *port = NULL;
	int rc = -1;

	if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK &&
	    (size_t)snprintf(out, size, "%s:%s", host, port) < size)
		rc = 0;
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
	return rc;
}

void http_down_reset(struct http_down_set *set, int on)
{
	memset(set, 0, sizeof(*set));
	set->on = on;
}

static struct http_down *down_find(struct http_down_set *set, const char *target)
{
	size_t i;

	for (i = 0; i < set->n; i++)
		if (!strcmp(set->items[i].target, target))
			return &set->items[i];
	return NULL;
}

/* Remembers a probe of target that failed with err (reason: its
 * res->error) when it got no answer at all. d: target's entry or NULL. */
static void down_note(struct http_down_set *set, struct http_down *d, const char *target,
		      const struct st_error *err, const char *reason)
{
	if (!err || !err->unreachable)
		return;
	if (!d && set->n < HTTP_DOWN_MAX) {
		d = &set->items[set->n++];
		st_down_reset(&d->down, 1);
		text_copy(d->target, sizeof(d->target), target);
	}
	if (d && !d->down.first.code) {
		st_down_note(&d->down, err);
		text_copy(d->reason, sizeof(d->reason), reason);
	}
}

int http_probe_failfast(struct http_down_set *set, const char *url, double timeout_s, const char *expect_body,
			struct http_result *res, struct st_error *err)
{
	struct http_down *d;
	char target[sizeof(d->target)], why[sizeof(d->target) + sizeof(d->reason) + 16];
	int rc;

	if (!set || !set->on || url_target(url, target, sizeof(target)))
		return http_probe(url, timeout_s, expect_body, res, err);
	d = down_find(set, target);
	if (d && d->down.first.code) {
		/* As a probe without an answer, without asking again. */
		memset(res, 0, sizeof(*res));
		res->match = expect_body ? HTTP_MATCH_MISSING : HTTP_MATCH_NOT_ASKED;
		safe_url(url, 0, res->url, sizeof(res->url), NULL);
		snprintf(why, sizeof(why), "%s unreachable: %s", target, d->reason);
		text_copy(res->error, sizeof(res->error), why);
		res->body = calloc(1, 1);
		return res->body ? st_down_check(&d->down, target, err) : st_error_set(err, ST_ENOMEM, "out of memory");
	}
	rc = http_probe(url, timeout_s, expect_body, res, err);
	if (rc)
		down_note(set, d, target, err, res->error);
	return rc;
}

struct ahead {
	const char *url;
	double timeout_s;
	char target[sizeof(((struct http_down *)0)->target)];
	struct http_result res;
	struct st_error err;
	pthread_t thread;
	int started;
};

static void *ahead_main(void *arg)
{
	struct ahead *a = arg;

	http_probe(a->url, a->timeout_s, NULL, &a->res, &a->err);
	return NULL;
}

void http_probe_ahead(struct http_down_set *set, const char *const *urls, const double *timeouts_s, size_t n)
{
	struct ahead a[HTTP_DOWN_MAX];
	size_t i, j, k = 0;

	if (!set || !set->on)
		return;
	memset(a, 0, sizeof(a));
	for (i = 0; i < n && k < HTTP_DOWN_MAX; i++) {
		if (url_target(urls[i], a[k].target, sizeof(a[k].target)) || down_find(set, a[k].target))
			continue;
		for (j = 0; j < k && strcmp(a[j].target, a[k].target); j++)
			;
		if (j < k)
			continue;
		a[k].url = urls[i];
		a[k].timeout_s = timeouts_s[i];
		a[k].started = pthread_create(&a[k].thread, NULL, ahead_main, &a[k]) == 0;
		k++;
	}
	for (i = 0; i < k; i++) {
		if (a[i].started) {
			pthread_join(a[i].thread, NULL);
			down_note(set, down_find(set, a[i].target), a[i].target, &a[i].err, a[i].res.error);
		}
		http_result_release(&a[i].res);
	}
}

void http_result_release(struct http_result *res)
{
	if (!res)
		return;
	free(res->body);
	memset(res, 0, sizeof(*res));
}

int http_post_json(const char *url, const char *body, double timeout_s, long *status, struct st_error *err)
{
	struct collector reply = { NULL, 0, 4096, 0, 0 };
	char shown[300], reason[256], ct[8];
	long st = 0;
	double latency;
	int rc;

	if (status)
		*status = 0;
	rc = safe_url(url, 1, shown, sizeof(shown), err);
	if (rc)
		goto out;
	rc = perform(url, shown, body ? body : "", timeout_s, &reply, &st, &latency, ct, sizeof(ct), reason,
		     sizeof(reason), err);
	if (status)
		*status = st;
	if (rc)
		goto out;
	if (st < 200 || st > 299) {
		char snippet[201] = "";

		if (reply.buf) {
			snprintf(snippet, sizeof(snippet), "%s", reply.buf);
			snippet[strcspn(snippet, "\r\n")] = '\0';
		}
		rc = st_error_set(err, ST_ESERVICE, "'%s' answered %ld%s%s", shown, st, snippet[0] ? ": " : "",
				  snippet);
		if (err)
			err->http_status = (int)st;
	}
out:
	free(reply.buf);
	return rc;
}

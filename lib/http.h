/*
 * http.h - HTTP probes and JSON posts over libcurl, for health checks,
 * incident snapshots and webhooks.
 *
 * Every call uses its own curl handle, so probes may run concurrently from
 * several threads. libcurl's global state must be set up before the first
 * thread starts: main() calls http_global_init() once at start-up (the
 * functions below also call it, which is safe only while one thread runs).
 *
 * No proxy from the environment (http_proxy/NO_PROXY are ignored), no
 * redirects followed, no signals (safe with threads), http and https only.
 * Messages show the URL without user:password and without the query
 * string; http_post_json() shows scheme and host only, since webhook URLs
 * carry their secret in the path.
 */
#ifndef ST_HTTP_H
#define ST_HTTP_H

#include <stddef.h>

#include "error.h"
#include "failfast.h"

/* Bytes of response body kept by http_probe(). */
#define HTTP_BODY_MAX (64 * 1024)

/* Calls curl_global_init() once per process (pthread_once). 0, or
 * ST_ESERVICE when libcurl cannot initialise. */
int http_global_init(struct st_error *err);

enum http_match {
	HTTP_MATCH_NOT_ASKED = 0,    /* no expected substring given */
	HTTP_MATCH_FOUND,
	HTTP_MATCH_MISSING,          /* not in the kept body (or no response) */
};

struct http_result {
	long status;                 /* HTTP status, 0 when no response arrived */
	double latency_s;            /* request start to end of response (or to the failure) */
	char *body;                  /* first HTTP_BODY_MAX bytes, NUL-terminated (never NULL after a
				      * call); caller frees with http_result_release() */
	size_t body_len;
	int body_truncated;          /* 1 when the body was longer and the transfer stopped there */
	char content_type[128];      /* "" when absent */
	enum http_match match;
	char error[256];             /* why no response arrived; "" when one did */
	char url[512];               /* the URL as messages show it: no user:password,
				      * no query (scheme://host[:port]/path) */
};

/*
 * GET url with a total deadline of timeout_s (connect included). Returns 0
 * when a response arrived, whatever its status (a 500 is a result, not an
 * error). When none did (refused, timed out, bad host) returns
 * ST_ETIMEOUT or ST_ESERVICE with err filled, and res still holds the
 * latency, match MISSING if a substring was expected, and the reason in
 * res->error. ST_EUSAGE for a URL that is not http(s). expect_body (may be
 * NULL) is searched for in the kept body. Release res in every case.
 */
int http_probe(const char *url, double timeout_s, const char *expect_body, struct http_result *res,
	       struct st_error *err);

/*
 * Fail fast for the probes of one run (diagnose, services_set_fail_fast):
 * once a probe of a host:port got no answer at all (refused, no route, no
 * status line within its timeout), later probes of that host:port in the
 * run are not sent, whatever their path or timeout: a peer silent for one
 * timeout counts as dead for the rest of the run. One thread only.
 */
#define HTTP_DOWN_MAX 8

struct http_down {
	char target[300];            /* "127.0.0.1:4001" */
	char reason[256];            /* the first probe's res->error */
	struct st_down down;
};

struct http_down_set {
	int on;
	struct http_down items[HTTP_DOWN_MAX]; /* the host:ports found dead; more are not remembered */
	size_t n;
};

/* Turns fail fast on or off; either way forgets what was learnt. */
void http_down_reset(struct http_down_set *set, int on);

/* http_probe(), remembering in set (NULL or off: plain http_probe). A
 * probe of a host:port found dead earlier returns at once ST_EUNREACHABLE,
 * "<host:port> unreachable: <the first probe's error>" with res as for no
 * response (status 0, res->error "<host:port> unreachable: <its reason>").
 * Release res in every case. */
int http_probe_failfast(struct http_down_set *set, const char *url, double timeout_s, const char *expect_body,
			struct http_result *res, struct st_error *err);

/* For a run that probes several host:ports one after another (diagnose):
 * probes urls[i] (timeouts_s[i]) all at once, one thread each (the first
 * URL of each host:port, at most HTTP_DOWN_MAX), and remembers in set
 * those that got no answer, so their probes then fail at once: dead peers
 * cost one timeout together instead of one each in turn. Answers are not
 * kept. Returns when the last one answered or timed out. Nothing when set
 * is NULL or off. http_global_init() must have run. */
void http_probe_ahead(struct http_down_set *set, const char *const *urls, const double *timeouts_s, size_t n);

/* NULL-safe; frees the body and zeroes res. */
void http_result_release(struct http_result *res);

/*
 * POSTs body (a JSON text) with Content-Type: application/json. *status
 * (may be NULL) gets the HTTP status, 0 when no response. 0 for a 2xx;
 * otherwise ST_ESERVICE with err->http_status set and the start of the
 * response body in the message, or ST_ETIMEOUT / ST_ESERVICE when no
 * response arrived.
 */
int http_post_json(const char *url, const char *body, double timeout_s, long *status, struct st_error *err);

#endif

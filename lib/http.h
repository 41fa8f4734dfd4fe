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

/*
 * accesslog.h - client addresses in web server access logs, for counting
 * requests per IP (runbook "Rate Limit Exceeded / DDoS": the "top IPs" awk
 * pipeline) and for checking an address before it is blocked.
 *
 * Recognised lines (everything else is "not a request" and skipped):
 *
 *   Common Log Format   1.2.3.4 - user [27/Nov/2026:22:41:31 +0000] "GET / HTTP/1.1" 200 15
 *   combined            ... 200 15 "referer" "user agent"
 *   nginx main + XFF    ... 200 15 "referer" "user agent" "203.0.113.7, 10.0.0.2" rt=0.000412
 *
 * The client is the first field (the peer that connected). The
 * X-Forwarded-For field is believed only when that peer is a trusted proxy:
 * then the client is the right-most address in it that is not itself a
 * trusted proxy (addresses to its left were written by the client and can
 * be forged). Without trusted proxies the header is ignored, so nobody can
 * hide behind a made-up X-Forwarded-For.
 *
 * Pure: no I/O.
 */
#ifndef ST_ACCESSLOG_H
#define ST_ACCESSLOG_H

#include <stddef.h>

#include "error.h"

#define ACCESSLOG_IP_MAX 46   /* INET6_ADDRSTRLEN */

/* A network: an address and a prefix length. */
struct accesslog_net {
	int family;                  /* AF_INET or AF_INET6 */
	unsigned char addr[16];
	int prefix;                  /* 32 / 128 for a single address */
};

struct accesslog_trust {
	struct accesslog_net *nets;  /* owned */
	size_t n;
};

#define ACCESSLOG_TRUST_INIT { NULL, 0 }

/* Parses addresses and networks ("10.0.0.1", "10.0.0.0/8", "fd00::/8").
 * *out: release with accesslog_trust_release(). ST_EUSAGE naming the bad
 * item, ST_ENOMEM. */
int accesslog_trust_parse(const char *const *items, size_t n, struct accesslog_trust *out,
			  struct st_error *err);
void accesslog_trust_release(struct accesslog_trust *t);

/* 1 when the address text ip lies in one of the networks. */
int accesslog_trust_contains(const struct accesslog_trust *t, const char *ip);

/*
 * Strict address check: an IPv4 dotted quad (four decimal parts 0-255, no
 * leading zeros, nothing around it) or an IPv6 address (no zone, no
 * brackets, no port). Writes the canonical text (inet_ntop) into out when
 * out is not NULL. Returns AF_INET or AF_INET6, or 0 when text is not an
 * address.
 */
int accesslog_ip_parse(const char *text, char *out, size_t size);

/* What one access line says. */
struct accesslog_request {
	char client[ACCESSLOG_IP_MAX];  /* canonical: the peer, or from X-Forwarded-For */
	char peer[ACCESSLOG_IP_MAX];    /* the first field */
	int forwarded;                  /* client came from X-Forwarded-For */
	char method[16];                /* "GET", or "-" for a request line nginx could not read */
	int status;                     /* HTTP status */
};

/* Parses one line (len bytes, need not be NUL-terminated). 1 when it is an
 * access line (out filled), 0 when not. trust may be NULL (none). */
int accesslog_parse_line(const char *line, size_t len, const struct accesslog_trust *trust,
			 struct accesslog_request *out);

/* ---- counting ------------------------------------------------------------ */

struct accesslog_count {
	char ip[ACCESSLOG_IP_MAX];
	unsigned long long count;
};

struct accesslog_counter;

/* *out: caller frees with accesslog_counter_free(). 0 or ST_ENOMEM. */
int accesslog_counter_new(struct accesslog_counter **out, struct st_error *err);
void accesslog_counter_free(struct accesslog_counter *c);

/* Counts one request from ip. 0 or ST_ENOMEM. */
int accesslog_counter_add(struct accesslog_counter *c, const char *ip, struct st_error *err);

unsigned long long accesslog_counter_total(const struct accesslog_counter *c);
size_t accesslog_counter_distinct(const struct accesslog_counter *c);

/* The limit busiest addresses (limit 0: all), most requests first, ties by
 * address text. *out: caller frees (free()); *n its length. */
int accesslog_counter_top(const struct accesslog_counter *c, size_t limit,
			  struct accesslog_count **out, size_t *n, struct st_error *err);

#endif

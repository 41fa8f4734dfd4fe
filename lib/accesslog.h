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

/*
 * Requests per client in bounded memory, whatever the logs hold (a flood
 * from millions of addresses): the Space-Saving heavy-hitter summary
 * (Metwally et al.) tracks at most `capacity` clients. While no more than
 * that many were seen, counts are exact. After that, a new client takes
 * the place of the least counted one and inherits its count as an upper
 * bound of its error: every count is at least the true one and at most
 * total / capacity above it (error says by how much at most), and any
 * client with more than total / capacity requests is among those tracked.
 * The hash table is keyed with a random value, so lines cannot be made to
 * collide. The number of distinct clients is exact while counts are, and a
 * HyperLogLog estimate (about 2 %) after.
 *
 * Clients are counted per IPv4 address (an IPv4-mapped IPv6 address is its
 * IPv4 address) and per IPv6 /64 ("2001:db8:1:2::/64"): one host holds a
 * whole /64 to rotate through.
 */
#define ACCESSLOG_KEY_MAX (ACCESSLOG_IP_MAX + 4)   /* an address or "PREFIX::/64" */
#define ACCESSLOG_COUNTER_CAPACITY 4096

struct accesslog_count {
	char ip[ACCESSLOG_KEY_MAX];
	unsigned long long count;
	unsigned long long error;      /* count may be this much above the true one */
};

struct accesslog_counter;

/* *out: caller frees with accesslog_counter_free(). 0 or ST_ENOMEM.
 * accesslog_counter_new() tracks ACCESSLOG_COUNTER_CAPACITY clients. */
int accesslog_counter_new(struct accesslog_counter **out, struct st_error *err);
int accesslog_counter_new_bounded(size_t capacity, struct accesslog_counter **out, struct st_error *err);
void accesslog_counter_free(struct accesslog_counter *c);

/* Counts one request from ip (an address as accesslog_parse_line gives
 * it). 0 (it allocates nothing). */
int accesslog_counter_add(struct accesslog_counter *c, const char *ip, struct st_error *err);

unsigned long long accesslog_counter_total(const struct accesslog_counter *c);
/* Distinct clients: exact, or an estimate once !accesslog_counter_exact(). */
size_t accesslog_counter_distinct(const struct accesslog_counter *c);
/* 1 while every client seen is tracked (counts exact). */
int accesslog_counter_exact(const struct accesslog_counter *c);
/* Clients tracked now (at most the capacity). */
size_t accesslog_counter_tracked(const struct accesslog_counter *c);

/* The limit busiest clients (limit 0: all tracked), most requests first,
 * ties by client text. *out: caller frees (free()); *n its length. */
int accesslog_counter_top(const struct accesslog_counter *c, size_t limit,
			  struct accesslog_count **out, size_t *n, struct st_error *err);

#endif

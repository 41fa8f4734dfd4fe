/*
 * accesslog.c - access log lines, trusted proxies, and a per-address
 * counter (open addressing; a flood from many addresses stays linear).
 */
#include "accesslog.h"

#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* ---- addresses ----------------------------------------------------------- */

static int parse_v4_strict(const char *s, unsigned char out[4])
{
	int part = 0;

	while (part < 4) {
		unsigned v = 0;
		int digits = 0;

		if (*s == '0' && s[1] >= '0' && s[1] <= '9')
			return -1; /* "010" reads as octal to some tools, as decimal to others */
		while (*s >= '0' && *s <= '9') {
			v = v * 10 + (unsigned)(*s - '0');
			if (++digits > 3 || v > 255)
				return -1;
			s++;
		}
		if (!digits)
			return -1;
		out[part++] = (unsigned char)v;
		if (part < 4) {
			if (*s != '.')
				return -1;
			s++;
		}
	}
	return *s ? -1 : 0;
}

int accesslog_ip_parse(const char *text, char *out, size_t size)
{
	unsigned char addr[16];
	char buf[ACCESSLOG_IP_MAX];
	int family;

	if (!text || !*text || strlen(text) >= ACCESSLOG_IP_MAX)
		return 0;
	if (strchr(text, ':')) {
		if (strpbrk(text, "%[]/ ") || inet_pton(AF_INET6, text, addr) != 1)
			return 0;
		family = AF_INET6;
	} else {
		if (parse_v4_strict(text, addr) != 0)
			return 0;
		family = AF_INET;
	}
	if (out && size) {
		if (!inet_ntop(family, addr, buf, sizeof(buf)))
			return 0;
		if (strlen(buf) >= size)
			return 0;
		strcpy(out, buf);
	}
	return family;
}

/* Address bytes of canonical or strict text; family or 0. */
static int ip_bytes(const char *text, unsigned char addr[16])
{
	int family = accesslog_ip_parse(text, NULL, 0);

	memset(addr, 0, 16);
	if (family == AF_INET6)
		return inet_pton(AF_INET6, text, addr) == 1 ? AF_INET6 : 0;
	if (family == AF_INET)
		return parse_v4_strict(text, addr) == 0 ? AF_INET : 0;
	return 0;
}

int accesslog_trust_parse(const char *const *items, size_t n, struct accesslog_trust *out,
			  struct st_error *err)
{
	size_t i;

	out->nets = NULL;
	out->n = 0;
	if (n == 0)
		return 0;
	out->nets = calloc(n, sizeof(*out->nets));
	if (!out->nets)
		return st_error_set(err, ST_ENOMEM, "out of memory reading trusted proxies");
	for (i = 0; i < n; i++) {
		struct accesslog_net *net = &out->nets[i];
		char addr[ACCESSLOG_IP_MAX];
		const char *slash = strchr(items[i], '/');
		size_t alen = slash ? (size_t)(slash - items[i]) : strlen(items[i]);
		int max;

		if (alen >= sizeof(addr))
			goto bad;
		memcpy(addr, items[i], alen);
		addr[alen] = '\0';
		net->family = ip_bytes(addr, net->addr);
		if (!net->family)
			goto bad;
		max = net->family == AF_INET ? 32 : 128;
		net->prefix = max;
		if (slash) {
			char *end;
			long p = strtol(slash + 1, &end, 10);

			if (!slash[1] || *end || p < 0 || p > max)
				goto bad;
			net->prefix = (int)p;
		}
		out->n++;
		continue;
bad:
		accesslog_trust_release(out);
		return st_error_set(err, ST_EUSAGE,
				    "'%s' is not an IP address or network (like 10.0.0.1 or 10.0.0.0/8)",
				    items[i]);
	}
	return 0;
}

void accesslog_trust_release(struct accesslog_trust *t)
{
	if (!t)
		return;
	free(t->nets);
	t->nets = NULL;
	t->n = 0;
}

static int net_contains(const struct accesslog_net *net, int family, const unsigned char *a)
{
	int full = net->prefix / 8, rest = net->prefix % 8;

	if (family != net->family)
		return 0;
	if (memcmp(net->addr, a, (size_t)full) != 0)
		return 0;
	if (rest) {
		unsigned char mask = (unsigned char)(0xff << (8 - rest));
		if ((net->addr[full] & mask) != (a[full] & mask))
			return 0;
	}
	return 1;
}

int accesslog_trust_contains(const struct accesslog_trust *t, const char *ip)
{
	unsigned char a[16];
	int family;
	size_t i;

	if (!t || !t->n || !(family = ip_bytes(ip, a)))
		return 0;
	for (i = 0; i < t->n; i++)
		if (net_contains(&t->nets[i], family, a))
			return 1;
	return 0;
}

/* ---- lines ---------------------------------------------------------------- */

struct cursor {
	const char *p, *end;
};

static int at(const struct cursor *c, char ch)
{
	return c->p < c->end && *c->p == ch;
}

/* A token up to the next space; [*s, *e). 0 or -1 when empty. */
static int token(struct cursor *c, const char **s, const char **e)
{
	*s = c->p;
	while (c->p < c->end && *c->p != ' ')
		c->p++;
	*e = c->p;
	return *e > *s ? 0 : -1;
}

/* A "quoted" field (backslash escapes skipped); contents [*s, *e). */
static int quoted(struct cursor *c, const char **s, const char **e)
{
	if (!at(c, '"'))
		return -1;
	c->p++;
	*s = c->p;
	while (c->p < c->end && *c->p != '"') {
		if (*c->p == '\\' && c->p + 1 < c->end)
			c->p++;
		c->p++;
	}
	if (c->p >= c->end)
		return -1;
	*e = c->p++;
	return 0;
}

static int space(struct cursor *c)
{
	if (!at(c, ' '))
		return -1;
	while (at(c, ' '))
		c->p++;
	return 0;
}

/* Copies [s, e) into buf when it fits. */
static int copy_range(char *buf, size_t size, const char *s, const char *e)
{
	size_t n = (size_t)(e - s);

	if (n >= size)
		return -1;
	memcpy(buf, s, n);
	buf[n] = '\0';
	return 0;
}

/* One X-Forwarded-For entry, possibly "1.2.3.4:5678" or "[::1]:80", as a
 * canonical address; 0 or -1. */
static int xff_entry(const char *s, const char *e, char *out, size_t size)
{
	char buf[ACCESSLOG_IP_MAX + 8];
	const char *colon;

	while (s < e && (*s == ' ' || *s == '\t'))
		s++;
	while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	if (s < e && *s == '[') {
		const char *close = memchr(s, ']', (size_t)(e - s));
		if (!close)
			return -1;
		s++;
		e = close;
	} else if ((colon = memchr(s, ':', (size_t)(e - s))) &&
		   !memchr(colon + 1, ':', (size_t)(e - colon - 1))) {
		e = colon; /* IPv4 with a port */
	}
	if (copy_range(buf, sizeof(buf), s, e) != 0)
		return -1;
	return accesslog_ip_parse(buf, out, size) ? 0 : -1;
}

/* The client according to X-Forwarded-For [s, e) behind a trusted peer. */
static int client_from_xff(const char *s, const char *e, const struct accesslog_trust *trust,
			   char *out, size_t size)
{
	char ip[ACCESSLOG_IP_MAX];
	int have = 0;

	while (e > s) {
		const char *comma = e;

		while (comma > s && comma[-1] != ',')
			comma--;
		if (xff_entry(comma, e, ip, sizeof(ip)) != 0)
			break; /* garbage: whatever is left of it is not to be believed */
		snprintf(out, size, "%s", ip);
		have = 1;
		if (!accesslog_trust_contains(trust, ip))
			return 0;
		e = comma > s ? comma - 1 : s;
	}
	return have ? 0 : -1;
}

int accesslog_parse_line(const char *line, size_t len, const struct accesslog_trust *trust,
			 struct accesslog_request *out)
{
	struct cursor c = { line, line + len };
	const char *s, *e, *rs, *re;
	char peer[ACCESSLOG_IP_MAX + 1];
	int i;

	memset(out, 0, sizeof(*out));
	/* host ident authuser */
	if (token(&c, &s, &e) != 0 || copy_range(peer, sizeof(peer), s, e) != 0 ||
	    !accesslog_ip_parse(peer, out->peer, sizeof(out->peer)))
		return 0;
	if (space(&c) || token(&c, &s, &e) || space(&c) || token(&c, &s, &e) || space(&c))
		return 0;
	/* [date] */
	if (!at(&c, '['))
		return 0;
	while (c.p < c.end && *c.p != ']')
		c.p++;
	if (!at(&c, ']'))
		return 0;
	c.p++;
	/* "request" status bytes */
	if (space(&c) || quoted(&c, &rs, &re) || space(&c))
		return 0;
	for (i = 0; i < 3; i++, c.p++) {
		if (c.p >= c.end || *c.p < '0' || *c.p > '9')
			return 0;
		out->status = out->status * 10 + (*c.p - '0');
	}
	if (c.p < c.end && *c.p != ' ')
		return 0;
	if (space(&c) == 0 && token(&c, &s, &e) == 0 && !(e - s == 1 && *s == '-')) {
		const char *d;

		for (d = s; d < e; d++) /* bytes: digits or "-" */
			if (*d < '0' || *d > '9')
				return 0;
	}
	{
		const char *ms = rs, *me = rs;

		while (me < re && *me != ' ')
			me++;
		if (me == ms || copy_range(out->method, sizeof(out->method), ms, me) != 0)
			snprintf(out->method, sizeof(out->method), "-");
	}
	strcpy(out->client, out->peer);
	/* "referer" "user agent" "x-forwarded-for" */
	if (trust && trust->n && accesslog_trust_contains(trust, out->peer)) {
		const char *fs[3], *fe[3];
		int nf = 0;

		while (nf < 3 && space(&c) == 0 && quoted(&c, &fs[nf], &fe[nf]) == 0)
			nf++;
		if (nf == 3 && !(fe[2] - fs[2] == 1 && *fs[2] == '-') &&
		    client_from_xff(fs[2], fe[2], trust, out->client, sizeof(out->client)) == 0)
			out->forwarded = strcmp(out->client, out->peer) != 0;
	}
	return 1;
}

/* ---- counting ------------------------------------------------------------- */

struct slot {
	char *ip;                     /* NULL: empty */
	unsigned long long count;
};

struct accesslog_counter {
	struct slot *slots;
	size_t cap;                   /* power of two */
	size_t used;
	unsigned long long total;
};

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */

	while (*s) {
		h ^= (unsigned char)*s++;
		h *= 1099511628211ULL;
	}
	return h;
}

int accesslog_counter_new(struct accesslog_counter **out, struct st_error *err)
{
	struct accesslog_counter *c = calloc(1, sizeof(*c));

	*out = NULL;
	if (!c || !(c->slots = calloc(64, sizeof(*c->slots)))) {
		free(c);
		return st_error_set(err, ST_ENOMEM, "out of memory counting addresses");
	}
	c->cap = 64;
	*out = c;
	return 0;
}

void accesslog_counter_free(struct accesslog_counter *c)
{
	size_t i;

	if (!c)
		return;
	for (i = 0; i < c->cap; i++)
		free(c->slots[i].ip);
	free(c->slots);
	free(c);
}

static struct slot *find_slot(struct slot *slots, size_t cap, const char *ip)
{
	size_t i = (size_t)hash_str(ip) & (cap - 1);

	while (slots[i].ip && strcmp(slots[i].ip, ip) != 0)
		i = (i + 1) & (cap - 1);
	return &slots[i];
}

static int grow(struct accesslog_counter *c)
{
	size_t ncap = c->cap * 2, i;
	struct slot *ns = calloc(ncap, sizeof(*ns));

	if (!ns)
		return -1;
	for (i = 0; i < c->cap; i++)
		if (c->slots[i].ip)
			*find_slot(ns, ncap, c->slots[i].ip) = c->slots[i];
	free(c->slots);
	c->slots = ns;
	c->cap = ncap;
	return 0;
}

int accesslog_counter_add(struct accesslog_counter *c, const char *ip, struct st_error *err)
{
	struct slot *s;

	if ((c->used + 1) * 10 > c->cap * 7 && grow(c) != 0)
		return st_error_set(err, ST_ENOMEM, "out of memory counting addresses");
	s = find_slot(c->slots, c->cap, ip);
	if (!s->ip) {
		if (!(s->ip = strdup(ip)))
			return st_error_set(err, ST_ENOMEM, "out of memory counting addresses");
		c->used++;
	}
	s->count++;
	c->total++;
	return 0;
}

unsigned long long accesslog_counter_total(const struct accesslog_counter *c)
{
	return c->total;
}

size_t accesslog_counter_distinct(const struct accesslog_counter *c)
{
	return c->used;
}

static int by_count(const void *a, const void *b)
{
	const struct accesslog_count *x = a, *y = b;

	if (x->count != y->count)
		return x->count > y->count ? -1 : 1;
	return strcmp(x->ip, y->ip);
}

int accesslog_counter_top(const struct accesslog_counter *c, size_t limit,
			  struct accesslog_count **out, size_t *n, struct st_error *err)
{
	struct accesslog_count *all;
	size_t i, k = 0;

	*out = NULL;
	*n = 0;
	all = calloc(c->used ? c->used : 1, sizeof(*all));
	if (!all)
		return st_error_set(err, ST_ENOMEM, "out of memory sorting addresses");
	for (i = 0; i < c->cap; i++) {
		if (!c->slots[i].ip)
			continue;
		snprintf(all[k].ip, sizeof(all[k].ip), "%s", c->slots[i].ip);
		all[k++].count = c->slots[i].count;
	}
	qsort(all, k, sizeof(*all), by_count);
	*out = all;
	*n = limit && limit < k ? limit : k;
	return 0;
}

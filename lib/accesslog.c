/*
 * accesslog.c - access log lines, trusted proxies, and a per-address
 * counter (open addressing; a flood from many addresses stays linear).
 */
#include "accesslog.h"

#include <arpa/inet.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "timeutil.h"

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

#define HLL_BITS 12
#define HLL_REGISTERS (1u << HLL_BITS)

struct tracked {
	char key[ACCESSLOG_KEY_MAX];
	unsigned long long count, error;
	size_t heap;                  /* its position in heap[] */
};

struct accesslog_counter {
	struct tracked *items;        /* capacity of them; used in use */
	size_t capacity, used;
	size_t *heap;                 /* indices into items: a min-heap by count */
	uint32_t *table;              /* open addressing: item index + 1, 0 empty */
	size_t table_size;            /* power of two, at least 2 * capacity */
	uint64_t key;                 /* random: the hash is keyed */
	unsigned char hll[HLL_REGISTERS];
	unsigned long long total;
	int evicted;                  /* a client was dropped: counts are bounds */
};

/* FNV-1a from a random offset, then a 64-bit finaliser (murmur3's fmix):
 * nobody who cannot read this process's memory can make keys collide. */
static uint64_t hash_key(const struct accesslog_counter *c, const char *s)
{
	uint64_t h = 1469598103934665603ULL ^ c->key;

	while (*s) {
		h ^= (unsigned char)*s++;
		h *= 1099511628211ULL;
	}
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

int accesslog_counter_new(struct accesslog_counter **out, struct st_error *err)
{
	return accesslog_counter_new_bounded(ACCESSLOG_COUNTER_CAPACITY, out, err);
}

int accesslog_counter_new_bounded(size_t capacity, struct accesslog_counter **out, struct st_error *err)
{
	struct accesslog_counter *c = calloc(1, sizeof(*c));

	*out = NULL;
	if (capacity < 1)
		capacity = 1;
	if (c) {
		c->capacity = capacity;
		for (c->table_size = 16; c->table_size < 2 * capacity; c->table_size *= 2)
			;
		c->items = calloc(capacity, sizeof(*c->items));
		c->heap = calloc(capacity, sizeof(*c->heap));
		c->table = calloc(c->table_size, sizeof(*c->table));
		if (getrandom(&c->key, sizeof(c->key), GRND_NONBLOCK) != (ssize_t)sizeof(c->key))
			c->key = (uint64_t)(time_monotonic() * 1e9) ^ ((uint64_t)getpid() << 32);
	}
	if (!c || !c->items || !c->heap || !c->table) {
		accesslog_counter_free(c);
		return st_error_set(err, ST_ENOMEM, "out of memory counting addresses");
	}
	*out = c;
	return 0;
}

void accesslog_counter_free(struct accesslog_counter *c)
{
	if (!c)
		return;
	free(c->items);
	free(c->heap);
	free(c->table);
	free(c);
}

/* The table slot holding key, or the empty slot where it would go. */
static size_t find_slot(const struct accesslog_counter *c, const char *key, uint64_t h)
{
	size_t i = (size_t)h & (c->table_size - 1);

	while (c->table[i] && strcmp(c->items[c->table[i] - 1].key, key) != 0)
		i = (i + 1) & (c->table_size - 1);
	return i;
}

/* Removes slot i from the table (linear probing: later entries of the same
 * run move back, so no lookup stops early at a hole). */
static void table_remove(struct accesslog_counter *c, size_t i)
{
	size_t mask = c->table_size - 1, j = i;

	c->table[i] = 0;
	for (;;) {
		size_t home;

		j = (j + 1) & mask;
		if (!c->table[j])
			return;
		home = (size_t)hash_key(c, c->items[c->table[j] - 1].key) & mask;
		/* Move j back to i unless its home lies cyclically in (i, j]. */
		if ((i <= j) ? (home <= i || home > j) : (home <= i && home > j)) {
			c->table[i] = c->table[j];
			c->table[j] = 0;
			i = j;
		}
	}
}

static void heap_swap(struct accesslog_counter *c, size_t a, size_t b)
{
	size_t t = c->heap[a];

	c->heap[a] = c->heap[b];
	c->heap[b] = t;
	c->items[c->heap[a]].heap = a;
	c->items[c->heap[b]].heap = b;
}

/* Restores the heap below position i after its count grew. */
static void heap_down(struct accesslog_counter *c, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;

		if (l < c->used && c->items[c->heap[l]].count < c->items[c->heap[m]].count)
			m = l;
		if (r < c->used && c->items[c->heap[r]].count < c->items[c->heap[m]].count)
			m = r;
		if (m == i)
			return;
		heap_swap(c, i, m);
		i = m;
	}
}

static void heap_up(struct accesslog_counter *c, size_t i)
{
	while (i > 0 && c->items[c->heap[(i - 1) / 2]].count > c->items[c->heap[i]].count) {
		heap_swap(c, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

/* The client an address counts as (see accesslog.h) into key. */
static void client_key(const char *ip, char key[ACCESSLOG_KEY_MAX])
{
	static const unsigned char mapped[12] = { [10] = 0xff, [11] = 0xff };
	unsigned char a[16];
	char text[ACCESSLOG_IP_MAX];

	if (!strchr(ip, ':') || inet_pton(AF_INET6, ip, a) != 1) {
		snprintf(key, ACCESSLOG_KEY_MAX, "%s", ip);
		return;
	}
	if (!memcmp(a, mapped, 12)) {
		if (inet_ntop(AF_INET, a + 12, text, sizeof(text)))
			snprintf(key, ACCESSLOG_KEY_MAX, "%s", text);
		else
			snprintf(key, ACCESSLOG_KEY_MAX, "%s", ip);
		return;
	}
	memset(a + 8, 0, 8);
	if (inet_ntop(AF_INET6, a, text, sizeof(text)))
		snprintf(key, ACCESSLOG_KEY_MAX, "%s/64", text);
	else
		snprintf(key, ACCESSLOG_KEY_MAX, "%s", ip);
}

static void hll_add(struct accesslog_counter *c, uint64_t h)
{
	uint64_t rest = h << HLL_BITS;
	unsigned char rank = 1;

	while (rank <= 64 - HLL_BITS && !(rest & (1ULL << 63))) {
		rank++;
		rest <<= 1;
	}
	if (c->hll[h >> (64 - HLL_BITS)] < rank)
		c->hll[h >> (64 - HLL_BITS)] = rank;
}

int accesslog_counter_add(struct accesslog_counter *c, const char *ip, struct st_error *err)
{
	char key[ACCESSLOG_KEY_MAX];
	struct tracked *t;
	uint64_t h;
	size_t slot, idx;

	(void)err;
	client_key(ip, key);
	h = hash_key(c, key);
	hll_add(c, h);
	c->total++;
	slot = find_slot(c, key, h);
	if (c->table[slot]) {
		t = &c->items[c->table[slot] - 1];
		t->count++;
		heap_down(c, t->heap);
		return 0;
	}
	if (c->used < c->capacity) {
		idx = c->used++;
		t = &c->items[idx];
		snprintf(t->key, sizeof(t->key), "%s", key);
		t->count = 1;
		t->error = 0;
		t->heap = idx;
		c->heap[idx] = idx;
		c->table[slot] = (uint32_t)(idx + 1);
		heap_up(c, idx);
		return 0;
	}
	/* Full: the least counted client makes room, its count the new one's
	 * error bound. */
	idx = c->heap[0];
	t = &c->items[idx];
	table_remove(c, find_slot(c, t->key, hash_key(c, t->key)));
	c->evicted = 1;
	t->error = t->count;
	t->count++;
	snprintf(t->key, sizeof(t->key), "%s", key);
	c->table[find_slot(c, key, h)] = (uint32_t)(idx + 1);
	heap_down(c, 0);
	return 0;
}

unsigned long long accesslog_counter_total(const struct accesslog_counter *c)
{
	return c->total;
}

int accesslog_counter_exact(const struct accesslog_counter *c)
{
	return !c->evicted;
}

size_t accesslog_counter_tracked(const struct accesslog_counter *c)
{
	return c->used;
}

size_t accesslog_counter_distinct(const struct accesslog_counter *c)
{
	const double m = HLL_REGISTERS, alpha = 0.7213 / (1.0 + 1.079 / m);
	double sum = 0, e;
	size_t zeros = 0, j;

	if (!c->evicted)
		return c->used;
	for (j = 0; j < HLL_REGISTERS; j++) {
		sum += ldexp(1.0, -(int)c->hll[j]);
		zeros += c->hll[j] == 0;
	}
	e = alpha * m * m / sum;
	if (e <= 2.5 * m && zeros)
		e = m * log(m / (double)zeros);
	/* Never fewer than the clients seen for sure. */
	return e < (double)c->used ? c->used : (size_t)(e + 0.5);
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
	size_t i;

	*out = NULL;
	*n = 0;
	all = calloc(c->used ? c->used : 1, sizeof(*all));
	if (!all)
		return st_error_set(err, ST_ENOMEM, "out of memory sorting addresses");
	for (i = 0; i < c->used; i++) {
		snprintf(all[i].ip, sizeof(all[i].ip), "%s", c->items[i].key);
		all[i].count = c->items[i].count;
		all[i].error = c->items[i].error;
	}
	qsort(all, c->used, sizeof(*all), by_count);
	*out = all;
	*n = limit && limit < c->used ? limit : c->used;
	return 0;
}

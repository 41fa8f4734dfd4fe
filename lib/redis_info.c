/* The INFO parser and its getters: pure functions over bytes, no socket. */
#include "redis.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int is_blank(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (s[i] != ' ' && s[i] != '\t')
			return 0;
	return 1;
}

int redis_info_parse(const char *text, size_t len, struct redis_info *out, struct st_error *err)
{
	struct redis_info info = REDIS_INFO_INIT;
	const char *section = "";
	size_t cap = 0, pos = 0;
	int rc = 0;

	*out = info;
	info.text = malloc(len + 1);
	if (!info.text) {
		rc = st_error_set(err, ST_ENOMEM, "cannot parse redis INFO: out of memory");
		goto out;
	}
	if (len)
		memcpy(info.text, text, len);
	info.text[len] = '\0';

	while (pos < len) {
		char *line = info.text + pos, *nl, *colon;
		size_t n;

		nl = memchr(line, '\n', len - pos);
		n = nl ? (size_t)(nl - line) : len - pos;
		pos += n + (nl ? 1 : 0);
		if (n > 0 && line[n - 1] == '\r')
			n--;
		line[n] = '\0'; /* overwrites '\r', '\n' or the final terminator */
		if (is_blank(line, n))
			continue;
		if (memchr(line, '\0', n)) { /* an embedded NUL would cut the strings short */
			info.ignored++;
			continue;
		}
		if (line[0] == '#') {
			char *s = line + 1;
			size_t sl;

			while (*s == ' ' || *s == '\t')
				s++;
			sl = strlen(s);
			while (sl > 0 && (s[sl - 1] == ' ' || s[sl - 1] == '\t'))
				s[--sl] = '\0';
			section = s;
			continue;
		}
		colon = memchr(line, ':', n);
		if (!colon || colon == line) {
			info.ignored++;
			continue;
		}
		*colon = '\0';
		if (info.n == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			struct redis_info_entry *e = realloc(info.entries, ncap * sizeof(*e));

			if (!e) {
				rc = st_error_set(err, ST_ENOMEM, "cannot parse redis INFO: out of memory");
				goto out;
			}
			info.entries = e;
			cap = ncap;
		}
		info.entries[info.n].section = section;
		info.entries[info.n].key = line;
		info.entries[info.n].value = colon + 1;
		info.n++;
	}
	*out = info;
	info.text = NULL;
	info.entries = NULL;
out:
	redis_info_release(&info);
	return rc;
}

void redis_info_release(struct redis_info *info)
{
	if (!info)
		return;
	free(info->entries);
	free(info->text);
	info->entries = NULL;
	info->text = NULL;
	info->n = 0;
	info->ignored = 0;
}

const char *redis_info_get_in(const struct redis_info *info, const char *section, const char *key)
{
	size_t i;

	for (i = 0; i < info->n; i++) {
		if (strcmp(info->entries[i].key, key) != 0)
			continue;
		if (section && strcasecmp(info->entries[i].section, section) != 0)
			continue;
		return info->entries[i].value;
	}
	return NULL;
}

const char *redis_info_get(const struct redis_info *info, const char *key)
{
	return redis_info_get_in(info, NULL, key);
}

static int parse_ll(const char *s, size_t n, long long *out)
{
	char buf[32], *end;
	long long v;

	/* Digits with an optional '-': strtoll alone would take " 12" or "+1". */
	if (n == 0 || n >= sizeof(buf) || !(s[0] == '-' || (s[0] >= '0' && s[0] <= '9')))
		return -1;
	memcpy(buf, s, n);
	buf[n] = '\0';
	errno = 0;
	v = strtoll(buf, &end, 10);
	if (errno || *end || end == buf)
		return -1;
	*out = v;
	return 0;
}

int redis_info_get_ll(const struct redis_info *info, const char *key, long long *out, struct st_error *err)
{
	const char *v = redis_info_get(info, key);

	if (!v)
		return st_error_set(err, ST_ENOTFOUND, "redis INFO has no '%s'", key);
	if (parse_ll(v, strlen(v), out) != 0)
		return st_error_set(err, ST_EPROTO, "redis INFO '%s' is '%.40s', not an integer", key, v);
	return 0;
}

int redis_info_get_double(const struct redis_info *info, const char *key, double *out, struct st_error *err)
{
	const char *v = redis_info_get(info, key);
	char *end;
	double d;

	if (!v)
		return st_error_set(err, ST_ENOTFOUND, "redis INFO has no '%s'", key);
	errno = 0;
	d = strtod(v, &end);
	if (!(v[0] == '-' || v[0] == '.' || (v[0] >= '0' && v[0] <= '9')) || errno || *end || end == v ||
	    !isfinite(d))
		return st_error_set(err, ST_EPROTO, "redis INFO '%s' is '%.40s', not a number", key, v);
	*out = d;
	return 0;
}

int redis_info_field_ll(const char *value, const char *field, long long *out)
{
	size_t flen = strlen(field);
	const char *p = value;

	while (p && *p) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);

		if (n > flen && strncmp(p, field, flen) == 0 && p[flen] == '=')
			return parse_ll(p + flen + 1, n - flen - 1, out) == 0 ? 0 : ST_EPROTO;
		p = comma ? comma + 1 : NULL;
	}
	return ST_ENOTFOUND;
}

int redis_info_get_field_ll(const struct redis_info *info, const char *key, const char *field,
			    long long *out, struct st_error *err)
{
	const char *v = redis_info_get(info, key);
	int rc;

	if (!v)
		return st_error_set(err, ST_ENOTFOUND, "redis INFO has no '%s'", key);
	rc = redis_info_field_ll(v, field, out);
	if (rc == ST_ENOTFOUND)
		return st_error_set(err, rc, "redis INFO '%s' has no field '%s'", key, field);
	if (rc)
		return st_error_set(err, rc, "redis INFO '%s' field '%s' is not an integer", key, field);
	return 0;
}

static long long ll_or(const struct redis_info *info, const char *key)
{
	long long v;

	return redis_info_get_ll(info, key, &v, NULL) == 0 ? v : -1;
}

static void str_or(const struct redis_info *info, const char *key, char *dst, size_t size)
{
	const char *v = redis_info_get(info, key);

	snprintf(dst, size, "%s", v ? v : "");
}

/* "db12" and nothing else: keyspace lines. */
static int is_db_key(const char *key)
{
	const char *p = key + 2;

	if (strncmp(key, "db", 2) != 0 || !*p)
		return 0;
	for (; *p; p++)
		if (*p < '0' || *p > '9')
			return 0;
	return 1;
}

void redis_info_summarize(const struct redis_info *info, struct redis_info_summary *out)
{
	size_t i;

	memset(out, 0, sizeof(*out));
	str_or(info, "redis_version", out->version, sizeof(out->version));
	str_or(info, "role", out->role, sizeof(out->role));
	str_or(info, "maxmemory_policy", out->maxmemory_policy, sizeof(out->maxmemory_policy));
	out->uptime_s = ll_or(info, "uptime_in_seconds");
	out->used_memory = ll_or(info, "used_memory");
	out->used_memory_rss = ll_or(info, "used_memory_rss");
	out->used_memory_peak = ll_or(info, "used_memory_peak");
	out->maxmemory = ll_or(info, "maxmemory");
	out->connected_clients = ll_or(info, "connected_clients");
	out->blocked_clients = ll_or(info, "blocked_clients");
	out->rejected_connections = ll_or(info, "rejected_connections");
	out->evicted_keys = ll_or(info, "evicted_keys");
	out->expired_keys = ll_or(info, "expired_keys");
	out->keyspace_hits = ll_or(info, "keyspace_hits");
	out->keyspace_misses = ll_or(info, "keyspace_misses");
	out->memory_percent = -1;
	if (out->maxmemory > 0 && out->used_memory >= 0)
		out->memory_percent = (double)out->used_memory * 100.0 / (double)out->maxmemory;
	for (i = 0; i < info->n; i++) {
		long long v;

		if (!is_db_key(info->entries[i].key))
			continue;
		if (redis_info_field_ll(info->entries[i].value, "keys", &v) == 0)
			out->keys += v;
		if (redis_info_field_ll(info->entries[i].value, "expires", &v) == 0)
			out->expires += v;
	}
}

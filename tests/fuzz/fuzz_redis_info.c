/*
 * fuzz_redis_info.c - Redis INFO parsing (lib/redis_info.c): any bytes
 * parse; every entry can be looked up again by key (first match) and
 * section; the typed readers, keyspace sub-fields and the summary never
 * crash and never produce a value the header rules out.
 */
#include "fuzz.h"

#include <string.h>

#include "redis.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const fields[] = { "keys", "expires", "avg_ttl", "calls", "usec", "" };
	struct redis_info info = REDIS_INFO_INIT;
	struct redis_info_summary sum;
	struct st_error err = { 0 };
	long long ll;
	double d;
	size_t i, k;

	if (redis_info_parse((const char *)data, size, &info, &err) != 0) {
		FUZZ_CHECK(err.code == ST_ENOMEM);
		return 0;
	}
	for (i = 0; i < info.n && i < 64; i++) {
		const struct redis_info_entry *e = &info.entries[i];
		const char *v;

		FUZZ_CHECK(e->section && e->key && e->value && e->key[0] != '\0');
		FUZZ_CHECK(strchr(e->key, '\n') == NULL && strchr(e->value, '\n') == NULL);
		v = redis_info_get(&info, e->key);
		FUZZ_CHECK(v != NULL);
		FUZZ_CHECK(redis_info_get_in(&info, e->section, e->key) != NULL);
		if (redis_info_get_ll(&info, e->key, &ll, &err) == 0)
			FUZZ_CHECK(v[0] != '\0');
		if (redis_info_get_double(&info, e->key, &d, NULL) == 0)
			FUZZ_CHECK(d == d && d - d == 0);
		for (k = 0; k < sizeof(fields) / sizeof(fields[0]); k++) {
			redis_info_field_ll(e->value, fields[k], &ll);
			redis_info_get_field_ll(&info, e->key, fields[k], &ll, NULL);
		}
	}
	redis_info_summarize(&info, &sum);
	FUZZ_CHECK(memchr(sum.version, '\0', sizeof(sum.version)) != NULL);
	FUZZ_CHECK(memchr(sum.role, '\0', sizeof(sum.role)) != NULL);
	FUZZ_CHECK(memchr(sum.maxmemory_policy, '\0', sizeof(sum.maxmemory_policy)) != NULL);
	FUZZ_CHECK(sum.memory_percent == sum.memory_percent);
	redis_info_release(&info);
	FUZZ_CHECK(info.n == 0 && info.entries == NULL);
	return 0;
}

/*
 * fuzz_cgroup_stats.c - the byte-level parsers of cgroup files
 * (lib/cgroup_stats.c): /proc/stat's "cpu" line and "key value" files
 * (memory.stat, cpu.stat). The input, NUL-terminated, is each file:
 *   - cgroup_parse_proc_stat accepts exactly the text starting with a
 *     well-formed "cpu " line whose floor(sum of 7 fields * 1e9 / ticks)
 *     fits in 64 bits, for several tick rates, and gives that figure; a
 *     rate <= 0 is refused;
 *   - cgroup_parse_keyed finds a key exactly when some line starts with
 *     "key ", reads the first such line, and its number is the one written
 *     there; ST_EPROTO never for a missing key.
 */
#include "fuzz.h"

#include <limits.h>
#include <string.h>

#include "cgroup_stats.h"

/* The sum of /proc/stat's 7 "cpu" fields (128-bit, so an overflow shows):
 * 1 when the line is there as the header describes it (each field digits
 * that fit in 64 bits, then a blank or newline), else 0. */
static int proc_stat_sum(const char *text, unsigned __int128 *sum)
{
	const char *p = text + 4;
	int i;

	*sum = 0;
	if (strncmp(text, "cpu ", 4))
		return 0;
	for (i = 0; i < 7; i++) {
		unsigned __int128 v = 0;

		while (*p == ' ')
			p++;
		if (*p < '0' || *p > '9')
			return 0;
		for (; *p >= '0' && *p <= '9'; p++) {
			v = v * 10 + (unsigned)(*p - '0');
			if (v > UINT64_MAX)
				return 0;
		}
		if (*p != ' ' && *p != '\n')
			return 0;
		*sum += v;
	}
	return 1;
}

static void check_proc_stat(const char *text)
{
	static const long rates[] = { 1, 100, 250, 1000, 1000000000L };
	unsigned __int128 sum = 0, want;
	uint64_t ns = 12345;
	size_t i;
	int rc, valid = proc_stat_sum(text, &sum);

	FUZZ_CHECK(cgroup_parse_proc_stat(text, 0, &ns) == ST_EPROTO && ns == 12345);
	FUZZ_CHECK(cgroup_parse_proc_stat(text, -100, &ns) == ST_EPROTO && ns == 12345);
	/* A rate beyond 2^64 / 1e9: refused, or exact. */
	rc = cgroup_parse_proc_stat(text, LONG_MAX, &ns);
	FUZZ_CHECK(rc == ST_EPROTO || (valid && ns == (uint64_t)(sum * 1000000000u / LONG_MAX)));
	for (i = 0; i < sizeof(rates) / sizeof(rates[0]); i++) {
		rc = cgroup_parse_proc_stat(text, rates[i], &ns);
		FUZZ_CHECK(rc == 0 || rc == ST_EPROTO);
		want = sum * 1000000000u / (unsigned long)rates[i];
		/* Exactly the well-formed lines whose figure fits parse. */
		FUZZ_CHECK((rc == 0) == (valid && want <= UINT64_MAX));
		if (rc == 0)
			FUZZ_CHECK(ns == (uint64_t)want);
	}
}

/* The first line of text starting with "key ": the offset after the
 * blank, or -1. */
static long first_keyed_line(const char *text, const char *key)
{
	size_t klen = strlen(key);
	const char *line = text;

	for (;;) {
		const char *nl;

		if (!strncmp(line, key, klen) && line[klen] == ' ')
			return (long)(line + klen + 1 - text);
		nl = strchr(line, '\n');
		if (!nl)
			return -1;
		line = nl + 1;
	}
}

static void check_keyed(const char *text, const char *key)
{
	uint64_t v = 777;
	long at = first_keyed_line(text, key);
	int rc = cgroup_parse_keyed(text, key, &v);

	FUZZ_CHECK(rc == 0 || rc == ST_ENOTFOUND || rc == ST_EPROTO);
	if (at < 0) {
		/* An empty text has no line for any key. */
		FUZZ_CHECK(rc == ST_ENOTFOUND || (!*key && !*text));
		FUZZ_CHECK(v == 777);
		return;
	}
	FUZZ_CHECK(rc != ST_ENOTFOUND);
	if (rc == 0) {
		const char *p = text + at;

		while (*p == ' ' || *p == '\t')
			p++;
		FUZZ_CHECK(*p >= '0' && *p <= '9');
		FUZZ_CHECK(v == strtoull(p, NULL, 10));
	} else {
		FUZZ_CHECK(v == 777);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const keys[] = { "inactive_file", "total_inactive_file", "usage_usec",
					    "user_usec", "cpu", "" };
	char *text = malloc(size + 1);
	char own[33];
	size_t i;

	FUZZ_CHECK(text != NULL);
	memcpy(text, data, size);
	text[size] = '\0';
	check_proc_stat(text);
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		check_keyed(text, keys[i]);
	/* A key the input names: its first word. */
	for (i = 0; i < sizeof(own) - 1 && text[i] && text[i] != ' ' && text[i] != '\n'; i++)
		own[i] = text[i];
	own[i] = '\0';
	check_keyed(text, own);
	/* A key from the middle of the input: the word after its first '\n'. */
	{
		const char *nl = strchr(text, '\n');

		if (nl) {
			for (i = 0; i < sizeof(own) - 1 && nl[1 + i] && nl[1 + i] != ' ' &&
				    nl[1 + i] != '\n';
			     i++)
				own[i] = nl[1 + i];
			own[i] = '\0';
			check_keyed(text, own);
		}
	}
	free(text);
	return 0;
}

/*
 * fuzz_accesslog.c - log lines (lib/accesslog.c, lib/logfilter.c): the
 * client IP of nginx access lines (with and without trusted proxies), the
 * strict address parser, per-IP counting, and the log categories. Any
 * line either is an access line with a canonical client address (one that
 * accesslog_ip_parse accepts and leaves unchanged) or is not one.
 */
#include "fuzz.h"

#include <string.h>

#include "accesslog.h"
#include "logfilter.h"

static struct accesslog_trust *trusted(void)
{
	static const char *const nets[] = { "127.0.0.1", "10.0.0.0/8", "172.16.0.0/12", "fd00::/8",
					     "::1" };
	static struct accesslog_trust t = ACCESSLOG_TRUST_INIT;
	static int done;
	struct st_error err = { 0 };

	if (!done) {
		if (accesslog_trust_parse(nets, sizeof(nets) / sizeof(nets[0]), &t, &err) != 0) {
			fprintf(stderr, "trust list: %s\n", err.message);
			abort();
		}
		done = 1;
	}
	return &t;
}

static void check_canonical(const char *ip)
{
	char again[ACCESSLOG_IP_MAX];

	FUZZ_CHECK(memchr(ip, '\0', ACCESSLOG_IP_MAX) != NULL);
	FUZZ_CHECK(accesslog_ip_parse(ip, again, sizeof(again)) != 0);
	FUZZ_CHECK(!strcmp(ip, again));
}

static void one_line(const char *line, size_t len, struct accesslog_counter *counter)
{
	struct accesslog_request req;
	struct st_error err = { 0 };
	unsigned cats;
	int status;

	if (accesslog_parse_line(line, len, NULL, &req) == 1) {
		check_canonical(req.client);
		check_canonical(req.peer);
		FUZZ_CHECK(!req.forwarded && !strcmp(req.client, req.peer));
		if (counter)
			FUZZ_CHECK(accesslog_counter_add(counter, req.client, &err) == 0);
	}
	if (accesslog_parse_line(line, len, trusted(), &req) == 1) {
		check_canonical(req.client);
		check_canonical(req.peer);
		FUZZ_CHECK(memchr(req.method, '\0', sizeof(req.method)) != NULL);
	}
	cats = logcat_classify(line, len);
	FUZZ_CHECK((cats & ~(unsigned)LOGCAT_ALL) == 0);
	status = logcat_http_status(line, len);
	FUZZ_CHECK(status == 0 || (status >= 100 && status <= 999));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size;
	struct accesslog_counter *counter = NULL;
	struct accesslog_count *top = NULL;
	struct st_error err = { 0 };
	char *copy, out[ACCESSLOG_IP_MAX];
	size_t n = 0, lines = 0;

	if (accesslog_counter_new(&counter, &err) != 0)
		return 0;
	/* The whole input as one line, then line by line. */
	one_line(p, size, NULL);
	while (p < end && lines < 256) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);

		one_line(p, len, counter);
		p += len + (nl ? 1 : 0);
		lines++;
	}
	if (accesslog_counter_top(counter, 3, &top, &n, &err) == 0) {
		FUZZ_CHECK(n <= 3 && n <= accesslog_counter_distinct(counter));
		if (n)
			FUZZ_CHECK(top[0].count >= 1 && top[0].count <= accesslog_counter_total(counter));
		free(top);
	}
	accesslog_counter_free(counter);
	copy = malloc(size + 1);
	if (copy) {
		memcpy(copy, data, size);
		copy[size] = '\0';
		if (accesslog_ip_parse(copy, out, sizeof(out)) != 0)
			check_canonical(out);
		free(copy);
	}
	return 0;
}

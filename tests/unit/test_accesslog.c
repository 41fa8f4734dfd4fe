/*
 * test_accesslog.c - client addresses from access log lines (CLF,
 * combined, nginx main with X-Forwarded-For, the sandbox stand-in's
 * format), trusted proxies, strict address checks and the counter.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "testutil.h"
#include "accesslog.h"
#include "timeutil.h"
#include "incident.h"

static const char *client_of(const char *line, const struct accesslog_trust *t)
{
	static struct accesslog_request rq;

	if (!accesslog_parse_line(line, strlen(line), t, &rq))
		return NULL;
	return rq.client;
}

static void test_ip_parse(void **state)
{
	char out[ACCESSLOG_IP_MAX];

	(void)state;
	assert_int_equal(accesslog_ip_parse("203.0.113.7", out, sizeof(out)), AF_INET);
	assert_string_equal(out, "203.0.113.7");
	assert_int_equal(accesslog_ip_parse("0.0.0.0", out, sizeof(out)), AF_INET);
	assert_int_equal(accesslog_ip_parse("255.255.255.255", NULL, 0), AF_INET);
	assert_int_equal(accesslog_ip_parse("2001:DB8:0:0::1", out, sizeof(out)), AF_INET6);
	assert_string_equal(out, "2001:db8::1");
	assert_int_equal(accesslog_ip_parse("::ffff:192.0.2.1", out, sizeof(out)), AF_INET6);
	/* Not addresses, or not written strictly. */
	assert_int_equal(accesslog_ip_parse("010.0.0.1", NULL, 0), 0);
	assert_int_equal(accesslog_ip_parse("1.2.3", NULL, 0), 0);
	assert_int_equal(accesslog_ip_parse("1.2.3.4.5", NULL, 0), 0);
	assert_int_equal(accesslog_ip_parse("256.1.1.1", NULL, 0), 0);
	assert_int_equal(accesslog_ip_parse("1.2.3.4 ", NULL, 0), 0);
	assert_int_equal(accesslog_ip_parse(" 1.2.3.4", NULL, 0), 0);
	assert_int_equal(accesslog_ip_parse("1.2.3.4/32", NULL, 0), 0);
	assert_int_equal(accesslog_ip_parse("1.2.3.-4", NULL, 0), 0);
	assert_int_equal(accesslog_ip_parse("1.2.3.4;rm", NULL, 0), 0);
	assert_int_equal(accesslog_ip_parse("fe80::1%eth0", NULL, 0), 0);
	assert_int_equal(accesslog_ip_parse("[::1]", NULL, 0), 0);
	assert_int_equal(accesslog_ip_parse("example.com", NULL, 0), 0);
	assert_int_equal(accesslog_ip_parse("-s", NULL, 0), 0);
	assert_int_equal(accesslog_ip_parse("", NULL, 0), 0);
	assert_int_equal(accesslog_ip_parse(NULL, NULL, 0), 0);
}

static void test_formats(void **state)
{
	struct accesslog_request rq;
	const char *line;

	(void)state;
	/* Common Log Format */
	line = "198.51.100.4 - frank [10/Oct/2000:13:55:36 -0700] \"GET /apache_pb.gif HTTP/1.0\" 200 2326";
	assert_int_equal(accesslog_parse_line(line, strlen(line), NULL, &rq), 1);
	assert_string_equal(rq.client, "198.51.100.4");
	assert_string_equal(rq.method, "GET");
	assert_int_equal(rq.status, 200);
	/* combined */
	line = "2001:db8::7 - - [27/Nov/2026:22:41:31 +0000] \"POST /api/auth/login HTTP/1.1\" 401 - "
	       "\"https://spilttea.test/\" \"Mozilla/5.0 (X11; Linux)\"";
	assert_int_equal(accesslog_parse_line(line, strlen(line), NULL, &rq), 1);
	assert_string_equal(rq.client, "2001:db8::7");
	assert_string_equal(rq.method, "POST");
	assert_int_equal(rq.status, 401);
	/* The sandbox stand-in: nginx main + X-Forwarded-For + latency. */
	line = "127.0.0.1 - - [27/Nov/2026:22:41:31 +0000] \"GET /health HTTP/1.1\" 200 15 \"-\" "
	       "\"curl/7.88.1\" \"203.0.113.7\" rt=0.000412";
	assert_int_equal(accesslog_parse_line(line, strlen(line), NULL, &rq), 1);
	assert_string_equal(rq.client, "127.0.0.1");
	assert_int_equal(rq.forwarded, 0);
	/* A request nginx could not read. */
	line = "192.0.2.9 - - [27/Nov/2026:22:41:31 +0000] \"-\" 400 0 \"-\" \"-\"";
	assert_int_equal(accesslog_parse_line(line, strlen(line), NULL, &rq), 1);
	assert_string_equal(rq.method, "-");
	/* A quote escaped inside the user agent. */
	line = "192.0.2.10 - - [27/Nov/2026:22:41:31 +0000] \"GET / HTTP/1.1\" 200 1 \"-\" \"a\\\"b\"";
	assert_string_equal(client_of(line, NULL), "192.0.2.10");
	/* The line is not NUL-terminated at len: only len bytes count. */
	line = "192.0.2.11 - - [x] \"GET / HTTP/1.1\" 200 15XYZ";
	assert_int_equal(accesslog_parse_line(line, strlen(line) - 3, NULL, &rq), 1);
}

static void test_not_requests(void **state)
{
	(void)state;
	assert_null(client_of("2026-11-27T22:41:31Z error: database check failed: connect 127.0.0.1:55432", NULL));
	assert_null(client_of("spilttea-backend 1 listening on 127.0.0.1:53001", NULL));
	assert_null(client_of("127.0.0.1 - - [27/Nov/2026:22:41:31 +0000] \"GET / HTTP/1.1\"", NULL));
	assert_null(client_of("127.0.0.1 - - [27/Nov/2026:22:41:31 +0000] \"GET / HTTP/1.1\" 2x0 1", NULL));
	assert_null(client_of("127.0.0.1 - - [27/Nov/2026:22:41:31 +0000] \"GET / HTTP/1.1\" 200 1x", NULL));
	assert_null(client_of("127.0.0.1 - - 27/Nov/2026 \"GET / HTTP/1.1\" 200 1", NULL));
	assert_null(client_of("127.0.0.1 - - [27/Nov/2026:22:41:31 +0000 \"GET / HTTP/1.1\" 200 1", NULL));
	assert_null(client_of("host.example - - [27/Nov/2026:22:41:31 +0000] \"GET / HTTP/1.1\" 200 1", NULL));
	assert_null(client_of("", NULL));
	assert_null(client_of("127.0.0.1", NULL));
}

static void test_forwarded_for(void **state)
{
	const char *proxies[] = { "127.0.0.1", "10.0.0.0/8" };
	struct accesslog_trust t = ACCESSLOG_TRUST_INIT;
	struct accesslog_request rq;
	struct st_error err = { 0 };
	const char *line;

	(void)state;
	assert_int_equal(accesslog_trust_parse(proxies, 2, &t, &err), 0);
#define L(peer, xff) peer " - - [27/Nov/2026:22:41:31 +0000] \"GET / HTTP/1.1\" 200 15 \"-\" \"ua\" \"" xff "\" rt=0.1"
	/* Believed only behind a trusted proxy. */
	assert_string_equal(client_of(L("127.0.0.1", "203.0.113.7"), &t), "203.0.113.7");
	assert_string_equal(client_of(L("127.0.0.1", "203.0.113.7"), NULL), "127.0.0.1");
	assert_string_equal(client_of(L("198.51.100.1", "203.0.113.7"), &t), "198.51.100.1");
	/* The right-most untrusted entry: what the client wrote to its left can be forged. */
	assert_string_equal(client_of(L("127.0.0.1", "1.1.1.1, 203.0.113.7, 10.0.0.2"), &t), "203.0.113.7");
	/* All trusted: the left-most. */
	assert_string_equal(client_of(L("127.0.0.1", "10.1.1.1, 10.0.0.2"), &t), "10.1.1.1");
	/* Garbage stops the walk; nothing usable: the peer. */
	assert_string_equal(client_of(L("127.0.0.1", "evil, 203.0.113.8"), &t), "203.0.113.8");
	assert_string_equal(client_of(L("127.0.0.1", "203.0.113.8, evil"), &t), "127.0.0.1");
	assert_string_equal(client_of(L("127.0.0.1", "-"), &t), "127.0.0.1");
	/* Ports and brackets. */
	assert_string_equal(client_of(L("127.0.0.1", "203.0.113.9:51234"), &t), "203.0.113.9");
	assert_string_equal(client_of(L("127.0.0.1", "[2001:db8::2]:443"), &t), "2001:db8::2");
	line = L("127.0.0.1", "203.0.113.7");
	assert_int_equal(accesslog_parse_line(line, strlen(line), &t, &rq), 1);
	assert_int_equal(rq.forwarded, 1);
	assert_string_equal(rq.peer, "127.0.0.1");
	/* combined without the third field: the peer. */
	line = "127.0.0.1 - - [27/Nov/2026:22:41:31 +0000] \"GET / HTTP/1.1\" 200 15 \"-\" \"ua\"";
	assert_string_equal(client_of(line, &t), "127.0.0.1");
#undef L
	accesslog_trust_release(&t);
}

static void test_trust_parse(void **state)
{
	const char *good[] = { "192.168.0.0/16", "fd00::/8", "203.0.113.5", "0.0.0.0/0" };
	const char *bad1[] = { "10.0.0.0/33" }, *bad2[] = { "10.0.0/8" }, *bad3[] = { "10.0.0.0/" },
		   *bad4[] = { "proxy.local" };
	struct accesslog_trust t = ACCESSLOG_TRUST_INIT;
	struct st_error err = { 0 };

	(void)state;
	assert_int_equal(accesslog_trust_parse(good, 3, &t, &err), 0);
	assert_true(accesslog_trust_contains(&t, "192.168.7.9"));
	assert_false(accesslog_trust_contains(&t, "192.169.0.1"));
	assert_true(accesslog_trust_contains(&t, "fd12::1"));
	assert_false(accesslog_trust_contains(&t, "fe80::1"));
	assert_true(accesslog_trust_contains(&t, "203.0.113.5"));
	assert_false(accesslog_trust_contains(&t, "203.0.113.6"));
	assert_false(accesslog_trust_contains(&t, "not an ip"));
	accesslog_trust_release(&t);
	assert_int_equal(accesslog_trust_parse(good + 3, 1, &t, &err), 0);
	assert_true(accesslog_trust_contains(&t, "8.8.8.8"));
	assert_false(accesslog_trust_contains(&t, "::1"));
	accesslog_trust_release(&t);
	assert_int_equal(accesslog_trust_parse(bad1, 1, &t, &err), ST_EUSAGE);
	assert_non_null(strstr(err.message, "'10.0.0.0/33'"));
	assert_int_equal(accesslog_trust_parse(bad2, 1, &t, &err), ST_EUSAGE);
	assert_int_equal(accesslog_trust_parse(bad3, 1, &t, &err), ST_EUSAGE);
	assert_int_equal(accesslog_trust_parse(bad4, 1, &t, &err), ST_EUSAGE);
	assert_false(accesslog_trust_contains(NULL, "1.2.3.4"));
}

static void test_counter(void **state)
{
	struct accesslog_counter *c = NULL;
	struct accesslog_count *top = NULL;
	struct st_error err = { 0 };
	size_t n = 0;
	int i;

	(void)state;
	assert_int_equal(accesslog_counter_new(&c, &err), 0);
	/* Enough distinct addresses to make the table grow several times. */
	for (i = 0; i < 1000; i++) {
		char ip[32];
		snprintf(ip, sizeof(ip), "10.0.%d.%d", i / 256, i % 256);
		assert_int_equal(accesslog_counter_add(c, ip, &err), 0);
	}
	for (i = 0; i < 7; i++)
		assert_int_equal(accesslog_counter_add(c, "203.0.113.7", &err), 0);
	for (i = 0; i < 3; i++) {
		assert_int_equal(accesslog_counter_add(c, "198.51.100.2", &err), 0);
		assert_int_equal(accesslog_counter_add(c, "198.51.100.1", &err), 0);
	}
	assert_int_equal(accesslog_counter_total(c), 1013);
	assert_int_equal(accesslog_counter_distinct(c), 1003);
	assert_int_equal(accesslog_counter_top(c, 3, &top, &n, &err), 0);
	assert_int_equal(n, 3);
	assert_string_equal(top[0].ip, "203.0.113.7");
	assert_int_equal(top[0].count, 7);
	/* Ties in address order. */
	assert_string_equal(top[1].ip, "198.51.100.1");
	assert_string_equal(top[2].ip, "198.51.100.2");
	assert_int_equal(top[2].count, 3);
	free(top);
	assert_int_equal(accesslog_counter_top(c, 0, &top, &n, &err), 0);
	assert_int_equal(n, 1003);
	free(top);
	accesslog_counter_free(c);
}

/* A flood of distinct addresses (review 2 item 13): memory stays bounded
 * (a fixed number of tracked addresses), a heavy hitter is still found
 * with its count, the number of addresses is estimated, and IPv6 clients
 * count per /64 (one host has 2^64 addresses to rotate through). */
static void test_counter_bounded(void **state)
{
	struct accesslog_counter *c = NULL;
	struct accesslog_count *top = NULL;
	struct st_error err = { 0 };
	size_t n = 0;
	double t0;
	int i;

	(void)state;
	assert_int_equal(accesslog_counter_new_bounded(64, &c, &err), 0);
	t0 = time_monotonic();
	for (i = 0; i < 200000; i++) {
		char ip[64];

		/* 200000 distinct /64s, and one address in every tenth line. */
		snprintf(ip, sizeof(ip), "2001:db8:%x:%x::1", i / 65536, i % 65536);
		assert_int_equal(accesslog_counter_add(c, ip, &err), 0);
		if (i % 10 == 0)
			assert_int_equal(accesslog_counter_add(c, "203.0.113.7", &err), 0);
	}
	assert_true(time_monotonic() - t0 < 10 * tu_time_scale());
	assert_int_equal(accesslog_counter_total(c), 220000);
	assert_false(accesslog_counter_exact(c));
	assert_true(accesslog_counter_tracked(c) <= 64);
	/* An estimate: within 5 %. */
	assert_true(accesslog_counter_distinct(c) > 190000 && accesslog_counter_distinct(c) < 210000);
	assert_int_equal(accesslog_counter_top(c, 1, &top, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(top[0].ip, "203.0.113.7");
	/* Never under its true count, over it by at most total / capacity. */
	assert_true(top[0].count >= 20000 && top[0].count <= 20000 + 220000 / 64);
	assert_true(top[0].error <= 220000 / 64);
	free(top);
	accesslog_counter_free(c);

	/* IPv6 per /64; exact while the addresses fit. */
	assert_int_equal(accesslog_counter_new(&c, &err), 0);
	assert_int_equal(accesslog_counter_add(c, "2001:db8:1:2::1", &err), 0);
	assert_int_equal(accesslog_counter_add(c, "2001:db8:1:2:ffff:ffff:ffff:9", &err), 0);
	assert_int_equal(accesslog_counter_add(c, "2001:db8:1:3::1", &err), 0);
	assert_int_equal(accesslog_counter_add(c, "::ffff:192.0.2.1", &err), 0);
	assert_int_equal(accesslog_counter_add(c, "192.0.2.1", &err), 0);
	assert_true(accesslog_counter_exact(c));
	assert_int_equal(accesslog_counter_distinct(c), 3);
	assert_int_equal(accesslog_counter_top(c, 0, &top, &n, &err), 0);
	assert_int_equal(n, 3);
	assert_string_equal(top[0].ip, "192.0.2.1");
	assert_int_equal(top[0].count, 2);
	assert_string_equal(top[1].ip, "2001:db8:1:2::/64");
	assert_int_equal(top[1].count, 2);
	assert_string_equal(top[2].ip, "2001:db8:1:3::/64");
	assert_int_equal(top[2].error, 0);
	free(top);
	accesslog_counter_free(c);
}

static void test_block_check(void **state)
{
	const char *proxies[] = { "10.0.0.1" };
	struct accesslog_trust t = ACCESSLOG_TRUST_INIT;
	struct st_error err = { 0 };
	char canon[ACCESSLOG_IP_MAX], text[256];
	const char *argv[8];

	(void)state;
	assert_int_equal(accesslog_trust_parse(proxies, 1, &t, &err), 0);
	assert_int_equal(incident_block_check("203.0.113.7", &t, NULL, canon, sizeof(canon), &err), AF_INET);
	assert_string_equal(incident_block_text(canon, AF_INET, "INPUT", text, sizeof(text)),
			    "iptables -I INPUT -s 203.0.113.7 -j DROP");
	incident_block_argv(canon, AF_INET, "INPUT", argv);
	assert_string_equal(argv[0], "iptables");
	assert_string_equal(argv[4], "203.0.113.7");
	assert_null(argv[7]);
	assert_int_equal(incident_block_check("2001:DB8::1", &t, NULL, canon, sizeof(canon), &err), AF_INET6);
	assert_string_equal(incident_block_text(canon, AF_INET6, "INPUT", text, sizeof(text)),
			    "ip6tables -I INPUT -s 2001:db8::1 -j DROP");
	assert_int_equal(incident_block_check("127.0.0.1", &t, NULL, canon, sizeof(canon), &err), ST_EUSAGE);
	assert_non_null(strstr(err.message, "loopback"));
	assert_int_equal(incident_block_check("::1", &t, NULL, canon, sizeof(canon), &err), ST_EUSAGE);
	assert_int_equal(incident_block_check("0.0.0.0", &t, NULL, canon, sizeof(canon), &err), ST_EUSAGE);
	assert_int_equal(incident_block_check("224.0.0.1", &t, NULL, canon, sizeof(canon), &err), ST_EUSAGE);
	assert_int_equal(incident_block_check("255.255.255.255", &t, NULL, canon, sizeof(canon), &err), ST_EUSAGE);
	assert_int_equal(incident_block_check("10.0.0.1", &t, NULL, canon, sizeof(canon), &err), ST_EUSAGE);
	assert_non_null(strstr(err.message, "trusted proxy"));
	assert_int_equal(incident_block_check("1.2.3.4; iptables -F", &t, NULL, canon, sizeof(canon), &err), ST_EUSAGE);
	assert_int_equal(incident_block_check("-F", &t, NULL, canon, sizeof(canon), &err), ST_EUSAGE);
	assert_int_equal(incident_block_check("1.2.3.0/24", &t, NULL, canon, sizeof(canon), &err), ST_EUSAGE);
	accesslog_trust_release(&t);
}

/* Review 2 item 11: an IPv4 client as a dual-stack server logs it, the
 * operator's own SSH address, and the chain Docker's published ports need. */
static void test_block_edge_cases(void **state)
{
	struct accesslog_trust t = ACCESSLOG_TRUST_INIT;
	struct st_error err = { 0 };
	char canon[ACCESSLOG_IP_MAX], text[256];
	const char *ssh = "198.51.100.4 50022 10.0.0.5 22";

	(void)state;
	/* ::ffff:a.b.c.d is an IPv4 client: an ip6tables rule would never match it. */
	assert_int_equal(incident_block_check("::ffff:203.0.113.7", &t, NULL, canon, sizeof(canon), &err),
			 AF_INET);
	assert_string_equal(canon, "203.0.113.7");
	assert_string_equal(incident_block_text(canon, AF_INET, "INPUT", text, sizeof(text)),
			    "iptables -I INPUT -s 203.0.113.7 -j DROP");
	assert_int_equal(incident_block_check("::FFFF:127.0.0.1", &t, NULL, canon, sizeof(canon), &err),
			 ST_EUSAGE);
	assert_non_null(strstr(err.message, "loopback"));
	/* The address this SSH session comes from: blocking it locks the operator out. */
	assert_int_equal(incident_block_check("198.51.100.4", &t, ssh, canon, sizeof(canon), &err), ST_EUSAGE);
	assert_non_null(strstr(err.message, "SSH"));
	assert_int_equal(incident_block_check("::ffff:198.51.100.4", &t, ssh, canon, sizeof(canon), &err),
			 ST_EUSAGE);
	assert_int_equal(incident_block_check("198.51.100.4", &t, "::ffff:198.51.100.4 50022 ::1 22", canon,
					      sizeof(canon), &err), ST_EUSAGE);
	assert_int_equal(incident_block_check("2001:db8::5", &t, "2001:DB8::5 1 2001:db8::1 22", canon,
					      sizeof(canon), &err), ST_EUSAGE);
	assert_int_equal(incident_block_check("198.51.100.5", &t, ssh, canon, sizeof(canon), &err), AF_INET);
	assert_int_equal(incident_block_check("198.51.100.5", &t, "", canon, sizeof(canon), &err), AF_INET);
	/* Another chain (DOCKER-USER filters ports Docker publishes through its bridge). */
	assert_string_equal(incident_block_text("198.51.100.5", AF_INET, "DOCKER-USER", text, sizeof(text)),
			    "iptables -I DOCKER-USER -s 198.51.100.5 -j DROP");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ip_parse),
		cmocka_unit_test(test_formats),
		cmocka_unit_test(test_not_requests),
		cmocka_unit_test(test_forwarded_for),
		cmocka_unit_test(test_trust_parse),
		cmocka_unit_test(test_counter),
		cmocka_unit_test(test_counter_bounded),
		cmocka_unit_test(test_block_check),
		cmocka_unit_test(test_block_edge_cases),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

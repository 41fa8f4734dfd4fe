/*
 * test_proxy.c - the proxy's pure parts: upstream file rendering and
 * reading back, URL port swaps, draining workers in process titles, and
 * access log counting.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "proxy.h"

#define TMPL "upstream spilttea_backend {\n    server {host}:{port};\n}\n"

static void test_render(void **state)
{
	struct sbuf out = SBUF_INIT;
	struct st_error err = { 0 };

	(void)state;
	assert_int_equal(proxy_render_upstream(TMPL, NULL, "127.0.0.1", 53101, NULL, &out, &err), 0);
	assert_string_equal(sbuf_str(&out), "upstream spilttea_backend {\n    server 127.0.0.1:53101;\n}\n");
	sbuf_reset(&out);

	/* Header: one comment line, newlines in it flattened; {container};
	 * other braces (nginx blocks, {unknown}) untouched. */
	assert_int_equal(proxy_render_upstream("upstream u { server {host}:{port}; } # {container} {x}\n",
					       "written\nby test", "::1", 1, "be-green", &out, &err), 0);
	assert_string_equal(sbuf_str(&out),
			    "# written by test\nupstream u { server ::1:1; } # be-green {x}\n");
	sbuf_reset(&out);

	assert_int_equal(proxy_render_upstream("server {host}:3001;", NULL, "h", 1, NULL, &out, &err),
			 ST_EUSAGE);
	assert_string_equal(err.message, "upstream template has no {port}");
	sbuf_release(&out);
}

static void test_read_back(void **state)
{
	struct sbuf out = SBUF_INIT;
	struct st_error err = { 0 };
	long port = 0;

	(void)state;
	/* What render writes reads back, header and all. */
	assert_int_equal(proxy_render_upstream(TMPL, "written by spilttea-ops", "127.0.0.1", 56001, "x", &out,
					       &err), 0);
	assert_int_equal(proxy_upstream_port(TMPL, "127.0.0.1", NULL, sbuf_str(&out), &port, &err), 0);
	assert_int_equal(port, 56001);
	sbuf_release(&out);

	/* The sandbox's own file (comment, no trailing newline difference). */
	assert_int_equal(proxy_upstream_port(TMPL, "127.0.0.1", NULL,
					     "# written by scripts/sandbox up\n"
					     "upstream spilttea_backend {\n    server 127.0.0.1:53001;\n}",
					     &port, &err), 0);
	assert_int_equal(port, 53001);

	/* Indented comments between lines are comments too. */
	assert_int_equal(proxy_upstream_port(TMPL, "127.0.0.1", NULL,
					     "upstream spilttea_backend {\n  # moved\n    server 127.0.0.1:9;\n}\n\n",
					     &port, &err), 0);
	assert_int_equal(port, 9);

	/* Edited by hand, another host, a second server, no digits. */
	assert_int_equal(proxy_upstream_port(TMPL, "127.0.0.1", NULL,
					     "upstream spilttea_backend {\n    server 10.0.0.1:53001;\n}\n",
					     &port, &err), ST_ENOTFOUND);
	assert_string_equal(err.message, "upstream file does not follow the template");
	assert_int_equal(proxy_upstream_port(TMPL, "127.0.0.1", NULL,
					     "upstream spilttea_backend {\n    server 127.0.0.1:1;\n"
					     "    server 127.0.0.1:2;\n}\n", &port, &err), ST_ENOTFOUND);
	assert_int_equal(proxy_upstream_port(TMPL, "127.0.0.1", NULL,
					     "upstream spilttea_backend {\n    server 127.0.0.1:;\n}\n",
					     &port, &err), ST_ENOTFOUND);
	assert_int_equal(proxy_upstream_port(TMPL, "127.0.0.1", NULL, "", &port, &err), ST_ENOTFOUND);
	assert_int_equal(proxy_upstream_port(TMPL, "127.0.0.1", NULL,
					     "upstream spilttea_backend {\n    server 127.0.0.1:70000;\n}\n",
					     &port, &err), ST_EPROTO);
	assert_string_equal(err.message, "upstream file names port '70000', not a port number");
	assert_int_equal(proxy_upstream_port("# {port}\nserver x;\n", "h", NULL, "server x;", &port, &err),
			 ST_EUSAGE);
	assert_int_equal(port, 9); /* untouched by failures */
}

static void test_url_with_port(void **state)
{
	struct st_error err = { 0 };
	char *u = NULL;

	(void)state;
	assert_int_equal(proxy_url_with_port("http://127.0.0.1:3001/health", 3002, &u, &err), 0);
	assert_string_equal(u, "http://127.0.0.1:3002/health");
	free(u);
	assert_int_equal(proxy_url_with_port("https://api.example:8443", 1, &u, &err), 0);
	assert_string_equal(u, "https://api.example:1");
	free(u);
	assert_int_equal(proxy_url_with_port("http://localhost/health?x=1:2", 53101, &u, &err), 0);
	assert_string_equal(u, "http://localhost:53101/health?x=1:2");
	free(u);
	assert_int_equal(proxy_url_with_port("http://u:p@[::1]:80/h", 81, &u, &err), 0);
	assert_string_equal(u, "http://u:p@[::1]:81/h");
	free(u);
	assert_int_equal(proxy_url_with_port("http://[::1]/h", 81, &u, &err), 0);
	assert_string_equal(u, "http://[::1]:81/h");
	free(u);
	assert_int_equal(proxy_url_with_port("ftp://h/", 1, &u, &err), ST_EUSAGE);
	assert_null(u);
	assert_int_equal(proxy_url_with_port("http:///x", 1, &u, &err), ST_EUSAGE);
	assert_int_equal(proxy_url_with_port("http://[::1/x", 1, &u, &err), ST_EUSAGE);

	assert_string_equal(proxy_url_path("http://127.0.0.1:3001/health"), "/health");
	assert_string_equal(proxy_url_path("http://h:1/a/b?c=d"), "/a/b?c=d");
	assert_string_equal(proxy_url_path("http://h:1"), "/");
	assert_string_equal(proxy_url_path("http://h?x"), "/");
}

static void test_workers(void **state)
{
	static const char titles[] =
		"1 /sbin/docker-init -- /usr/sbin/nginx -g daemon off; \n"
		"7 nginx: master process /usr/sbin/nginx -g daemon off; \n"
		"1237 nginx: worker process is shutting down\n"
		"1301 nginx: worker process          \n"
		"1302 nginx: worker process\n"
		"1240 nginx: worker process is shutting down  \n"
		"1262 sh -c for p in /proc/[0-9]*; do ... nginx: worker process ...\n"
		"x nginx: worker process\n"
		"1303nginx: worker process\n"
		"1304 nginx: worker process";
	struct proxy_workers w;

	(void)state;
	proxy_parse_workers(titles, sizeof(titles) - 1, &w);
	assert_int_equal(w.draining, 2);
	assert_int_equal(w.nactive, 3);
	assert_int_equal(w.active[0], 1301);
	assert_int_equal(w.active[1], 1302);
	assert_int_equal(w.active[2], 1304);
	/* Cut in the middle of a title: "nginx: work" is no worker. */
	proxy_parse_workers(titles, (size_t)(strstr(titles, "1301") - titles) + 15, &w);
	assert_int_equal(w.draining, 1);
	assert_int_equal(w.nactive, 0);
	proxy_parse_workers("", 0, &w);
	assert_int_equal(w.nactive + w.draining, 0);
}

static void count(const char *line, const char *up, struct proxy_log_stats *st)
{
	proxy_log_count(line, strlen(line), up, st);
}

static void test_log_count(void **state)
{
	struct proxy_log_stats st;

	(void)state;
	memset(&st, 0, sizeof(st));
	count("127.0.0.1 - - [27/Nov/2026:23:07:38 +0000] \"GET /health HTTP/1.1\" 200 15 \"-\" \"curl/7.88.1\" "
	      "\"-\" rt=0.001 upstream=127.0.0.1:56001 ut=0.001", "127.0.0.1:56001", &st);
	count("127.0.0.1 - - [27/Nov/2026:23:07:38 +0000] \"GET /x HTTP/1.1\" 502 157 \"-\" \"c\" \"-\" "
	      "rt=0.000 upstream=127.0.0.1:56101 ut=0.000", "127.0.0.1:56001", &st);
	/* A quote inside the request (nginx writes \x22) and a 5xx from "our" upstream. */
	count("::1 - - [t] \"GET /a\\x22\\x20500 HTTP/1.1\" 503 0 \"-\" \"c\" \"-\" rt=0.1 "
	      "upstream=127.0.0.1:56001 ut=0.1", "127.0.0.1:56001", &st);
	/* A prefix of the address is not the address. */
	count("h - - [t] \"GET / HTTP/1.1\" 200 1 \"-\" \"c\" \"-\" upstream=127.0.0.1:560011",
	      "127.0.0.1:56001", &st);
	/* Not access lines: nginx's own notices, a bare status-less quote. */
	count("2026/11/27 23:07:38 [notice] 7#7: signal process started", "127.0.0.1:56001", &st);
	count("\"GET / HTTP/1.1\" abc", NULL, &st);
	count("", NULL, &st);
	assert_int_equal(st.requests, 4);
	assert_int_equal(st.errors, 2);
	assert_int_equal(st.to_upstream, 2);
	assert_int_equal(st.errors_upstream, 1);
	/* No upstream asked: nothing counted as ours. */
	count("h - - [t] \"GET / HTTP/1.1\" 500 1", NULL, &st);
	assert_int_equal(st.requests, 5);
	assert_int_equal(st.errors, 3);
	assert_int_equal(st.to_upstream, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_render),
		cmocka_unit_test(test_read_back),
		cmocka_unit_test(test_url_with_port),
		cmocka_unit_test(test_workers),
		cmocka_unit_test(test_log_count),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

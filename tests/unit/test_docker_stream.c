/* Docker stream parsers fed canned bytes: frames, lines, JSON lines, error
 * bodies, HTTP heads, URL encoding, API version negotiation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "docker_stream.h"
#include "sbuf.h"

/* ---- helpers ---- */

static void frame(struct sbuf *sb, int stream, const char *data, size_t len)
{
	unsigned char h[8] = { (unsigned char)stream, 0, 0, 0, (unsigned char)(len >> 24),
			       (unsigned char)(len >> 16), (unsigned char)(len >> 8), (unsigned char)len };

	assert_int_equal(sbuf_append(sb, h, 8), 0);
	assert_int_equal(sbuf_append(sb, data, len), 0);
}

static void frame_s(struct sbuf *sb, int stream, const char *s)
{
	frame(sb, stream, s, strlen(s));
}

struct collect {
	struct sbuf out, err;
	int starts;        /* frame_start calls */
	int calls;
	size_t max_piece;
	int stop_after;    /* stop with -99 after this many calls (0: never) */
};

static int collect_chunk(void *ud, int stream, const char *data, size_t len, int frame_start,
			 struct st_error *err)
{
	struct collect *c = ud;

	(void)err;
	c->calls++;
	c->starts += frame_start;
	if (len > c->max_piece)
		c->max_piece = len;
	assert_true(stream == DOCKER_STREAM_STDOUT || stream == DOCKER_STREAM_STDERR);
	assert_int_equal(sbuf_append(stream == DOCKER_STREAM_STDOUT ? &c->out : &c->err, data, len), 0);
	if (c->stop_after && c->calls >= c->stop_after)
		return -99;
	return 0;
}

static void collect_release(struct collect *c)
{
	sbuf_release(&c->out);
	sbuf_release(&c->err);
}

/* Feeds bytes to a fresh demultiplexer in pieces of `step` bytes. */
static int demux_in_steps(const struct sbuf *in, size_t step, struct collect *c, struct st_error *err)
{
	struct docker_demux d;
	int rc;

	docker_demux_init(&d, 0, collect_chunk, c);
	for (size_t off = 0; off < in->len; off += step) {
		size_t n = in->len - off < step ? in->len - off : step;

		if ((rc = docker_demux_feed(&d, in->buf + off, n, err)))
			return rc;
	}
	return docker_demux_finish(&d, err);
}

/* ---- demultiplexer ---- */

static void test_demux_interleaved(void **state)
{
	struct sbuf in = SBUF_INIT;
	struct collect c;
	struct st_error err;

	(void)state;
	memset(&c, 0, sizeof(c));
	frame_s(&in, 1, "hello ");
	frame_s(&in, 2, "warning: x\n");
	frame_s(&in, 1, "world\n");
	frame_s(&in, 2, "second");
	assert_int_equal(demux_in_steps(&in, in.len, &c, &err), 0);
	assert_string_equal(sbuf_str(&c.out), "hello world\n");
	assert_string_equal(sbuf_str(&c.err), "warning: x\nsecond");
	assert_int_equal(c.starts, 4);
	collect_release(&c);
	sbuf_release(&in);
}

static void test_demux_split_everywhere(void **state)
{
	struct sbuf in = SBUF_INIT;
	struct st_error err;

	(void)state;
	frame_s(&in, 1, "abc");
	frame_s(&in, 2, "defgh");
	frame_s(&in, 1, "");
	frame_s(&in, 1, "ij");
	/* Every piece size, from byte by byte (header split at every offset) up. */
	for (size_t step = 1; step <= in.len; step++) {
		struct collect c;

		memset(&c, 0, sizeof(c));
		assert_int_equal(demux_in_steps(&in, step, &c, &err), 0);
		assert_string_equal(sbuf_str(&c.out), "abcij");
		assert_string_equal(sbuf_str(&c.err), "defgh");
		/* One start per non-empty frame, however it was cut. */
		assert_int_equal(c.starts, 3);
		collect_release(&c);
	}
	/* Every split into two reads at every position. */
	for (size_t cut = 0; cut <= in.len; cut++) {
		struct docker_demux d;
		struct collect c;

		memset(&c, 0, sizeof(c));
		docker_demux_init(&d, 0, collect_chunk, &c);
		assert_int_equal(docker_demux_feed(&d, in.buf, cut, &err), 0);
		assert_int_equal(docker_demux_feed(&d, in.buf + cut, in.len - cut, &err), 0);
		assert_int_equal(docker_demux_finish(&d, &err), 0);
		assert_string_equal(sbuf_str(&c.out), "abcij");
		assert_string_equal(sbuf_str(&c.err), "defgh");
		assert_int_equal(d.frames, 4);
		collect_release(&c);
	}
	sbuf_release(&in);
}

static void test_demux_zero_length_frames(void **state)
{
	struct sbuf in = SBUF_INIT;
	struct docker_demux d;
	struct collect c;
	struct st_error err;

	(void)state;
	memset(&c, 0, sizeof(c));
	frame_s(&in, 1, "");
	frame_s(&in, 2, "");
	frame_s(&in, 1, "x");
	frame_s(&in, 1, "");
	docker_demux_init(&d, 0, collect_chunk, &c);
	assert_int_equal(docker_demux_feed(&d, in.buf, in.len, &err), 0);
	assert_int_equal(docker_demux_finish(&d, &err), 0);
	assert_int_equal(d.frames, 4);
	assert_int_equal(c.calls, 1);
	assert_string_equal(sbuf_str(&c.out), "x");
	collect_release(&c);
	sbuf_release(&in);
}

static void test_demux_truncated(void **state)
{
	struct sbuf in = SBUF_INIT;
	struct docker_demux d;
	struct collect c;
	struct st_error err;

	(void)state;
	memset(&c, 0, sizeof(c));
	frame_s(&in, 1, "complete");
	frame_s(&in, 2, "cut off");
	/* Header cut after 5 of its 8 bytes. */
	docker_demux_init(&d, 0, collect_chunk, &c);
	assert_int_equal(docker_demux_feed(&d, in.buf, 16 + 5, &err), 0);
	assert_int_equal(docker_demux_finish(&d, &err), ST_EPROTO);
	assert_non_null(strstr(err.message, "frame header (5 of 8 bytes)"));
	collect_release(&c);
	/* Payload cut after 3 of 7 bytes. */
	memset(&c, 0, sizeof(c));
	docker_demux_init(&d, 0, collect_chunk, &c);
	assert_int_equal(docker_demux_feed(&d, in.buf, 16 + 8 + 3, &err), 0);
	assert_int_equal(docker_demux_finish(&d, &err), ST_EPROTO);
	assert_non_null(strstr(err.message, "4 of 7 payload bytes missing"));
	assert_string_equal(sbuf_str(&c.err), "cut");
	collect_release(&c);
	/* An empty stream is fine. */
	docker_demux_init(&d, 0, collect_chunk, &c);
	assert_int_equal(docker_demux_finish(&d, &err), 0);
	sbuf_release(&in);
}

static void test_demux_bad_header(void **state)
{
	static const unsigned char bad_stream[8] = { 7, 0, 0, 0, 0, 0, 0, 1 };
	static const unsigned char bad_pad[8] = { 1, 0, 1, 0, 0, 0, 0, 1 };
	struct docker_demux d;
	struct collect c;
	struct st_error err;

	(void)state;
	memset(&c, 0, sizeof(c));
	docker_demux_init(&d, 0, collect_chunk, &c);
	assert_int_equal(docker_demux_feed(&d, bad_stream, 8, &err), ST_EPROTO);
	assert_non_null(strstr(err.message, "bad stream frame header"));
	docker_demux_init(&d, 0, collect_chunk, &c);
	assert_int_equal(docker_demux_feed(&d, bad_pad, 8, &err), ST_EPROTO);
	/* Text where frames belong (a TTY stream read as framed). */
	docker_demux_init(&d, 0, collect_chunk, &c);
	assert_int_equal(docker_demux_feed(&d, "hello, world", 12, &err), ST_EPROTO);
	collect_release(&c);
}

static void test_demux_32k_payload(void **state)
{
	struct sbuf in = SBUF_INIT;
	struct collect c;
	struct st_error err;
	char *big = malloc(32768);

	(void)state;
	assert_non_null(big);
	for (size_t i = 0; i < 32768; i++)
		big[i] = (char)('a' + i % 26);
	memset(&c, 0, sizeof(c));
	frame(&in, 1, big, 32768);
	frame_s(&in, 2, "tail");
	assert_int_equal(demux_in_steps(&in, 1000, &c, &err), 0);
	assert_int_equal(c.out.len, 32768);
	assert_memory_equal(c.out.buf, big, 32768);
	assert_string_equal(sbuf_str(&c.err), "tail");
	assert_int_equal(c.starts, 2);
	/* Delivered as it came: never more than one read's worth at a time. */
	assert_true(c.max_piece <= 1000);
	collect_release(&c);
	free(big);
	sbuf_release(&in);
}

static void test_demux_systemerr_and_stop(void **state)
{
	struct sbuf in = SBUF_INIT;
	struct collect c;
	struct st_error err;

	(void)state;
	memset(&c, 0, sizeof(c));
	frame_s(&in, 1, "out");
	frame_s(&in, 3, "exec failed: no such file");
	assert_int_equal(demux_in_steps(&in, 3, &c, &err), ST_ESERVICE);
	assert_non_null(strstr(err.message, "exec failed: no such file"));
	assert_string_equal(sbuf_str(&c.out), "out");
	collect_release(&c);
	/* A callback's non-zero return stops the demultiplexer and comes back as is. */
	memset(&c, 0, sizeof(c));
	c.stop_after = 1;
	assert_int_equal(demux_in_steps(&in, in.len, &c, &err), -99);
	collect_release(&c);
	sbuf_release(&in);
}

static void test_demux_raw(void **state)
{
	struct docker_demux d;
	struct collect c;
	struct st_error err;

	(void)state;
	memset(&c, 0, sizeof(c));
	docker_demux_init(&d, 1, collect_chunk, &c);
	assert_int_equal(docker_demux_feed(&d, "\x01\x00tty ", 6, &err), 0);
	assert_int_equal(docker_demux_feed(&d, "bytes", 5, &err), 0);
	assert_int_equal(docker_demux_finish(&d, &err), 0);
	assert_int_equal(c.out.len, 11);
	assert_memory_equal(c.out.buf, "\x01\x00tty bytes", 11);
	assert_int_equal(c.starts, 1);
	collect_release(&c);
}

/* ---- lines ---- */

struct got_line {
	int stream;
	char ts[64];
	double time;
	char text[128];
	size_t len;
	int split;
};

struct lines_collect {
	struct got_line lines[32];
	int n;
	int stop_at;
};

static int collect_line(void *ud, const struct docker_log_line *l, struct st_error *err)
{
	struct lines_collect *lc = ud;
	struct got_line *g;

	(void)err;
	assert_true(lc->n < 32);
	g = &lc->lines[lc->n++];
	g->stream = l->stream;
	snprintf(g->ts, sizeof(g->ts), "%s", l->timestamp);
	g->time = l->time;
	assert_true(l->len < sizeof(g->text));
	assert_int_equal(strlen(l->text), l->len);
	memcpy(g->text, l->text, l->len + 1);
	g->len = l->len;
	g->split = l->split;
	if (lc->stop_at && lc->n == lc->stop_at)
		return 5;
	return 0;
}

#define TS1 "2026-11-27T22:34:16.123456789Z"
#define TS2 "2026-11-27T22:34:17.000000001Z"
#define TS3 "2026-11-27T22:34:18.500000000Z"

static int lines_through_demux(const struct sbuf *in, size_t step, int timestamps, size_t max_line,
			       struct lines_collect *lc, struct st_error *err)
{
	struct docker_lines l;
	struct docker_demux d;
	int rc = 0;

	docker_lines_init(&l, timestamps, 0, max_line, collect_line, lc);
	docker_demux_init(&d, 0, docker_lines_chunk, &l);
	for (size_t off = 0; off < in->len && !rc; off += step)
		rc = docker_demux_feed(&d, in->buf + off, in->len - off < step ? in->len - off : step, err);
	if (!rc)
		rc = docker_demux_finish(&d, err);
	if (!rc)
		rc = docker_lines_finish(&l, err);
	docker_lines_release(&l);
	return rc;
}

static void test_lines_timestamps_across_frames(void **state)
{
	struct sbuf in = SBUF_INIT;
	struct st_error err;

	(void)state;
	/* A long line split by the log driver: the second part has its own
	 * timestamp, which is dropped; stderr interleaves meanwhile. */
	frame_s(&in, 1, TS1 " first part, ");
	frame_s(&in, 2, TS2 " an error\n");
	frame_s(&in, 1, TS2 " second part\n");
	frame_s(&in, 1, TS3 " next\n");
	frame_s(&in, 2, TS3 " \n");
	for (size_t step = 1; step <= in.len; step += (step < 20 ? 1 : 17)) {
		struct lines_collect lc;

		memset(&lc, 0, sizeof(lc));
		assert_int_equal(lines_through_demux(&in, step, 1, 0, &lc, &err), 0);
		assert_int_equal(lc.n, 4);
		assert_int_equal(lc.lines[0].stream, DOCKER_STREAM_STDERR);
		assert_string_equal(lc.lines[0].text, "an error");
		assert_string_equal(lc.lines[0].ts, TS2);
		assert_int_equal(lc.lines[1].stream, DOCKER_STREAM_STDOUT);
		assert_string_equal(lc.lines[1].text, "first part, second part");
		assert_string_equal(lc.lines[1].ts, TS1);
		assert_true(fabs(lc.lines[1].time - 1795818856.123456789) < 1e-5);
		assert_string_equal(lc.lines[2].text, "next");
		assert_string_equal(lc.lines[2].ts, TS3);
		assert_true(fabs(lc.lines[2].time - 1795818858.5) < 1e-6);
		assert_int_equal(lc.lines[3].stream, DOCKER_STREAM_STDERR);
		assert_string_equal(lc.lines[3].text, "");
		assert_int_equal(lc.lines[3].split, 0);
	}
	sbuf_release(&in);
}

static void test_lines_without_timestamps(void **state)
{
	struct sbuf in = SBUF_INIT;
	struct lines_collect lc;
	struct st_error err;

	(void)state;
	memset(&lc, 0, sizeof(lc));
	/* Exec output: frames hold several lines, or parts of one. */
	frame_s(&in, 1, "a\nb\nc");
	frame_s(&in, 1, "ont\n\nlast without newline");
	frame_s(&in, 2, "err");
	assert_int_equal(lines_through_demux(&in, 2, 0, 0, &lc, &err), 0);
	assert_int_equal(lc.n, 6);
	assert_string_equal(lc.lines[0].text, "a");
	assert_string_equal(lc.lines[1].text, "b");
	assert_string_equal(lc.lines[2].text, "cont");
	assert_string_equal(lc.lines[3].text, "");
	assert_string_equal(lc.lines[4].text, "last without newline");
	assert_int_equal(lc.lines[4].stream, DOCKER_STREAM_STDOUT);
	assert_string_equal(lc.lines[5].text, "err");
	assert_int_equal(lc.lines[5].stream, DOCKER_STREAM_STDERR);
	assert_string_equal(lc.lines[0].ts, "");
	assert_true(lc.lines[0].time == 0);
	sbuf_release(&in);
}

static void test_lines_bounded(void **state)
{
	struct sbuf in = SBUF_INIT;
	struct lines_collect lc;
	struct st_error err;

	(void)state;
	memset(&lc, 0, sizeof(lc));
	frame_s(&in, 1, TS1 " abcdefghij\n");
	frame_s(&in, 1, TS2 " xy\n");
	assert_int_equal(lines_through_demux(&in, 3, 1, 4, &lc, &err), 0);
	assert_int_equal(lc.n, 4);
	assert_string_equal(lc.lines[0].text, "abcd");
	assert_int_equal(lc.lines[0].split, 1);
	assert_string_equal(lc.lines[1].text, "efgh");
	assert_int_equal(lc.lines[1].split, 1);
	assert_string_equal(lc.lines[1].ts, TS1);
	assert_string_equal(lc.lines[2].text, "ij");
	assert_int_equal(lc.lines[2].split, 0);
	assert_string_equal(lc.lines[3].text, "xy");
	assert_string_equal(lc.lines[3].ts, TS2);
	sbuf_release(&in);
}

static void test_lines_errors(void **state)
{
	struct sbuf in = SBUF_INIT;
	struct lines_collect lc;
	struct st_error err;
	char ts[100];

	(void)state;
	memset(&lc, 0, sizeof(lc));
	memset(ts, '9', sizeof(ts) - 1);
	ts[sizeof(ts) - 1] = '\0';
	frame_s(&in, 1, ts);
	assert_int_equal(lines_through_demux(&in, in.len, 1, 0, &lc, &err), ST_EPROTO);
	assert_non_null(strstr(err.message, "timestamp longer"));
	/* A line callback's non-zero return stops everything. */
	sbuf_reset(&in);
	memset(&lc, 0, sizeof(lc));
	lc.stop_at = 2;
	frame_s(&in, 1, "1\n2\n3\n");
	assert_int_equal(lines_through_demux(&in, in.len, 0, 0, &lc, &err), 5);
	assert_int_equal(lc.n, 2);
	sbuf_release(&in);
}

static void test_lines_raw_timestamps(void **state)
{
	static const char tty[] = TS1 " one\r\n" TS2 " two\n" TS3 " thr";
	struct lines_collect lc;
	struct docker_lines l;
	struct docker_demux d;
	struct st_error err;

	(void)state;
	memset(&lc, 0, sizeof(lc));
	docker_lines_init(&l, 1, 1, 0, collect_line, &lc);
	docker_demux_init(&d, 1, docker_lines_chunk, &l);
	for (size_t i = 0; i < sizeof(tty) - 1; i++)
		assert_int_equal(docker_demux_feed(&d, tty + i, 1, &err), 0);
	assert_int_equal(docker_lines_finish(&l, &err), 0);
	assert_int_equal(lc.n, 3);
	assert_string_equal(lc.lines[0].text, "one\r");
	assert_string_equal(lc.lines[0].ts, TS1);
	assert_string_equal(lc.lines[1].text, "two");
	assert_string_equal(lc.lines[1].ts, TS2);
	assert_string_equal(lc.lines[2].text, "thr");
	assert_string_equal(lc.lines[2].ts, TS3);
	docker_lines_release(&l);
}

static void test_parse_time(void **state)
{
	double t;

	(void)state;
	assert_int_equal(docker_parse_time(TS1, strlen(TS1), &t), 0);
	assert_true(fabs(t - 1795818856.123456789) < 1e-5);
	assert_int_equal(docker_parse_time("2026-11-27T23:34:16+01:00", 25, &t), 0);
	assert_true(t == 1795818856.0);
	assert_int_equal(docker_parse_time("2026-11-27T22:34:16.5Z", 22, &t), 0);
	assert_true(t == 1795818856.5);
	assert_int_equal(docker_parse_time("1970-01-01T00:00:00Z", 20, &t), 0);
	assert_true(t == 0);
	assert_int_equal(docker_parse_time("2026-11-27 22:34:16Z", 20, &t), -1);
	assert_int_equal(docker_parse_time("2026-11-27T22:34:16", 19, &t), -1);
	assert_int_equal(docker_parse_time("2026-11-27T22:34:16.Z", 21, &t), -1);
	assert_int_equal(docker_parse_time("2026-13-27T22:34:16Z", 20, &t), -1);
	assert_int_equal(docker_parse_time("2026-11-27T22:34:16Zjunk", 24, &t), -1);
}

/* ---- build output ---- */

struct progress {
	struct sbuf text;
	int calls;
};

static int on_progress(void *ud, const char *text)
{
	struct progress *p = ud;

	p->calls++;
	assert_int_equal(sbuf_puts(&p->text, text), 0);
	return 0;
}

static int build_in_steps(const char *stream, size_t step, struct progress *p, char **id,
			  struct st_error *err)
{
	struct docker_build_parser bp;
	size_t len = strlen(stream);
	int rc = 0;

	docker_build_parser_init(&bp, on_progress, p);
	for (size_t off = 0; off < len && !rc; off += step)
		rc = docker_build_parser_feed(&bp, stream + off, len - off < step ? len - off : step, err);
	if (!rc)
		rc = docker_build_parser_finish(&bp, err);
	*id = bp.image_id;
	bp.image_id = NULL;
	docker_build_parser_release(&bp);
	return rc;
}

#define IMAGE_ID "sha256:4f1b7c0a6f0d2e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d"

static void test_build_success_split(void **state)
{
	static const char stream[] =
		"{\"stream\":\"Step 1/2 : FROM scratch\\n\"}\r\n"
		"{\"stream\":\"Step 2/2 : COPY . /\\n\"}\n"
		"\n"
		"{\"stream\":\" ---\\u003e 4f1b7c0a6f0d\\n\"}\n"
		"{\"aux\":{\"ID\":\"" IMAGE_ID "\"}}\n"
		"{\"stream\":\"Successfully built 4f1b7c0a6f0d\\n\"}\n"
		"{\"stream\":\"Successfully tagged x:latest\\n\"}"; /* no final newline */

	(void)state;
	for (size_t step = 1; step < sizeof(stream); step += (step < 40 ? 1 : 29)) {
		struct progress p;
		struct st_error err;
		char *id = NULL;

		memset(&p, 0, sizeof(p));
		assert_int_equal(build_in_steps(stream, step, &p, &id, &err), 0);
		assert_string_equal(id, IMAGE_ID);
		assert_int_equal(p.calls, 5);
		assert_string_equal(sbuf_str(&p.text), "Step 1/2 : FROM scratch\nStep 2/2 : COPY . /\n"
				    " ---> 4f1b7c0a6f0d\nSuccessfully built 4f1b7c0a6f0d\n"
				    "Successfully tagged x:latest\n");
		free(id);
		sbuf_release(&p.text);
	}
}

static void test_build_error_line(void **state)
{
	static const char stream[] =
		"{\"stream\":\"Step 1/3 : FROM scratch\\n\"}\n"
		"{\"stream\":\"Step 2/3 : RUN [\\\"/bin/busybox\\\",\\\"false\\\"]\\n\"}\n"
		"{\"errorDetail\":{\"code\":1,\"message\":\"The command '/bin/busybox false' returned a "
		"non-zero code: 1\"},\"error\":\"The command '/bin/busybox false' returned a non-zero code: 1\"}\n";
	struct progress p;
	struct st_error err;
	char *id = NULL;

	(void)state;
	memset(&p, 0, sizeof(p));
	assert_int_equal(build_in_steps(stream, 7, &p, &id, &err), ST_EFAILED);
	assert_null(id);
	assert_string_equal(err.message, "image build failed: The command '/bin/busybox false' returned "
			    "a non-zero code: 1");
	sbuf_release(&p.text);
	/* "error" alone counts too, and wins over an aux id seen before. */
	memset(&p, 0, sizeof(p));
	assert_int_equal(build_in_steps("{\"aux\":{\"ID\":\"sha256:1\"}}\n{\"error\":\"disk full\\n\"}\n", 5, &p,
					&id, &err), ST_EFAILED);
	assert_string_equal(err.message, "image build failed: disk full");
	free(id);
	sbuf_release(&p.text);
}

static void test_build_odd_output(void **state)
{
	struct progress p;
	struct st_error err;
	char *id = NULL;

	(void)state;
	memset(&p, 0, sizeof(p));
	/* No aux line (old engines): the text names the id. */
	assert_int_equal(build_in_steps("{\"stream\":\"Successfully built 0123abcd\\n\"}\n", 4, &p, &id, &err), 0);
	assert_string_equal(id, "0123abcd");
	free(id);
	id = NULL;
	/* No id at all. */
	assert_int_equal(build_in_steps("{\"stream\":\"Step 1/1\\n\"}\n", 100, &p, &id, &err), ST_EPROTO);
	assert_non_null(strstr(err.message, "without an image id"));
	/* Not JSON. */
	assert_int_equal(build_in_steps("{\"stream\":\"ok\"}\nthis is not json\n", 100, &p, &id, &err),
			 ST_EPROTO);
	assert_non_null(strstr(err.message, "this is not json"));
	assert_int_equal(build_in_steps("[1,2]\n", 100, &p, &id, &err), ST_EPROTO);
	assert_null(id);
	sbuf_release(&p.text);
	/* A short line at the end of a buffer without a NUL after it: the
	 * message quotes that line, not what follows in memory (review 7). */
	{
		struct docker_build_parser bp;
		char *buf = malloc(4);

		memcpy(buf, "xy\nz", 4);
		docker_build_parser_init(&bp, NULL, NULL);
		assert_int_equal(docker_build_parser_feed(&bp, buf, 3, &err), ST_EPROTO);
		assert_string_equal(err.message, "cannot parse build output line 'xy'");
		docker_build_parser_release(&bp);
		free(buf);
	}
}

static int jsonl_count(void *ud, const char *line, size_t len, struct st_error *err)
{
	(void)line;
	(void)len;
	(void)err;
	(*(int *)ud)++;
	return 0;
}

static void test_jsonl_limit(void **state)
{
	struct docker_jsonl j;
	struct st_error err;
	int n = 0;

	(void)state;
	docker_jsonl_init(&j, 8, jsonl_count, &n);
	assert_int_equal(docker_jsonl_feed(&j, "{\"a\":1}\n  \n{\"b\"", 16, &err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(docker_jsonl_feed(&j, ":22222}\n", 8, &err), ST_EPROTO);
	assert_non_null(strstr(err.message, "longer than 8 bytes"));
	docker_jsonl_release(&j);
}

/* ---- errors and HTTP ---- */

#define ET(s) docker_error_text(s, strlen(s), out, sizeof(out))

static void test_error_text(void **state)
{
	char out[64];

	(void)state;
	ET("{\"message\":\"No such container: web\"}");
	assert_string_equal(out, "No such container: web");
	ET("{\"message\":\"conflict\\nsecond line\\n\"}");
	assert_string_equal(out, "conflict second line");
	/* Malformed JSON: the text itself, first line only. */
	ET("{\"message\": \"cut");
	assert_string_equal(out, "{\"message\": \"cut");
	ET("  page not found\nmore\n");
	assert_string_equal(out, "page not found");
	/* JSON without a message: the body. */
	ET("{\"error\":1}");
	assert_string_equal(out, "{\"error\":1}");
	ET("");
	assert_string_equal(out, "");
	docker_error_text(NULL, 0, out, sizeof(out));
	assert_string_equal(out, "");
	ET("{\"message\":\"\"}");
	assert_string_equal(out, "{\"message\":\"\"}");
	/* Control characters never reach a terminal; long text is cut. */
	ET("bad\x1b[31m red");
	assert_string_equal(out, "bad [31m red");
	docker_error_text("0123456789012345678901234567890123456789012345678901234567890123456789", 70, out, 16);
	assert_string_equal(out, "012345678901234");
}

static void test_status_codes(void **state)
{
	(void)state;
	assert_int_equal(docker_status_code(200), 0);
	assert_int_equal(docker_status_code(204), 0);
	assert_int_equal(docker_status_code(304), ST_ESERVICE);
	assert_int_equal(docker_status_code(400), ST_EUSAGE);
	assert_int_equal(docker_status_code(404), ST_ENOTFOUND);
	assert_int_equal(docker_status_code(409), ST_ECONFLICT);
	assert_int_equal(docker_status_code(500), ST_ESERVICE);
	assert_int_equal(docker_status_code(504), ST_ETIMEOUT);
}

static void test_http_head(void **state)
{
	static const char up[] = "HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\n"
				 "Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n\x01\x00\x00\x00";
	static const char nf[] = "HTTP/1.1 404 Not Found\r\ncontent-LENGTH:  29\r\n\r\n{\"message\":\"No such exec\"}";
	size_t head;
	long long clen;
	int status;

	(void)state;
	assert_int_equal(docker_http_head_parse(up, sizeof(up) - 1, &status, &head, &clen), 1);
	assert_int_equal(status, 101);
	assert_int_equal(head, sizeof(up) - 1 - 4);
	assert_int_equal(clen, -1);
	for (size_t n = 0; n < head; n++)
		assert_int_equal(docker_http_head_parse(up, n, &status, &head, &clen), 0);
	assert_int_equal(docker_http_head_parse(nf, sizeof(nf) - 1, &status, &head, &clen), 1);
	assert_int_equal(status, 404);
	assert_int_equal(clen, 29);
	assert_int_equal(docker_http_head_parse("SSH-2.0-OpenSSH\r\n\r\n", 19, &status, &head, &clen), ST_EPROTO);
	assert_int_equal(docker_http_head_parse("HTTP/1.1 2x0 OK\r\n\r\n", 19, &status, &head, &clen), ST_EPROTO);
	assert_int_equal(docker_http_head_parse("HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n", 39, &status,
						&head, &clen), ST_EPROTO);
	/* A length that overflows is refused before it does (review 6). */
	{
		static const char big[] = "HTTP/1.1 101 UPGRADED\r\nContent-Length: 99999999999999999999999999999\r\n\r\n";
		static const char max[] = "HTTP/1.1 200 OK\r\nContent-Length: 1125899906842624\r\n\r\n";
		static const char over[] = "HTTP/1.1 200 OK\r\nContent-Length: 1125899906842625\r\n\r\n";

		assert_int_equal(docker_http_head_parse(big, sizeof(big) - 1, &status, &head, &clen), ST_EPROTO);
		assert_int_equal(docker_http_head_parse(max, sizeof(max) - 1, &status, &head, &clen), 1);
		assert_int_equal(clen, 1LL << 50);
		assert_int_equal(docker_http_head_parse(over, sizeof(over) - 1, &status, &head, &clen), ST_EPROTO);
	}
}

static void test_url_escape(void **state)
{
	struct sbuf sb = SBUF_INIT;

	(void)state;
	assert_int_equal(docker_url_escape(&sb, "{\"label\":[\"app=web 1\"]}", 0), 0);
	assert_string_equal(sbuf_str(&sb), "%7B%22label%22%3A%5B%22app%3Dweb%201%22%5D%7D");
	sbuf_reset(&sb);
	assert_int_equal(docker_url_escape(&sb, "registry:5000/team/app:v1.2_x~y", 1), 0);
	assert_string_equal(sbuf_str(&sb), "registry:5000/team/app:v1.2_x~y");
	sbuf_reset(&sb);
	assert_int_equal(docker_url_escape(&sb, "a/b&c?d#e", 0), 0);
	assert_string_equal(sbuf_str(&sb), "a%2Fb%26c%3Fd%23e");
	sbuf_release(&sb);
}

static void test_api_negotiate(void **state)
{
	struct st_error err;
	char v[16];
	int n;

	(void)state;
	assert_int_equal(docker_api_version_parse("1.41", &n), 0);
	assert_int_equal(n, 1041);
	assert_int_equal(docker_api_version_parse("1.9", &n), 0);
	assert_int_equal(n, 1009);
	assert_int_equal(docker_api_version_parse("v1.41", &n), -1);
	assert_int_equal(docker_api_version_parse("1.", &n), -1);
	/* The daemon's own version when it is within ours. */
	assert_int_equal(docker_api_negotiate("1.41", "1.12", "1.41", "1.45", v, sizeof(v), &err), 0);
	assert_string_equal(v, "1.41");
	assert_int_equal(docker_api_negotiate("1.43", NULL, "1.41", "1.45", v, sizeof(v), &err), 0);
	assert_string_equal(v, "1.43");
	/* Capped at ours when the daemon is newer: 1.9 < 1.45 < 1.50 numerically. */
	assert_int_equal(docker_api_negotiate("1.50", "1.24", "1.41", "1.45", v, sizeof(v), &err), 0);
	assert_string_equal(v, "1.45");
	/* Too old a daemon. */
	assert_int_equal(docker_api_negotiate("1.40", "1.12", "1.41", "1.45", v, sizeof(v), &err), ST_ESERVICE);
	assert_non_null(strstr(err.message, "docker speaks API 1.40, too old"));
	assert_non_null(strstr(err.hint, "upgrade"));
	/* A daemon that no longer speaks our newest. */
	assert_int_equal(docker_api_negotiate("1.52", "1.46", "1.41", "1.45", v, sizeof(v), &err), ST_ESERVICE);
	assert_non_null(strstr(err.message, "requires API 1.46"));
	assert_int_equal(docker_api_negotiate(NULL, NULL, "1.41", "1.45", v, sizeof(v), &err), ST_EPROTO);
	assert_int_equal(docker_api_negotiate("x", NULL, "1.41", "1.45", v, sizeof(v), &err), ST_EPROTO);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_demux_interleaved),
		cmocka_unit_test(test_demux_split_everywhere),
		cmocka_unit_test(test_demux_zero_length_frames),
		cmocka_unit_test(test_demux_truncated),
		cmocka_unit_test(test_demux_bad_header),
		cmocka_unit_test(test_demux_32k_payload),
		cmocka_unit_test(test_demux_systemerr_and_stop),
		cmocka_unit_test(test_demux_raw),
		cmocka_unit_test(test_lines_timestamps_across_frames),
		cmocka_unit_test(test_lines_without_timestamps),
		cmocka_unit_test(test_lines_bounded),
		cmocka_unit_test(test_lines_errors),
		cmocka_unit_test(test_lines_raw_timestamps),
		cmocka_unit_test(test_parse_time),
		cmocka_unit_test(test_build_success_split),
		cmocka_unit_test(test_build_error_line),
		cmocka_unit_test(test_build_odd_output),
		cmocka_unit_test(test_jsonl_limit),
		cmocka_unit_test(test_error_text),
		cmocka_unit_test(test_status_codes),
		cmocka_unit_test(test_http_head),
		cmocka_unit_test(test_url_escape),
		cmocka_unit_test(test_api_negotiate),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

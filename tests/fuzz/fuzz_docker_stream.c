/*
 * fuzz_docker_stream.c - the Docker exec/log stream (lib/docker_stream.c):
 * 8-byte framed stdout/stderr demultiplexing with line reassembly and
 * timestamps, fed once whole and once in arbitrary chunk splits. Both runs
 * must deliver exactly the same lines and end with the same code: how
 * reads split a stream must never change what it means.
 *
 * Input: byte 0 picks the mode (bit 0 raw/Tty, bit 1 timestamps, bits 2-3
 * the longest line), bytes 1-4 seed the chunk sizes, the rest is the stream.
 * The same bytes also go through the small parsers of that module: HTTP
 * response head, error body, RFC 3339 time, API version.
 */
#include "fuzz.h"

#include <string.h>

#include "docker_stream.h"

struct seen {
	uint64_t hash;
	size_t lines;
	size_t max_line;
};

static int on_line(void *ud, const struct docker_log_line *line, struct st_error *err)
{
	struct seen *s = ud;
	unsigned char meta[3];

	(void)err;
	FUZZ_CHECK(line->stream == DOCKER_STREAM_STDOUT || line->stream == DOCKER_STREAM_STDERR);
	FUZZ_CHECK(line->text != NULL && line->text[line->len] == '\0');
	FUZZ_CHECK(line->timestamp != NULL && strlen(line->timestamp) < DOCKER_TIMESTAMP_MAX);
	FUZZ_CHECK(line->len <= s->max_line);
	FUZZ_CHECK(!line->split || line->len == s->max_line);
	meta[0] = (unsigned char)line->stream;
	meta[1] = (unsigned char)line->split;
	meta[2] = 0xff;
	s->hash = fuzz_hash(s->hash, meta, sizeof(meta));
	s->hash = fuzz_hash(s->hash, line->timestamp, strlen(line->timestamp) + 1);
	s->hash = fuzz_hash(s->hash, &line->time, sizeof(line->time));
	s->hash = fuzz_hash(s->hash, line->text, line->len);
	s->lines++;
	return 0;
}

/* Demultiplexes and splits the stream into lines; chunked != 0 feeds it in
 * pieces drawn from seed. Returns the final code. */
static int run(const uint8_t *data, size_t size, int raw, int timestamps, size_t max_line, int chunked,
	       uint32_t seed, struct seen *seen)
{
	struct docker_lines lines;
	struct docker_demux demux;
	struct st_error err = { 0 };
	size_t off = 0;
	int rc = 0;

	seen->hash = FUZZ_HASH_INIT;
	seen->lines = 0;
	seen->max_line = max_line ? max_line : DOCKER_LINE_MAX_DEFAULT;
	docker_lines_init(&lines, timestamps, raw, max_line, on_line, seen);
	docker_demux_init(&demux, raw, docker_lines_chunk, &lines);
	while (off < size && rc == 0) {
		size_t n = chunked ? fuzz_next_chunk(&seed, size - off) : size - off;

		rc = docker_demux_feed(&demux, data + off, n, &err);
		off += n;
	}
	if (rc == 0)
		rc = docker_demux_finish(&demux, &err);
	if (rc == 0)
		rc = docker_lines_finish(&lines, &err);
	if (rc)
		FUZZ_CHECK(rc < 0 && err.message[0] != '\0');
	docker_lines_release(&lines);
	return rc;
}

static void small_parsers(const uint8_t *data, size_t size)
{
	char text[128], *copy;
	size_t head_len = 0;
	long long content_length = 0;
	double t;
	int status = 0, v, rc;

	rc = docker_http_head_parse((const char *)data, size, &status, &head_len, &content_length);
	FUZZ_CHECK(rc == 1 || rc == 0 || rc < 0);
	if (rc == 1)
		FUZZ_CHECK(head_len <= size);
	docker_error_text((const char *)data, size, text, sizeof(text));
	FUZZ_CHECK(memchr(text, '\0', sizeof(text)) != NULL);
	docker_parse_time((const char *)data, size, &t);
	copy = malloc(size + 1);
	if (!copy)
		return;
	memcpy(copy, data, size);
	copy[size] = '\0';
	docker_api_version_parse(copy, &v);
	free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t max_lines[4] = { 0, 1, 7, 64 };
	struct seen whole, pieces;
	uint32_t seed;
	int raw, timestamps, rc_whole, rc_pieces;
	size_t max_line;

	if (size < 5)
		return 0;
	raw = data[0] & 1;
	timestamps = (data[0] >> 1) & 1;
	max_line = max_lines[(data[0] >> 2) & 3];
	seed = (uint32_t)data[1] | (uint32_t)data[2] << 8 | (uint32_t)data[3] << 16 |
	       (uint32_t)data[4] << 24;
	data += 5;
	size -= 5;
	rc_whole = run(data, size, raw, timestamps, max_line, 0, seed, &whole);
	rc_pieces = run(data, size, raw, timestamps, max_line, 1, seed, &pieces);
	if (rc_whole != rc_pieces || whole.lines != pieces.lines || whole.hash != pieces.hash) {
		fprintf(stderr, "whole: rc %d, %zu lines; in pieces: rc %d, %zu lines\n", rc_whole,
			whole.lines, rc_pieces, pieces.lines);
		FUZZ_CHECK(0);
	}
	small_parsers(data, size);
	return 0;
}

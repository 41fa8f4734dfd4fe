/*
 * fuzz_docker_build.c - the build progress stream (JSON lines,
 * lib/docker_stream.c docker_build_parser): fed once whole and once in
 * arbitrary chunk splits, both runs must agree on the code, the image id,
 * the daemon's error and the progress text handed over.
 *
 * Input: bytes 0-3 seed the chunk sizes, the rest is the stream.
 */
#include "fuzz.h"

#include <string.h>

#include "docker_stream.h"

struct outcome {
	int rc;
	uint64_t progress;
	size_t nprogress;
	char *image_id;
	char *error;
};

static int on_progress(void *ud, const char *text)
{
	struct outcome *o = ud;

	FUZZ_CHECK(text != NULL);
	o->progress = fuzz_hash(o->progress, text, strlen(text) + 1);
	o->nprogress++;
	return 0;
}

static void run(const uint8_t *data, size_t size, int chunked, uint32_t seed, struct outcome *o)
{
	struct docker_build_parser p;
	struct st_error err = { 0 };
	size_t off = 0;
	int rc = 0;

	memset(o, 0, sizeof(*o));
	o->progress = FUZZ_HASH_INIT;
	docker_build_parser_init(&p, on_progress, o);
	while (off < size && rc == 0) {
		size_t n = chunked ? fuzz_next_chunk(&seed, size - off) : size - off;

		rc = docker_build_parser_feed(&p, data + off, n, &err);
		off += n;
	}
	if (rc == 0)
		rc = docker_build_parser_finish(&p, &err);
	if (rc)
		FUZZ_CHECK(rc < 0 && err.message[0] != '\0');
	o->rc = rc;
	o->image_id = p.image_id ? strdup(p.image_id) : NULL;
	o->error = p.error ? strdup(p.error) : NULL;
	docker_build_parser_release(&p);
}

static int same_text(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct outcome whole, pieces;
	uint32_t seed;

	if (size < 4)
		return 0;
	seed = (uint32_t)data[0] | (uint32_t)data[1] << 8 | (uint32_t)data[2] << 16 |
	       (uint32_t)data[3] << 24;
	run(data + 4, size - 4, 0, seed, &whole);
	run(data + 4, size - 4, 1, seed, &pieces);
	if (whole.rc != pieces.rc || whole.progress != pieces.progress ||
	    whole.nprogress != pieces.nprogress || !same_text(whole.image_id, pieces.image_id) ||
	    !same_text(whole.error, pieces.error)) {
		fprintf(stderr, "whole: rc %d, %zu progress; in pieces: rc %d, %zu progress\n", whole.rc,
			whole.nprogress, pieces.rc, pieces.nprogress);
		FUZZ_CHECK(0);
	}
	free(whole.image_id);
	free(whole.error);
	free(pieces.image_id);
	free(pieces.error);
	return 0;
}

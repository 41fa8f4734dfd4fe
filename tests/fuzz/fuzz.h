/*
 * fuzz.h - shared by the fuzz targets in tests/fuzz/fuzz_<name>.c.
 *
 * Each target defines LLVMFuzzerTestOneInput. With -DST_FUZZ=ON (clang) it
 * is linked with libFuzzer (scripts/fuzz); every build also links it with
 * replay.c, which feeds the seed corpus (tests/fuzz/corpus/<name>/) and the
 * inputs that once crashed (tests/fuzz/regress/<name>/) through the same
 * entry point as a ctest, so a fixed crash stays fixed without clang.
 *
 * A target checks what must hold for any input (the parser's promises,
 * round trips, that chunking does not change a stream's meaning) with
 * FUZZ_CHECK, which aborts: libFuzzer records the input as a crash.
 */
#ifndef ST_FUZZ_H
#define ST_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                 \
	do {                                                                             \
		if (!(cond)) {                                                           \
			fprintf(stderr, "%s:%d: fuzz check failed: %s\n", __FILE__, __LINE__, \
				#cond);                                                  \
			abort();                                                         \
		}                                                                        \
	} while (0)

/* Chunk sizes for feeding a stream in pieces: deterministic from *state
 * (seeded by the input), mostly small (1-16 bytes: headers split across
 * reads), sometimes large; never 0, never more than left. */
static inline size_t fuzz_next_chunk(uint32_t *state, size_t left)
{
	size_t n;

	*state = *state * 1103515245u + 12345u;
	n = (*state >> 16) & 0xff;
	n = (n & 0x80) ? n * 37 + 1 : (n & 0x0f) + 1;
	return n > left ? left : n;
}

/* FNV-1a over bytes, to compare what two runs delivered. */
static inline uint64_t fuzz_hash(uint64_t h, const void *data, size_t len)
{
	const unsigned char *p = data;
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= p[i];
		h *= 1099511628211ull;
	}
	return h;
}

#define FUZZ_HASH_INIT 14695981039346656037ull

#endif

/*
 * backup_stream.h - the byte pipeline of a backup and of its verification,
 * with bounded memory whatever the size of the dump.
 *
 * Writing (struct backup_sink): dump bytes -> completion-trailer detector
 * (raw stream) -> compressor (gzip via zlib, zstd, or none) -> large write()s
 * to a file descriptor. With `threaded`, the caller's thread only copies
 * into a bounded queue of 1 MiB buffers and runs the trailer detector; a
 * worker thread compresses and writes, so compression overlaps the dump.
 * With a `verify_fd` (a second descriptor on the same file), a verifier
 * thread reads the file back as it grows, hashes it (SHA-256, OpenSSL EVP),
 * decompresses it end to end and runs the trailer detector on the result:
 * the SHA-256 that goes into the manifest is the one of the bytes read back
 * from the file, not of buffers in memory. The read-back must decompress to
 * exactly as many bytes as were dumped, through the frame checksum of gzip
 * (CRC-32 and length of the raw bytes) or zstd (XXH64 of the content); an
 * uncompressed file is compared by CRC-32 of what was written and read.
 *
 * Why reading back before the final fsync is as good as after it: the
 * verifier reads the page cache, which holds exactly the bytes a later
 * successful fsync() makes durable (nothing else writes the file), and the
 * caller publishes only if fsync() succeeds and the file size equals the
 * verified length.
 *
 * Reading (struct backup_reader): file -> SHA-256 of the compressed bytes ->
 * decompressor -> trailer detector -> the caller's buffer, for verify and
 * for restore (psql reads from it). backup_file_verify() drains a reader.
 *
 * Memory: at most queue_depth + 2 chunks plus the codec state (zlib 256 KiB,
 * zstd level 1 about 1.5 MiB, its decoder 2 MiB): about 12 MiB with the
 * defaults.
 */
#ifndef ST_BACKUP_STREAM_H
#define ST_BACKUP_STREAM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "error.h"

enum backup_codec {
	BACKUP_CODEC_GZIP = 0,
	BACKUP_CODEC_ZSTD = 1,
	BACKUP_CODEC_NONE = 2,
};

/* "gzip", "zstd", "none"; static. */
const char *backup_codec_name(enum backup_codec codec);
/* File name suffix: ".sql.gz", ".sql.zst", ".sql"; static. */
const char *backup_codec_suffix(enum backup_codec codec);
/* "gzip" / "zstd" / "none" -> codec: 0, or ST_EUSAGE. */
int backup_codec_parse(const char *name, enum backup_codec *out, struct st_error *err);
/* The level used when the caller asks for 0: fast enough to keep up with
 * pg_dump on one core (measured in bench/backup.sh): gzip 1, zstd 1. */
int backup_codec_default_level(enum backup_codec codec);

/* ---- completion trailer ------------------------------------------------ */

/*
 * pg_dump ends a complete plain-format dump with
 *
 *     --
 *     -- PostgreSQL database dump complete
 *     --
 *
 *     \unrestrict KEY          (pg_dump >= 15.14, 16.10, 17.6; KEY as in \restrict)
 *
 * The detector looks at whole lines as they stream past and keeps only a
 * short prefix of the current line, so it needs no copy of the dump. It
 * accepts the stream when the last "-- PostgreSQL database dump complete"
 * line is followed only by empty lines, "--" lines and at most one
 * "\unrestrict KEY" line whose KEY equals the one of the "\restrict" line
 * near the top (required when the dump has a \restrict line), and the
 * stream ends with a newline. It also picks the pg_dump and server
 * versions from the header comments.
 */
#define BACKUP_TRAILER_LINE_KEEP 256
#define BACKUP_TRAILER_HEADER_LINES 64

struct backup_trailer {
	char line[BACKUP_TRAILER_LINE_KEEP]; /* prefix of the current line */
	size_t line_len;                     /* full length of the current line so far */
	uint64_t lines;                      /* complete lines seen */
	uint64_t bytes;
	int complete;                        /* the last trailer line, then only allowed lines */
	int after_unrestrict;                /* an \unrestrict line followed the trailer */
	int bad_unrestrict;                  /* it did not match \restrict, or came twice */
	int content_after;                   /* other content followed the last trailer */
	char restrict_key[BACKUP_TRAILER_LINE_KEEP];
	char dumped_by[64];                  /* "15.18 (Debian 15.18-0+deb12u1)", or "" */
	char dumped_from[64];                /* server version from the header, or "" */
};

void backup_trailer_init(struct backup_trailer *t);
void backup_trailer_feed(struct backup_trailer *t, const void *data, size_t len);
/* 1 when the stream ended with a valid trailer; else 0 and why (a short
 * lowercase reason, "the dump has no completion trailer (truncated?)"). */
int backup_trailer_ok(const struct backup_trailer *t, char *why, size_t size);

/* ---- writing ----------------------------------------------------------- */

struct backup_sink_opts {
	const char *name;       /* file name for messages (borrowed, must outlive the sink) */
	enum backup_codec codec;
	int level;              /* 0: backup_codec_default_level() */
	int fd;                 /* where compressed bytes go (borrowed; not closed, not fsynced) */
	int verify_fd;          /* -1: no verifier; else a readable descriptor on the same file,
				   read with pread() from offset 0 (borrowed) */
	int threaded;           /* 1: compress and write on a worker thread */
	size_t chunk;           /* buffer size, 0: 1 MiB */
	int queue_depth;        /* filled buffers waiting for the worker, 0: 4 */
	uint64_t writeback;     /* start write-back (sync_file_range) every N bytes, 0: 8 MiB,
				   UINT64_MAX: never */
};

struct backup_sink_result {
	uint64_t bytes_raw;           /* bytes given to backup_sink_write() */
	uint64_t bytes_out;           /* bytes written to fd */
	uint32_t crc_out;             /* CRC-32 of the bytes written (codec none; else 0) */
	struct backup_trailer trailer;/* state of the detector on the raw stream */
	int verified;                 /* a verifier ran and everything it read matched */
	char sha256[65];              /* hex SHA-256 of the bytes read back; "" without verifier */
	double compress_seconds;      /* CPU time of compression + write (worker thread) */
	double verify_seconds;        /* CPU time of the read-back verifier thread */
};

struct backup_sink;

/* *out owned by the caller: backup_sink_finish() then backup_sink_free().
 * ST_EUSAGE (bad level), ST_ENOMEM, ST_EIO (thread creation). */
int backup_sink_open(const struct backup_sink_opts *o, struct backup_sink **out, struct st_error *err);

/* Takes len bytes of the dump. Blocks while the queue is full. Fails with
 * the worker's or verifier's error (ST_EIO: "cannot write 'x': No space
 * left on device"...) as soon as one is known. */
int backup_sink_write(struct backup_sink *s, const void *data, size_t len, struct st_error *err);

/* Ends the compressed stream, waits for the worker and the verifier, and
 * fills res. Fails (ST_EIO, ST_EFAILED for a verification mismatch) when
 * any stage failed; res is filled as far as known either way. Does not
 * judge the trailer: see res->trailer. May be called once. */
int backup_sink_finish(struct backup_sink *s, struct backup_sink_result *res, struct st_error *err);

/* Stops threads (unblocking them) and frees. NULL-safe; safe without finish. */
void backup_sink_free(struct backup_sink *s);

/* ---- reading ----------------------------------------------------------- */

struct backup_reader;

/* Reads fd (borrowed, read sequentially from its current offset) as codec.
 * *out owned by the caller (backup_reader_free). name is used in messages
 * (borrowed, must outlive the reader). */
int backup_reader_open(int fd, enum backup_codec codec, const char *name,
		       struct backup_reader **out, struct st_error *err);

/* Fills buf with up to cap decompressed bytes: the count, 0 at the end of
 * the compressed stream, or a negative ST_E* code: ST_EFAILED for corrupt
 * data ("'x' is corrupt: invalid block type at compressed byte 1234"),
 * trailing bytes after the stream, or a file that ends early; ST_EIO. */
ssize_t backup_reader_read(struct backup_reader *r, void *buf, size_t cap, struct st_error *err);

struct backup_reader_result {
	uint64_t bytes_in;            /* compressed bytes read */
	uint64_t bytes_raw;           /* decompressed bytes produced */
	char sha256[65];              /* hex SHA-256 of bytes_in, final once read returned 0 */
	struct backup_trailer trailer;/* detector state on the decompressed stream */
};

/* Totals so far (final after read returned 0). */
void backup_reader_result(const struct backup_reader *r, struct backup_reader_result *res);

void backup_reader_free(struct backup_reader *r);

/* What a complete verification found. */
struct backup_verify_result {
	struct backup_reader_result read;
	double seconds;
};

/* Reads path to the end: SHA-256 of the file, full decompression, trailer
 * on the decompressed stream. Returns 0 when the file could be read to the
 * end of its compressed stream (the caller compares sha256, sizes and the
 * trailer with the manifest); ST_EFAILED for corrupt data; ST_EIO,
 * ST_ENOTFOUND. res is filled as far as read. */
int backup_file_verify(const char *path, enum backup_codec codec, struct backup_verify_result *res,
		       struct st_error *err);

/* Lowercase hex of n bytes into out (2n+1 bytes). */
void backup_hex(const unsigned char *bytes, size_t n, char *out);

#endif

/*
 * Unit tests for lib/backup_stream: the completion-trailer detector on
 * canned dumps (whole, split at every byte, truncated, with content after
 * the trailer, \unrestrict variants) and the sink/reader pipeline on files
 * (every codec, threaded or not, read-back verification, corruption,
 * truncation, trailing bytes, a full disk).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <zlib.h>

#include "backup_stream.h"

#define KEY "Rb8rZDuhcEEEemM2gbh9ShUDj3ckUIfKAFnuVUb4ipnl4K567Iud0ej1CtbRH2f"

static const char HEAD[] =
	"--\n"
	"-- PostgreSQL database dump\n"
	"--\n"
	"\n"
	"\\restrict " KEY "\n"
	"\n"
	"-- Dumped from database version 15.18 (Debian 15.18-0+deb12u1)\n"
	"-- Dumped by pg_dump version 15.18 (Debian 15.18-0+deb12u1)\n"
	"\n"
	"SET statement_timeout = 0;\n"
	"CREATE TABLE public.\"User\" (id integer NOT NULL, email text NOT NULL);\n"
	"COPY public.\"User\" (id, email) FROM stdin;\n"
	"1\tviktor@example.com\n"
	"2\tlena@example.com\n"
	"\\.\n"
	"\n";

static const char TAIL[] =
	"--\n"
	"-- PostgreSQL database dump complete\n"
	"--\n"
	"\n"
	"\\unrestrict " KEY "\n"
	"\n";

static char *cat3(const char *a, const char *b, const char *c)
{
	size_t la = strlen(a), lb = strlen(b), lc = strlen(c);
	char *s = malloc(la + lb + lc + 1);

	assert_non_null(s);
	memcpy(s, a, la);
	memcpy(s + la, b, lb);
	memcpy(s + la + lb, c, lc + 1);
	return s;
}

static int check(const char *text, size_t len, char *why, size_t size)
{
	struct backup_trailer t;

	backup_trailer_init(&t);
	backup_trailer_feed(&t, text, len);
	return backup_trailer_ok(&t, why, size);
}

static void test_trailer_complete(void **state)
{
	char *dump = cat3(HEAD, "", TAIL);
	struct backup_trailer t;
	char why[128];

	(void)state;
	backup_trailer_init(&t);
	backup_trailer_feed(&t, dump, strlen(dump));
	assert_true(backup_trailer_ok(&t, why, sizeof(why)));
	assert_string_equal(why, "");
	assert_string_equal(t.dumped_by, "15.18 (Debian 15.18-0+deb12u1)");
	assert_string_equal(t.dumped_from, "15.18 (Debian 15.18-0+deb12u1)");
	assert_string_equal(t.restrict_key, KEY);
	free(dump);
}

static void test_trailer_split_everywhere(void **state)
{
	char *dump = cat3(HEAD, "", TAIL);
	size_t len = strlen(dump), i, j;

	(void)state;
	/* Two chunks split at every position, and three at a stride. */
	for (i = 0; i <= len; i++) {
		struct backup_trailer t;

		backup_trailer_init(&t);
		backup_trailer_feed(&t, dump, i);
		backup_trailer_feed(&t, dump + i, len - i);
		assert_true(backup_trailer_ok(&t, NULL, 0));
		assert_string_equal(t.dumped_by, "15.18 (Debian 15.18-0+deb12u1)");
	}
	for (i = 0; i <= len; i += 7)
		for (j = i; j <= len; j += 5) {
			struct backup_trailer t;

			backup_trailer_init(&t);
			backup_trailer_feed(&t, dump, i);
			backup_trailer_feed(&t, dump + i, j - i);
			backup_trailer_feed(&t, dump + j, len - j);
			assert_true(backup_trailer_ok(&t, NULL, 0));
		}
	/* Byte by byte. */
	{
		struct backup_trailer t;

		backup_trailer_init(&t);
		for (i = 0; i < len; i++)
			backup_trailer_feed(&t, dump + i, 1);
		assert_true(backup_trailer_ok(&t, NULL, 0));
	}
	free(dump);
}

static void test_trailer_truncated(void **state)
{
	char *dump = cat3(HEAD, "", TAIL);
	size_t len = strlen(dump), i;
	char why[128];

	(void)state;
	/* Every proper prefix is rejected: before the trailer there is none,
	 * inside it a line is cut, after it \unrestrict is missing or cut. */
	for (i = 0; i < len - 1; i++)
		assert_false(check(dump, i, NULL, 0));
	/* Only the final blank line may be missing. */
	assert_true(check(dump, len - 1, NULL, 0));

	assert_false(check(HEAD, strlen(HEAD), why, sizeof(why)));
	assert_string_equal(why, "the dump has no completion trailer (truncated)");
	assert_false(check(dump, strlen(HEAD) + 20, why, sizeof(why)));
	assert_string_equal(why, "the dump ends in the middle of a line (truncated)");
	/* Trailer present, \unrestrict missing although \restrict was there. */
	assert_false(check(dump, strlen(HEAD) + strlen("--\n-- PostgreSQL database dump complete\n--\n\n"),
			   why, sizeof(why)));
	assert_string_equal(why, "the dump has no \\unrestrict line after its completion trailer (truncated)");
	assert_false(check("", 0, why, sizeof(why)));
	assert_string_equal(why, "the dump is empty");
	free(dump);
}

static void test_trailer_content_after(void **state)
{
	char *dump = cat3(HEAD, TAIL, "DROP TABLE public.\"User\";\n");
	char *dump2 = cat3(HEAD, "--\n-- PostgreSQL database dump complete\n--\n\nSELECT 1;\n",
			   "\\unrestrict " KEY "\n");
	char why[128];

	(void)state;
	assert_false(check(dump, strlen(dump), why, sizeof(why)));
	assert_string_equal(why, "the completion trailer is followed by other content");
	assert_false(check(dump2, strlen(dump2), why, sizeof(why)));
	assert_string_equal(why, "the completion trailer is followed by other content");
	free(dump);
	free(dump2);
}

static void test_trailer_unrestrict_variants(void **state)
{
	static const char old_style[] =
		"--\n-- PostgreSQL database dump\n--\n\n"
		"-- Dumped from database version 15.4\n-- Dumped by pg_dump version 15.4\n\n"
		"SET x = 1;\n\n--\n-- PostgreSQL database dump complete\n--\n\n";
	char *wrong_key = cat3(HEAD, "--\n-- PostgreSQL database dump complete\n--\n\n",
			       "\\unrestrict someotherkey\n\n");
	char *twice = cat3(HEAD, TAIL, "\\unrestrict " KEY "\n");
	char *blanks = cat3(HEAD, TAIL, "\n\n\n--\n\n");
	char *no_newline = cat3(HEAD, "--\n-- PostgreSQL database dump complete\n--\n\n",
				"\\unrestrict " KEY);
	char *unrestrict_first = cat3(HEAD, "\\unrestrict " KEY "\n",
				      "--\n-- PostgreSQL database dump complete\n--\n\n");
	char why[128];
	struct backup_trailer t;

	(void)state;
	/* pg_dump before 15.14: no \restrict, no \unrestrict. */
	backup_trailer_init(&t);
	backup_trailer_feed(&t, old_style, strlen(old_style));
	assert_true(backup_trailer_ok(&t, why, sizeof(why)));
	assert_string_equal(t.dumped_by, "15.4");
	/* Without \restrict, an \unrestrict line with any key is accepted. */
	{
		static const char any_key[] = "SET x = 1;\n-- PostgreSQL database dump complete\n\\unrestrict abc\n";
		assert_true(check(any_key, strlen(any_key), NULL, 0));
	}

	assert_false(check(wrong_key, strlen(wrong_key), why, sizeof(why)));
	assert_string_equal(why, "the \\unrestrict line after the trailer does not match \\restrict");
	assert_false(check(twice, strlen(twice), why, sizeof(why)));
	assert_true(check(blanks, strlen(blanks), NULL, 0));
	assert_false(check(no_newline, strlen(no_newline), why, sizeof(why)));
	assert_string_equal(why, "the dump ends in the middle of a line (truncated)");
	/* \unrestrict before the trailer is not the end of a dump. */
	assert_false(check(unrestrict_first, strlen(unrestrict_first), why, sizeof(why)));
	free(wrong_key);
	free(twice);
	free(blanks);
	free(no_newline);
	free(unrestrict_first);
}

static void test_trailer_in_data_and_long_lines(void **state)
{
	struct backup_trailer t;
	char longline[5000];
	char *dump;

	(void)state;
	/* The trailer text as a row of COPY data is followed by "\." and more SQL. */
	dump = cat3(HEAD, "COPY public.t (x) FROM stdin;\n-- PostgreSQL database dump complete\n\\.\n",
		    "ALTER TABLE t OWNER TO x;\n");
	assert_false(check(dump, strlen(dump), NULL, 0));
	free(dump);

	memset(longline, 'x', sizeof(longline) - 2);
	longline[sizeof(longline) - 2] = '\n';
	longline[sizeof(longline) - 1] = '\0';
	backup_trailer_init(&t);
	backup_trailer_feed(&t, HEAD, strlen(HEAD));
	backup_trailer_feed(&t, longline, strlen(longline));
	backup_trailer_feed(&t, TAIL, strlen(TAIL));
	assert_true(backup_trailer_ok(&t, NULL, 0));
	/* A long line after the trailer, and a long line starting like the trailer. */
	backup_trailer_feed(&t, longline, strlen(longline));
	assert_false(backup_trailer_ok(&t, NULL, 0));
	backup_trailer_feed(&t, TAIL, strlen(TAIL));
	assert_true(backup_trailer_ok(&t, NULL, 0));
	memcpy(longline, "-- PostgreSQL database dump complete", 36);
	backup_trailer_feed(&t, longline, strlen(longline));
	assert_false(backup_trailer_ok(&t, NULL, 0));
}

/* ---- pipeline ---------------------------------------------------------- */

/* A pseudo-random but text-like dump of about size bytes with a trailer. */
static char *make_dump(size_t size, size_t *len_out)
{
	static const char *words[] = { "the", "barista", "night", "market", "leaving", "secret",
				       "ferry", "terminal", "moving", "abroad", "spilt", "tea" };
	char *s = malloc(size + 4096);
	size_t len = 0;
	uint32_t x = 12345;
	unsigned row = 0;

	assert_non_null(s);
	memcpy(s, HEAD, strlen(HEAD));
	len = strlen(HEAD);
	memcpy(s + len, "COPY public.\"Post\" (id, title) FROM stdin;\n", 44);
	len += 44;
	while (len < size) {
		int k, n;

		len += (size_t)sprintf(s + len, "%u\t", ++row);
		n = 4 + (int)(x % 9);
		for (k = 0; k < n; k++) {
			x = x * 1103515245u + 12345u;
			len += (size_t)sprintf(s + len, "%s%s %08x", k ? " " : "", words[(x >> 16) % 12], x);
		}
		s[len++] = '\n';
	}
	memcpy(s + len, "\\.\n\n", 4);
	len += 4;
	memcpy(s + len, TAIL, strlen(TAIL));
	len += strlen(TAIL);
	*len_out = len;
	return s;
}

static void sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char md[32];
	unsigned int mdlen = 0;

	assert_int_equal(EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL), 1);
	backup_hex(md, 32, out);
}

static char *read_file(const char *path, size_t *len)
{
	struct stat st;
	char *buf;
	int fd = open(path, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	buf = malloc((size_t)st.st_size + 1);
	assert_non_null(buf);
	assert_int_equal(read(fd, buf, (size_t)st.st_size), st.st_size);
	close(fd);
	*len = (size_t)st.st_size;
	return buf;
}

static void write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

static char tmpdir[64];

static int setup_dir(void **state)
{
	(void)state;
	strcpy(tmpdir, "/tmp/st-backup-stream-XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_dir(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Streams data into path through a sink in uneven pieces. */
static int sink_file(const char *path, enum backup_codec codec, int threaded, int verify,
		     const char *data, size_t len, struct backup_sink_result *res, struct st_error *err)
{
	struct backup_sink_opts o = { 0 };
	struct backup_sink *s = NULL;
	size_t off = 0, piece = 1;
	int fd, vfd = -1, rc;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	if (verify) {
		vfd = open(path, O_RDONLY);
		assert_true(vfd >= 0);
	}
	o.name = "test.sql";
	o.codec = codec;
	o.fd = fd;
	o.verify_fd = vfd;
	o.threaded = threaded;
	o.chunk = 64 * 1024;  /* small buffers: many queue round trips */
	o.queue_depth = 2;
	rc = backup_sink_open(&o, &s, err);
	assert_int_equal(rc, 0);
	while (off < len && rc == 0) {
		size_t n = piece < len - off ? piece : len - off;
		rc = backup_sink_write(s, data + off, n, err);
		off += n;
		piece = (piece * 7 + 13) % 100000 + 1;
	}
	if (rc == 0)
		rc = backup_sink_finish(s, res, err);
	backup_sink_free(s);
	close(fd);
	if (vfd >= 0)
		close(vfd);
	return rc;
}

static void roundtrip(enum backup_codec codec, int threaded, int verify)
{
	struct backup_sink_result res;
	struct backup_verify_result vr;
	struct st_error err = { 0 };
	char path[128], want[65], got[65];
	size_t len, flen;
	char *dump = make_dump(3u << 20, &len);
	char *file;

	snprintf(path, sizeof(path), "%s/rt-%s-%d-%d%s", tmpdir, backup_codec_name(codec), threaded,
		 verify, backup_codec_suffix(codec));
	assert_int_equal(sink_file(path, codec, threaded, verify, dump, len, &res, &err), 0);
	assert_int_equal(res.bytes_raw, len);
	assert_true(backup_trailer_ok(&res.trailer, NULL, 0));
	file = read_file(path, &flen);
	assert_int_equal(res.bytes_out, flen);
	if (codec == BACKUP_CODEC_NONE)
		assert_int_equal(res.crc_out, (uint32_t)crc32_z(crc32_z(0, NULL, 0), (const Bytef *)file, flen));
	else
		assert_int_equal(res.crc_out, 0);
	sha256_hex(file, flen, want);
	if (verify) {
		assert_true(res.verified);
		assert_string_equal(res.sha256, want);
	} else {
		assert_false(res.verified);
		assert_string_equal(res.sha256, "");
	}
	if (codec == BACKUP_CODEC_NONE)
		assert_memory_equal(file, dump, len);
	else if (codec == BACKUP_CODEC_GZIP) {
		/* An independent decoder (zlib's gz* API) gives the dump back. */
		gzFile gz = gzopen(path, "rb");
		char *back = malloc(len + 16);
		assert_non_null(gz);
		assert_int_equal(gzread(gz, back, (unsigned)len + 16), (int)len);
		assert_memory_equal(back, dump, len);
		gzclose(gz);
		free(back);
		assert_true(flen < len / 2);
	} else {
		assert_true(flen < len / 2);
	}
	assert_int_equal(backup_file_verify(path, codec, &vr, &err), 0);
	assert_string_equal(vr.read.sha256, want);
	assert_int_equal(vr.read.bytes_raw, len);
	assert_int_equal(vr.read.bytes_in, flen);
	assert_true(backup_trailer_ok(&vr.read.trailer, NULL, 0));
	sha256_hex(dump, len, want);
	{
		/* The reader's output is the dump, byte for byte. */
		struct backup_reader *r = NULL;
		EVP_MD_CTX *md = EVP_MD_CTX_new();
		unsigned char buf[70000], d[32];
		unsigned int dl;
		ssize_t n;
		int fd = open(path, O_RDONLY);

		assert_int_equal(backup_reader_open(fd, codec, "x", &r, &err), 0);
		EVP_DigestInit_ex(md, EVP_sha256(), NULL);
		while ((n = backup_reader_read(r, buf, sizeof(buf), &err)) > 0)
			EVP_DigestUpdate(md, buf, (size_t)n);
		assert_int_equal(n, 0);
		EVP_DigestFinal_ex(md, d, &dl);
		backup_hex(d, 32, got);
		assert_string_equal(got, want);
		EVP_MD_CTX_free(md);
		backup_reader_free(r);
		close(fd);
	}
	free(file);
	free(dump);
}

static void test_roundtrip_all(void **state)
{
	int codec, threaded, verify;

	(void)state;
	for (codec = 0; codec < 3; codec++)
		for (threaded = 0; threaded < 2; threaded++)
			for (verify = 0; verify < 2; verify++)
				roundtrip((enum backup_codec)codec, threaded, verify);
}

static void test_levels_and_names(void **state)
{
	struct backup_sink_opts o = { 0 };
	struct backup_sink *s = NULL;
	struct st_error err = { 0 };
	enum backup_codec c;

	(void)state;
	assert_int_equal(backup_codec_parse("zstd", &c, &err), 0);
	assert_int_equal(c, BACKUP_CODEC_ZSTD);
	assert_int_equal(backup_codec_parse("bzip2", &c, &err), ST_EUSAGE);
	assert_string_equal(err.message, "unknown compression 'bzip2' (gzip, zstd or none)");
	assert_string_equal(backup_codec_suffix(BACKUP_CODEC_GZIP), ".sql.gz");
	assert_string_equal(backup_codec_suffix(BACKUP_CODEC_ZSTD), ".sql.zst");
	assert_string_equal(backup_codec_suffix(BACKUP_CODEC_NONE), ".sql");
	o.codec = BACKUP_CODEC_GZIP;
	o.level = 10;
	o.fd = -1;
	o.verify_fd = -1;
	assert_int_equal(backup_sink_open(&o, &s, &err), ST_EUSAGE);
	assert_null(s);
	assert_string_equal(err.message, "gzip level must be 1 to 9, not 10");
}

static void make_compressed(const char *path, enum backup_codec codec, char **dump, size_t *len)
{
	struct backup_sink_result res;
	struct st_error err = { 0 };

	*dump = make_dump(1u << 20, len);
	assert_int_equal(sink_file(path, codec, 1, 1, *dump, *len, &res, &err), 0);
}

static void test_corrupt_truncated_trailing(void **state)
{
	int codec;

	(void)state;
	for (codec = 0; codec < 2; codec++) {
		struct backup_verify_result vr;
		struct st_error err = { 0 };
		char path[128], bad[160], good_sha[65];
		size_t len, flen;
		char *dump, *file;

		snprintf(path, sizeof(path), "%s/c%d", tmpdir, codec);
		snprintf(bad, sizeof(bad), "%s/c%d.bad", tmpdir, codec);
		make_compressed(path, (enum backup_codec)codec, &dump, &len);
		file = read_file(path, &flen);
		sha256_hex(file, flen, good_sha);

		/* A byte flipped in the middle: decompression or its checksum fails. */
		file[flen / 2] ^= 0x20;
		write_file(bad, file, flen);
		assert_int_equal(backup_file_verify(bad, (enum backup_codec)codec, &vr, &err), ST_EFAILED);
		assert_non_null(strstr(err.message, "is corrupt"));
		file[flen / 2] ^= 0x20;

		/* Truncated: the compressed stream ends early. */
		write_file(bad, file, flen - 100);
		assert_int_equal(backup_file_verify(bad, (enum backup_codec)codec, &vr, &err), ST_EFAILED);
		assert_non_null(strstr(err.message, "truncated"));

		/* Bytes after the stream. */
		{
			char *more = malloc(flen + 5);
			memcpy(more, file, flen);
			memcpy(more + flen, "junk\n", 5);
			write_file(bad, more, flen + 5);
			free(more);
		}
		assert_int_equal(backup_file_verify(bad, (enum backup_codec)codec, &vr, &err), ST_EFAILED);
		assert_non_null(strstr(err.message, "after the end of the compressed stream"));

		/* Empty file. */
		write_file(bad, "", 0);
		assert_int_equal(backup_file_verify(bad, (enum backup_codec)codec, &vr, &err), ST_EFAILED);

		/* Untouched: fine, same digest. */
		assert_int_equal(backup_file_verify(path, (enum backup_codec)codec, &vr, &err), 0);
		assert_string_equal(vr.read.sha256, good_sha);
		free(file);
		free(dump);
	}
	{
		struct backup_verify_result vr;
		struct st_error err = { 0 };
		char path[128];

		snprintf(path, sizeof(path), "%s/missing.sql.gz", tmpdir);
		assert_int_equal(backup_file_verify(path, BACKUP_CODEC_GZIP, &vr, &err), ST_ENOTFOUND);
	}
}

/* A truncated plain file still reads to its end, but the trailer says so. */
static void test_plain_truncated(void **state)
{
	struct backup_verify_result vr;
	struct st_error err = { 0 };
	char path[128];
	size_t len;
	char *dump = make_dump(100000, &len);

	(void)state;
	snprintf(path, sizeof(path), "%s/plain.sql", tmpdir);
	write_file(path, dump, len - 30);
	assert_int_equal(backup_file_verify(path, BACKUP_CODEC_NONE, &vr, &err), 0);
	assert_false(backup_trailer_ok(&vr.read.trailer, NULL, 0));
	write_file(path, dump, len);
	assert_int_equal(backup_file_verify(path, BACKUP_CODEC_NONE, &vr, &err), 0);
	assert_true(backup_trailer_ok(&vr.read.trailer, NULL, 0));
	free(dump);
}

/* /dev/full: every write fails with ENOSPC; the error names the file. */
static void test_disk_full(void **state)
{
	int threaded;

	(void)state;
	for (threaded = 0; threaded < 2; threaded++) {
		struct backup_sink_opts o = { 0 };
		struct backup_sink_result res;
		struct backup_sink *s = NULL;
		struct st_error err = { 0 };
		size_t len, off;
		char *dump = make_dump(2u << 20, &len);
		int fd = open("/dev/full", O_WRONLY), rc = 0;

		assert_true(fd >= 0);
		o.name = "backup_x.sql.gz";
		o.codec = BACKUP_CODEC_NONE;
		o.fd = fd;
		o.verify_fd = -1;
		o.threaded = threaded;
		o.chunk = 65536;
		assert_int_equal(backup_sink_open(&o, &s, &err), 0);
		for (off = 0; off < len && rc == 0; off += 4096)
			rc = backup_sink_write(s, dump + off, len - off < 4096 ? len - off : 4096, &err);
		if (rc == 0)
			rc = backup_sink_finish(s, &res, &err);
		assert_int_equal(rc, ST_EIO);
		assert_string_equal(err.message, "cannot write 'backup_x.sql.gz': No space left on device");
		backup_sink_free(s);
		close(fd);
		free(dump);
	}
}

/* The verifier reads another file than the one written: caught. */
static void test_readback_mismatch(void **state)
{
	int codec;

	(void)state;
	for (codec = 0; codec < 3; codec++) {
		struct backup_sink_opts o = { 0 };
		struct backup_sink_result res;
		struct backup_sink *s = NULL;
		struct st_error err = { 0 };
		char path[128], other[128];
		size_t len, off;
		char *dump = make_dump(1u << 20, &len);
		char *zeros = calloc(1, 4u << 20);
		int fd, vfd, rc = 0;

		snprintf(path, sizeof(path), "%s/mm%d", tmpdir, codec);
		snprintf(other, sizeof(other), "%s/mm%d.other", tmpdir, codec);
		write_file(other, zeros, 4u << 20);
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		vfd = open(other, O_RDONLY);
		o.name = "mm";
		o.codec = (enum backup_codec)codec;
		o.fd = fd;
		o.verify_fd = vfd;
		o.threaded = 1;
		assert_int_equal(backup_sink_open(&o, &s, &err), 0);
		for (off = 0; off < len && rc == 0; off += 8192)
			rc = backup_sink_write(s, dump + off, len - off < 8192 ? len - off : 8192, &err);
		if (rc == 0)
			rc = backup_sink_finish(s, &res, &err);
		assert_int_equal(rc, ST_EFAILED);
		assert_false(res.verified);
		backup_sink_free(s);
		close(fd);
		close(vfd);
		free(dump);
		free(zeros);
	}
}

/* Freed half way (the dump failed): threads stop, nothing leaks or hangs. */
static void test_abandon(void **state)
{
	int threaded;

	(void)state;
	for (threaded = 0; threaded < 2; threaded++) {
		struct backup_sink_opts o = { 0 };
		struct backup_sink *s = NULL;
		struct st_error err = { 0 };
		char path[128];
		size_t len;
		char *dump = make_dump(1u << 20, &len);
		int fd, vfd;

		snprintf(path, sizeof(path), "%s/abandon", tmpdir);
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		vfd = open(path, O_RDONLY);
		o.name = "abandon";
		o.codec = BACKUP_CODEC_ZSTD;
		o.fd = fd;
		o.verify_fd = vfd;
		o.threaded = threaded;
		o.chunk = 65536;
		o.queue_depth = 1;
		assert_int_equal(backup_sink_open(&o, &s, &err), 0);
		assert_int_equal(backup_sink_write(s, dump, len / 2, &err), 0);
		backup_sink_free(s);
		close(fd);
		close(vfd);
		free(dump);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_trailer_complete),
		cmocka_unit_test(test_trailer_split_everywhere),
		cmocka_unit_test(test_trailer_truncated),
		cmocka_unit_test(test_trailer_content_after),
		cmocka_unit_test(test_trailer_unrestrict_variants),
		cmocka_unit_test(test_trailer_in_data_and_long_lines),
		cmocka_unit_test(test_levels_and_names),
		cmocka_unit_test(test_roundtrip_all),
		cmocka_unit_test(test_corrupt_truncated_trailing),
		cmocka_unit_test(test_plain_truncated),
		cmocka_unit_test(test_disk_full),
		cmocka_unit_test(test_readback_mismatch),
		cmocka_unit_test(test_abandon),
	};

	return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}

/*
 * backup_stream.c - trailer detector, compressing sink with a worker and a
 * read-back verifier, and the decompressing reader (see backup_stream.h).
 */
#include "backup_stream.h"
#include "text.h"
#include "timeutil.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <zlib.h>
#include <zstd.h>

#define DEFAULT_CHUNK (1u << 20)
#define DEFAULT_DEPTH 4
#define DEFAULT_WRITEBACK (8u << 20)
/* zlib counts in uInt: feed it at most this much per call. */
#define ZLIB_PIECE (1u << 30)

/* CPU seconds of the calling thread: what a stage costs, waiting excluded. */
static double thread_cpu(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0)
		return 0;
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char TRAILER_LINE[] = "-- PostgreSQL database dump complete";
static const char UNRESTRICT[] = "\\unrestrict ";
static const char RESTRICT[] = "\\restrict ";
static const char DUMPED_FROM[] = "-- Dumped from database version ";
static const char DUMPED_BY[] = "-- Dumped by pg_dump version ";

/* ---- codecs ------------------------------------------------------------ */

const char *backup_codec_name(enum backup_codec codec)
{
	switch (codec) {
	case BACKUP_CODEC_GZIP: return "gzip";
	case BACKUP_CODEC_ZSTD: return "zstd";
	case BACKUP_CODEC_NONE: return "none";
	}
	return "?";
}

const char *backup_codec_suffix(enum backup_codec codec)
{
	switch (codec) {
	case BACKUP_CODEC_GZIP: return ".sql.gz";
	case BACKUP_CODEC_ZSTD: return ".sql.zst";
	case BACKUP_CODEC_NONE: return ".sql";
	}
	return "";
}

int backup_codec_parse(const char *name, enum backup_codec *out, struct st_error *err)
{
	if (name && !strcmp(name, "gzip"))
		*out = BACKUP_CODEC_GZIP;
	else if (name && !strcmp(name, "zstd"))
		*out = BACKUP_CODEC_ZSTD;
	else if (name && !strcmp(name, "none"))
		*out = BACKUP_CODEC_NONE;
	else
		return st_error_set(err, ST_EUSAGE, "unknown compression '%s' (gzip, zstd or none)",
				    name ? name : "");
	return 0;
}

int backup_codec_default_level(enum backup_codec codec)
{
	switch (codec) {
	case BACKUP_CODEC_GZIP: return 1;
	case BACKUP_CODEC_ZSTD: return 1;
	case BACKUP_CODEC_NONE: return 0;
	}
	return 0;
}

void backup_hex(const unsigned char *bytes, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[bytes[i] >> 4];
		out[2 * i + 1] = digits[bytes[i] & 15];
	}
	out[2 * n] = '\0';
}

/* ---- trailer ----------------------------------------------------------- */

void backup_trailer_init(struct backup_trailer *t)
{
	memset(t, 0, sizeof(*t));
}

static int starts_with(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* One finished line; t->line holds its prefix, t->line_len its length. */
static void trailer_line(struct backup_trailer *t)
{
	const int whole = t->line_len < BACKUP_TRAILER_LINE_KEEP - 1;
	const char *l = t->line;

	if (t->line_len == 0 || (whole && !strcmp(l, "--")))
		return; /* allowed anywhere, changes nothing */
	if (whole && !strcmp(l, TRAILER_LINE)) {
		t->complete = 1;
		t->after_unrestrict = 0;
		t->bad_unrestrict = 0;
		t->content_after = 0;
		return;
	}
	if (t->lines < BACKUP_TRAILER_HEADER_LINES && whole) {
		if (starts_with(l, DUMPED_FROM) && !t->dumped_from[0])
			text_copy(t->dumped_from, sizeof(t->dumped_from), l + strlen(DUMPED_FROM));
		else if (starts_with(l, DUMPED_BY) && !t->dumped_by[0])
			text_copy(t->dumped_by, sizeof(t->dumped_by), l + strlen(DUMPED_BY));
		else if (starts_with(l, RESTRICT) && !t->restrict_key[0])
			text_copy(t->restrict_key, sizeof(t->restrict_key), l + strlen(RESTRICT));
	}
	if (t->complete && whole && starts_with(l, UNRESTRICT)) {
		if (t->after_unrestrict ||
		    (t->restrict_key[0] && strcmp(l + strlen(UNRESTRICT), t->restrict_key) != 0))
			t->bad_unrestrict = 1;
		t->after_unrestrict = 1;
		return;
	}
	if (t->complete) {
		t->complete = 0;
		t->content_after = 1;
	}
}

void backup_trailer_feed(struct backup_trailer *t, const void *data, size_t len)
{
	const char *p = data, *end = p + len;

	t->bytes += len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = (size_t)((nl ? nl : end) - p);

		/* Fast path for the bulk of a dump (rows, DDL): a whole line in
		 * this chunk that starts with neither '-' nor '\\' can only be
		 * "other content"; no copy needed. */
		if (nl && t->line_len == 0 && n > 0 && p[0] != '-' && p[0] != '\\') {
			if (t->complete) {
				t->complete = 0;
				t->content_after = 1;
			}
			t->lines++;
			p = nl + 1;
			continue;
		}
		if (t->line_len < BACKUP_TRAILER_LINE_KEEP - 1) {
			size_t room = BACKUP_TRAILER_LINE_KEEP - 1 - t->line_len;
			memcpy(t->line + t->line_len, p, n < room ? n : room);
		}
		t->line_len += n;
		if (!nl)
			break;
		t->line[t->line_len < BACKUP_TRAILER_LINE_KEEP - 1 ? t->line_len
								   : BACKUP_TRAILER_LINE_KEEP - 1] = '\0';
		trailer_line(t);
		t->lines++;
		t->line_len = 0;
		p = nl + 1;
	}
}

int backup_trailer_ok(const struct backup_trailer *t, char *why, size_t size)
{
	const char *reason = NULL;

	if (t->bytes == 0)
		reason = "the dump is empty";
	else if (t->line_len > 0)
		reason = "the dump ends in the middle of a line (truncated)";
	else if (!t->complete && t->content_after)
		reason = "the completion trailer is followed by other content";
	else if (!t->complete)
		reason = "the dump has no completion trailer (truncated)";
	else if (t->bad_unrestrict)
		reason = "the \\unrestrict line after the trailer does not match \\restrict";
	else if (t->restrict_key[0] && !t->after_unrestrict)
		reason = "the dump has no \\unrestrict line after its completion trailer (truncated)";
	if (why && size)
		text_copy(why, size, reason ? reason : "");
	return reason == NULL;
}

/* ---- encoder ----------------------------------------------------------- */

struct encoder {
	enum backup_codec codec;
	z_stream z;
	int z_ready;
	ZSTD_CCtx *zc;
};

static int encoder_init(struct encoder *e, enum backup_codec codec, int level, struct st_error *err)
{
	memset(e, 0, sizeof(*e));
	e->codec = codec;
	if (level == 0)
		level = backup_codec_default_level(codec);
	switch (codec) {
	case BACKUP_CODEC_GZIP:
		if (level < 1 || level > 9)
			return st_error_set(err, ST_EUSAGE, "gzip level must be 1 to 9, not %d", level);
		/* 15 + 16: a gzip wrapper, so gunzip reads the file and inflate
		 * checks CRC-32 and length of the raw bytes. */
		if (deflateInit2(&e->z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
			return st_error_set(err, ST_ENOMEM, "cannot start gzip compression");
		e->z_ready = 1;
		break;
	case BACKUP_CODEC_ZSTD:
		if (level < 1 || level > ZSTD_maxCLevel())
			return st_error_set(err, ST_EUSAGE, "zstd level must be 1 to %d, not %d",
					    ZSTD_maxCLevel(), level);
		e->zc = ZSTD_createCCtx();
		if (!e->zc)
			return st_error_set(err, ST_ENOMEM, "cannot start zstd compression");
		/* The content checksum lets decompression prove the raw bytes. */
		if (ZSTD_isError(ZSTD_CCtx_setParameter(e->zc, ZSTD_c_compressionLevel, level)) ||
		    ZSTD_isError(ZSTD_CCtx_setParameter(e->zc, ZSTD_c_checksumFlag, 1)))
			return st_error_set(err, ST_EUSAGE, "zstd refused level %d", level);
		break;
	case BACKUP_CODEC_NONE:
		break;
	default:
		return st_error_set(err, ST_EUSAGE, "unknown codec %d", (int)codec);
	}
	return 0;
}

static void encoder_release(struct encoder *e)
{
	if (e->z_ready)
		deflateEnd(&e->z);
	ZSTD_freeCCtx(e->zc);
	e->z_ready = 0;
	e->zc = NULL;
}

/* ---- sink -------------------------------------------------------------- */

struct sink_buf {
	unsigned char *data;
	size_t len;
};

struct backup_sink {
	struct backup_sink_opts o;
	struct encoder enc;

	int crc;                      /* CRC-32 of written and read-back bytes (codec none) */

	/* producer side */
	struct backup_trailer trailer;
	uint64_t bytes_raw;
	int cur;                      /* buffer being filled, -1 none (threaded) */

	/* queue (threaded) */
	pthread_mutex_t mu;
	pthread_cond_t cond_filled;   /* worker waits for work */
	pthread_cond_t cond_free;     /* producer waits for a free buffer */
	pthread_cond_t cond_published;/* verifier waits for bytes */
	int mu_ready, worker_started, verifier_started;
	struct sink_buf *bufs;
	int nbufs;
	int *freelist, nfree;
	int *queue, qhead, qcount;
	int closing;                  /* producer is done: drain and finish */
	int stop;                     /* somebody failed: everyone stops */
	pthread_t worker, verifier;

	/* worker side */
	unsigned char *out;
	size_t out_len;
	uint64_t bytes_out;
	uint32_t crc_out;
	uint64_t wb_from;
	double worker_busy;
	int worker_rc;
	struct st_error worker_err;
	int finished_encoding;

	/* shared with the verifier (under mu) */
	uint64_t published;
	int writer_done;

	/* verifier */
	unsigned char *vbuf;
	uint64_t vpos;
	uint32_t crc_back;
	int verifier_rc;
	struct st_error verifier_err;
	struct backup_reader *reader;
	double verifier_busy;
	struct backup_reader_result vres;
	int finished;
};

static int sink_failed(struct backup_sink *s, struct st_error *err)
{
	if (s->worker_rc) {
		if (err)
			*err = s->worker_err;
		return s->worker_rc;
	}
	if (s->verifier_rc) {
		if (err)
			*err = s->verifier_err;
		return s->verifier_rc;
	}
	return 0;
}

static void publish(struct backup_sink *s)
{
	if (!s->mu_ready)
		return;
	pthread_mutex_lock(&s->mu);
	s->published = s->bytes_out;
	pthread_cond_signal(&s->cond_published);
	pthread_mutex_unlock(&s->mu);
}

static int out_flush(struct backup_sink *s, struct st_error *err)
{
	const unsigned char *p = s->out;
	size_t left = s->out_len;

	if (s->crc)
		s->crc_out = (uint32_t)crc32_z(s->crc_out, s->out, s->out_len);
	while (left > 0) {
		ssize_t n = write(s->o.fd, p, left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return st_error_set(err, ST_EIO, "cannot write '%s': %s", s->o.name, strerror(errno));
		p += n;
		left -= (size_t)n;
		s->bytes_out += (uint64_t)n;
	}
	s->out_len = 0;
	if (s->o.writeback != UINT64_MAX && s->bytes_out - s->wb_from >= s->o.writeback) {
		/* Start write-back now so the final fsync has little left to do;
		 * a hint only: errors surface at fsync. */
		(void)sync_file_range(s->o.fd, (off64_t)s->wb_from, (off64_t)(s->bytes_out - s->wb_from),
				      SYNC_FILE_RANGE_WRITE);
		s->wb_from = s->bytes_out;
	}
	publish(s);
	return 0;
}

/* Compresses len bytes (end: and finishes the stream) into s->out, writing
 * it out whenever it fills. Runs on the worker (or the caller unthreaded). */
static int encode(struct backup_sink *s, const unsigned char *data, size_t len, int end,
		  struct st_error *err)
{
	const size_t cap = s->o.chunk;
	int rc;

	switch (s->o.codec) {
	case BACKUP_CODEC_NONE:
		while (len > 0) {
			size_t n = cap - s->out_len < len ? cap - s->out_len : len;
			memcpy(s->out + s->out_len, data, n);
			s->out_len += n;
			data += n;
			len -= n;
			if (s->out_len == cap && (rc = out_flush(s, err)) != 0)
				return rc;
		}
		break;
	case BACKUP_CODEC_GZIP:
		do {
			size_t piece = len < ZLIB_PIECE ? len : ZLIB_PIECE;
			int flush = end && piece == len ? Z_FINISH : Z_NO_FLUSH;
			int zr;

			s->enc.z.next_in = (Bytef *)data;
			s->enc.z.avail_in = (uInt)piece;
			do {
				s->enc.z.next_out = s->out + s->out_len;
				s->enc.z.avail_out = (uInt)(cap - s->out_len);
				zr = deflate(&s->enc.z, flush);
				if (zr == Z_STREAM_ERROR)
					return st_error_set(err, ST_EFAILED, "gzip compression failed");
				s->out_len = cap - s->enc.z.avail_out;
				if (s->out_len == cap && (rc = out_flush(s, err)) != 0)
					return rc;
			} while (s->enc.z.avail_in > 0 || (flush == Z_FINISH && zr != Z_STREAM_END));
			data += piece;
			len -= piece;
		} while (len > 0);
		break;
	case BACKUP_CODEC_ZSTD: {
		ZSTD_inBuffer in = { data, len, 0 };
		size_t zr;

		do {
			ZSTD_outBuffer out = { s->out, cap, s->out_len };
			zr = ZSTD_compressStream2(s->enc.zc, &out, &in, end ? ZSTD_e_end : ZSTD_e_continue);
			if (ZSTD_isError(zr))
				return st_error_set(err, ST_EFAILED, "zstd compression failed: %s",
						    ZSTD_getErrorName(zr));
			s->out_len = out.pos;
			if (s->out_len == cap && (rc = out_flush(s, err)) != 0)
				return rc;
		} while (in.pos < in.size || (end && zr != 0));
		break;
	}
	}
	if (end && s->out_len > 0 && (rc = out_flush(s, err)) != 0)
		return rc;
	return 0;
}

static void sink_fail_locked(struct backup_sink *s)
{
	s->stop = 1;
	pthread_cond_broadcast(&s->cond_filled);
	pthread_cond_broadcast(&s->cond_free);
	pthread_cond_broadcast(&s->cond_published);
}

static void *worker_main(void *arg)
{
	struct backup_sink *s = arg;
	int rc = 0;

	for (;;) {
		int idx;
		double t0;

		pthread_mutex_lock(&s->mu);
		while (s->qcount == 0 && !s->closing && !s->stop)
			pthread_cond_wait(&s->cond_filled, &s->mu);
		if (s->stop || s->qcount == 0) {
			pthread_mutex_unlock(&s->mu);
			break;
		}
		idx = s->queue[s->qhead];
		s->qhead = (s->qhead + 1) % s->nbufs;
		s->qcount--;
		pthread_mutex_unlock(&s->mu);

		t0 = thread_cpu();
		rc = encode(s, s->bufs[idx].data, s->bufs[idx].len, 0, &s->worker_err);
		s->worker_busy += thread_cpu() - t0;

		pthread_mutex_lock(&s->mu);
		s->freelist[s->nfree++] = idx;
		pthread_cond_signal(&s->cond_free);
		if (rc) {
			s->worker_rc = rc;
			sink_fail_locked(s);
		}
		pthread_mutex_unlock(&s->mu);
		if (rc)
			return NULL;
	}
	pthread_mutex_lock(&s->mu);
	rc = s->stop;
	pthread_mutex_unlock(&s->mu);
	if (!rc) {
		double t0 = thread_cpu();
		rc = encode(s, NULL, 0, 1, &s->worker_err);
		s->worker_busy += thread_cpu() - t0;
		pthread_mutex_lock(&s->mu);
		if (rc) {
			s->worker_rc = rc;
			sink_fail_locked(s);
		} else {
			s->finished_encoding = 1;
		}
		s->writer_done = 1;
		pthread_cond_broadcast(&s->cond_published);
		pthread_mutex_unlock(&s->mu);
	}
	return NULL;
}

/* The verifier's input: bytes of the file as the worker publishes them. */
static ssize_t verifier_fill(void *ud, void *buf, size_t cap, struct st_error *err)
{
	struct backup_sink *s = ud;
	uint64_t avail;
	ssize_t n;

	pthread_mutex_lock(&s->mu);
	while (s->published == s->vpos && !s->writer_done && !s->stop)
		pthread_cond_wait(&s->cond_published, &s->mu);
	if (s->stop) {
		pthread_mutex_unlock(&s->mu);
		return st_error_set(err, ST_EABORTED, "verification of '%s' stopped", s->o.name);
	}
	avail = s->published - s->vpos;
	pthread_mutex_unlock(&s->mu);
	if (avail == 0)
		return 0; /* writer done and everything read */
	if (avail > cap)
		avail = cap;
	do
		n = pread(s->o.verify_fd, buf, (size_t)avail, (off_t)s->vpos);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return st_error_set(err, ST_EIO, "cannot read back '%s': %s", s->o.name, strerror(errno));
	if (n == 0)
		return st_error_set(err, ST_EFAILED,
				    "'%s' is shorter when read back (%llu bytes) than written", s->o.name,
				    (unsigned long long)s->vpos);
	if (s->crc)
		s->crc_back = (uint32_t)crc32_z(s->crc_back, buf, (size_t)n);
	s->vpos += (uint64_t)n;
	return n;
}

static void *verifier_main(void *arg)
{
	struct backup_sink *s = arg;
	ssize_t n;

	do
		n = backup_reader_read(s->reader, s->vbuf, s->o.chunk, &s->verifier_err);
	while (n > 0);
	s->verifier_busy = thread_cpu();
	backup_reader_result(s->reader, &s->vres);
	pthread_mutex_lock(&s->mu);
	if (n < 0 && !s->stop) {
		s->verifier_rc = (int)n;
		sink_fail_locked(s);
	} else if (n < 0) {
		s->verifier_rc = (int)n;
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

/* Reader whose input is a callback (the verifier's) instead of an fd. */
static int reader_open_fill(ssize_t (*fill)(void *, void *, size_t, struct st_error *), void *ud,
			    enum backup_codec codec, const char *name, size_t chunk,
			    struct backup_reader **out, struct st_error *err);

int backup_sink_open(const struct backup_sink_opts *o, struct backup_sink **out, struct st_error *err)
{
	struct backup_sink *s;
	int rc, i;

	*out = NULL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return st_error_set(err, ST_ENOMEM, "out of memory");
	s->o = *o;
	if (!s->o.name)
		s->o.name = "backup";
	if (!s->o.chunk)
		s->o.chunk = DEFAULT_CHUNK;
	if (s->o.queue_depth <= 0)
		s->o.queue_depth = DEFAULT_DEPTH;
	if (!s->o.writeback)
		s->o.writeback = DEFAULT_WRITEBACK;
	s->cur = -1;
	/* gzip and zstd frames carry a checksum of the raw bytes that
	 * decompression checks; a plain file gets a CRC-32 both ways instead. */
	s->crc = o->codec == BACKUP_CODEC_NONE;
	s->crc_out = s->crc ? (uint32_t)crc32_z(0, NULL, 0) : 0;
	s->crc_back = s->crc_out;
	backup_trailer_init(&s->trailer);
	if ((rc = encoder_init(&s->enc, o->codec, o->level, err)) != 0)
		goto fail;
	s->out = malloc(s->o.chunk);
	if (!s->out) {
		rc = st_error_set(err, ST_ENOMEM, "out of memory");
		goto fail;
	}
	if (s->o.threaded || s->o.verify_fd >= 0) {
		if (pthread_mutex_init(&s->mu, NULL) || pthread_cond_init(&s->cond_filled, NULL) ||
		    pthread_cond_init(&s->cond_free, NULL) || pthread_cond_init(&s->cond_published, NULL)) {
			rc = st_error_set(err, ST_ENOMEM, "cannot create the backup pipeline");
			goto fail;
		}
		s->mu_ready = 1;
	}
	if (s->o.threaded) {
		s->nbufs = s->o.queue_depth + 2;
		s->bufs = calloc((size_t)s->nbufs, sizeof(*s->bufs));
		s->freelist = calloc((size_t)s->nbufs, sizeof(int));
		s->queue = calloc((size_t)s->nbufs, sizeof(int));
		if (!s->bufs || !s->freelist || !s->queue) {
			rc = st_error_set(err, ST_ENOMEM, "out of memory");
			goto fail;
		}
		for (i = 0; i < s->nbufs; i++) {
			s->bufs[i].data = malloc(s->o.chunk);
			if (!s->bufs[i].data) {
				rc = st_error_set(err, ST_ENOMEM, "out of memory");
				goto fail;
			}
			s->freelist[s->nfree++] = i;
		}
	}
	if (s->o.verify_fd >= 0) {
		s->vbuf = malloc(s->o.chunk);
		if (!s->vbuf) {
			rc = st_error_set(err, ST_ENOMEM, "out of memory");
			goto fail;
		}
		if ((rc = reader_open_fill(verifier_fill, s, o->codec, s->o.name, s->o.chunk, &s->reader,
					   err)) != 0)
			goto fail;
		if (pthread_create(&s->verifier, NULL, verifier_main, s) != 0) {
			rc = st_error_set(err, ST_EIO, "cannot start the verifier thread");
			goto fail;
		}
		s->verifier_started = 1;
	}
	if (s->o.threaded) {
		if (pthread_create(&s->worker, NULL, worker_main, s) != 0) {
			rc = st_error_set(err, ST_EIO, "cannot start the compression thread");
			goto fail;
		}
		s->worker_started = 1;
	}
	*out = s;
	return 0;
fail:
	backup_sink_free(s);
	return rc;
}

/* Hands the current buffer to the worker (threaded). */
static int enqueue_current(struct backup_sink *s, struct st_error *err)
{
	int rc = 0;

	pthread_mutex_lock(&s->mu);
	if (s->stop) {
		pthread_mutex_unlock(&s->mu);
		return sink_failed(s, err) ? sink_failed(s, err)
					   : st_error_set(err, ST_EABORTED, "backup pipeline stopped");
	}
	s->queue[(s->qhead + s->qcount) % s->nbufs] = s->cur;
	s->qcount++;
	s->cur = -1;
	pthread_cond_signal(&s->cond_filled);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

static int take_free(struct backup_sink *s, struct st_error *err)
{
	pthread_mutex_lock(&s->mu);
	while (s->nfree == 0 && !s->stop)
		pthread_cond_wait(&s->cond_free, &s->mu);
	if (s->stop) {
		pthread_mutex_unlock(&s->mu);
		return sink_failed(s, err) ? sink_failed(s, err)
					   : st_error_set(err, ST_EABORTED, "backup pipeline stopped");
	}
	s->cur = s->freelist[--s->nfree];
	s->bufs[s->cur].len = 0;
	pthread_mutex_unlock(&s->mu);
	return 0;
}

int backup_sink_write(struct backup_sink *s, const void *data, size_t len, struct st_error *err)
{
	const unsigned char *p = data;
	int rc;

	if (s->finished)
		return st_error_set(err, ST_EUSAGE, "backup sink already finished");
	if (s->mu_ready) {
		pthread_mutex_lock(&s->mu);
		rc = s->stop;
		pthread_mutex_unlock(&s->mu);
		if (rc)
			return sink_failed(s, err) ? sink_failed(s, err)
						   : st_error_set(err, ST_EABORTED, "backup pipeline stopped");
	}
	backup_trailer_feed(&s->trailer, data, len);
	s->bytes_raw += len;
	if (!s->o.threaded) {
		double t0 = thread_cpu();
		rc = encode(s, p, len, 0, err);
		s->worker_busy += thread_cpu() - t0;
		if (rc) {
			s->worker_rc = rc;
			s->worker_err = *err;
			if (s->mu_ready) {
				pthread_mutex_lock(&s->mu);
				sink_fail_locked(s);
				pthread_mutex_unlock(&s->mu);
			}
		}
		return rc;
	}
	while (len > 0) {
		struct sink_buf *b;
		size_t n;

		if (s->cur < 0 && (rc = take_free(s, err)) != 0)
			return rc;
		b = &s->bufs[s->cur];
		n = s->o.chunk - b->len < len ? s->o.chunk - b->len : len;
		memcpy(b->data + b->len, p, n);
		b->len += n;
		p += n;
		len -= n;
		if (b->len == s->o.chunk && (rc = enqueue_current(s, err)) != 0)
			return rc;
	}
	return 0;
}

static void join_threads(struct backup_sink *s)
{
	if (s->worker_started) {
		pthread_join(s->worker, NULL);
		s->worker_started = 0;
	}
	if (s->verifier_started) {
		pthread_join(s->verifier, NULL);
		s->verifier_started = 0;
	}
}

int backup_sink_finish(struct backup_sink *s, struct backup_sink_result *res, struct st_error *err)
{
	int rc = 0;

	memset(res, 0, sizeof(*res));
	if (s->finished)
		return st_error_set(err, ST_EUSAGE, "backup sink already finished");
	s->finished = 1;
	if (s->o.threaded) {
		if (s->cur >= 0 && s->bufs[s->cur].len > 0)
			rc = enqueue_current(s, err);
		pthread_mutex_lock(&s->mu);
		if (rc)
			sink_fail_locked(s);
		s->closing = 1;
		pthread_cond_broadcast(&s->cond_filled);
		pthread_mutex_unlock(&s->mu);
	} else if (!s->worker_rc) {
		double t0 = thread_cpu();
		rc = encode(s, NULL, 0, 1, err);
		s->worker_busy += thread_cpu() - t0;
		if (rc) {
			s->worker_rc = rc;
			s->worker_err = *err;
		} else {
			s->finished_encoding = 1;
		}
		if (s->mu_ready) {
			pthread_mutex_lock(&s->mu);
			if (rc)
				sink_fail_locked(s);
			s->writer_done = 1;
			pthread_cond_broadcast(&s->cond_published);
			pthread_mutex_unlock(&s->mu);
		}
	}
	join_threads(s);

	res->bytes_raw = s->bytes_raw;
	res->bytes_out = s->bytes_out;
	res->crc_out = s->crc_out;
	res->trailer = s->trailer;
	res->compress_seconds = s->worker_busy;
	res->verify_seconds = s->verifier_busy;
	if (s->worker_rc) {
		*err = s->worker_err;
		return s->worker_rc;
	}
	if (rc)
		return rc;
	if (!s->finished_encoding)
		return st_error_set(err, ST_EFAILED, "compression of '%s' did not finish", s->o.name);
	if (s->o.verify_fd < 0)
		return 0;
	if (s->verifier_rc) {
		*err = s->verifier_err;
		return st_error_wrap(err, "verification of '%s' failed", s->o.name);
	}
	memcpy(res->sha256, s->vres.sha256, sizeof(res->sha256));
	if (s->vres.bytes_in != s->bytes_out || s->crc_back != s->crc_out)
		return st_error_set(err, ST_EFAILED,
				    "'%s' reads back differently than written (%llu of %llu bytes, crc %08x, expected %08x)",
				    s->o.name, (unsigned long long)s->vres.bytes_in,
				    (unsigned long long)s->bytes_out, s->crc_back, s->crc_out);
	if (s->vres.bytes_raw != s->bytes_raw)
		return st_error_set(err, ST_EFAILED,
				    "'%s' decompresses to %llu bytes, but %llu were written", s->o.name,
				    (unsigned long long)s->vres.bytes_raw, (unsigned long long)s->bytes_raw);
	if (backup_trailer_ok(&s->vres.trailer, NULL, 0) != backup_trailer_ok(&s->trailer, NULL, 0))
		return st_error_set(err, ST_EFAILED, "'%s' decompressed does not end like the dump",
				    s->o.name);
	res->verified = 1;
	return 0;
}

void backup_sink_free(struct backup_sink *s)
{
	int i;

	if (!s)
		return;
	if (s->mu_ready) {
		pthread_mutex_lock(&s->mu);
		if (!s->finished || s->worker_started || s->verifier_started)
			sink_fail_locked(s);
		pthread_mutex_unlock(&s->mu);
	}
	join_threads(s);
	backup_reader_free(s->reader);
	encoder_release(&s->enc);
	if (s->bufs)
		for (i = 0; i < s->nbufs; i++)
			free(s->bufs[i].data);
	free(s->bufs);
	free(s->freelist);
	free(s->queue);
	free(s->out);
	free(s->vbuf);
	if (s->mu_ready) {
		pthread_cond_destroy(&s->cond_filled);
		pthread_cond_destroy(&s->cond_free);
		pthread_cond_destroy(&s->cond_published);
		pthread_mutex_destroy(&s->mu);
	}
	free(s);
}

/* ---- reader ------------------------------------------------------------ */

struct backup_reader {
	enum backup_codec codec;
	const char *name;
	ssize_t (*fill)(void *ud, void *buf, size_t cap, struct st_error *err);
	void *fill_ud;
	int fd;
	unsigned char *in;
	size_t cap, in_len, in_pos;
	int in_eof;
	int stream_end;               /* the compressed stream ended */
	int done;
	z_stream z;
	int z_ready;
	ZSTD_DCtx *zd;
	EVP_MD_CTX *sha;
	uint64_t bytes_in, bytes_raw;
	struct backup_trailer trailer;
	char sha256[65];
};

static ssize_t fd_fill(void *ud, void *buf, size_t cap, struct st_error *err)
{
	struct backup_reader *r = ud;
	ssize_t n;

	do
		n = read(r->fd, buf, cap);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return st_error_set(err, ST_EIO, "cannot read '%s': %s", r->name, strerror(errno));
	return n;
}

static int reader_open_fill(ssize_t (*fill)(void *, void *, size_t, struct st_error *), void *ud,
			    enum backup_codec codec, const char *name, size_t chunk,
			    struct backup_reader **out, struct st_error *err)
{
	struct backup_reader *r;
	int rc = 0;

	*out = NULL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return st_error_set(err, ST_ENOMEM, "out of memory");
	r->codec = codec;
	r->name = name ? name : "backup";
	r->fill = fill;
	r->fill_ud = ud ? ud : r;
	r->fd = -1;
	r->cap = chunk ? chunk : DEFAULT_CHUNK;
	backup_trailer_init(&r->trailer);
	r->in = malloc(r->cap);
	r->sha = EVP_MD_CTX_new();
	if (!r->in || !r->sha || EVP_DigestInit_ex(r->sha, EVP_sha256(), NULL) != 1) {
		rc = st_error_set(err, ST_ENOMEM, "cannot set up SHA-256");
		goto out;
	}
	switch (codec) {
	case BACKUP_CODEC_GZIP:
		if (inflateInit2(&r->z, 15 + 16) != Z_OK) {
			rc = st_error_set(err, ST_ENOMEM, "cannot start gzip decompression");
			goto out;
		}
		r->z_ready = 1;
		break;
	case BACKUP_CODEC_ZSTD:
		r->zd = ZSTD_createDCtx();
		if (!r->zd) {
			rc = st_error_set(err, ST_ENOMEM, "cannot start zstd decompression");
			goto out;
		}
		break;
	case BACKUP_CODEC_NONE:
		break;
	default:
		rc = st_error_set(err, ST_EUSAGE, "unknown codec %d", (int)codec);
		goto out;
	}
out:
	if (rc) {
		backup_reader_free(r);
		return rc;
	}
	*out = r;
	return 0;
}

int backup_reader_open(int fd, enum backup_codec codec, const char *name,
		       struct backup_reader **out, struct st_error *err)
{
	int rc = reader_open_fill(fd_fill, NULL, codec, name, 0, out, err);

	if (rc == 0)
		(*out)->fd = fd;
	return rc;
}

static int reader_refill(struct backup_reader *r, struct st_error *err)
{
	ssize_t n = r->fill(r->fill_ud, r->in, r->cap, err);

	if (n < 0)
		return (int)n;
	r->in_pos = 0;
	r->in_len = (size_t)n;
	if (n == 0) {
		r->in_eof = 1;
		return 0;
	}
	r->bytes_in += (uint64_t)n;
	if (EVP_DigestUpdate(r->sha, r->in, (size_t)n) != 1)
		return st_error_set(err, ST_EFAILED, "SHA-256 failed");
	return 0;
}

static int reader_corrupt(struct backup_reader *r, struct st_error *err, const char *what)
{
	return st_error_set(err, ST_EFAILED, "'%s' is corrupt: %s (near compressed byte %llu)", r->name,
			    what, (unsigned long long)(r->bytes_in - (r->in_len - r->in_pos)));
}

static void reader_finish(struct backup_reader *r)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (EVP_DigestFinal_ex(r->sha, md, &mdlen) == 1 && mdlen == 32)
		backup_hex(md, 32, r->sha256);
	r->done = 1;
}

ssize_t backup_reader_read(struct backup_reader *r, void *buf, size_t cap, struct st_error *err)
{
	int rc;

	if (r->done)
		return 0;
	if (cap > ZLIB_PIECE)
		cap = ZLIB_PIECE;
	for (;;) {
		size_t produced = 0;

		if (r->in_pos == r->in_len && !r->in_eof && (rc = reader_refill(r, err)) != 0)
			return rc;
		if (r->stream_end || r->codec == BACKUP_CODEC_NONE) {
			if (r->codec != BACKUP_CODEC_NONE && r->in_pos < r->in_len)
				return reader_corrupt(r, err, "unexpected bytes after the end of the compressed stream");
			if (r->codec == BACKUP_CODEC_NONE && r->in_pos < r->in_len) {
				produced = r->in_len - r->in_pos < cap ? r->in_len - r->in_pos : cap;
				memcpy(buf, r->in + r->in_pos, produced);
				r->in_pos += produced;
			} else if (r->in_eof) {
				reader_finish(r);
				return 0;
			} else {
				continue;
			}
		} else if (r->codec == BACKUP_CODEC_GZIP) {
			int zr;

			r->z.next_in = r->in + r->in_pos;
			r->z.avail_in = (uInt)(r->in_len - r->in_pos);
			r->z.next_out = buf;
			r->z.avail_out = (uInt)cap;
			zr = inflate(&r->z, Z_NO_FLUSH);
			r->in_pos = r->in_len - r->z.avail_in;
			produced = cap - r->z.avail_out;
			if (zr == Z_STREAM_END)
				r->stream_end = 1;
			else if (zr == Z_DATA_ERROR || zr == Z_NEED_DICT)
				return reader_corrupt(r, err, r->z.msg ? r->z.msg : "invalid gzip data");
			else if (zr == Z_MEM_ERROR)
				return st_error_set(err, ST_ENOMEM, "out of memory");
			else if (zr != Z_OK && zr != Z_BUF_ERROR)
				return reader_corrupt(r, err, "gzip decompression failed");
		} else {
			ZSTD_inBuffer in = { r->in + r->in_pos, r->in_len - r->in_pos, 0 };
			ZSTD_outBuffer out = { buf, cap, 0 };
			size_t zr = ZSTD_decompressStream(r->zd, &out, &in);

			r->in_pos += in.pos;
			produced = out.pos;
			if (ZSTD_isError(zr))
				return reader_corrupt(r, err, ZSTD_getErrorName(zr));
			if (zr == 0)
				r->stream_end = 1;
		}
		if (produced > 0) {
			backup_trailer_feed(&r->trailer, buf, produced);
			r->bytes_raw += produced;
			return (ssize_t)produced;
		}
		if (r->in_eof && r->in_pos == r->in_len && !r->stream_end && r->codec != BACKUP_CODEC_NONE)
			return st_error_set(err, ST_EFAILED,
					    "'%s' is truncated: the compressed stream ends early after %llu bytes",
					    r->name, (unsigned long long)r->bytes_in);
	}
}

void backup_reader_result(const struct backup_reader *r, struct backup_reader_result *res)
{
	memset(res, 0, sizeof(*res));
	res->bytes_in = r->bytes_in;
	res->bytes_raw = r->bytes_raw;
	memcpy(res->sha256, r->sha256, sizeof(res->sha256));
	res->trailer = r->trailer;
}

void backup_reader_free(struct backup_reader *r)
{
	if (!r)
		return;
	if (r->z_ready)
		inflateEnd(&r->z);
	ZSTD_freeDCtx(r->zd);
	EVP_MD_CTX_free(r->sha);
	free(r->in);
	free(r);
}

int backup_file_verify(const char *path, enum backup_codec codec, struct backup_verify_result *res,
		       struct st_error *err)
{
	struct backup_reader *r = NULL;
	unsigned char *buf = NULL;
	double t0 = time_monotonic();
	const char *base = strrchr(path, '/');
	ssize_t n = 0;
	int fd = -1, rc;

	memset(res, 0, sizeof(*res));
	base = base ? base + 1 : path;
	/* O_NOFOLLOW: a backup is a regular file (backup_resolve checked with
	 * lstat); a symlink swapped in since is not followed. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		rc = st_error_set(err, errno == ENOENT ? ST_ENOTFOUND : ST_EIO, "cannot open '%s': %s",
				  path, strerror(errno));
		goto out;
	}
	(void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	buf = malloc(DEFAULT_CHUNK);
	if (!buf) {
		rc = st_error_set(err, ST_ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = backup_reader_open(fd, codec, base, &r, err)) != 0)
		goto out;
	do
		n = backup_reader_read(r, buf, DEFAULT_CHUNK, err);
	while (n > 0);
	rc = n < 0 ? (int)n : 0;
	backup_reader_result(r, &res->read);
out:
	res->seconds = time_monotonic() - t0;
	backup_reader_free(r);
	free(buf);
	if (fd >= 0)
		close(fd);
	return rc;
}

/*
 * docker_stream.h - pure parsers for the byte streams the Docker Engine API
 * sends: the 8-byte framed stdout/stderr multiplexing (exec, logs, attach),
 * log lines with RFC 3339 timestamps, JSON-lines progress (build), error
 * bodies, the head of a hijacked HTTP response, plus URL encoding and API
 * version negotiation.
 *
 * Nothing here touches a socket: every parser takes bytes in pieces of any
 * size (a frame header split across reads, a payload byte by byte) and holds
 * only bounded state, so a multi-GB exec output or log never sits in memory.
 * The client (docker.h) feeds them from libcurl or a raw socket; the unit
 * tests feed them canned bytes.
 *
 * Callbacks return 0 to go on; any other value stops the parser, which
 * returns that value unchanged. A callback that stops with a negative ST_E*
 * code should fill the st_error it is given.
 */
#ifndef ST_DOCKER_STREAM_H
#define ST_DOCKER_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "sbuf.h"

#define DOCKER_STREAM_STDIN 0
#define DOCKER_STREAM_STDOUT 1
#define DOCKER_STREAM_STDERR 2
/* Stream 3 carries an error message from the daemon itself (newer engines). */
#define DOCKER_STREAM_SYSTEMERR 3

/*
 * A piece of one frame's payload: stream is DOCKER_STREAM_STDOUT or _STDERR
 * (stdin frames are reported as stdout, as the docker CLI does). Pieces of
 * one frame arrive in order; frame_start is 1 on the first piece of each
 * frame (zero-length frames produce no call). data is borrowed and valid
 * during the call only.
 */
typedef int (*docker_chunk_fn)(void *ud, int stream, const char *data, size_t len,
			       int frame_start, struct st_error *err);

struct docker_demux {
	docker_chunk_fn on_chunk;
	void *ud;
	int raw;                /* no framing (container with Tty): all stdout */
	unsigned char hdr[8];
	size_t hdr_len;         /* header bytes collected so far */
	uint32_t left;          /* payload bytes still due in the current frame */
	uint32_t frame_len;     /* payload length of the current frame */
	int stream;
	int started;            /* raw mode: the first byte was seen */
	char syserr[512];       /* payload of a stream-3 frame, truncated */
	size_t syserr_len;
	uint64_t frames;        /* complete frames seen, for diagnostics */
	uint64_t bytes;         /* payload bytes delivered */
};

/* Prepares d; raw != 0 passes bytes through as stdout without framing. */
void docker_demux_init(struct docker_demux *d, int raw, docker_chunk_fn on_chunk, void *ud);

/* Feeds the next len bytes of the stream. Returns 0, ST_EPROTO for a bad
 * header (unknown stream, non-zero padding), ST_ESERVICE for a stream-3
 * error frame from the daemon, or what a callback returned. */
int docker_demux_feed(struct docker_demux *d, const void *data, size_t len, struct st_error *err);

/* At end of stream: 0 if it ended on a frame boundary, else ST_EPROTO
 * ("truncated frame header" / "truncated frame payload"). */
int docker_demux_finish(const struct docker_demux *d, struct st_error *err);

/*
 * Line reassembly on top of the demultiplexer, per stream. Frames are not
 * lines: a line can span frames (the json-file log driver splits lines over
 * 16 KiB into several entries, each with its own timestamp) and a frame can
 * hold several lines (exec output). With timestamps, every frame starts with
 * "RFC3339Nano SP"; the timestamp of a line is the one of the frame where it
 * began, the ones of continuation frames are dropped. In raw (Tty) mode a
 * timestamp is expected at the start of every line instead.
 */
struct docker_log_line {
	int stream;             /* DOCKER_STREAM_STDOUT or DOCKER_STREAM_STDERR */
	const char *timestamp;  /* as sent ("2026-11-27T22:34:16.123456789Z"), "" without */
	double time;            /* timestamp in epoch seconds, 0 without */
	const char *text;       /* the line without its newline, NUL-terminated */
	size_t len;
	int split;              /* 1: longer than max_line, the rest follows in the next call */
};

/* line and everything it points to are borrowed, valid during the call. */
typedef int (*docker_line_fn)(void *ud, const struct docker_log_line *line, struct st_error *err);

#define DOCKER_TIMESTAMP_MAX 64
#define DOCKER_LINE_MAX_DEFAULT (1024 * 1024)

struct docker_lines_state {
	struct sbuf line;                  /* the line being assembled (owned) */
	char ts[DOCKER_TIMESTAMP_MAX];     /* timestamp being read at a frame start */
	size_t ts_len;
	int in_ts;                         /* reading a timestamp prefix */
	int have_line;                     /* line holds a started line (possibly empty) */
	char line_ts[DOCKER_TIMESTAMP_MAX];/* timestamp of the line being assembled */
};

struct docker_lines {
	docker_line_fn on_line;
	void *ud;
	int timestamps;
	int raw;
	size_t max_line;
	struct docker_lines_state st[3];   /* indexed by stream, [0] unused */
};

/* max_line 0 means DOCKER_LINE_MAX_DEFAULT: a longer line is handed over in
 * pieces of max_line bytes with split = 1, so memory stays bounded. */
void docker_lines_init(struct docker_lines *l, int timestamps, int raw, size_t max_line,
		       docker_line_fn on_line, void *ud);

/* A docker_chunk_fn: pass it to docker_demux_init with the docker_lines as ud. */
int docker_lines_chunk(void *ud, int stream, const char *data, size_t len, int frame_start,
		       struct st_error *err);

/* Hands over lines without a final newline. Call once at end of stream. */
int docker_lines_finish(struct docker_lines *l, struct st_error *err);

void docker_lines_release(struct docker_lines *l);

/* Parses an RFC 3339 time ("2026-11-27T22:34:16.123456789Z", offsets
 * "+02:00" too) into epoch seconds. 0 or -1 when not such a time. */
int docker_parse_time(const char *s, size_t len, double *out);

/*
 * JSON lines: the progress streams of build (and pull, events) are one JSON
 * object per line, split across reads arbitrarily. Empty lines are skipped.
 */
typedef int (*docker_jsonl_fn)(void *ud, const char *line, size_t len, struct st_error *err);

struct docker_jsonl {
	docker_jsonl_fn on_line;
	void *ud;
	size_t max;             /* longest accepted line */
	struct sbuf buf;        /* owned */
};

void docker_jsonl_init(struct docker_jsonl *j, size_t max, docker_jsonl_fn on_line, void *ud);
/* Returns 0, ST_EPROTO for a line longer than max, or what on_line returned. */
int docker_jsonl_feed(struct docker_jsonl *j, const void *data, size_t len, struct st_error *err);
/* Hands over a last line without newline. */
int docker_jsonl_finish(struct docker_jsonl *j, struct st_error *err);
void docker_jsonl_release(struct docker_jsonl *j);

/*
 * Build progress. A failed build still answers HTTP 200: the only sign is a
 * final {"errorDetail":{...},"error":"..."} line. The image id comes from
 * {"aux":{"ID":"sha256:..."}} (or, failing that, "Successfully built ID").
 */
typedef int (*docker_progress_fn)(void *ud, const char *text);

struct docker_build_parser {
	struct docker_jsonl jl;
	docker_progress_fn on_progress;   /* "stream"/"status" text as sent, may be NULL */
	void *ud;
	char *image_id;   /* owned; NULL until seen */
	int id_from_aux;  /* image_id came from an aux line, not from the text */
	char *error;      /* owned; the daemon's error text, NULL if none */
};

void docker_build_parser_init(struct docker_build_parser *p, docker_progress_fn on_progress, void *ud);
/* Returns 0, ST_EPROTO for a line that is not a JSON object, or what
 * on_progress returned. An error line is recorded, not returned. */
int docker_build_parser_feed(struct docker_build_parser *p, const void *data, size_t len,
			     struct st_error *err);
/* At end of stream: 0 with p->image_id set; ST_EFAILED with the daemon's
 * text when the build failed; ST_EPROTO when no image id came. */
int docker_build_parser_finish(struct docker_build_parser *p, struct st_error *err);
void docker_build_parser_release(struct docker_build_parser *p);

/* The daemon's explanation from an error body: the "message" field of a JSON
 * object, else the body text (first line, control characters replaced),
 * else "". Always NUL-terminates out (size > 0). */
void docker_error_text(const char *body, size_t len, char *out, size_t size);

/* Maps an HTTP status to an ST_E* code: 404 ST_ENOTFOUND, 409 ST_ECONFLICT,
 * 400 ST_EUSAGE, 408/504 ST_ETIMEOUT, anything else >= 300 ST_ESERVICE. */
int docker_status_code(long status);

/*
 * The head of an HTTP/1.1 response ("HTTP/1.1 101 UPGRADED\r\n...\r\n\r\n").
 * Returns 1 when complete (status, head_len = bytes up to and including the
 * blank line, content_length or -1 when absent), 0 when more bytes are
 * needed, ST_EPROTO when it is not an HTTP response.
 */
int docker_http_head_parse(const char *buf, size_t len, int *status, size_t *head_len,
			   long long *content_length);

/* Appends s percent-encoded (RFC 3986 unreserved characters kept; with
 * path != 0 also '/', ':' and '@', for image references in paths). */
int docker_url_escape(struct sbuf *sb, const char *s, int path);

/* "1.41" -> 1041. 0 or -1. */
int docker_api_version_parse(const char *s, int *out);

/*
 * Picks the API version to speak: min(daemon_max, ours_max), refused when
 * below ours_min or below the daemon's minimum. daemon_min may be NULL.
 * Writes "1.NN" into out. 0, ST_EPROTO (unparsable) or ST_ESERVICE (no
 * common version; message says which side is too old, hint what to do).
 */
int docker_api_negotiate(const char *daemon_max, const char *daemon_min, const char *ours_min,
			 const char *ours_max, char *out, size_t size, struct st_error *err);

#endif

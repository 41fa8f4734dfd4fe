#include "docker_stream.h"
#include "text.h"

#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- frame demultiplexer ---- */

void docker_demux_init(struct docker_demux *d, int raw, docker_chunk_fn on_chunk, void *ud)
{
	memset(d, 0, sizeof(*d));
	d->raw = raw;
	d->on_chunk = on_chunk;
	d->ud = ud;
}

static int demux_frame_done(struct docker_demux *d, struct st_error *err)
{
	d->hdr_len = 0;
	d->frames++;
	if (d->stream == DOCKER_STREAM_SYSTEMERR) {
		d->syserr[d->syserr_len] = '\0';
		return st_error_set(err, ST_ESERVICE, "docker reported an error in the stream: %s",
				    d->syserr);
	}
	return 0;
}

int docker_demux_feed(struct docker_demux *d, const void *data, size_t len, struct st_error *err)
{
	const char *p = data;
	int rc = 0;

	if (d->raw) {
		if (len == 0)
			return 0;
		rc = d->on_chunk(d->ud, DOCKER_STREAM_STDOUT, p, len, !d->started, err);
		d->started = 1;
		d->bytes += len;
		return rc;
	}
	while (len > 0) {
		if (d->hdr_len < sizeof(d->hdr)) {
			size_t take = sizeof(d->hdr) - d->hdr_len;

			if (take > len)
				take = len;
			memcpy(d->hdr + d->hdr_len, p, take);
			d->hdr_len += take;
			p += take;
			len -= take;
			if (d->hdr_len < sizeof(d->hdr))
				break;
			if (d->hdr[1] || d->hdr[2] || d->hdr[3] || d->hdr[0] > DOCKER_STREAM_SYSTEMERR)
				return st_error_set(err, ST_EPROTO,
						    "bad stream frame header %02x %02x %02x %02x after %llu frames",
						    d->hdr[0], d->hdr[1], d->hdr[2], d->hdr[3],
						    (unsigned long long)d->frames);
			d->stream = d->hdr[0] == DOCKER_STREAM_STDIN ? DOCKER_STREAM_STDOUT : d->hdr[0];
			d->frame_len = (uint32_t)d->hdr[4] << 24 | (uint32_t)d->hdr[5] << 16 |
				       (uint32_t)d->hdr[6] << 8 | (uint32_t)d->hdr[7];
			d->left = d->frame_len;
			d->syserr_len = 0;
			if (d->left == 0 && (rc = demux_frame_done(d, err)))
				return rc;
			continue;
		}
		{
			size_t take = d->left < len ? d->left : len;
			int start = d->left == d->frame_len;

			if (d->stream == DOCKER_STREAM_SYSTEMERR) {
				size_t room = sizeof(d->syserr) - 1 - d->syserr_len;
				size_t keep = take < room ? take : room;

				memcpy(d->syserr + d->syserr_len, p, keep);
				d->syserr_len += keep;
			} else {
				rc = d->on_chunk(d->ud, d->stream, p, take, start, err);
				if (rc)
					return rc;
				d->bytes += take;
			}
			d->left -= (uint32_t)take;
			p += take;
			len -= take;
			if (d->left == 0 && (rc = demux_frame_done(d, err)))
				return rc;
		}
	}
	return 0;
}

int docker_demux_finish(const struct docker_demux *d, struct st_error *err)
{
	if (d->raw || d->hdr_len == 0)
		return 0;
	if (d->hdr_len < sizeof(d->hdr))
		return st_error_set(err, ST_EPROTO,
				    "stream ended inside a frame header (%zu of 8 bytes)", d->hdr_len);
	return st_error_set(err, ST_EPROTO, "stream ended inside a frame (%u of %u payload bytes missing)",
			    d->left, d->frame_len);
}

/* ---- RFC 3339 ---- */

static int digits(const char *s, size_t n, int *out)
{
	int v = 0;

	for (size_t i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

int docker_parse_time(const char *s, size_t len, double *out)
{
	struct tm tm;
	int year, mon, day, hour, min, sec, oh, om;
	double frac = 0, scale = 0.1;
	long offset = 0;
	size_t i = 19;
	time_t t;

	if (len < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') ||
	    s[13] != ':' || s[16] != ':')
		return -1;
	if (digits(s, 4, &year) || digits(s + 5, 2, &mon) || digits(s + 8, 2, &day) ||
	    digits(s + 11, 2, &hour) || digits(s + 14, 2, &min) || digits(s + 17, 2, &sec))
		return -1;
	if (s[i] == '.') {
		i++;
		if (i >= len || !isdigit((unsigned char)s[i]))
			return -1;
		while (i < len && isdigit((unsigned char)s[i])) {
			frac += (s[i] - '0') * scale;
			scale /= 10;
			i++;
		}
	}
	if (i >= len)
		return -1;
	if (s[i] == 'Z' || s[i] == 'z') {
		i++;
	} else if (s[i] == '+' || s[i] == '-') {
		if (len - i < 6 || s[i + 3] != ':' || digits(s + i + 1, 2, &oh) || digits(s + i + 4, 2, &om))
			return -1;
		offset = (oh * 3600L + om * 60L) * (s[i] == '+' ? 1 : -1);
		i += 6;
	} else {
		return -1;
	}
	if (i != len || mon < 1 || mon > 12 || day < 1 || day > 31 || hour > 23 || min > 59 || sec > 60)
		return -1;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = year - 1900;
	tm.tm_mon = mon - 1;
	tm.tm_mday = day;
	tm.tm_hour = hour;
	tm.tm_min = min;
	tm.tm_sec = sec;
	t = timegm(&tm);
	*out = (double)t - (double)offset + frac;
	return 0;
}

/* ---- line reassembly ---- */

void docker_lines_init(struct docker_lines *l, int timestamps, int raw, size_t max_line,
		       docker_line_fn on_line, void *ud)
{
	memset(l, 0, sizeof(*l));
	l->timestamps = timestamps;
	l->raw = raw;
	l->max_line = max_line ? max_line : DOCKER_LINE_MAX_DEFAULT;
	l->on_line = on_line;
	l->ud = ud;
	if (raw && timestamps)
		l->st[DOCKER_STREAM_STDOUT].in_ts = 1;
}

static int lines_emit(struct docker_lines *l, int stream, int split, struct st_error *err)
{
	struct docker_lines_state *s = &l->st[stream];
	struct docker_log_line line;
	double t = 0;

	line.stream = stream;
	line.timestamp = l->timestamps ? s->line_ts : "";
	if (!l->timestamps || docker_parse_time(s->line_ts, strlen(s->line_ts), &t))
		t = 0;
	line.time = t;
	line.text = sbuf_str(&s->line);
	line.len = s->line.len;
	line.split = split;
	return l->on_line(l->ud, &line, err);
}

int docker_lines_chunk(void *ud, int stream, const char *data, size_t len, int frame_start,
		       struct st_error *err)
{
	struct docker_lines *l = ud;
	struct docker_lines_state *s;
	int rc;

	if (stream != DOCKER_STREAM_STDERR)
		stream = DOCKER_STREAM_STDOUT;
	s = &l->st[stream];
	if (frame_start && l->timestamps && !l->raw) {
		s->in_ts = 1;
		s->ts_len = 0;
	}
	while (len > 0) {
		const char *nl;
		size_t take;

		if (s->in_ts) {
			const char *sp = memchr(data, ' ', len);

			take = sp ? (size_t)(sp - data) : len;
			if (s->ts_len + take >= sizeof(s->ts))
				return st_error_set(err, ST_EPROTO, "log timestamp longer than %zu bytes",
						    sizeof(s->ts) - 1);
			memcpy(s->ts + s->ts_len, data, take);
			s->ts_len += take;
			s->ts[s->ts_len] = '\0';
			if (!sp)
				return 0;
			data += take + 1;
			len -= take + 1;
			s->in_ts = 0;
			s->ts_len = 0;
			/* A line continued from an earlier frame keeps its first timestamp. */
			if (!s->have_line)
				memcpy(s->line_ts, s->ts, sizeof(s->ts));
			continue;
		}
		if (!s->have_line) {
			s->have_line = 1;
			if (!l->timestamps)
				s->line_ts[0] = '\0';
		}
		nl = memchr(data, '\n', len);
		take = nl ? (size_t)(nl - data) : len;
		while (s->line.len + take > l->max_line) {
			size_t room = l->max_line - s->line.len;

			if (sbuf_append(&s->line, data, room))
				return st_error_set(err, ST_ENOMEM, "out of memory assembling a log line");
			if ((rc = lines_emit(l, stream, 1, err)))
				return rc;
			sbuf_reset(&s->line);
			data += room;
			len -= room;
			take -= room;
		}
		if (sbuf_append(&s->line, data, take))
			return st_error_set(err, ST_ENOMEM, "out of memory assembling a log line");
		data += take;
		len -= take;
		if (nl) {
			data++;
			len--;
			rc = lines_emit(l, stream, 0, err);
			sbuf_reset(&s->line);
			s->have_line = 0;
			if (l->raw && l->timestamps) {
				s->in_ts = 1;
				s->ts_len = 0;
			}
			if (rc)
				return rc;
		}
	}
	return 0;
}

int docker_lines_finish(struct docker_lines *l, struct st_error *err)
{
	int rc;

	for (int i = DOCKER_STREAM_STDOUT; i <= DOCKER_STREAM_STDERR; i++) {
		struct docker_lines_state *s = &l->st[i];

		if (s->have_line && s->line.len > 0) {
			rc = lines_emit(l, i, 0, err);
			sbuf_reset(&s->line);
			s->have_line = 0;
			if (rc)
				return rc;
		}
	}
	return 0;
}

void docker_lines_release(struct docker_lines *l)
{
	for (int i = 0; i < 3; i++)
		sbuf_release(&l->st[i].line);
}

/* ---- JSON lines ---- */

void docker_jsonl_init(struct docker_jsonl *j, size_t max, docker_jsonl_fn on_line, void *ud)
{
	memset(j, 0, sizeof(*j));
	j->max = max ? max : DOCKER_LINE_MAX_DEFAULT;
	j->on_line = on_line;
	j->ud = ud;
}

static int jsonl_emit(struct docker_jsonl *j, const char *line, size_t len, struct st_error *err)
{
	size_t i;

	while (len > 0 && (line[len - 1] == '\r' || isspace((unsigned char)line[len - 1])))
		len--;
	for (i = 0; i < len && isspace((unsigned char)line[i]); i++)
		;
	if (i == len)
		return 0;
	return j->on_line(j->ud, line + i, len - i, err);
}

int docker_jsonl_feed(struct docker_jsonl *j, const void *data, size_t len, struct st_error *err)
{
	const char *p = data;
	int rc;

	while (len > 0) {
		const char *nl = memchr(p, '\n', len);
		size_t take = nl ? (size_t)(nl - p) : len;

		if (j->buf.len + take > j->max)
			return st_error_set(err, ST_EPROTO, "progress line longer than %zu bytes", j->max);
		if (nl && j->buf.len == 0) {
			rc = jsonl_emit(j, p, take, err);
		} else {
			if (sbuf_append(&j->buf, p, take))
				return st_error_set(err, ST_ENOMEM, "out of memory reading progress");
			rc = 0;
			if (nl) {
				rc = jsonl_emit(j, j->buf.buf, j->buf.len, err);
				sbuf_reset(&j->buf);
			}
		}
		if (rc)
			return rc;
		p += take;
		len -= take;
		if (nl) {
			p++;
			len--;
		}
	}
	return 0;
}

int docker_jsonl_finish(struct docker_jsonl *j, struct st_error *err)
{
	int rc = 0;

	if (j->buf.len > 0)
		rc = jsonl_emit(j, j->buf.buf, j->buf.len, err);
	sbuf_reset(&j->buf);
	return rc;
}

void docker_jsonl_release(struct docker_jsonl *j)
{
	sbuf_release(&j->buf);
}

/* ---- build progress ---- */

static int set_owned(char **dst, const char *s, size_t len)
{
	char *copy = strndup(s, len);

	if (!copy)
		return ST_ENOMEM;
	free(*dst);
	*dst = copy;
	return 0;
}

static int build_line(void *ud, const char *line, size_t len, struct st_error *err)
{
	struct docker_build_parser *p = ud;
	json_t *o = NULL, *v, *detail;
	const char *text = NULL;
	int rc = 0;

	o = json_loadb(line, len, 0, NULL);
	if (!o || !json_is_object(o)) {
		/* line is len bytes, not NUL-terminated. */
		rc = st_error_set(err, ST_EPROTO, "cannot parse build output line '%.*s'",
				  (int)(len < 80 ? len : 80), line);
		goto out;
	}
	detail = json_object_get(o, "errorDetail");
	v = json_object_get(detail, "message");
	if (json_is_string(v) && json_string_length(v) > 0)
		text = json_string_value(v);
	else if (json_is_string(json_object_get(o, "error")))
		text = json_string_value(json_object_get(o, "error"));
	else if (detail)
		text = "unknown error";
	if (text && set_owned(&p->error, text, strlen(text))) {
		rc = st_error_set(err, ST_ENOMEM, "out of memory reading build output");
		goto out;
	}
	v = json_object_get(json_object_get(o, "aux"), "ID");
	if (json_is_string(v)) {
		if (set_owned(&p->image_id, json_string_value(v), json_string_length(v))) {
			rc = st_error_set(err, ST_ENOMEM, "out of memory reading build output");
			goto out;
		}
		p->id_from_aux = 1;
	}
	v = json_object_get(o, "stream");
	if (!json_is_string(v))
		v = json_object_get(o, "status");
	if (json_is_string(v)) {
		const char *s = json_string_value(v);
		static const char built[] = "Successfully built ";

		if (!p->id_from_aux && !strncmp(s, built, sizeof(built) - 1)) {
			const char *id = s + sizeof(built) - 1;
			size_t n = strcspn(id, " \r\n");

			if (n > 0 && set_owned(&p->image_id, id, n)) {
				rc = st_error_set(err, ST_ENOMEM, "out of memory reading build output");
				goto out;
			}
		}
		if (p->on_progress)
			rc = p->on_progress(p->ud, s);
		if (rc)
			st_error_set(err, ST_EABORTED, "build stopped by the progress callback");
	}
out:
	json_decref(o);
	return rc;
}

void docker_build_parser_init(struct docker_build_parser *p, docker_progress_fn on_progress, void *ud)
{
	memset(p, 0, sizeof(*p));
	docker_jsonl_init(&p->jl, 0, build_line, p);
	p->on_progress = on_progress;
	p->ud = ud;
}

int docker_build_parser_feed(struct docker_build_parser *p, const void *data, size_t len,
			     struct st_error *err)
{
	return docker_jsonl_feed(&p->jl, data, len, err);
}

int docker_build_parser_finish(struct docker_build_parser *p, struct st_error *err)
{
	int rc = docker_jsonl_finish(&p->jl, err);

	if (rc)
		return rc;
	if (p->error) {
		size_t n = strlen(p->error);

		/* The daemon's text often ends with a newline. */
		while (n > 0 && isspace((unsigned char)p->error[n - 1]))
			p->error[--n] = '\0';
		return st_error_set(err, ST_EFAILED, "image build failed: %s", p->error);
	}
	if (!p->image_id)
		return st_error_set(err, ST_EPROTO, "build output ended without an image id");
	return 0;
}

void docker_build_parser_release(struct docker_build_parser *p)
{
	docker_jsonl_release(&p->jl);
	free(p->image_id);
	free(p->error);
	p->image_id = NULL;
	p->error = NULL;
}

/* ---- error bodies ---- */

void docker_error_text(const char *body, size_t len, char *out, size_t size)
{
	json_t *o = NULL, *m;

	if (size == 0)
		return;
	out[0] = '\0';
	if (!body || len == 0)
		return;
	o = json_loadb(body, len, 0, NULL);
	m = json_object_get(o, "message");
	if (json_is_string(m) && json_string_length(m) > 0)
		text_one_line(out, size, json_string_value(m), json_string_length(m), 0);
	else
		text_one_line(out, size, body, len, TEXT_FIRST_LINE);
	json_decref(o);
}

int docker_status_code(long status)
{
	switch (status) {
	case 400: return ST_EUSAGE;
	case 404: return ST_ENOTFOUND;
	case 408:
	case 504: return ST_ETIMEOUT;
	case 409: return ST_ECONFLICT;
	default: return status >= 200 && status < 300 ? 0 : ST_ESERVICE;
	}
}

/* ---- hijacked response head ---- */

static const char *find_blank_line(const char *buf, size_t len)
{
	for (size_t i = 0; i + 3 < len; i++)
		if (buf[i] == '\r' && buf[i + 1] == '\n' && buf[i + 2] == '\r' && buf[i + 3] == '\n')
			return buf + i;
	return NULL;
}

int docker_http_head_parse(const char *buf, size_t len, int *status, size_t *head_len,
			   long long *content_length)
{
	static const char proto[] = "HTTP/1.";
	const char *end = find_blank_line(buf, len), *line, *eol;
	size_t cmp = len < sizeof(proto) - 1 ? len : sizeof(proto) - 1;
	int code;

	if (memcmp(buf, proto, cmp))
		return ST_EPROTO;
	if (!end)
		return 0;
	/* "HTTP/1.1 101 UPGRADED" */
	if (end - buf < 12 || buf[8] != ' ' || digits(buf + 9, 3, &code) ||
	    (end - buf > 12 && buf[12] != ' ' && buf[12] != '\r'))
		return ST_EPROTO;
	*status = code;
	*head_len = (size_t)(end - buf) + 4;
	*content_length = -1;
	line = memchr(buf, '\n', (size_t)(end - buf));
	while (line && line < end) {
		static const char cl[] = "content-length:";

		line++;
		eol = memchr(line, '\r', (size_t)(end + 2 - line));
		if (!eol)
			break;
		if ((size_t)(eol - line) > sizeof(cl) - 1 && !strncasecmp(line, cl, sizeof(cl) - 1)) {
			long long v = 0;
			const char *q = line + sizeof(cl) - 1;

			while (q < eol && (*q == ' ' || *q == '\t'))
				q++;
			if (q == eol)
				return ST_EPROTO;
			/* Checked before each step: v never passes 2^50, so it
			 * cannot overflow. */
			for (; q < eol && isdigit((unsigned char)*q); q++) {
				if (v > ((1LL << 50) - (*q - '0')) / 10)
					return ST_EPROTO;
				v = v * 10 + (*q - '0');
			}
			if (q != eol || v > (1LL << 50))
				return ST_EPROTO;
			*content_length = v;
		}
		line = memchr(eol, '\n', (size_t)(end + 2 - eol));
	}
	return 1;
}

/* ---- URL encoding ---- */

int docker_url_escape(struct sbuf *sb, const char *s, int path)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' ||
		    (path && (c == '/' || c == ':' || c == '@'))) {
			if (sbuf_append(sb, s, 1))
				return ST_ENOMEM;
		} else {
			char e[3] = { '%', hex[c >> 4], hex[c & 15] };

			if (sbuf_append(sb, e, 3))
				return ST_ENOMEM;
		}
	}
	return 0;
}

/* ---- API versions ---- */

int docker_api_version_parse(const char *s, int *out)
{
	char *end;
	long major, minor;

	if (!s || !isdigit((unsigned char)*s))
		return -1;
	major = strtol(s, &end, 10);
	if (*end != '.' || !isdigit((unsigned char)end[1]))
		return -1;
	minor = strtol(end + 1, &end, 10);
	if ((*end && *end != '.') || major > 99 || minor > 999)
		return -1;
	*out = (int)(major * 1000 + minor);
	return 0;
}

int docker_api_negotiate(const char *daemon_max, const char *daemon_min, const char *ours_min,
			 const char *ours_max, char *out, size_t size, struct st_error *err)
{
	int dmax, dmin = 0, omin, omax, v;

	if (docker_api_version_parse(daemon_max, &dmax))
		return st_error_set(err, ST_EPROTO, "docker reported an unreadable API version '%s'",
				    daemon_max ? daemon_max : "");
	if (daemon_min && docker_api_version_parse(daemon_min, &dmin))
		return st_error_set(err, ST_EPROTO, "docker reported an unreadable minimum API version '%s'",
				    daemon_min);
	if (docker_api_version_parse(ours_min, &omin) || docker_api_version_parse(ours_max, &omax))
		return st_error_set(err, ST_EUSAGE, "bad API version range '%s'..'%s'", ours_min, ours_max);
	v = dmax < omax ? dmax : omax;
	if (v < omin) {
		st_error_set(err, ST_ESERVICE, "docker speaks API %s, too old: spilttea-ops needs %s or newer",
			     daemon_max, ours_min);
		return st_error_hint(err, "upgrade the docker engine to 20.10 or newer");
	}
	if (v < dmin) {
		st_error_set(err, ST_ESERVICE,
			     "docker requires API %s or newer, spilttea-ops speaks up to %s", daemon_min,
			     ours_max);
		return st_error_hint(err, "update spilttea-ops, or use a docker engine that accepts API %s",
				     ours_max);
	}
	snprintf(out, size, "%d.%d", v / 1000, v % 1000);
	return 0;
}

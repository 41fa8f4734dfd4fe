/*
 * standin.c - the stand-in Spilt Tea backend and frontend of the sandbox
 * (scripts/sandbox). One static binary without dependencies, so its image is
 * this file plus busybox.
 *
 * usage:
 *   standin               serve HTTP; configuration from the environment
 *   standin probe [URL]   exit 0 when URL answers 2xx/3xx within 3 s; the
 *                         container HEALTHCHECK (busybox wget -T segfaults
 *                         on this platform). Without URL: this server's own
 *                         /health (backend) or / (frontend).
 *
 * environment:
 *   PORT                   port to listen on (required)
 *   HOST                   numeric address to listen on (default 127.0.0.1)
 *   STANDIN_ROLE           backend (default) or frontend
 *   DATABASE_HOST, DATABASE_PORT
 *                          backend: /health opens a TCP connection there and
 *                          answers 503 when it cannot; when unset, host and
 *                          port are taken from DATABASE_URL; when neither is
 *                          set there is no database check
 *   STANDIN_HEALTH_STATUS  /health answers this status with
 *                          {"status":"error",...} (any value but 200)
 *   STANDIN_EXIT_AT_START  print an error and exit with this code at start
 *   STANDIN_START_DELAY    seconds to wait before listening (slow start)
 *   STANDIN_VERSION        reported by GET /version (default "1")
 *   VITE_API_URL           frontend: shown on the index page
 *
 * endpoints: GET|HEAD /health, / , /version, /status/NNN (answers NNN);
 * anything else 404. Every response closes the connection.
 *
 * Access log, one line per request on stdout: nginx's "main" format plus the
 * latency in seconds, so the client IP is the first field:
 *   127.0.0.1 - - [27/Nov/2026:22:37:01 +0000] "GET /health HTTP/1.1" 200 15 "-" "curl/7.88.1" "-" rt=0.000412
 * Failures (database check, 5xx answers, bad configuration) go to stderr as
 *   2026-11-27T22:37:01Z error: database check failed: connect 127.0.0.1:55432: Connection refused
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define REQUEST_MAX 16384
#define CONN_MAX 128
#define IO_TIMEOUT_MS 5000
#define DB_TIMEOUT_MS 1000
#define PROBE_TIMEOUT_MS 3000

enum role { ROLE_BACKEND, ROLE_FRONTEND };

struct endpoint {
	int set;
	struct sockaddr_storage addr;
	socklen_t len;
	char text[80]; /* "host:port" for messages */
};

static struct {
	enum role role;
	int forced_status;       /* 0: none */
	struct endpoint db;
	const char *version;
	const char *api_url;
	char name[32];           /* "spilttea-backend" */
} cfg;

static volatile sig_atomic_t stop_signal;
static atomic_int active_conns;

struct request {
	char method[16];
	char target[2048];
	char version[16];
	char user_agent[512];
	char referer[512];
	char xff[512];
};

struct response {
	int status;
	const char *type;
	char body[2048];
};

struct conn {
	int fd;
	struct sockaddr_storage peer;
	double started;
};

static double now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Writes the whole buffer; a log line goes out in one write() so lines
 * from concurrent connections never interleave. */
static void write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		buf += n;
		len -= (size_t)n;
	}
}

static void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void log_error(const char *fmt, ...)
{
	char line[1024];
	struct tm tm;
	time_t t = time(NULL);
	size_t n;
	va_list ap;

	gmtime_r(&t, &tm);
	n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%SZ error: ", &tm);
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
	va_end(ap);
	n = strlen(line);
	line[n++] = '\n';
	write_all(STDERR_FILENO, line, n);
}

static void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void log_info(const char *fmt, ...)
{
	char line[1024];
	struct tm tm;
	time_t t = time(NULL);
	size_t n;
	va_list ap;

	gmtime_r(&t, &tm);
	n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%SZ ", &tm);
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
	va_end(ap);
	n = strlen(line);
	line[n++] = '\n';
	write_all(STDOUT_FILENO, line, n);
}

/* Copies src into dst for a quoted log field: '"', '\\' and bytes outside
 * printable ASCII become \xHH (as nginx does); empty becomes "-". */
static void log_escape(char *dst, size_t size, const char *src)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	if (!src || !*src) {
		snprintf(dst, size, "-");
		return;
	}
	for (; *src && o + 5 < size; src++) {
		unsigned char c = (unsigned char)*src;

		if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') {
			dst[o++] = '\\';
			dst[o++] = 'x';
			dst[o++] = hex[c >> 4];
			dst[o++] = hex[c & 15];
		} else {
			dst[o++] = (char)c;
		}
	}
	dst[o] = '\0';
}

static const char *reason_phrase(int status)
{
	switch (status) {
	case 200: return "OK";
	case 204: return "No Content";
	case 301: return "Moved Permanently";
	case 302: return "Found";
	case 304: return "Not Modified";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 413: return "Payload Too Large";
	case 429: return "Too Many Requests";
	case 500: return "Internal Server Error";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	default: return status < 400 ? "OK" : "Error";
	}
}

/* Parses a decimal integer in [min, max]; returns 0 or -1. */
static int parse_int(const char *text, long min, long max, long *out)
{
	char *end;
	long v;

	if (!text || !*text)
		return -1;
	errno = 0;
	v = strtol(text, &end, 10);
	if (errno || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

/* Fills ep from a numeric host ("localhost" means 127.0.0.1; IPv6 may be
 * bracketed) and a port. Returns 0 or -1. Names other than localhost are
 * refused: the image has no resolver. */
static int endpoint_set(struct endpoint *ep, const char *host, const char *port)
{
	char h[256], canon[INET6_ADDRSTRLEN];
	long p;
	size_t n = strlen(host);
	struct sockaddr_in *in4 = (struct sockaddr_in *)&ep->addr;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ep->addr;

	if (parse_int(port, 1, 65535, &p) < 0 || n == 0 || n >= sizeof(h))
		return -1;
	if (host[0] == '[' && host[n - 1] == ']') {
		memcpy(h, host + 1, n - 2);
		h[n - 2] = '\0';
	} else {
		memcpy(h, host, n + 1);
	}
	if (!strcmp(h, "localhost"))
		snprintf(h, sizeof(h), "127.0.0.1");
	memset(&ep->addr, 0, sizeof(ep->addr));
	if (inet_pton(AF_INET, h, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons((uint16_t)p);
		ep->len = sizeof(*in4);
		inet_ntop(AF_INET, &in4->sin_addr, canon, sizeof(canon));
		snprintf(ep->text, sizeof(ep->text), "%s:%ld", canon, p);
	} else if (inet_pton(AF_INET6, h, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)p);
		ep->len = sizeof(*in6);
		inet_ntop(AF_INET6, &in6->sin6_addr, canon, sizeof(canon));
		snprintf(ep->text, sizeof(ep->text), "[%s]:%ld", canon, p);
	} else {
		return -1;
	}
	ep->set = 1;
	return 0;
}

/* Splits "scheme://[user[:pw]@]host[:port][/path]" into host, port (default
 * default_port) and path ("/" when absent). Returns 0 or -1. */
static int url_split(const char *url, const char *default_port, char *host, size_t host_size,
		     char *port, size_t port_size, char *path, size_t path_size)
{
	const char *p = strstr(url, "://");
	const char *auth, *end, *at, *colon;
	size_t n;

	if (!p)
		return -1;
	auth = p + 3;
	end = auth + strcspn(auth, "/?#");
	at = NULL;
	for (p = auth; p < end; p++)
		if (*p == '@')
			at = p;
	if (at)
		auth = at + 1;
	if (*auth == '[') {
		const char *close = memchr(auth, ']', (size_t)(end - auth));

		if (!close)
			return -1;
		colon = close + 1 < end && close[1] == ':' ? close + 1 : NULL;
		n = (size_t)(close + 1 - auth);
	} else {
		colon = memchr(auth, ':', (size_t)(end - auth));
		n = (size_t)((colon ? colon : end) - auth);
	}
	if (n == 0 || n >= host_size)
		return -1;
	memcpy(host, auth, n);
	host[n] = '\0';
	if (colon) {
		n = (size_t)(end - colon - 1);
		if (n == 0 || n >= port_size)
			return -1;
		memcpy(port, colon + 1, n);
		port[n] = '\0';
	} else {
		snprintf(port, port_size, "%s", default_port);
	}
	snprintf(path, path_size, "%s", *end == '/' ? end : "/");
	return 0;
}

/* Connects to ep within timeout_ms. Returns the socket, or -1 with
 * errbuf saying why. */
static int connect_timeout(const struct endpoint *ep, int timeout_ms, char *errbuf, size_t size)
{
	int fd, rc, soerr = 0;
	socklen_t len = sizeof(soerr);
	struct pollfd pfd;

	fd = socket(ep->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		snprintf(errbuf, size, "socket: %s", strerror(errno));
		return -1;
	}
	rc = connect(fd, (const struct sockaddr *)&ep->addr, ep->len);
	if (rc < 0 && errno != EINPROGRESS) {
		snprintf(errbuf, size, "connect %s: %s", ep->text, strerror(errno));
		goto fail;
	}
	if (rc < 0) {
		pfd.fd = fd;
		pfd.events = POLLOUT;
		do
			rc = poll(&pfd, 1, timeout_ms);
		while (rc < 0 && errno == EINTR);
		if (rc == 0) {
			snprintf(errbuf, size, "connect %s: timed out after %d ms", ep->text, timeout_ms);
			goto fail;
		}
		if (rc < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0 || soerr) {
			snprintf(errbuf, size, "connect %s: %s", ep->text,
				 strerror(soerr ? soerr : errno));
			goto fail;
		}
	}
	if (fcntl(fd, F_SETFL, 0) < 0) {
		snprintf(errbuf, size, "fcntl: %s", strerror(errno));
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return -1;
}

static void set_io_timeout(int fd, int ms)
{
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* Copies the value of header name (case-insensitive) from the header block
 * into out; leaves out empty when absent. */
static void header_value(const char *headers, const char *name, char *out, size_t size)
{
	size_t nlen = strlen(name);
	const char *line = headers;

	out[0] = '\0';
	while (line && *line) {
		const char *eol = strstr(line, "\r\n");
		size_t len = eol ? (size_t)(eol - line) : strlen(line);

		if (len > nlen && !strncasecmp(line, name, nlen) && line[nlen] == ':') {
			const char *v = line + nlen + 1;
			size_t vlen = len - nlen - 1;

			while (vlen && (*v == ' ' || *v == '\t')) {
				v++;
				vlen--;
			}
			while (vlen && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
				vlen--;
			if (vlen >= size)
				vlen = size - 1;
			memcpy(out, v, vlen);
			out[vlen] = '\0';
			return;
		}
		line = eol ? eol + 2 : NULL;
	}
}

/* Reads the request head. Returns 0, or the status to answer (400, 408,
 * 413) when it cannot be read or parsed; -1 when the client went away
 * before sending anything. */
static int read_request(int fd, struct request *req)
{
	char buf[REQUEST_MAX + 1];
	size_t used = 0;
	char *head_end = NULL, *sp1, *sp2, *eol;

	memset(req, 0, sizeof(*req));
	while (!head_end) {
		ssize_t n;

		if (used == REQUEST_MAX)
			return 413;
		n = recv(fd, buf + used, REQUEST_MAX - used, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return used ? 408 : -1;
		if (n <= 0)
			return used ? 400 : -1;
		used += (size_t)n;
		buf[used] = '\0';
		head_end = strstr(buf, "\r\n\r\n");
	}
	head_end[2] = '\0';
	eol = strstr(buf, "\r\n");
	*eol = '\0';
	sp1 = strchr(buf, ' ');
	sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
	if (!sp1 || !sp2 || (size_t)(sp1 - buf) >= sizeof(req->method) ||
	    (size_t)(sp2 - sp1 - 1) >= sizeof(req->target) ||
	    strlen(sp2 + 1) >= sizeof(req->version) || strncmp(sp2 + 1, "HTTP/", 5)) {
		/* Keep what can be logged of a malformed request line. */
		snprintf(req->method, sizeof(req->method), "-");
		return 400;
	}
	memcpy(req->method, buf, (size_t)(sp1 - buf));
	memcpy(req->target, sp1 + 1, (size_t)(sp2 - sp1 - 1));
	memcpy(req->version, sp2 + 1, strlen(sp2 + 1));
	header_value(eol + 2, "User-Agent", req->user_agent, sizeof(req->user_agent));
	header_value(eol + 2, "Referer", req->referer, sizeof(req->referer));
	header_value(eol + 2, "X-Forwarded-For", req->xff, sizeof(req->xff));
	return 0;
}

static void respond_json(struct response *res, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void respond_json(struct response *res, int status, const char *fmt, ...)
{
	va_list ap;

	res->status = status;
	res->type = "application/json";
	va_start(ap, fmt);
	vsnprintf(res->body, sizeof(res->body), fmt, ap);
	va_end(ap);
}

/* Escapes text for a JSON string (quotes, backslashes, control bytes). */
static void json_escape(char *dst, size_t size, const char *src)
{
	size_t o = 0;

	for (; *src && o + 7 < size; src++) {
		unsigned char c = (unsigned char)*src;

		if (c == '"' || c == '\\') {
			dst[o++] = '\\';
			dst[o++] = (char)c;
		} else if (c < 0x20) {
			o += (size_t)snprintf(dst + o, size - o, "\\u%04x", c);
		} else {
			dst[o++] = (char)c;
		}
	}
	dst[o] = '\0';
}

static void handle_health(struct response *res)
{
	char why[256], esc[300];
	int fd;

	if (cfg.forced_status) {
		log_error("health forced to %d by STANDIN_HEALTH_STATUS", cfg.forced_status);
		respond_json(res, cfg.forced_status,
			     "{\"status\":\"error\",\"error\":\"forced by STANDIN_HEALTH_STATUS\"}");
		return;
	}
	if (cfg.role == ROLE_BACKEND && cfg.db.set) {
		fd = connect_timeout(&cfg.db, DB_TIMEOUT_MS, why, sizeof(why));
		if (fd < 0) {
			log_error("database check failed: %s", why);
			json_escape(esc, sizeof(esc), why);
			respond_json(res, 503,
				     "{\"status\":\"error\",\"database\":\"unreachable\",\"error\":\"%s\"}",
				     esc);
			return;
		}
		close(fd);
	}
	respond_json(res, 200, "{\"status\":\"ok\"}");
}

static void handle_index(struct response *res)
{
	char api[512];

	if (cfg.role == ROLE_BACKEND) {
		respond_json(res, 200, "{\"service\":\"%s\",\"version\":\"%s\"}", cfg.name,
			     cfg.version);
		return;
	}
	log_escape(api, sizeof(api), cfg.api_url);
	res->status = 200;
	res->type = "text/html; charset=utf-8";
	snprintf(res->body, sizeof(res->body),
		 "<!doctype html>\n"
		 "<html lang=\"en\">\n"
		 "<head><meta charset=\"utf-8\"><title>Spilt Tea</title></head>\n"
		 "<body>\n"
		 "<h1>Spilt Tea</h1>\n"
		 "<p>Stand-in frontend %s, API at <code>%s</code>.</p>\n"
		 "</body>\n"
		 "</html>\n",
		 cfg.version, api);
}

static void route(const struct request *req, struct response *res)
{
	char path[sizeof(req->target)];
	long code;

	snprintf(path, sizeof(path), "%.*s", (int)strcspn(req->target, "?#"), req->target);
	if (strcmp(req->method, "GET") && strcmp(req->method, "HEAD")) {
		respond_json(res, 405, "{\"statusCode\":405,\"message\":\"method not allowed\"}");
	} else if (!strcmp(path, "/health")) {
		handle_health(res);
	} else if (!strcmp(path, "/") || (cfg.role == ROLE_FRONTEND && !strcmp(path, "/index.html"))) {
		handle_index(res);
	} else if (!strcmp(path, "/version")) {
		respond_json(res, 200, "{\"version\":\"%s\"}", cfg.version);
	} else if (!strncmp(path, "/status/", 8) && parse_int(path + 8, 200, 599, &code) == 0) {
		if (code >= 500)
			log_error("request for %s failed with %ld as asked", path, code);
		respond_json(res, (int)code, "{\"statusCode\":%ld}", code);
	} else {
		respond_json(res, 404, "{\"statusCode\":404,\"message\":\"not found\"}");
	}
}

static void *serve_conn(void *arg)
{
	struct conn *c = arg;
	struct request req;
	struct response res = { .status = 0 };
	char head[256], ip[INET6_ADDRSTRLEN] = "-", stamp[40], line[4096];
	char target[1100], ua[600], ref[600], xff[600];
	struct tm tm;
	time_t t;
	size_t body_len;
	int rc, head_only;

	set_io_timeout(c->fd, IO_TIMEOUT_MS);
	if (c->peer.ss_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)&c->peer)->sin_addr, ip, sizeof(ip));
	else if (c->peer.ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&c->peer)->sin6_addr, ip, sizeof(ip));

	rc = read_request(c->fd, &req);
	if (rc < 0)
		goto out;
	if (rc > 0)
		respond_json(&res, rc, "{\"statusCode\":%d,\"message\":\"%s\"}", rc, reason_phrase(rc));
	else
		route(&req, &res);

	head_only = !strcmp(req.method, "HEAD");
	body_len = strlen(res.body);
	snprintf(head, sizeof(head),
		 "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
		 "Connection: close\r\n\r\n",
		 res.status, reason_phrase(res.status), res.type, body_len);
	write_all(c->fd, head, strlen(head));
	if (!head_only)
		write_all(c->fd, res.body, body_len);
	shutdown(c->fd, SHUT_WR);

	t = time(NULL);
	gmtime_r(&t, &tm);
	strftime(stamp, sizeof(stamp), "%d/%b/%Y:%H:%M:%S +0000", &tm);
	log_escape(target, sizeof(target), req.target);
	log_escape(ua, sizeof(ua), req.user_agent);
	log_escape(ref, sizeof(ref), req.referer);
	log_escape(xff, sizeof(xff), req.xff);
	snprintf(line, sizeof(line),
		 "%s - - [%s] \"%s %s %s\" %d %zu \"%s\" \"%s\" \"%s\" rt=%.6f\n",
		 ip, stamp, req.method[0] ? req.method : "-", target,
		 req.version[0] ? req.version : "-", res.status, head_only ? 0 : body_len,
		 ref, ua, xff, now_mono() - c->started);
	write_all(STDOUT_FILENO, line, strlen(line));
out:
	close(c->fd);
	free(c);
	atomic_fetch_sub(&active_conns, 1);
	return NULL;
}

static void on_signal(int sig)
{
	stop_signal = sig;
}

/* Reads the environment into cfg. Returns 0, or 2 after logging what is
 * wrong. */
static int load_config(struct endpoint *listen_ep)
{
	const char *role = getenv("STANDIN_ROLE");
	const char *host = getenv("HOST");
	const char *port = getenv("PORT");
	const char *forced = getenv("STANDIN_HEALTH_STATUS");
	const char *db_host = getenv("DATABASE_HOST");
	const char *db_port = getenv("DATABASE_PORT");
	const char *db_url = getenv("DATABASE_URL");
	char uh[256], up[16], upath[8];
	long v;

	if (!role || !*role || !strcmp(role, "backend")) {
		cfg.role = ROLE_BACKEND;
	} else if (!strcmp(role, "frontend")) {
		cfg.role = ROLE_FRONTEND;
	} else {
		log_error("STANDIN_ROLE '%s' is neither backend nor frontend", role);
		return 2;
	}
	snprintf(cfg.name, sizeof(cfg.name), "spilttea-%s",
		 cfg.role == ROLE_BACKEND ? "backend" : "frontend");
	cfg.version = getenv("STANDIN_VERSION") && *getenv("STANDIN_VERSION") ?
		getenv("STANDIN_VERSION") : "1";
	cfg.api_url = getenv("VITE_API_URL");
	if (!host || !*host)
		host = "127.0.0.1";
	if (!port || endpoint_set(listen_ep, host, port) < 0) {
		log_error("cannot listen on HOST '%s' PORT '%s': need a numeric address and a port 1-65535",
			  host, port ? port : "(unset)");
		return 2;
	}
	if (forced && *forced) {
		if (parse_int(forced, 100, 599, &v) < 0) {
			log_error("STANDIN_HEALTH_STATUS '%s' is not an HTTP status", forced);
			return 2;
		}
		cfg.forced_status = v == 200 ? 0 : (int)v;
	}
	if (cfg.role == ROLE_BACKEND && db_host && *db_host) {
		if (endpoint_set(&cfg.db, db_host, db_port && *db_port ? db_port : "5432") < 0) {
			log_error("DATABASE_HOST '%s' DATABASE_PORT '%s' is not a numeric address and port",
				  db_host, db_port ? db_port : "");
			return 2;
		}
	} else if (cfg.role == ROLE_BACKEND && db_url && *db_url) {
		if (url_split(db_url, "5432", uh, sizeof(uh), up, sizeof(up), upath,
			      sizeof(upath)) < 0 || endpoint_set(&cfg.db, uh, up) < 0) {
			/* The URL holds a password: never log it. */
			log_error("DATABASE_URL has no numeric host and port");
			return 2;
		}
	}
	return 0;
}

static int serve(void)
{
	struct endpoint ep = { .set = 0 };
	struct sigaction sa;
	const char *exit_at_start = getenv("STANDIN_EXIT_AT_START");
	const char *delay = getenv("STANDIN_START_DELAY");
	pthread_attr_t attr;
	long v;
	int fd = -1, one = 1, rc;

	if (exit_at_start && *exit_at_start) {
		if (parse_int(exit_at_start, 0, 255, &v) < 0) {
			log_error("STANDIN_EXIT_AT_START '%s' is not an exit code 0-255", exit_at_start);
			return 2;
		}
		log_error("exiting at start with code %ld as STANDIN_EXIT_AT_START asks", v);
		return (int)v;
	}
	rc = load_config(&ep);
	if (rc)
		return rc;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal; /* no SA_RESTART: accept() must return on SIGTERM */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (delay && *delay) {
		struct timespec ts;

		if (parse_int(delay, 0, 3600, &v) < 0) {
			log_error("STANDIN_START_DELAY '%s' is not a number of seconds 0-3600", delay);
			return 2;
		}
		log_info("%s waiting %ld s before listening (STANDIN_START_DELAY)", cfg.name, v);
		ts.tv_sec = v;
		ts.tv_nsec = 0;
		while (!stop_signal && nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
	}

	fd = socket(ep.addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&ep.addr, ep.len) < 0 || listen(fd, 128) < 0) {
		log_error("cannot listen on %s: %s", ep.text, strerror(errno));
		if (fd >= 0)
			close(fd);
		return 1;
	}
	log_info("%s %s listening on %s%s%s", cfg.name, cfg.version, ep.text,
		 cfg.db.set ? ", database " : "", cfg.db.set ? cfg.db.text : "");

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	while (!stop_signal) {
		struct conn *c;
		socklen_t plen;
		pthread_t tid;
		int cfd;

		c = calloc(1, sizeof(*c));
		if (!c) {
			log_error("out of memory");
			sleep(1);
			continue;
		}
		plen = sizeof(c->peer);
		cfd = accept4(fd, (struct sockaddr *)&c->peer, &plen, SOCK_CLOEXEC);
		if (cfd < 0) {
			if (errno != EINTR && errno != ECONNABORTED)
				log_error("accept: %s", strerror(errno));
			free(c);
			continue;
		}
		c->fd = cfd;
		c->started = now_mono();
		if (atomic_fetch_add(&active_conns, 1) >= CONN_MAX) {
			/* Shed load rather than grow without bound. */
			atomic_fetch_sub(&active_conns, 1);
			log_error("too many connections (%d), closing one from a client", CONN_MAX);
			close(cfd);
			free(c);
			continue;
		}
		if (pthread_create(&tid, &attr, serve_conn, c) != 0) {
			log_error("cannot start a thread for a connection");
			atomic_fetch_sub(&active_conns, 1);
			close(cfd);
			free(c);
		}
	}
	pthread_attr_destroy(&attr);
	close(fd);
	log_info("%s stopping on signal %d", cfg.name, (int)stop_signal);
	return 0;
}

/* The HEALTHCHECK: GET url, print the status line and the start of the body
 * (Docker keeps it in the health log), exit 0 on 2xx/3xx, 1 otherwise. */
static int probe(const char *url_arg)
{
	char url[512], host[256], port[16], path[256], why[256], req[1024], buf[1024];
	struct endpoint ep = { .set = 0 };
	const char *role = getenv("STANDIN_ROLE");
	size_t used = 0;
	double deadline;
	int fd, status = 0;
	char *sp;

	if (url_arg) {
		snprintf(url, sizeof(url), "%s", url_arg);
	} else {
		const char *h = getenv("HOST"), *p = getenv("PORT");

		snprintf(url, sizeof(url), "http://%s:%s%s", h && *h ? h : "127.0.0.1",
			 p && *p ? p : "80", role && !strcmp(role, "frontend") ? "/" : "/health");
	}
	if (strncmp(url, "http://", 7) ||
	    url_split(url, "80", host, sizeof(host), port, sizeof(port), path, sizeof(path)) < 0 ||
	    endpoint_set(&ep, host, port) < 0) {
		printf("probe: '%s' is not http://NUMERIC-HOST[:PORT]/PATH\n", url);
		return 2;
	}
	deadline = now_mono() + PROBE_TIMEOUT_MS / 1000.0;
	fd = connect_timeout(&ep, PROBE_TIMEOUT_MS, why, sizeof(why));
	if (fd < 0) {
		printf("probe %s: %s\n", url, why);
		return 1;
	}
	set_io_timeout(fd, PROBE_TIMEOUT_MS);
	snprintf(req, sizeof(req),
		 "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: standin-probe\r\nConnection: close\r\n\r\n",
		 path, ep.text);
	write_all(fd, req, strlen(req));
	while (used < sizeof(buf) - 1 && now_mono() < deadline) {
		ssize_t n = recv(fd, buf + used, sizeof(buf) - 1 - used, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		used += (size_t)n;
	}
	close(fd);
	buf[used] = '\0';
	if (strncmp(buf, "HTTP/1.", 7) || !(sp = strchr(buf, ' ')) || (status = atoi(sp + 1)) < 100) {
		printf("probe %s: no HTTP answer within %d ms\n", url, PROBE_TIMEOUT_MS);
		return 1;
	}
	sp = strstr(buf, "\r\n\r\n");
	printf("probe %s: %d %.200s\n", url, status, sp ? sp + 4 : "");
	return status >= 200 && status < 400 ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "probe"))
		return probe(argc >= 3 ? argv[2] : NULL);
	if (argc >= 2) {
		fprintf(stderr, "usage: standin [probe [URL]]\n");
		return 2;
	}
	return serve();
}

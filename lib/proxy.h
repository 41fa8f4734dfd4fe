/*
 * proxy.h - the reverse proxy (nginx) in front of a service: its upstream
 * file, validating and reloading it inside the proxy container, and
 * knowing when the switch took and the old workers are gone (runbook
 * "Zero-Downtime Deployment Strategy": switch traffic, monitor, complete
 * cutover).
 *
 * The upstream block lives in its own file (proxy.upstream_file), rendered
 * from proxy.upstream_template with {host}, {port} and {container}, and
 * included by nginx. It is replaced atomically (lib/atomic_file.h), so the
 * proxy must see the file's DIRECTORY (a bind-mounted single file keeps
 * pointing at the replaced inode). Everything inside the proxy container
 * runs through Docker exec (never the docker CLI):
 *
 *   nginx -t -q          validate the whole configuration with the new file
 *   nginx -s reload      graceful: new workers take new connections, old
 *                        ones finish their requests and exit
 *
 * proxy_switch() does write, validate, reload and confirm as one unit: when
 * any part fails it puts the previous file back and reloads again, so the
 * proxy keeps serving where it did. It confirms by requesting a path
 * through the proxy until it answers 2xx, and, when the proxy names the
 * upstream that answered in an X-Upstream response header (the sandbox's
 * does: `add_header X-Upstream $upstream_addr always`), until that names
 * the new address.
 *
 * A reload starts new workers before the old ones stop taking connections:
 * for a moment both answer, so the switch is confirmed only once every
 * worker that ran before the reload has stopped taking connections (its
 * title turns "worker process is shutting down"). Old workers still finish
 * the requests they hold, to the old upstream: proxy_wait_drained() waits
 * until none is left, so the old container can then be stopped without
 * cutting a request.
 */
#ifndef ST_PROXY_H
#define ST_PROXY_H

#include <signal.h>
#include <stddef.h>

#include "config.h"
#include "docker.h"
#include "error.h"
#include "sbuf.h"

/* ---- pure helpers (unit-tested) ----------------------------------------- */

/* Renders tmpl, replacing {host}, {port} and {container} (container may
 * be NULL: ""), after a one-line "# " header comment (header may be NULL:
 * none). Any other {word} is left as it is (nginx uses braces for blocks).
 * Appends to out. 0, ST_EUSAGE when tmpl has no {port}, ST_ENOMEM. */
int proxy_render_upstream(const char *tmpl, const char *header, const char *host, long port,
			  const char *container, struct sbuf *out, struct st_error *err);

/* The port an upstream file (text) routes to, read back through tmpl: the
 * text around {port} in the rendered template (host and container filled
 * in) must match, comments ("#" lines) aside. ST_ENOTFOUND when text does
 * not follow tmpl (edited by hand, another template), ST_EPROTO when the
 * port is not a number in 1-65535. */
int proxy_upstream_port(const char *tmpl, const char *host, const char *container, const char *text,
			long *port, struct st_error *err);

/* url with its port replaced ("http://127.0.0.1:3001/health", 3002 ->
 * "http://127.0.0.1:3002/health"; a URL without a port gets one).
 * *out: caller frees. ST_EUSAGE for a URL that is not http(s)://host... */
int proxy_url_with_port(const char *url, long port, char **out, struct st_error *err);

/* The path and query of url ("/health" for "http://h:1/health"; "/" when
 * it has none). Returns a pointer into url (borrowed). */
const char *proxy_url_path(const char *url);

#define PROXY_WORKERS_MAX 64

/* The nginx workers in the proxy container. */
struct proxy_workers {
	long active[PROXY_WORKERS_MAX];  /* pids of workers taking connections */
	size_t nactive;
	size_t draining;                 /* workers "shutting down" (finishing requests) */
};

/* Parses "PID TITLE" lines (the process titles of the proxy container,
 * one per line, as proxy_workers() lists them) into w. Lines that are not
 * nginx workers are ignored; more than PROXY_WORKERS_MAX active ones are
 * counted as the last. */
void proxy_parse_workers(const char *text, size_t len, struct proxy_workers *w);

/* Requests counted in proxy access log lines. */
struct proxy_log_stats {
	size_t requests;          /* lines with a request and a status */
	size_t errors;            /* of them, status >= 500 */
	size_t to_upstream;       /* lines whose "upstream=ADDR" is the one asked for */
	size_t errors_upstream;   /* of them, status >= 500 */
};

/* Adds one access log line in nginx's main/combined format (the status is
 * the number after the quoted request) to st. upstream (may be NULL)
 * selects the lines with "upstream=UPSTREAM" for the *_upstream counts.
 * Lines that are not access lines are ignored. */
void proxy_log_count(const char *line, size_t len, const char *upstream, struct proxy_log_stats *st);

/* ---- against the proxy container ---------------------------------------- */

/* Reads cfg->upstream_file (at most 1 MiB). *text: caller frees;
 * ST_ENOTFOUND when the file does not exist, ST_EIO. */
int proxy_read_upstream(const struct config_proxy *cfg, char **text, struct st_error *err);

/* The port the upstream file routes to now (proxy_upstream_port over the
 * file). ST_ENOTFOUND when the file is missing or not of the template. */
int proxy_current_port(const struct config_proxy *cfg, long *port, struct st_error *err);

/* `nginx -t -q` in the proxy container: 0 when the configuration is valid,
 * else ST_EFAILED with nginx's first error line ("proxy 'x' rejects its
 * configuration: ..."). */
int proxy_validate(struct docker_client *d, const struct config_proxy *cfg, struct st_error *err);

/* `nginx -s reload` in the proxy container. ST_EFAILED with its output when
 * it exits non-zero; ST_ECONFLICT when the proxy container is not running. */
int proxy_reload(struct docker_client *d, const struct config_proxy *cfg, struct st_error *err);

/* One request through the proxy. */
struct proxy_answer {
	long status;              /* 0: no answer */
	char upstream[128];       /* X-Upstream header, "" when absent */
	char error[256];          /* why there was no answer, "" */
	double latency;           /* seconds */
};

/* GET cfg->url + path within timeout (a new connection every time). 0
 * when an answer arrived (any status), else ST_ESERVICE / ST_ETIMEOUT with
 * ans->error set. */
int proxy_request(const struct config_proxy *cfg, const char *path, double timeout,
		  struct proxy_answer *ans, struct st_error *err);

struct proxy_switch_result {
	long previous_port;       /* where the file routed before, 0 when unknown */
	int had_previous;         /* the file existed */
	double t_written;         /* monotonic: file replaced */
	double t_reloaded;        /* monotonic: reloaded, and the old workers stopped taking
				     connections */
	double t_confirmed;       /* monotonic: the proxy answered from the new upstream */
	int confirmed_by_header;  /* X-Upstream named the new address */
	long last_status;         /* of the last confirmation request */
	char last_upstream[128];  /* X-Upstream of the last confirmation request */
};

/*
 * Routes the proxy to host:port (cfg->upstream_host, port) as described
 * above: render, write atomically (0644), validate, reload, then request
 * path through the proxy (every 50 ms, up to timeout seconds), once the
 * workers from before the reload stopped taking connections, until it
 * answers 2xx from the new upstream (container_wait with a probe of its
 * own). On any failure the previous file is put back (or the new one
 * removed when there was none) and the proxy reloaded again, and the
 * error says what failed: ST_EFAILED (nginx -t or reload refused, or 5
 * answers in a row that X-Upstream names as the new upstream's were not
 * 2xx), ST_ETIMEOUT (no 2xx from the new upstream in time), ST_EABORTED
 * (*cancel set while confirming; cancel may be NULL), ST_EIO,
 * ST_ESERVICE. res may be NULL. container is only for {container} and the
 * header comment.
 */
int proxy_switch(struct docker_client *d, const struct config_proxy *cfg, long port,
		 const char *container, const char *path, double timeout, volatile sig_atomic_t *cancel,
		 struct proxy_switch_result *res, struct st_error *err);

/* Lists the proxy's nginx workers now (through exec: /proc, no ps needed). */
int proxy_workers(struct docker_client *d, const struct config_proxy *cfg, struct proxy_workers *w,
		  struct st_error *err);

/* Waits until no nginx worker in the proxy container is shutting down, up
 * to timeout seconds (polling every 100 ms). *left (may be NULL) gets the
 * number still draining at the end. ST_ETIMEOUT when some still are. */
int proxy_wait_drained(struct docker_client *d, const struct config_proxy *cfg, double timeout,
		       size_t *left, struct st_error *err);

#endif

/*
 * container.h - what a container is doing, and waiting until it serves.
 *
 * Built on docker.h (inspect, logs) and http.h (health URL probes). Used by
 * the docker.* actions, deploy (health gate after replacing a container),
 * diagnose and the start-after-db runbook.
 *
 * Readiness, in order of preference:
 *   1. the container has a Docker healthcheck: its health state decides
 *      (healthy: ready; unhealthy: fails at once with the output of the last
 *      health probes; starting: keep waiting); with url_and_health the
 *      health URL must answer healthy as well (a deploy's gate);
 *   2. else a health URL is given: GET it; ready on a 2xx or 3xx answer
 *      whose body, when a 2xx body is a JSON object with a "status" key,
 *      says "ok";
 *   3. else: running for at least CONTAINER_SETTLE_S without a restart.
 * Whatever the method, a container that exits, is not running, is paused,
 * or restarts (restart policy) while we wait fails at once with its exit
 * code, OOMKilled and its last CONTAINER_LOG_LINES log lines.
 *
 * container_wait() is the one wait-until-healthy loop: the docker.wait
 * action, deploy's health gate, the proxy's confirmation of a switch
 * (a probe of its own and no container), migrate up and incident recreate
 * all use it.
 */
#ifndef ST_CONTAINER_H
#define ST_CONTAINER_H

#include <signal.h>
#include <stddef.h>
#include <jansson.h>

#include "docker.h"
#include "error.h"

#define CONTAINER_SETTLE_S 2.0
#define CONTAINER_LOG_LINES 20
/* Bytes of a health probe's body or a health log's output kept in reports. */
#define CONTAINER_EXCERPT_MAX 512

/* A summary of GET /containers/{name}/json. Strings are "" when unknown. */
struct container_state {
	int exists;
	char name[128];          /* without the leading '/' */
	char id[72];
	char status[16];         /* created, running, paused, restarting, removing, exited, dead */
	int running;
	int paused;
	int restarting;
	int oom_killed;
	int exit_code;           /* State.ExitCode: of the last run (0 while the first runs) */
	int pid;
	int restart_count;       /* restarts done by the restart policy */
	int has_healthcheck;     /* a healthcheck is configured (and not NONE) */
	char health[16];         /* "none" without healthcheck, else starting/healthy/unhealthy */
	int failing_streak;
	char started_at[40];     /* as Docker writes it; "" when never started */
	double started;          /* epoch seconds, 0 when never started */
	char finished_at[40];
	double finished;
	char image[256];         /* Config.Image, the name it was created from */
	char image_id[80];       /* "sha256:..." */
	char error[256];         /* State.Error, e.g. why it could not start */
};

/* Fills *out from an inspect document (pure; unit-tested). exists = 1.
 * 0, or ST_EPROTO when inspect is not an object with a State object. */
int container_state_parse(const json_t *inspect, struct container_state *out, struct st_error *err);

/* Inspects name. A container that does not exist is no error: 0 with
 * out->exists = 0 and out->status "missing". Other failures as docker.h. */
int container_state(struct docker_client *d, const char *name, double timeout,
		    struct container_state *out, struct st_error *err);

/* The summary as a JSON object {container, exists, running, status, health,
 * restart_count, exit_code, oom_killed, image, image_id, started_at,
 * finished_at, uptime_s, pid, error} (the docker.inspect result). now is
 * epoch seconds for uptime_s. Caller frees; NULL on ENOMEM. */
json_t *container_state_json(const struct container_state *s, double now);

/* How the last State.Health.Log entries read: "exit 1: <output>" of the
 * newest ones, newest last, at most size bytes; "" when there is no log. */
void container_health_log(const json_t *inspect, int entries, char *buf, size_t size);

/* Whether a health response counts as healthy: status 200 and, when body
 * is a JSON object with a string "status", that status is "ok" (any case).
 * Pure. */
int container_health_response_ok(long status, const char *body, size_t len);

enum container_ready_method {
	CONTAINER_READY_NONE = 0,
	CONTAINER_READY_DOCKER_HEALTH,
	CONTAINER_READY_HTTP,
	CONTAINER_READY_RUNNING,
};

/* "none", "docker-health", "http", "running". */
const char *container_ready_method_name(enum container_ready_method m);

struct container_wait_report {
	enum container_ready_method method; /* what decided (or was being waited for) */
	int ready;
	double waited_s;
	int checks;                         /* inspections made */
	int probes;                         /* health URL requests (or probe calls) made */
	int bad_in_row;                     /* unhealthy answers in a row at the end */
	/* What the last probe got, one line: "GET URL answered 500" or
	 * "GET URL: no response"; a probe of one's own writes its own. */
	char answer[640];
	struct container_state state;       /* the last one */
	/* The health URL probe, when one was made (url as http_result.url
	 * shows it: no user:password, no query): */
	char url[512];
	long http_status;                   /* 0: no response */
	char body[CONTAINER_EXCERPT_MAX];   /* start of the body, or why no response came */
	/* Docker health: output of the last health probes. */
	char health_log[1024];
	/* A container that stopped: its last log lines, newest last. */
	char logs[4096];
	/* One line saying why it is not ready ("" once ready). */
	char reason[768];
};

/* What one probe made of its answer. */
enum container_probe_verdict {
	CONTAINER_PROBE_OK,         /* healthy */
	CONTAINER_PROBE_NO_ANSWER,  /* nothing came (yet): still starting; ends a streak of bad answers */
	CONTAINER_PROBE_BAD,        /* an answer that says unhealthy: counts toward fail_after */
};

/* A probe of one's own (container_wait_opts.probe): ask within timeout_s,
 * fill r->answer (and http_status, body, url as far as they apply). */
typedef enum container_probe_verdict (*container_probe_fn)(void *ud, double timeout_s,
							   struct container_wait_report *r);

struct container_wait_opts {
	const char *health_url;         /* GET it (top of this file); NULL or "": none */
	container_probe_fn probe;       /* instead of health_url: e.g. a request through a proxy */
	void *probe_ud;
	double timeout_s;               /* give up after it (ST_ETIMEOUT); <= 0: one look */
	double interval_s;              /* between looks; <= 0: 1 */
	volatile sig_atomic_t *cancel;  /* ST_EABORTED once set (looked at between looks); may be NULL */
	/* > 0: fail (ST_EFAILED) after that many unhealthy answers in a row
	 * (HTTP >= 400, or a JSON status that is not ok): an app that answers
	 * but is broken fails fast instead of at the timeout. No answer at all
	 * ends the streak (it is still starting). */
	int fail_after;
	/* With a Docker healthcheck, the URL or probe must answer healthy too
	 * (and is probed while Docker says "starting", so fail_after counts
	 * from the start). Default: Docker's health alone decides. */
	int url_and_health;
};

/*
 * Waits until container is ready (see the top of this file) as o says.
 * container may be NULL: then only the URL or probe decides (nothing is
 * inspected; one of them is required, else ST_EUSAGE). report (may be
 * NULL) is filled in every case. Errors:
 *   ST_ENOTFOUND  no such container
 *   ST_EFAILED    it exited, stopped, restarted, or Docker says unhealthy;
 *                 or o->fail_after unhealthy answers in a row ("GET URL
 *                 answered 500 3 times in a row (after 1.5s): BODY")
 *   ST_ETIMEOUT   not ready in time; the message says what was last seen
 *   ST_EABORTED   *o->cancel became non-zero
 *   other docker.h errors when the daemon cannot be asked.
 */
int container_wait(struct docker_client *d, const char *container, const struct container_wait_opts *o,
		   struct container_wait_report *report, struct st_error *err);

/*
 * container_wait() with a health URL, no fail_after, Docker health alone
 * deciding when there is a healthcheck: waits until container is ready,
 * checking every interval_s (> 0; 1 when <= 0) for at most timeout_s.
 * report (may be NULL) is filled in every case. Errors:
 *   ST_ENOTFOUND  no such container
 *   ST_EFAILED    it exited, stopped, restarted, or Docker says unhealthy;
 *                 the message carries the exit code / health output, and the
 *                 hint the command to see its logs
 *   ST_ETIMEOUT   not ready in time; the message says what was last seen:
 *                 the probe URL, HTTP status and body excerpt, or the health
 *                 state and its probe output
 *   ST_EABORTED   *cancel became non-zero (cancel may be NULL)
 *   other docker.h errors when the daemon cannot be asked.
 */
int container_wait_ready_cancel(struct docker_client *d, const char *container,
				const char *health_url, double timeout_s, double interval_s,
				volatile sig_atomic_t *cancel, struct container_wait_report *report,
				struct st_error *err);

/* The same without interruption. */
int container_wait_ready(struct docker_client *d, const char *container, const char *health_url,
			 double timeout_s, double interval_s, struct container_wait_report *report,
			 struct st_error *err);

/* The last n log lines of container (both streams), newest last, joined
 * by '\n' into buf (each line cut to 300 bytes; older lines dropped when
 * buf is full). 0, or a docker.h error. */
int container_log_tail(struct docker_client *d, const char *container, int n, double timeout,
		       char *buf, size_t size, struct st_error *err);

#endif

/*
 * docker.h - Docker Engine API client over the daemon's Unix socket (libcurl).
 *
 * Endpoint: the host given to docker_client_new() (configuration), else
 * $DOCKER_HOST, else unix:///var/run/docker.sock; only unix:// is supported.
 * The API version is negotiated with GET /version on first use (the lower of
 * the daemon's and DOCKER_API_MAX, at least DOCKER_API_MIN) and every path is
 * versioned ("/v1.41/containers/...").
 *
 * Threads: a client may be used from any number of threads at once. Every
 * request runs on its own libcurl easy handle and connection (a Unix socket
 * connect costs microseconds); the only shared mutable state, the negotiated
 * version, sits behind a mutex. Set timeouts before sharing the client.
 *
 * Timeouts: every call is bounded. Calls taking `double timeout` read it as:
 * > 0 seconds; DOCKER_TIMEOUT_DEFAULT (0) the client's request timeout
 * (30 s unless set); DOCKER_TIMEOUT_NONE (< 0) no overall limit. Streaming
 * calls (exec, logs, build) carry their timeout in their options; there 0
 * means the client's stream timeout (none unless set). A missing or refused
 * socket fails at once, whatever the timeout.
 *
 * Stalls: a stream also has an idle timeout (idle_timeout in its options):
 * when the daemon sends nothing (and, for uploads and stdin, takes
 * nothing) for that long, the call fails with ST_ETIMEOUT "... stalled: no
 * data from docker for Ns" and a hint naming the setting to raise. 0 picks
 * the default: log reads (not followed) the client's request timeout;
 * exec and build the client's stream idle timeout
 * (docker_client_set_stream_idle; none unless set). < 0: none.
 *
 * Errors: 0 or a negative ST_E* code, with err filled: message names what
 * failed ("cannot inspect container 'web': No such container: web") and
 * carries the daemon's own text (the "message" field of its JSON error body,
 * or the body itself); err->http_status holds the HTTP status whenever the
 * daemon answered. 404 -> ST_ENOTFOUND, 409 -> ST_ECONFLICT, 400 ->
 * ST_EUSAGE, other HTTP errors and connection failures -> ST_ESERVICE (with a
 * hint: docker group / root on EACCES, "is dockerd running?" when there is no
 * daemon), deadlines -> ST_ETIMEOUT, a callback that stopped -> ST_EABORTED.
 *
 * Interrupts: with docker_client_set_cancel(), every call (requests, exec
 * and log streams, waits on a silent daemon or command) checks the flag at
 * least every 100 ms (requests over libcurl: at its progress interval, at
 * most a second) and stops with ST_EABORTED "interrupted".
 *
 * Memory: json_t results are new references (caller json_decref()s them);
 * strings returned through char ** are malloc'ed (caller free()s them).
 */
#ifndef ST_DOCKER_H
#define ST_DOCKER_H

#include <jansson.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "docker_stats.h"
#include "docker_stream.h"
#include "error.h"

#define DOCKER_DEFAULT_HOST "unix:///var/run/docker.sock"
/* Oldest API spoken (Docker 20.10), and newest: the endpoints and fields used
 * here keep their meaning up to 1.45 (Docker 26); 1.41 is what CI runs. */
#define DOCKER_API_MIN "1.41"
#define DOCKER_API_MAX "1.45"

#define DOCKER_TIMEOUT_DEFAULT 0.0
#define DOCKER_TIMEOUT_NONE (-1.0)

struct docker_client;

/* ---- client ---- */

/* Creates a client for host ("unix:///path"; NULL or "" for $DOCKER_HOST or
 * the default). Does not connect. ST_ECONFIG for a host that is not
 * unix:// (or a path too long for a socket). *out: caller frees with
 * docker_client_free(). */
int docker_client_new(const char *host, struct docker_client **out, struct st_error *err);
void docker_client_free(struct docker_client *c);

/* request: default for plain calls (> 0, default 30 s); stream: default for
 * exec/logs/build streams (<= 0 none, the default). Call before sharing. */
void docker_client_set_timeouts(struct docker_client *c, double request, double stream);

/* Default idle timeout of exec and build streams (<= 0 none, the
 * default), and the configuration key that sets it, named in the hint of
 * a stall (NULL: none). key is borrowed: a string literal. Call before
 * sharing. */
void docker_client_set_stream_idle(struct docker_client *c, double idle, const char *key);

/* Flag (set by a signal handler) that interrupts every call of c while it
 * is non-zero; NULL: calls are not interruptible. Borrowed: it must
 * outlive its use. Set it from the thread that uses the client (a run
 * sets it per step: NULL while undoing). */
void docker_client_set_cancel(struct docker_client *c, volatile sig_atomic_t *cancel);

/* Fail fast (diagnose, services_set_fail_fast): once a request could not
 * connect or timed out before any HTTP answer, every later request of c
 * fails at once with ST_EUNREACHABLE, "docker unreachable: <that error>",
 * instead of waiting out its own timeout again. Off by default (a deploy
 * that waits for a restarting daemon must retry). Setting it either way
 * forgets what was learnt. Thread-safe. */
void docker_client_set_fail_fast(struct docker_client *c, int on);

/* "unix:///var/run/docker.sock"; borrowed, lives as long as c. */
const char *docker_client_host(const struct docker_client *c);

/* Negotiates now if not done yet and copies the version in use ("1.41")
 * into version (may be NULL). Every call negotiates by itself; this is for
 * reporting and for failing early. */
int docker_client_negotiate(struct docker_client *c, char *version, size_t size, struct st_error *err);

/*
 * Any endpoint: method, path without version ("/containers/x/json", escaped), query
 * without '?' (already URL-encoded; NULL for none), body sent as JSON (NULL
 * for none). *status gets the HTTP status (may be NULL); *out the parsed
 * JSON answer, or NULL for an empty body (out may be NULL: answer ignored).
 * HTTP errors (>= 400) fail as described above; 1xx-3xx are not errors.
 */
int docker_request(struct docker_client *c, const char *method, const char *path, const char *query,
		   const json_t *body, double timeout, long *status, json_t **out, struct st_error *err);

/* ---- system ---- */

/* GET /_ping: the daemon answers "OK". */
int docker_ping(struct docker_client *c, double timeout, struct st_error *err);
/* GET /version, /info (DockerRootDir, cgroup version...), /system/df. *out: caller decrefs. */
int docker_version(struct docker_client *c, double timeout, json_t **out, struct st_error *err);
int docker_info(struct docker_client *c, double timeout, json_t **out, struct st_error *err);
int docker_system_df(struct docker_client *c, double timeout, json_t **out, struct st_error *err);

/* Picks the API version to speak from a GET /version answer (ApiVersion,
 * MinAPIVersion) with docker_api_negotiate and this client's range. Pure.
 * Writes "1.NN" into buf. 0, ST_EPROTO or ST_ESERVICE. */
int docker_version_negotiate(const json_t *version, char *buf, size_t size, struct st_error *err);

/* ---- containers ---- */

/* Filters of a container list; NULL arrays are not applied. Docker matches
 * "name" as an unanchored regular expression on the name with its leading
 * '/': use "^/web$" for exactly "web". Labels are "key" or "key=value";
 * statuses "created", "running", "exited"... */
struct docker_container_filter {
	int all;                        /* also containers that are not running */
	const char *const *names;       /* NULL-terminated */
	const char *const *labels;      /* NULL-terminated */
	const char *const *statuses;    /* NULL-terminated */
};

/* GET /containers/json. f may be NULL (running containers). *out: a JSON
 * array of container summaries (Id, Names, Image, State, Status, Labels...),
 * caller decrefs. */
int docker_container_list(struct docker_client *c, const struct docker_container_filter *f,
			  double timeout, json_t **out, struct st_error *err);

/* GET /containers/{name}/json. *out: caller decrefs. */
int docker_container_inspect(struct docker_client *c, const char *name, double timeout, json_t **out,
			     struct st_error *err);

/* POST /containers/create?name=NAME with config as the body (Image, Cmd,
 * Env, Labels, HostConfig{NetworkMode:"host", Init:true, ...}). name may be
 * NULL. *id: the new container's id, caller frees. 409 if the name exists. */
int docker_container_create(struct docker_client *c, const char *name, const json_t *config,
			    double timeout, char **id, struct st_error *err);

/* Start: already running (304) is success. */
int docker_container_start(struct docker_client *c, const char *name, double timeout,
			   struct st_error *err);

/* Stop / restart with grace seconds before SIGKILL (< 0: the container's
 * own StopTimeout). Already stopped (304) is success. The HTTP deadline is
 * timeout plus grace (plus 10 s, Docker's default StopTimeout, when grace
 * < 0), so the grace period never counts against it. */
int docker_container_stop(struct docker_client *c, const char *name, int grace, double timeout,
			  struct st_error *err);
int docker_container_restart(struct docker_client *c, const char *name, int grace, double timeout,
			     struct st_error *err);

/* DELETE /containers/{name}: force kills a running one first; volumes also
 * removes its anonymous volumes. */
int docker_container_remove(struct docker_client *c, const char *name, int force, int volumes,
			    double timeout, struct st_error *err);

int docker_container_rename(struct docker_client *c, const char *name, const char *new_name,
			    double timeout, struct st_error *err);

/* POST /containers/{name}/wait until condition ("not-running", the default
 * for NULL; "next-exit"; "removed") and gives the exit status. timeout is the
 * longest wait (DOCKER_TIMEOUT_NONE: forever). */
int docker_container_wait(struct docker_client *c, const char *name, const char *condition,
			  double timeout, int *exit_status, struct st_error *err);

/* One stats sample (stream=false&one-shot=true). It waits for the daemon's
 * next 1-second collection tick, and precpu_stats is empty: see
 * docker_stats.h for CPU% from two samples and memory in use. Issue calls
 * for many containers from several threads to pay the tick once.
 * *out: caller decrefs. */
int docker_container_stats(struct docker_client *c, const char *name, double timeout, json_t **out,
			   struct st_error *err);

/* ---- logs ---- */

#define DOCKER_LOGS_TAIL_ALL 0
#define DOCKER_LOGS_TAIL_NONE (-1)

struct docker_logs_opts {
	int no_stdout;          /* leave stdout out (both streams by default) */
	int no_stderr;          /* leave stderr out */
	double since;           /* epoch seconds, 0: from the start */
	double until;           /* epoch seconds, 0: up to now */
	int tail;               /* > 0 the last N entries; DOCKER_LOGS_TAIL_ALL; _NONE (with follow: new ones only) */
	int timestamps;         /* ask for and parse timestamps */
	int follow;             /* keep streaming until the container stops or on_line says stop */
	size_t max_line;        /* longer lines come in pieces (0: 1 MiB) */
	double timeout;         /* whole call; 0: the client's stream timeout */
	double idle_timeout;    /* stalled after this long without data; 0: the client's
				   request timeout (none with follow); < 0: none */
};

/* GET /containers/{name}/logs, demultiplexed and reassembled into lines
 * (see docker_stream.h) as they arrive; memory is bounded by max_line. o
 * may be NULL (all, both streams, no timestamps). Containers with a TTY
 * have no framing; handled. on_line returning non-zero stops the stream:
 * ST_EABORTED, or on_line's own negative code when it set err. */
int docker_container_logs(struct docker_client *c, const char *name, const struct docker_logs_opts *o,
			  docker_line_fn on_line, void *ud, struct st_error *err);

/* ---- exec ---- */

/* Output of an exec as it arrives, in pieces of any size (not lines).
 * Return 0 to go on, non-zero to stop (the call fails with ST_EABORTED;
 * the process is not killed: it gets EPIPE on its next write). */
typedef int (*docker_output_fn)(void *ud, const char *data, size_t len);

/* Fills buf with up to cap bytes; returns the count, 0 at end of input, or
 * a negative ST_E* code with err filled. */
typedef ssize_t (*docker_read_fn)(void *ud, void *buf, size_t cap, struct st_error *err);

struct docker_exec_opts {
	const char *const *argv;     /* NULL-terminated, required */
	const char *const *env;      /* "NAME=value", NULL-terminated, may be NULL */
	const char *user;            /* "postgres", "1000:1000"; NULL: the container's */
	const char *workdir;         /* NULL: the container's */
	docker_output_fn on_stdout;  /* NULL: discarded */
	docker_output_fn on_stderr;  /* NULL: discarded */
	void *ud;                    /* for on_stdout / on_stderr */
	/*
	 * Standard input, read until it returns 0 and streamed to the process
	 * while its output is read, over the hijacked connection. EOF is
	 * signalled by closing our write side. If the process exits before
	 * reading it all, writing stops quietly (EPIPE, no SIGPIPE) and
	 * stdin_complete stays 0. If stdin_read fails, the connection is
	 * dropped and the call fails; the process then sees end of input
	 * too, so a consumer that commits at EOF (psql) must be guarded by
	 * the caller (ON_ERROR_STOP, a final marker, a scratch database).
	 */
	docker_read_fn stdin_read;   /* NULL: no stdin */
	void *stdin_ud;
	double timeout;              /* whole run; 0: the client's stream timeout */
	double idle_timeout;         /* stalled after this long with no output and no stdin
					taken; 0: the client's stream idle timeout; < 0: none */
};

struct docker_exec_result {
	int exit_code;               /* the process's exit status (128+N: killed by signal N) */
	uint64_t stdout_bytes;
	uint64_t stderr_bytes;
	uint64_t stdin_bytes;        /* handed to the daemon */
	int stdin_complete;          /* stdin_read reached its end and all of it was sent */
};

/*
 * Runs argv in a running container (POST /containers/{name}/exec, then
 * /exec/{id}/start with Detach:false, Tty:false), demultiplexes its output
 * into on_stdout/on_stderr as it arrives (bounded memory), and reads the
 * exit code from GET /exec/{id}/json. Returns 0 when the process ran,
 * whatever its exit code (in res); a container that is not running gives
 * ST_ECONFLICT. res may be NULL.
 */
int docker_exec(struct docker_client *c, const char *container, const struct docker_exec_opts *o,
		struct docker_exec_result *res, struct st_error *err);

/* docker_exec() without stdin, with the client's stream timeout. env, user
 * may be NULL. *exit_code gets the process's exit status. */
int docker_exec_run(struct docker_client *c, const char *container, const char *const *argv,
		    const char *const *env, const char *user, docker_output_fn on_stdout,
		    docker_output_fn on_stderr, void *ud, int *exit_code, struct st_error *err);

/* Building blocks. docker_exec_create: *id caller frees (attach_stdin: also
 * AttachStdin). docker_exec_inspect: *out caller decrefs. */
int docker_exec_create(struct docker_client *c, const char *container, const struct docker_exec_opts *o,
		       int attach_stdin, char **id, struct st_error *err);
int docker_exec_inspect(struct docker_client *c, const char *id, double timeout, json_t **out,
			struct st_error *err);

/* From an exec inspect answer: 1 with *code set once the process has ended
 * (Running false and an integer ExitCode), 0 while it runs or when the
 * answer does not say. Pure. */
int docker_exec_exit_parse(const json_t *info, int *code);

/* ---- images ---- */

/* GET /images/json; reference filters by "repo" or "repo:tag" (NULL: all).
 * *out: caller decrefs. */
int docker_image_list(struct docker_client *c, int all, const char *reference, double timeout,
		      json_t **out, struct st_error *err);
int docker_image_inspect(struct docker_client *c, const char *name, double timeout, json_t **out,
			 struct st_error *err);
/* POST /images/{name}/tag?repo=REPO&tag=TAG (tag NULL: "latest"). */
int docker_image_tag(struct docker_client *c, const char *name, const char *repo, const char *tag,
		     double timeout, struct st_error *err);
/* DELETE /images/{name}. force removes it even when containers use it. */
int docker_image_remove(struct docker_client *c, const char *name, int force, double timeout,
			struct st_error *err);

struct docker_build_opts {
	const char *const *tags;        /* "name:tag", NULL-terminated; may be NULL */
	const char *dockerfile;         /* path inside the context; NULL: "Dockerfile" */
	const char *const *build_args;  /* "NAME=value", NULL-terminated; may be NULL */
	const char *const *labels;      /* "key=value", NULL-terminated; may be NULL */
	const char *network_mode;       /* NULL: "host" (no other network is allowed here) */
	int no_cache;
	int pull;                       /* try to pull newer base images (there is no registry here) */
	docker_progress_fn on_progress; /* build output text as it comes, may be NULL */
	void *ud;
	double timeout;                 /* whole build; 0: the client's stream timeout */
	double idle_timeout;            /* stalled after this long with no progress either way;
					   0: the client's stream idle timeout; < 0: none */
};

/*
 * POST /build?t=...&networkmode=host&rm=1&forcerm=1 with the tar context
 * streamed as the request body from read (never whole in memory), progress
 * streamed to o->on_progress. A build that fails still answers 200: its
 * final error line becomes ST_EFAILED with the daemon's text
 * (http_status 200). *image_id: "sha256:...", caller frees.
 */
int docker_image_build(struct docker_client *c, const struct docker_build_opts *o, docker_read_fn read,
		       void *read_ud, char **image_id, struct st_error *err);

/* Pushes bytes of the context: 0, or a negative ST_E* code with err filled.
 * Same shape as tar_write_fn, so a struct tar_writer can write into it.
 * With len 0 it writes nothing and only answers whether to go on: a
 * producer that waits on its own input asks it now and then, and stops on
 * ST_EABORTED (the client's cancel flag, or the request gave up). */
typedef int (*docker_write_fn)(void *wud, const void *data, size_t len, struct st_error *err);
/* Produces the whole context by calling write(wud, ...) and returns 0, or a
 * negative ST_E* code with err filled (the build is then aborted, never run
 * on a partial context). */
typedef int (*docker_produce_fn)(void *ud, docker_write_fn write, void *wud, struct st_error *err);

/* docker_image_build() with a producer that pushes the context (a tar
 * writer walking a directory): it runs on its own thread, connected to the
 * request body by a socket pair, so memory stays bounded. A producer that
 * stops sending is waited for in 100 ms slices: the client's cancel flag
 * (docker_client_set_cancel) ends the call with ST_EABORTED. */
int docker_image_build_from(struct docker_client *c, const struct docker_build_opts *o,
			    docker_produce_fn produce, void *produce_ud, char **image_id,
			    struct st_error *err);

/* ---- volumes ---- */

/* GET /volumes ({"Volumes":[...],"Warnings":...}), GET /volumes/{name}. *out: caller decrefs. */
int docker_volume_list(struct docker_client *c, double timeout, json_t **out, struct st_error *err);
int docker_volume_inspect(struct docker_client *c, const char *name, double timeout, json_t **out,
			  struct st_error *err);
/* POST /volumes/create {"Name":name, "Labels":labels (may be NULL)}. */
int docker_volume_create(struct docker_client *c, const char *name, const json_t *labels,
			 double timeout, struct st_error *err);
int docker_volume_remove(struct docker_client *c, const char *name, int force, double timeout,
			 struct st_error *err);

#endif

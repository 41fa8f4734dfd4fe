/*
 * docker_internal.h - what docker.c, docker_exec.c and docker_image.c share:
 * the client record and one HTTP request over libcurl. Not for other modules.
 */
#ifndef ST_DOCKER_INTERNAL_H
#define ST_DOCKER_INTERNAL_H

#include <curl/curl.h>
#include <pthread.h>

#include "docker.h"
#include "failfast.h"
#include "sbuf.h"

#define DOCKER_DEFAULT_REQUEST_TIMEOUT 30.0
/* Connecting to a Unix socket either works at once or fails at once. */
#define DOCKER_CONNECT_TIMEOUT 5.0
/* Largest JSON answer buffered (image and container lists can be big). */
#define DOCKER_RESPONSE_MAX (64u * 1024 * 1024)
/* Largest error body kept for its message. */
#define DOCKER_ERROR_BODY_MAX (64u * 1024)

struct docker_client {
	char *host;             /* "unix:///var/run/docker.sock" (owned) */
	char *socket_path;      /* "/var/run/docker.sock" (owned) */
	double timeout;         /* request default, seconds */
	double stream_timeout;  /* stream default, <= 0 none */
	double stream_idle;     /* exec/build idle default, <= 0 none */
	const char *stream_idle_key; /* the setting behind stream_idle, or NULL */
	pthread_mutex_t lock;   /* guards api_version and version_timeout */
	char api_version[16];   /* "" until negotiated */
	/* Why the version call timed out, "" when it has not: a daemon that
	 * leaves /version unanswered is not asked again by this client (an
	 * evidence snapshot or diagnose would otherwise wait the timeout once
	 * per item). A refused or missing socket is still tried each time. */
	char version_timeout[ST_ERROR_MESSAGE_MAX];
	volatile sig_atomic_t *cancel; /* docker_client_set_cancel(); may be NULL */
	/* docker_client_set_fail_fast(); under lock: the first request that
	 * got no answer at all. */
	struct st_down down;
};

/* 1 when c's calls are to stop (docker_client_set_cancel). */
int docker_cancelled(const struct docker_client *c);

/* Longest wait in poll loops between checks of the cancel flag, ms. */
#define DOCKER_CANCEL_POLL_MS 100

/* Body bytes of a 2xx answer, for streaming calls. */
typedef int (*docker_data_fn)(void *ud, const char *data, size_t len, struct st_error *err);

struct docker_call {
	const char *method;      /* "GET", "POST", "DELETE" */
	struct sbuf path;        /* without version, escaped: "/containers/web/json" */
	struct sbuf query;       /* escaped, without '?' */
	int unversioned;         /* /_ping and /version work without a version */
	const char *body;        /* request body (borrowed) */
	size_t body_len;
	const char *content_type;
	docker_read_fn upload;   /* streamed request body (chunked) instead of body */
	void *upload_ud;
	double timeout;          /* resolved: > 0 seconds, else no limit */
	double idle;             /* resolved: > 0 seconds without data in either
				    direction is a stall, else no limit */
	const char *idle_key;    /* the setting to raise, for the hint; may be NULL */
	docker_data_fn on_data;  /* 2xx body goes here instead of resp */
	void *data_ud;
	/* results */
	long status;
	struct sbuf resp;        /* 2xx body without on_data; error body always */
	/* private to docker_call_run */
	CURL *h;
	struct st_error *err;
	int cb_rc;
	volatile sig_atomic_t *cancel;
	double last_activity;    /* time_monotonic() of the last bytes either way */
	curl_off_t last_dl, last_ul;
	int stalled;             /* the progress callback stopped it for idling */
};

void docker_call_init(struct docker_call *call, const char *method, double timeout);
void docker_call_release(struct docker_call *call);

/* Appends literal text and URL-escaped names to the path. */
int docker_call_path(struct docker_call *call, const char *literal, const char *name,
		     const char *literal2);
/* Appends key=value (value escaped) to the query. */
int docker_call_query(struct docker_call *call, const char *key, const char *value);

/* Performs the request. On failure err reads "cannot WHAT: reason". HTTP
 * statuses >= 400 are failures; the status is in call->status either way. */
int docker_call_run(struct docker_client *c, struct docker_call *call, const char *what,
		    struct st_error *err);

/* docker_call_run, then parses call->resp as JSON into *out (NULL for an
 * empty body; out may be NULL). */
int docker_call_json(struct docker_client *c, struct docker_call *call, const char *what,
		     json_t **out, struct st_error *err);

/* Request timeout in effect: see docker.h. stream selects the stream default. */
double docker_timeout(const struct docker_client *c, double timeout, int stream);

/* Idle timeout in effect: idle > 0 itself, < 0 none (0), else the
 * default dflt. */
double docker_idle(double idle, double dflt);

/* err for a stream that stalled: ST_ETIMEOUT "stalled: no data from docker
 * for Ns" with a hint naming key (may be NULL) and how to check the
 * daemon. */
int docker_stall_error(const struct docker_client *c, double idle, const char *key,
		       struct st_error *err);

/* The negotiated version into buf (negotiating first if needed). */
int docker_api_version(struct docker_client *c, char *buf, size_t size, struct st_error *err);

/* err for a failed connect to the socket, with a hint. */
int docker_connect_error(const char *path, int errnum, struct st_error *err);

/* err for an HTTP error answer: daemon text, http_status, ST_E* code. */
int docker_http_error(long status, const char *body, size_t len, struct st_error *err);

/* The id field of a create answer ({"Id":"..."}): caller frees. */
int docker_take_id(const json_t *answer, char **id, struct st_error *err);

#endif

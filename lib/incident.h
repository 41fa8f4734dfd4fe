/*
 * incident.h - the runbook's "Security Incident Response" and
 * "Post-Incident Checklist": incidents, evidence, investigation, mitigation
 * and the post-incident report.
 *
 * An incident is a directory STATE_DIR/incidents/ID/ (0700) holding
 * incident.json (id, title, who opened and closed it, when) and its
 * evidence; STATE_DIR/incidents/current names the open one. Every incident
 * command runs as a runbook through the step engine (engine.h) with the
 * incident id in engine_options.incident, so the journal holds its start,
 * steps and end like any run. Facts a run establishes (users locked, keys
 * deleted, where the evidence is) are added as journal records of a fourth
 * type, which readers that do not know it skip:
 *
 *   {"type":"incident","time":"...","incident":"INC-...","event":"users_locked",
 *    "user":"root","host":"db1","pid":4242,"detail":{...}}
 *
 * event: opened | closed | snapshot | investigated | users_locked |
 * sessions_flushed | flushall | secret_rotated | service_recreated |
 * service_stopped | top_ips | ip_blocked. The report (incident_report_*)
 * is rendered from these records alone, plus the evidence folders.
 *
 * Modules: incident.c (incidents, events), incident_snapshot.c (evidence),
 * incident_db.c (investigate, lock users), incident_rotate.c (secrets,
 * recreating containers), incident_net.c (top IPs, blocking),
 * incident_report.c, incident_actions.c (engine actions and runbooks).
 */
#ifndef ST_INCIDENT_H
#define ST_INCIDENT_H

#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <jansson.h>

#include "accesslog.h"
#include "error.h"
#include "sbuf.h"

struct st_config;
struct docker_client;
struct pg_conn;
struct redis_conn;
struct services;

#define INCIDENT_ID_MAX 40
#define INCIDENT_DIR "incidents"
#define INCIDENT_CURRENT "current"
#define INCIDENT_INFO "incident.json"
#define INCIDENT_LOCK "incident"

/* ---- incidents (incident.c) ---------------------------------------------- */

struct incident_info {
	char id[INCIDENT_ID_MAX];
	char title[256];
	double opened;             /* epoch seconds */
	double closed;             /* 0 while open */
	char opened_by[160];       /* collector text, see incident_collector() */
	char closed_by[160];
};

/* 1 when id can name an incident: a letter or digit, then letters, digits,
 * '.', '_' or '-', at most INCIDENT_ID_MAX - 1 bytes ("INC-20261127-223416",
 * "SEC-42"). */
int incident_id_valid(const char *id);

/* "INC-YYYYmmdd-HHMMSS" for epoch time t, in UTC. Returns buf. */
char *incident_id_format(double t, char *buf, size_t size);

/* Who runs this: "user@host", "alice(root)@host" under sudo. Returns buf. */
char *incident_collector(char *buf, size_t size);

/* Id of the open incident. ST_ENOTFOUND (hint: incident start) when none
 * is open; ST_EIO. */
int incident_current(const char *state_dir, char *id, size_t size, struct st_error *err);

/* The open incident, else the one opened last; ST_ENOTFOUND when there has
 * never been one. */
int incident_latest(const char *state_dir, char *id, size_t size, struct st_error *err);

/* STATE_DIR/incidents/ID[/sub] into buf (sub may be NULL). ST_EUSAGE when
 * it does not fit or id is not valid. */
int incident_path(const char *state_dir, const char *id, const char *sub, char *buf, size_t size,
		  struct st_error *err);

/* Opens an incident: id NULL for a new INC-... id (a suffix -2, -3...
 * when that directory exists), title may be NULL. Creates its directory
 * and incident.json, makes it current and journals an "opened" event.
 * ST_ECONFLICT when an incident is open already (the message names it) or
 * an explicit id was used before. out may be NULL. */
int incident_open(const char *state_dir, const char *id, const char *title,
		  struct incident_info *out, struct st_error *err);

/* incident.json of id. ST_ENOTFOUND, ST_EPROTO, ST_EIO. */
int incident_load(const char *state_dir, const char *id, struct incident_info *out,
		  struct st_error *err);

/* Closes the open incident id: records who and when, clears current and
 * journals a "closed" event. ST_ECONFLICT when id is not the open one. */
int incident_close(const char *state_dir, const char *id, struct incident_info *out,
		   struct st_error *err);

/* Appends an incident record (see above) to STATE_DIR/journal.jsonl.
 * detail may be NULL; it passes through the journal's redaction. */
int incident_event(const char *state_dir, const char *id, const char *event, const json_t *detail,
		   struct st_error *err);

/* ---- evidence (incident_snapshot.c) ------------------------------------- */

#define INCIDENT_SUMS "SHA256SUMS"
#define INCIDENT_COLLECTION "collection.json"

struct redact_set;

/*
 * Hides secrets in a Docker document (container, image, volume inspect,
 * lists, docker info) in place, before it becomes evidence that is handed
 * to people who must not get working credentials from it:
 *  - "Env" arrays: values of variables named like secrets, and passwords
 *    of URLs ("postgres://app:***@db/app"); the names stay on record;
 *  - command lines ("Cmd", "Entrypoint", "Args", "Test", "Shell" arrays,
 *    "Command" strings), word by word: the word after -a, --requirepass,
 *    --masterauth, --pass or an option named like a secret (--db-password),
 *    and the value of NAME=VALUE words named like a secret;
 *  - "Labels": values of labels named like secrets;
 *  - then every string anywhere, by value: the secret values found above
 *    (at least REDACT_MIN_TEXT bytes) and those in known (may be NULL; the
 *    configuration's passwords), as "***".
 * 0 or ST_ENOMEM.
 */
int incident_redact_inspect(json_t *doc, const struct redact_set *known, struct st_error *err);

struct incident_snapshot_request {
	const struct st_config *cfg;
	struct services *svc;          /* Docker, Postgres and Redis clients; borrowed */
	const char *state_dir;
	const char *id;                /* the incident */
	const char *tool_version;      /* "spilttea-ops 0.1.0 (git abc)" */
	int archive;                   /* also write evidence-....tar.gz beside the folder */
	const char *command_line;      /* for the backup lock; may be NULL */
	volatile sig_atomic_t *cancel; /* may be NULL */
};

struct incident_snapshot_result {
	char dir[PATH_MAX];            /* the evidence folder */
	char archive[PATH_MAX];        /* the tarball, "" without one */
	char archive_sha256[65];
	size_t files;                  /* listed in SHA256SUMS */
	unsigned long long bytes;
	size_t failed;                 /* artefacts that could not be collected */
	json_t *artefacts;             /* [{"what","path","bytes"} or {"what","error"}]; owned */
};

/*
 * Collects the evidence into a new folder STATE_DIR/incidents/ID/
 * evidence-YYYYmmddTHHMMSSZ/ (0700, files 0600). Nothing is stopped or
 * changed; reading comes first, so what the logs say is what was there:
 *
 *   docker/version.json info.json system-df.json
 *   containers/list.json, containers/NAME.json    inspect of every container
 *                           (in every "Env": secret-named values and URL
 *                           passwords as "***", so the folder can be handed on)
 *   images/list.json, images/ID.json              inspect of every image
 *   volumes/list.json, volumes/NAME.json          inspect of every volume
 *   logs/CONTAINER.log      full logs of each configured container, both
 *                           streams: "TIMESTAMP stdout|stderr LINE"
 *   redis/info.txt          INFO all
 *   database/backup_...sql.gz (+ .json)   pg_dump through lib/backup.h, kind full
 *   journal.jsonl           the journal so far
 *   collection.json         collector, UTC time, tool version, artefact list
 *   SHA256SUMS              `sha256sum -c SHA256SUMS` in the folder verifies
 *                           every file above
 *
 * An artefact that cannot be collected (a service down: likely during an
 * incident) is recorded with its error and the rest is still collected;
 * out->failed counts them, and the call still returns 0 once the folder
 * and its manifest are written. Errors: ST_EIO (the folder), ST_EABORTED
 * (cancelled), ST_ENOMEM. Release out with incident_snapshot_release().
 */
int incident_snapshot_take(const struct incident_snapshot_request *rq,
			   struct incident_snapshot_result *out, struct st_error *err);
void incident_snapshot_release(struct incident_snapshot_result *r);

/* Newest evidence folder of incident id into dir. ST_ENOTFOUND when none. */
int incident_snapshot_latest(const char *state_dir, const char *id, char *dir, size_t size,
			     struct st_error *err);

/* Writes dir/SHA256SUMS over every regular file below dir (sorted, paths
 * relative to dir, "HEX  PATH" lines), atomically, mode 0600. *files and
 * *bytes (may be NULL) count what it lists. */
int incident_sums_write(const char *dir, size_t *files, unsigned long long *bytes,
			struct st_error *err);

/* tar.gz of dir (entries named after dir's base name) written atomically
 * to path (0600); its SHA-256 into sha256 (65 bytes), and PATH.sha256 in
 * sha256sum format beside it. */
int incident_archive(const char *dir, const char *path, char sha256[65], struct st_error *err);

/* ---- investigation and accounts (incident_db.c) -------------------------- */

struct incident_investigate_opts {
	double window;                 /* failed logins within this many seconds (1 h) */
	long threshold;                /* more than this many failed logins (5) */
	double recent;                 /* new accounts, posts, reports within (24 h) */
	long limit;                    /* rows listed per section (20); counts are exact */
	double timeout;                /* per query, seconds */
};

/*
 * The runbook's three investigations plus reports, each with a total and
 * up to limit rows (times as UTC RFC 3339):
 *   {"brute_force":{"window":3600,"threshold":5,"count":N,
 *                   "rows":[{"id","email","failedLoginCount","lastFailedLogin","isActive"}]},
 *    "recent_accounts":{"window":86400,"count":N,"rows":[{"id","email","createdAt","isActive"}]},
 *    "recent_posts":{"window":86400,"count":N,"rows":[{"id","title","authorId","createdAt"}]},
 *    "reports":{"window":86400,"count":N,"rows":[{"id","postId","reporterId","reason","createdAt"}]}}
 * Brute force counts "failedLoginCount" per user (the runbook's query
 * groups "User" by email, so every group has one row and it finds
 * nothing). Prisma stores UTC in timestamp columns without a zone, so the
 * windows are taken against now() in UTC, whatever the session TimeZone.
 * A section whose query fails gets {"error": "..."} and counts in *failed;
 * the call fails only when nothing could be asked. *out: caller decrefs.
 */
int incident_investigate(struct pg_conn *pg, const struct incident_investigate_opts *o,
			 json_t **out, size_t *failed, struct st_error *err);

enum incident_id_kind {
	INCIDENT_ID_INT,               /* integer / serial */
	INCIDENT_ID_BIGINT,            /* bigint / bigserial */
	INCIDENT_ID_UUID,
	INCIDENT_ID_TEXT,              /* text / varchar: Prisma cuid() or nanoid */
};

/* Characters any user id may have, whatever its type: 1-64 of
 * [A-Za-z0-9_-]. The first, schema-free filter applied to arguments. */
int incident_user_id_syntax_ok(const char *id);

/* The type of "User".id in the current schema. ST_ENOTFOUND when there is
 * no such column, ST_EPROTO for a type not listed above. */
int incident_user_id_kind(struct pg_conn *pg, double timeout, enum incident_id_kind *kind,
			  struct st_error *err);

/* Checks every id against kind (integers in range without sign or leading
 * zeros; canonical UUIDs; cuid/nanoid characters) and rejects duplicates.
 * Pure. ST_EUSAGE naming the first bad id. */
int incident_user_ids_check(enum incident_id_kind kind, const char *const *ids, size_t n,
			    struct st_error *err);

/* Looks the ids up: {"found":[{"id","email","isActive"}],"missing":["..."]}.
 * ids must have passed incident_user_ids_check(). *out: caller decrefs. */
int incident_users_find(struct pg_conn *pg, enum incident_id_kind kind, const char *const *ids,
			size_t n, double timeout, json_t **out, struct st_error *err);

/* The runbook's mitigation in one transaction: password = 'LOCKED' and
 * "isActive" = false for exactly those ids (one array parameter). *locked:
 * the ids changed (caller decrefs); its size is the affected count. */
int incident_users_lock(struct pg_conn *pg, enum incident_id_kind kind, const char *const *ids,
			size_t n, double timeout, json_t **locked, struct st_error *err);

/* ---- secrets (incident_rotate.c) ---------------------------------------- */

#define INCIDENT_SECRET_BYTES 64
#define INCIDENT_SECRET_HEX (INCIDENT_SECRET_BYTES * 2 + 1)

/* 64 bytes from getrandom(2) as 128 lowercase hex digits + NUL into out
 * (INCIDENT_SECRET_HEX bytes). ST_EIO when the kernel gives no entropy. */
int incident_secret_generate(char out[INCIDENT_SECRET_HEX], struct st_error *err);

/* What rotating one variable touches. */
struct incident_rotate_plan {
	char **files;                  /* env files assigning the variable; owned */
	size_t nfiles;
	char **checked;                /* every env file looked at (existing or not); owned */
	size_t nchecked;
	char **services;               /* services whose env_file assigns it or whose container's
					  environment has it, in configuration order; owned */
	size_t nservices;
};

/* Looks for name in the configured env files (incident_env_files()) and
 * in the environment of every configured
 * container (inspect; a missing container is skipped). */
int incident_rotate_plan(const struct st_config *cfg, struct docker_client *docker,
			 const char *name, struct incident_rotate_plan *out, struct st_error *err);
void incident_rotate_plan_release(struct incident_rotate_plan *p);

/* Every env file of the configuration: env_files, the compose project's
 * (compose_env_file, else the .env beside compose_file), then
 * services.*.env_file; without duplicates. *out: NULL-terminated, caller
 * frees each and the array. */
int incident_env_files(const struct st_config *cfg, char ***out, size_t *n, struct st_error *err);

struct incident_recreate_opts {
	const char *container;
	const char *const *set_env;    /* "NAME=value" replaced or added, "NAME" removed;
					  NULL-terminated */
	const char *health_url;        /* probed for 200 after start; may be NULL */
	double timeout;                /* to become healthy, seconds */
	int stop_grace;                /* seconds before SIGKILL; < 0 the container's own */
	const char *old_logs;          /* write the old container's logs here (0600, both
					  streams, timestamps) before removing it; NULL: do not */
	volatile sig_atomic_t *cancel;
};

/*
 * Docker containers keep the environment they were created with: a restart
 * does not re-read an env file. So the container is recreated with the same
 * image, command, labels and host configuration and the changed variables
 * (the body deploy recreates a container with, compose_body_from_inspect,
 * with the whole environment written out): stop it, rename it
 * NAME-old-STAMP (like deploy's NAME-old-RELEASE), create and start NAME, wait until
 * it is ready (container_wait_ready: its healthcheck, else health_url), then
 * remove the old one (its logs saved to old_logs first: they would go with
 * it; when they cannot be saved the old container is kept, stopped, and
 * *info says "old_kept"). When the new container does not come up, it is
 * removed and the old one renamed back and started again; the error then
 * says so. The values in set_env never appear in messages. *info (may be
 * NULL) gets {"container","old_id","new_id","healthy_after"}; caller decrefs.
 */
int incident_recreate_container(struct docker_client *docker, const struct incident_recreate_opts *o,
				json_t **info, struct st_error *err);

/* ---- network (incident_net.c) -------------------------------------------- */

struct incident_top_ips_opts {
	const char *container;
	double since;                  /* epoch seconds; 0: all */
	size_t limit;                  /* addresses listed (20) */
	const struct accesslog_trust *trust;   /* X-Forwarded-For believed behind these */
	double timeout;
};

/* Requests per client address in container's logs (both streams), in
 * bounded memory (accesslog.h: IPv6 per /64; beyond the counter's capacity
 * "approximate" is true, "distinct" an estimate and each count at most
 * "overcount_max" above the true one):
 * {"container","since","lines":N,"requests":M,"distinct":K,"approximate":B,
 *  "top":[{"ip","requests","percent","overcount_max"}]}. *out: caller decrefs. */
int incident_top_ips(struct docker_client *docker, const struct incident_top_ips_opts *o,
		     json_t **out, struct st_error *err);

/* Checks ip for blocking: an address (accesslog_ip_parse, strict), not
 * unspecified, loopback, multicast or broadcast, not a trusted proxy
 * (blocking the proxy blocks everyone), and not the client address of
 * ssh_connection (the value of $SSH_CONNECTION or $SSH_CLIENT, "ADDR PORT
 * ..."; NULL or "" when there is none): the operator would lock themself
 * out. An IPv4-mapped IPv6 address (::ffff:203.0.113.7, how dual-stack
 * servers log IPv4 clients) is the IPv4 address it carries: an ip6tables
 * rule would never match its packets. Canonical text into canon
 * (ACCESSLOG_IP_MAX). Returns AF_INET / AF_INET6, or ST_EUSAGE. */
int incident_block_check(const char *ip, const struct accesslog_trust *trust, const char *ssh_connection,
			 char *canon, size_t size, struct st_error *err);

/* The firewall command for canon (family from incident_block_check):
 * {"iptables"|"ip6tables", "-I", chain, "-s", canon, "-j", "DROP", NULL}
 * in argv (8 slots, borrowed strings), and as one line in text. The rule is
 * inserted first (-I): the runbook's -A appends it after any ACCEPT rule,
 * where it may never match. chain is incident.firewall_chain: INPUT for
 * this host's own ports, DOCKER-USER for ports Docker publishes through its
 * bridge (forwarded packets never pass INPUT). */
void incident_block_argv(const char *canon, int family, const char *chain, const char *argv[8]);

/* $SSH_CONNECTION, else $SSH_CLIENT (both start with the client's address),
 * else NULL: what incident_block_check() must not block. Borrowed. */
const char *incident_ssh_connection(void);
char *incident_block_text(const char *canon, int family, const char *chain, char *text, size_t size);

/* Seconds an iptables run may take (it waits up to 5 s for the xtables
 * lock another program holds, -w 5). */
#define INCIDENT_FIREWALL_TIMEOUT 30

/* Runs the rule (fork/exec of iptables found in PATH, no shell, with -w 5),
 * unless the same rule is already there (-C), then *already = 1. Each run
 * is killed after timeout seconds (ST_ETIMEOUT); its stderr is read to the
 * end whatever its size. Needs root: ST_EABORTED otherwise; ST_ENOTFOUND
 * when iptables is not in PATH; ST_EFAILED with iptables' first line of
 * stderr when it fails. */
int incident_block_apply(const char *canon, int family, const char *chain, double timeout, int *already,
			 struct st_error *err);

/* ---- report (incident_report.c) ----------------------------------------- */

/* The runs and events of incident id in the journal at path, in file order:
 * [{"run","time","command","user","host","runbook","result","duration",
 *   "error","steps":[{"time","step","action","phase","result","duration","error"}],
 *   "events":[{"time","event","detail"}]}]
 * Events no run of the same process was open for (incident_open called
 * directly) form runs of their own with "command" null. A run without an
 * end record has "result" null (still running or killed). *out: caller decrefs. */
int incident_report_load(const char *journal_path, const char *id, json_t **out,
			 struct st_error *err);

/* The evidence folders of incident id, oldest first:
 * [{"dir","collected","collector","tool","files":[{"path","sha256"}],"failed":[...],
 *   "archive":{"path","sha256"}}] ("archive" when there is one). *out: caller
 * decrefs. */
int incident_evidence_load(const char *state_dir, const char *id, json_t **out,
			   struct st_error *err);

/* Renders the Markdown report: title, timeline (every run and its steps
 * with UTC times and results, and the facts they established), evidence
 * manifest, the runbook's response steps and post-incident checklist with
 * the items the journal proves ticked. Pure. */
int incident_report_render(const struct incident_info *info, const json_t *runs,
			   const json_t *evidence, double now, struct sbuf *out, struct st_error *err);

#endif

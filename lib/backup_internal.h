/*
 * backup_internal.h - what backup.c and backup_restore.c share: running
 * pg_dump / psql in the postgres container or locally, with the password in
 * the environment only, and collecting their stderr.
 */
#ifndef ST_BACKUP_INTERNAL_H
#define ST_BACKUP_INTERNAL_H

#include <signal.h>
#include <stdint.h>
#include <sys/types.h>

#include "docker.h"
#include "error.h"

struct st_config;

/* stderr of a tool: the start of it, and its first line that reports an
 * error, found line by line with bounded memory. */
#define PGTOOL_STDERR_KEEP 4096
#define PGTOOL_LINE_KEEP 512

struct pgtool_stderr {
	char text[PGTOOL_STDERR_KEEP];     /* first bytes, NUL-terminated */
	size_t text_len;
	char line[PGTOOL_LINE_KEEP];       /* current line prefix */
	size_t line_len;
	char first_line[PGTOOL_LINE_KEEP]; /* first non-empty line */
	char error_line[PGTOOL_LINE_KEEP]; /* first line with error:/ERROR:/FATAL:/PANIC: */
	uint64_t bytes;
};

void pgtool_stderr_feed(struct pgtool_stderr *s, const char *data, size_t len);
/* Ends the last unterminated line. */
void pgtool_stderr_finish(struct pgtool_stderr *s);

struct pgtool_run {
	const struct st_config *cfg;
	struct docker_client *docker;
	int via;                           /* enum config_backup_via */
	const char *pg_bin;                /* local: directory; NULL: search */
	const char *tool;                  /* "pg_dump" or "psql" */
	const char *const *args;           /* after the tool name, NULL-terminated */
	const char *database;
	const char *password;              /* NULL: none */
	docker_read_fn stdin_read;         /* NULL: no stdin */
	void *stdin_ud;
	docker_output_fn on_stdout;        /* NULL: discarded */
	void *ud;
	volatile sig_atomic_t *cancel;     /* checked between reads (local) */
	/* results */
	int exit_code;
	int stdin_complete;
	uint64_t stdout_bytes;
	struct pgtool_stderr err_out;
};

/* Runs the tool with the connection in PGHOST/PGPORT (local only), PGUSER,
 * PGDATABASE and PGPASSWORD in its environment and -w (never prompt). 0
 * when it ran (whatever its exit code, in r->exit_code); a negative code
 * when it could not be run or a callback stopped it. */
int pgtool_run(struct pgtool_run *r, struct st_error *err);

/* Why the tool failed, for a message: its first error line, else its
 * first line, else, when it died by a signal (exit 128+N: docker exec's
 * status when the container is killed under it), which one. Borrowed from
 * r, or buf. */
const char *pgtool_failure(const struct pgtool_run *r, char *buf, size_t size);

/* The directory of the newest /usr/lib/postgresql/N/bin holding tool, into
 * out. ST_ENOTFOUND with a hint when there is none. */
int pgtool_find_bin(const char *tool, char *out, size_t size, struct st_error *err);

/* Reads the configured postgres password (NULL when none is configured).
 * *out: free with config_secret_free(). */
int backup_read_password(const struct st_config *cfg, char **out, struct st_error *err);

#endif

/*
 * cmd.h - what every subcommand shares: the run context, the command
 * signature, exit codes and the few printing helpers.
 *
 * cmd/ parses arguments and prints; lib/ does the work. A command returns
 * an exit status (ST_EXIT_*), never calls exit(), and prints errors through
 * cmd_print_error() so every message has the same shape:
 *
 *     error: cannot restore 'backup_x.sql.gz': checksum mismatch
 *     hint: run 'spilttea-ops backup verify --all'
 */
#ifndef ST_CMD_H
#define ST_CMD_H

#include <signal.h>
#include <stdio.h>

#include "../lib/error.h"

/* Exit statuses of every command except health (which uses Nagios codes). */
enum {
	ST_EXIT_OK = 0,
	ST_EXIT_FAILED = 1,   /* a step failed */
	ST_EXIT_USAGE = 2,    /* usage or configuration error */
	ST_EXIT_ABORTED = 3,  /* precondition not met, confirmation refused */
	ST_EXIT_LOCKED = 4,   /* another run holds the lock */
};

/* Nagios plugin statuses, used by health. */
enum { NAGIOS_OK = 0, NAGIOS_WARNING = 1, NAGIOS_CRITICAL = 2, NAGIOS_UNKNOWN = 3 };

struct st_config;

struct ctx {
	const char *progname;      /* "spilttea-ops" */
	const char *command;       /* name of the running command */
	const char *config_path;   /* -c/--config, NULL for the search order */
	struct st_config *config;  /* loaded by main for commands flagged CMD_NEEDS_CONFIG; owned by main */
	const struct st_error *config_error; /* why config is NULL (CMD_REPORTS_CONFIG_ERROR); owned by main */
	const char *format;        /* --format value, NULL for the command's default */
	char *command_line;        /* whole command line for the journal; owned by main */
	int dry_run;
	int yes;
	int quiet;
	int verbose;               /* count of -v */
	int color_stdout;          /* colour allowed on stdout: a tty, no NO_COLOR, no --no-color */
	int color_stderr;
	int stdin_tty;
	int stdout_tty;
};

typedef int (*cmd_fn)(int argc, char **argv, struct ctx *ctx);

/* Command-table flags: setup main does once, centrally. */
enum {
	CMD_NEEDS_CONFIG = 1 << 0,
	/* With CMD_NEEDS_CONFIG: a configuration that does not load does not
	 * stop main; the command runs with config NULL and config_error set
	 * and reports it itself (health: in its output format, exit 3 UNKNOWN). */
	CMD_REPORTS_CONFIG_ERROR = 1 << 1,
};

/* Maps a lib/ error code to the exit status above. */
int cmd_exit_status(int st_code);

/* "error: ..." and "hint: ..." on stderr; with --quiet only the error line. */
void cmd_print_error(const struct ctx *ctx, const struct st_error *err);

/* Prints a usage error ("error: <msg>" + "hint: see 'spilttea-ops CMD --help'")
 * and returns ST_EXIT_USAGE. */
int cmd_usage_error(const struct ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Wraps s in an ANSI colour when allowed on that stream; returns a static or
 * thread-local buffer, valid until the next call with the same slot. */
enum cmd_color { COLOR_NONE, COLOR_RED, COLOR_GREEN, COLOR_YELLOW, COLOR_BOLD, COLOR_DIM };
const char *cmd_color_on(int allowed, enum cmd_color c);
const char *cmd_color_off(int allowed);

/* Interrupts (signals.c). Every command that changes something catches
 * SIGINT (Ctrl-C), SIGTERM (kill, systemd, cron's timeout) and SIGHUP (the
 * terminal or ssh session went away) the same way: the first sets the
 * flag, and the run stops after the step it is in, undoes what it did,
 * journals its end and releases its locks (exit 3); a second one kills the
 * process. cmd_signals_catch() installs the handler (no SA_RESTART, so
 * prompts and waits wake up), clears the flag and returns it for the
 * request's cancel pointer; cmd_signals_restore() puts the previous
 * handlers back. cmd_interrupted is that flag, for callbacks (backups
 * taken for migrate up or the checklist) that run under a catch. */
#define CMD_SIGNALS_N 3
struct cmd_signals {
	struct sigaction old[CMD_SIGNALS_N];
	int set[CMD_SIGNALS_N];
};
extern volatile sig_atomic_t cmd_interrupted;
volatile sig_atomic_t *cmd_signals_catch(struct cmd_signals *s);
void cmd_signals_restore(struct cmd_signals *s);

/* Commands (one file each in cmd/). */
int cmd_help(int argc, char **argv, struct ctx *ctx);
int cmd_config(int argc, char **argv, struct ctx *ctx);
int cmd_runbook(int argc, char **argv, struct ctx *ctx);
int cmd_run(int argc, char **argv, struct ctx *ctx);
int cmd_deploy(int argc, char **argv, struct ctx *ctx);
int cmd_rollback(int argc, char **argv, struct ctx *ctx);
int cmd_health(int argc, char **argv, struct ctx *ctx);
int cmd_incident(int argc, char **argv, struct ctx *ctx);
int cmd_backup(int argc, char **argv, struct ctx *ctx);
int cmd_restore(int argc, char **argv, struct ctx *ctx);
int cmd_migrate(int argc, char **argv, struct ctx *ctx);
/* deploy --checklist (cmd_checklist.c) and rollback db (cmd_rollback_db.c):
 * cmd_deploy and cmd_rollback hand their arguments over, and print these
 * texts after their own --help. */
int cmd_checklist(int argc, char **argv, struct ctx *ctx);
int cmd_rollback_db(int argc, char **argv, struct ctx *ctx);
extern const char cmd_checklist_usage[];
extern const char cmd_rollback_db_usage[];
int cmd_diagnose(int argc, char **argv, struct ctx *ctx);
int cmd_logs(int argc, char **argv, struct ctx *ctx);
int cmd_db(int argc, char **argv, struct ctx *ctx);
int cmd_cache(int argc, char **argv, struct ctx *ctx);

#endif

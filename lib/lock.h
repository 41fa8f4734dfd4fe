/*
 * lock.h - per-resource run locks (pgBackRest common/lock.c style).
 *
 * A lock is STATE_DIR/locks/NAME.lock held with flock(LOCK_EX|LOCK_NB). Once
 * the lock is held, the file is rewritten with who holds it (pid, command
 * line, start time) so a refused run can say who is in the way:
 *
 *     error: backup is locked by pid 4242 (spilttea-ops backup) since 02:00:01
 *     hint: wait for it to finish, or check it with 'ps -p 4242'
 *
 * The kernel drops an flock when its holder dies, so a lock file left behind
 * by a killed run is harmless: the next run simply gets the lock. It still
 * reads the old content and reports the takeover (struct lock_info) so the
 * operator learns that a run died half way.
 *
 * Release unlinks the file before closing it. A waiter that opened the old
 * file might then lock the unlinked inode while a third run creates a new
 * file; lock_acquire() therefore checks, after flock, that the path still
 * names the inode it locked, and starts over if not.
 *
 * ---- what is locked: one name per resource -------------------------------
 *
 * A run locks what it changes, not the command it is, so two commands that
 * touch the same thing exclude each other whatever they are called:
 *
 *   svc:SERVICE   a service's container (SERVICE as configured under
 *                 services:): replaced, stopped, restarted, recreated, or
 *                 changed through exec. deploy and rollback (each target),
 *                 migrate up and resolve (the migrate service: Prisma runs
 *                 in it, then it restarts), restore (stops the backend for
 *                 the swap), incident contain and rotate (the services they
 *                 stop or recreate), the restart-backend and start-after-db
 *                 runbooks.
 *   db:DATABASE   a database's contents or identity: migrate up and resolve,
 *                 restore and rollback db (the swap), restore cleanup.
 *   backup        the backup directory (backup, prune, verify, restore).
 *   other words   a runbook's own (selftest, postgres-maintenance ...), and
 *                 incident for the incident record.
 *
 * Build the names with lock_name_service() and lock_name_db(); runbooks
 * write them in lock: (a name or a list; "db:${args.database}" is resolved
 * when the run starts). A run needing several takes them as one set
 * (lock_acquire_set): in one fixed order (command locks, then db:, then
 * svc:, by name within each) and whole or not at all, so no run holds half
 * of what it needs and two runs never each wait on the other's.
 */
#ifndef ST_LOCK_H
#define ST_LOCK_H

#include <sys/types.h>

#include "error.h"

#define LOCK_COMMAND_MAX 256

struct lock_info {
	pid_t pid;                       /* holder (or previous holder), 0 when unknown */
	double started;                  /* epoch seconds, 0 when unknown */
	char command[LOCK_COMMAND_MAX];  /* holder's command line, may be empty */
};

struct lock_takeover {
	int stale;                       /* 1 when a dead run's lock file was taken over */
	int pid_running;                 /* that pid exists again (reused by another process) */
	struct lock_info previous;       /* what the stale file said */
	char message[320];               /* "stale lock from pid N (not running), taking it over" */
};

struct st_lock;

/* Takes the lock NAME under state_dir (creating state_dir/locks 0700 as
 * needed). command_line is recorded for whoever is refused. name: letters,
 * digits, '.', '_' and '-', not starting with '.'. takeover may be NULL.
 * On success *out is owned by the caller: release with lock_release().
 * Errors: ST_ELOCKED (held by someone else; message and hint name the
 * holder), ST_EUSAGE (bad name), ST_EIO, ST_ENOMEM. */
int lock_acquire(const char *state_dir, const char *name, const char *command_line,
		 struct st_lock **out, struct lock_takeover *takeover, struct st_error *err);

/* Unlinks the lock file and closes it. NULL-safe. */
void lock_release(struct st_lock *lock);

/* Path of the lock file; borrowed from lock. */
const char *lock_path(const struct st_lock *lock);

/* Name check used by lock_acquire() and the runbook loader: letters,
 * digits, '.', '_', '-' and ':', not starting with '.' or ':', at most 64
 * characters. 0 or ST_EUSAGE. */
int lock_name_valid(const char *name, struct st_error *err);

#define LOCK_SERVICE_PREFIX "svc:"
#define LOCK_DB_PREFIX "db:"
#define LOCK_NAME_MAX 65

/* "svc:SERVICE" and "db:DATABASE" into buf (LOCK_NAME_MAX is enough). 0, or
 * ST_EUSAGE when the result is no valid lock name (see above). */
int lock_name_service(char *buf, size_t size, const char *service, struct st_error *err);
int lock_name_db(char *buf, size_t size, const char *database, struct st_error *err);

/* Several locks held together. */
struct lock_set;

/* Takes every name (duplicates once) in the fixed order above, or none:
 * when one is held by another run, those already taken are released and
 * the error is lock_acquire()'s for that one (ST_ELOCKED naming its
 * holder). n may be 0 (an empty set). takeover (may be NULL) reports the
 * first stale lock file taken over. *out: caller releases with
 * lock_release_set(). */
int lock_acquire_set(const char *state_dir, const char *const *names, size_t n, const char *command_line,
		     struct lock_set **out, struct lock_takeover *takeover, struct st_error *err);

/* Releases every lock of the set, in reverse order. NULL-safe. */
void lock_release_set(struct lock_set *set);

/* How many locks the set holds, and the i-th in the order taken
 * (borrowed from set). */
size_t lock_set_count(const struct lock_set *set);
const char *lock_set_name(const struct lock_set *set, size_t i);

#endif

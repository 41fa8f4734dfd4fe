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

/* Name check used by lock_acquire() and the runbook loader: 0 or ST_EUSAGE. */
int lock_name_valid(const char *name, struct st_error *err);

#endif

#include "lock.h"
#include "atomic_file.h"
#include "text.h"
#include "timeutil.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LOCK_FILE_MAX 1024
/* Bound on the unlink race retries (see lock.h); each needs another run to
 * release and re-create the file in between, so this is never reached. */
#define LOCK_RETRIES 20

struct st_lock {
	int fd;
	char *path;
};

int lock_name_valid(const char *name, struct st_error *err)
{
	const char *p;

	if (!name || !*name || name[0] == '.' || name[0] == ':' || strlen(name) > LOCK_NAME_MAX - 1)
		goto bad;
	for (p = name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' || *p == '-' || *p == ':'))
			goto bad;
	return 0;
bad:
	return st_error_set(err, ST_EUSAGE,
			    "invalid lock name '%s': use letters, digits, '.', '_', '-' and ':'",
			    name ? name : "");
}

static int prefixed(char *buf, size_t size, const char *prefix, const char *what, struct st_error *err)
{
	int n = snprintf(buf, size, "%s%s", prefix, what ? what : "");

	if (n < 0 || (size_t)n >= size) {
		if (size)
			buf[0] = '\0';
		return st_error_set(err, ST_EUSAGE, "invalid lock name '%s%.80s': too long", prefix,
				    what ? what : "");
	}
	return lock_name_valid(buf, err);
}

int lock_name_service(char *buf, size_t size, const char *service, struct st_error *err)
{
	return prefixed(buf, size, LOCK_SERVICE_PREFIX, service, err);
}

int lock_name_db(char *buf, size_t size, const char *database, struct st_error *err)
{
	return prefixed(buf, size, LOCK_DB_PREFIX, database, err);
}

static char *lock_file_path(const char *state_dir, const char *name)
{
	size_t n = strlen(state_dir) + strlen(name) + sizeof("/locks/.lock");
	char *p = malloc(n);

	if (p)
		snprintf(p, n, "%s/locks/%s.lock", state_dir, name);
	return p;
}

/* Parses "pid=..\nstarted=..\ncommand=..\n"; unknown or missing lines leave
 * the zeroed defaults (a half-written file during a takeover). */
static void parse_info(const char *text, struct lock_info *info)
{
	const char *line = text;

	memset(info, 0, sizeof(*info));
	while (line && *line) {
		const char *eol = strchr(line, '\n');
		size_t len = eol ? (size_t)(eol - line) : strlen(line);

		if (len > 4 && !strncmp(line, "pid=", 4))
			info->pid = (pid_t)strtol(line + 4, NULL, 10);
		else if (len > 8 && !strncmp(line, "started=", 8))
			info->started = strtod(line + 8, NULL);
		else if (len > 8 && !strncmp(line, "command=", 8)) {
			size_t c = len - 8 < sizeof(info->command) - 1 ? len - 8 : sizeof(info->command) - 1;
			memcpy(info->command, line + 8, c);
			info->command[c] = '\0';
		}
		line = eol ? eol + 1 : NULL;
	}
}

static int read_info(int fd, struct lock_info *info)
{
	char buf[LOCK_FILE_MAX];
	ssize_t n;

	do
		n = pread(fd, buf, sizeof(buf) - 1, 0);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	parse_info(buf, info);
	return 0;
}

/* "02:00:01" today, "2026-11-27 02:00:01" another day; local time, as the
 * operator reading the message thinks in it. */
static void format_since(double t, char *buf, size_t size)
{
	time_t then = (time_t)t, now = time(NULL);
	struct tm a, b;

	localtime_r(&then, &a);
	localtime_r(&now, &b);
	if (a.tm_year == b.tm_year && a.tm_yday == b.tm_yday)
		strftime(buf, size, "%H:%M:%S", &a);
	else
		strftime(buf, size, "%Y-%m-%d %H:%M:%S", &a);
}

static int locked_error(const char *name, const struct lock_info *info, struct st_error *err)
{
	char since[32];

	if (info->pid <= 0) {
		st_error_set(err, ST_ELOCKED, "%s is locked by another run", name);
		return st_error_hint(err, "wait for it to finish and try again");
	}
	if (info->started > 0)
		format_since(info->started, since, sizeof(since));
	st_error_set(err, ST_ELOCKED, "%s is locked by pid %ld (%s)%s%s", name, (long)info->pid,
		     info->command[0] ? info->command : "command unknown",
		     info->started > 0 ? " since " : "", info->started > 0 ? since : "");
	return st_error_hint(err, "wait for it to finish, or check it with 'ps -p %ld'",
			     (long)info->pid);
}

static int pid_running(pid_t pid)
{
	return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM);
}

static int write_info(int fd, const char *command_line)
{
	char cmd[LOCK_COMMAND_MAX];
	char buf[LOCK_FILE_MAX];
	int n;

	/* One line of the lock file: newlines in the command would split it. */
	text_one_line(cmd, sizeof(cmd), command_line ? command_line : "",
		      command_line ? strlen(command_line) : 0, 0);
	n = snprintf(buf, sizeof(buf), "pid=%ld\nstarted=%.3f\ncommand=%s\n", (long)getpid(),
		     time_wall(), cmd);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return -1;
	if (ftruncate(fd, 0) != 0)
		return -1;
	if (pwrite(fd, buf, (size_t)n, 0) != n)
		return -1;
	return 0;
}

int lock_acquire(const char *state_dir, const char *name, const char *command_line,
		 struct st_lock **out, struct lock_takeover *takeover, struct st_error *err)
{
	struct st_lock *lock = NULL;
	char *dir = NULL;
	struct lock_info prev;
	int fd = -1;
	int rc = 0;
	int tries;

	*out = NULL;
	if (takeover)
		memset(takeover, 0, sizeof(*takeover));
	if ((rc = lock_name_valid(name, err)) != 0)
		return rc;
	lock = calloc(1, sizeof(*lock));
	dir = malloc(strlen(state_dir) + sizeof("/locks"));
	if (!lock || !dir || !(lock->path = lock_file_path(state_dir, name))) {
		rc = st_error_set(err, ST_ENOMEM, "out of memory taking lock '%s'", name);
		goto out;
	}
	lock->fd = -1;
	sprintf(dir, "%s/locks", state_dir);
	if ((rc = atomic_file_mkdirs(dir, 0700, err)) != 0) {
		st_error_wrap(err, "cannot take lock '%s'", name);
		goto out;
	}
	for (tries = 0; ; tries++) {
		struct stat fst, pst;

		fd = open(lock->path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		if (fd < 0) {
			rc = st_error_set(err, ST_EIO, "cannot open lock file '%s': %s", lock->path,
					  strerror(errno));
			goto out;
		}
		if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
			if (errno == EWOULDBLOCK) {
				struct lock_info holder;

				if (read_info(fd, &holder) != 0)
					memset(&holder, 0, sizeof(holder));
				rc = locked_error(name, &holder, err);
			} else {
				rc = st_error_set(err, ST_EIO, "cannot lock '%s': %s", lock->path,
						  strerror(errno));
			}
			goto out;
		}
		if (fstat(fd, &fst) == 0 && stat(lock->path, &pst) == 0 &&
		    fst.st_dev == pst.st_dev && fst.st_ino == pst.st_ino)
			break;
		/* We locked a file its previous holder unlinked on release. */
		close(fd);
		fd = -1;
		if (tries >= LOCK_RETRIES) {
			rc = st_error_set(err, ST_ELOCKED, "%s is locked and released too fast to take",
					  name);
			goto out;
		}
	}
	/* Content left in a file we could lock belongs to a run that died
	 * without releasing (release unlinks it). */
	if (read_info(fd, &prev) == 0 && prev.pid > 0 && takeover) {
		takeover->stale = 1;
		takeover->previous = prev;
		takeover->pid_running = prev.pid != getpid() && pid_running(prev.pid);
		snprintf(takeover->message, sizeof(takeover->message),
			 "stale lock from pid %ld (%s), taking it over", (long)prev.pid,
			 takeover->pid_running ? "pid now used by another process" : "not running");
	}
	if (write_info(fd, command_line) != 0) {
		rc = st_error_set(err, ST_EIO, "cannot write lock file '%s': %s", lock->path,
				  strerror(errno));
		unlink(lock->path);
		goto out;
	}
	lock->fd = fd;
	fd = -1;
	*out = lock;
	lock = NULL;
out:
	if (fd >= 0)
		close(fd);
	if (lock) {
		free(lock->path);
		free(lock);
	}
	free(dir);
	return rc;
}

void lock_release(struct st_lock *lock)
{
	if (!lock)
		return;
	/* Unlink while still holding the lock, then close: nobody can take a
	 * file we are about to remove (see the retry in lock_acquire). */
	unlink(lock->path);
	close(lock->fd);
	free(lock->path);
	free(lock);
}

const char *lock_path(const struct st_lock *lock)
{
	return lock->path;
}

/* ---- sets ------------------------------------------------------------------- */

struct lock_set {
	size_t n;
	char **names;              /* in the order taken */
	struct st_lock **locks;
};

/* Command locks first, then databases, then services. */
static int rank(const char *name)
{
	if (!strncmp(name, LOCK_DB_PREFIX, strlen(LOCK_DB_PREFIX)))
		return 1;
	if (!strncmp(name, LOCK_SERVICE_PREFIX, strlen(LOCK_SERVICE_PREFIX)))
		return 2;
	return 0;
}

static int order_cmp(const void *a, const void *b)
{
	const char *x = *(const char *const *)a, *y = *(const char *const *)b;
	int rx = rank(x), ry = rank(y);

	return rx != ry ? rx - ry : strcmp(x, y);
}

int lock_acquire_set(const char *state_dir, const char *const *names, size_t n, const char *command_line,
		     struct lock_set **out, struct lock_takeover *takeover, struct st_error *err)
{
	struct lock_set *set = NULL;
	const char **sorted = NULL;
	size_t i, k = 0;
	int rc = 0;

	*out = NULL;
	if (takeover)
		memset(takeover, 0, sizeof(*takeover));
	for (i = 0; i < n; i++)
		if ((rc = lock_name_valid(names[i], err)) != 0)
			return rc;
	if (!(set = calloc(1, sizeof(*set))) || (n && (!(sorted = calloc(n, sizeof(*sorted))) ||
						      !(set->names = calloc(n, sizeof(*set->names))) ||
						      !(set->locks = calloc(n, sizeof(*set->locks)))))) {
		rc = st_error_set(err, ST_ENOMEM, "out of memory taking locks");
		goto out;
	}
	for (i = 0; i < n; i++)
		sorted[i] = names[i];
	if (n)
		qsort(sorted, n, sizeof(*sorted), order_cmp);
	for (i = 0; i < n; i++) {
		struct lock_takeover tk;

		if (k && !strcmp(set->names[k - 1], sorted[i]))
			continue;   /* named twice */
		if (!(set->names[k] = strdup(sorted[i]))) {
			rc = st_error_set(err, ST_ENOMEM, "out of memory taking locks");
			goto out;
		}
		if ((rc = lock_acquire(state_dir, sorted[i], command_line, &set->locks[k], &tk, err)) != 0) {
			free(set->names[k]);
			set->names[k] = NULL;
			goto out;
		}
		if (tk.stale && takeover && !takeover->stale)
			*takeover = tk;
		set->n = ++k;
	}
	*out = set;
	set = NULL;
out:
	lock_release_set(set);
	free(sorted);
	return rc;
}

void lock_release_set(struct lock_set *set)
{
	size_t i;

	if (!set)
		return;
	for (i = set->n; i > 0; i--) {
		lock_release(set->locks[i - 1]);
		free(set->names[i - 1]);
	}
	free(set->locks);
	free(set->names);
	free(set);
}

size_t lock_set_count(const struct lock_set *set)
{
	return set ? set->n : 0;
}

const char *lock_set_name(const struct lock_set *set, size_t i)
{
	return set && i < set->n ? set->names[i] : NULL;
}

#include "atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TEMP_SUFFIX ".partial"
#define TEMP_RANDOM 6

struct atomic_file {
	int fd;
	char *path;
	char *temp_path;
	char *dir;
};

static void af_free(struct atomic_file *af)
{
	if (!af)
		return;
	if (af->fd >= 0)
		close(af->fd);
	free(af->path);
	free(af->temp_path);
	free(af->dir);
	free(af);
}

/* Directory and base name of path as two new strings (caller frees). */
static int split_path(const char *path, char **dir, char **base)
{
	char *a = strdup(path), *b = strdup(path);
	int rc = ST_ENOMEM;

	*dir = *base = NULL;
	if (!a || !b)
		goto out;
	*dir = strdup(dirname(a));
	*base = strdup(basename(b));
	if (!*dir || !*base) {
		free(*dir);
		free(*base);
		*dir = *base = NULL;
		goto out;
	}
	rc = 0;
out:
	free(a);
	free(b);
	return rc;
}

static void random_name(char *out, size_t n)
{
	static const char alphabet[] =
		"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
	unsigned char bytes[TEMP_RANDOM];
	size_t i;

	/* getrandom never blocks once the pool is initialised; if it fails the
	 * pid and clock still make a collision unlikely, and O_EXCL catches it. */
	if (getrandom(bytes, sizeof(bytes), GRND_NONBLOCK) != (ssize_t)sizeof(bytes)) {
		unsigned long seed = (unsigned long)getpid() ^ (unsigned long)clock();
		for (i = 0; i < sizeof(bytes); i++)
			bytes[i] = (unsigned char)(seed >> (i * 5));
	}
	for (i = 0; i < n; i++)
		out[i] = alphabet[bytes[i % sizeof(bytes)] % (sizeof(alphabet) - 1)];
	out[n] = '\0';
}

int atomic_file_open(const char *path, unsigned mode, struct atomic_file **out,
		     struct st_error *err)
{
	struct atomic_file *af = NULL;
	char *base = NULL;
	mode_t perm = (mode_t)(mode & 07777);
	struct stat st;
	int have_old = 0;
	int rc = 0;
	int tries;

	*out = NULL;
	if (!path || !*path)
		return st_error_set(err, ST_EUSAGE, "cannot write a file with an empty name");
	if (perm == 0)
		perm = ATOMIC_FILE_DEFAULT_MODE;
	af = calloc(1, sizeof(*af));
	if (!af) {
		rc = st_error_set(err, ST_ENOMEM, "out of memory writing '%s'", path);
		goto out;
	}
	af->fd = -1;
	/* A symbolic link (a .env shared between releases) stays a link: the
	 * file it points to is replaced, with its temporary file beside it so
	 * the rename stays within one file system. */
	if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode)) {
		af->path = realpath(path, NULL);
		if (!af->path) {
			rc = st_error_set(err, errno == ENOMEM ? ST_ENOMEM : ST_EIO,
					  "cannot write '%s': it is a symbolic link whose target cannot be "
					  "resolved: %s", path, strerror(errno));
			goto out;
		}
	} else if (!(af->path = strdup(path))) {
		rc = st_error_set(err, ST_ENOMEM, "out of memory writing '%s'", path);
		goto out;
	}
	path = af->path;
	if (split_path(path, &af->dir, &base)) {
		rc = st_error_set(err, ST_ENOMEM, "out of memory writing '%s'", path);
		goto out;
	}
	if (mode & ATOMIC_FILE_PRESERVE_MODE) {
		if (stat(path, &st) == 0) {
			perm = st.st_mode & 07777;
			have_old = 1;
		} else if (errno != ENOENT) {
			rc = st_error_set(err, ST_EIO, "cannot stat '%s': %s", path, strerror(errno));
			goto out;
		}
	}
	af->temp_path = malloc(strlen(af->dir) + strlen(base) + TEMP_RANDOM + sizeof(TEMP_SUFFIX) + 4);
	if (!af->temp_path) {
		rc = st_error_set(err, ST_ENOMEM, "out of memory writing '%s'", path);
		goto out;
	}
	for (tries = 0; tries < 100; tries++) {
		char rnd[TEMP_RANDOM + 1];

		random_name(rnd, TEMP_RANDOM);
		sprintf(af->temp_path, "%s/.%s.%s%s", af->dir, base, rnd, TEMP_SUFFIX);
		af->fd = open(af->temp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (af->fd >= 0 || errno != EEXIST)
			break;
	}
	if (af->fd < 0) {
		rc = st_error_set(err, ST_EIO, "cannot create a temporary file for '%s': %s", path,
				  strerror(errno));
		st_error_hint(err, "check that '%s' exists and is writable", af->dir);
		goto out;
	}
	/* Exact mode, whatever the umask: 0600 must mean 0600. */
	if (fchmod(af->fd, perm) != 0) {
		rc = st_error_set(err, ST_EIO, "cannot set the mode of '%s': %s", af->temp_path,
				  strerror(errno));
		goto out;
	}
	/* Only root can give a file away; an unprivileged rewrite keeps our owner. */
	if (have_old && geteuid() == 0 && fchown(af->fd, st.st_uid, st.st_gid) != 0) {
		rc = st_error_set(err, ST_EIO, "cannot set the owner of '%s': %s", af->temp_path,
				  strerror(errno));
		goto out;
	}
	*out = af;
	af = NULL;
out:
	if (af && af->fd >= 0)
		unlink(af->temp_path);
	af_free(af);
	free(base);
	return rc;
}

int atomic_file_write(struct atomic_file *af, const void *data, size_t len, struct st_error *err)
{
	const char *p = data;

	while (len > 0) {
		ssize_t n = write(af->fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return st_error_set(err, ST_EIO, "cannot write '%s': %s", af->temp_path,
					    strerror(errno));
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int atomic_file_fd(const struct atomic_file *af)
{
	return af->fd;
}

const char *atomic_file_path(const struct atomic_file *af)
{
	return af->path;
}

const char *atomic_file_temp_path(const struct atomic_file *af)
{
	return af->temp_path;
}

int atomic_file_commit(struct atomic_file *af, struct st_error *err)
{
	return atomic_file_commit_renamed(af, NULL, err);
}

int atomic_file_commit_renamed(struct atomic_file *af, int *renamed_out, struct st_error *err)
{
	int dfd = -1;
	int rc = 0;
	int renamed = 0;

	if (fsync(af->fd) != 0) {
		rc = st_error_set(err, ST_EIO, "cannot sync '%s': %s", af->temp_path, strerror(errno));
		goto out;
	}
	/* close() can report a delayed write error (NFS); it must not be lost. */
	if (close(af->fd) != 0) {
		af->fd = -1;
		rc = st_error_set(err, ST_EIO, "cannot close '%s': %s", af->temp_path, strerror(errno));
		goto out;
	}
	af->fd = -1;
	if (rename(af->temp_path, af->path) != 0) {
		rc = st_error_set(err, ST_EIO, "cannot rename '%s' to '%s': %s", af->temp_path,
				  af->path, strerror(errno));
		goto out;
	}
	renamed = 1;
	/* Without this the rename itself may not survive a power loss. */
	dfd = open(af->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || fsync(dfd) != 0) {
		rc = st_error_set(err, ST_EIO, "cannot sync directory '%s': %s", af->dir, strerror(errno));
		goto out;
	}
out:
	if (dfd >= 0)
		close(dfd);
	if (!renamed)
		unlink(af->temp_path);
	af_free(af);
	if (renamed_out)
		*renamed_out = renamed;
	return rc;
}

void atomic_file_abort(struct atomic_file *af)
{
	if (!af)
		return;
	if (af->fd >= 0) {
		close(af->fd);
		af->fd = -1;
	}
	unlink(af->temp_path);
	af_free(af);
}

int atomic_file_write_all(const char *path, const void *data, size_t len, unsigned mode,
			  struct st_error *err)
{
	struct atomic_file *af = NULL;
	int rc;

	rc = atomic_file_open(path, mode, &af, err);
	if (rc)
		return rc;
	rc = atomic_file_write(af, data, len, err);
	if (rc) {
		atomic_file_abort(af);
		return rc;
	}
	return atomic_file_commit(af, err);
}

int atomic_file_is_partial(const char *name)
{
	size_t n = strlen(name);
	size_t sl = sizeof(TEMP_SUFFIX) - 1;
	const char *dot;

	/* "." + at least one character + "." + random + ".partial" */
	if (n < 1 + 1 + 1 + TEMP_RANDOM + sl || name[0] != '.')
		return 0;
	if (strcmp(name + n - sl, TEMP_SUFFIX) != 0)
		return 0;
	dot = name + n - sl - TEMP_RANDOM - 1;
	return *dot == '.';
}

int atomic_file_mkdirs(const char *dir, unsigned mode, struct st_error *err)
{
	char *p = NULL, *s;
	mode_t perm = (mode_t)(mode & 07777);
	int rc = 0;

	if (!dir || !*dir)
		return st_error_set(err, ST_EUSAGE, "cannot create a directory with an empty name");
	if (perm == 0)
		perm = 0700;
	p = strdup(dir);
	if (!p)
		return st_error_set(err, ST_ENOMEM, "out of memory creating '%s'", dir);
	for (s = p + 1; ; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		{
			char saved = *s;
			struct stat st;

			*s = '\0';
			if (mkdir(p, perm) != 0 && errno != EEXIST) {
				rc = st_error_set(err, ST_EIO, "cannot create directory '%s': %s", p,
						  strerror(errno));
				goto out;
			}
			if (stat(p, &st) != 0 || !S_ISDIR(st.st_mode)) {
				rc = st_error_set(err, ST_EIO, "'%s' is not a directory", p);
				goto out;
			}
			*s = saved;
			if (saved == '\0')
				break;
		}
	}
out:
	free(p);
	return rc;
}

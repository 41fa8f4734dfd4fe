#include "tar.h"
#include "sbuf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BLOCK 512
#define CHUNK (64 * 1024)

static const char zeros[2 * BLOCK];

void tar_writer_init(struct tar_writer *tw, tar_write_fn write, void *ud)
{
	memset(tw, 0, sizeof(*tw));
	tw->write = write;
	tw->ud = ud;
}

static int check(struct tar_writer *tw, struct st_error *err)
{
	if (tw->failed)
		return st_error_set(err, tw->failed, "archive is broken by an earlier error");
	if (tw->finished)
		return st_error_set(err, ST_EUSAGE, "archive is already finished");
	return 0;
}

static int fail(struct tar_writer *tw, int rc)
{
	if (rc && !tw->failed)
		tw->failed = rc;
	return rc;
}

static int emit(struct tar_writer *tw, const void *data, size_t len, struct st_error *err)
{
	int rc;

	if (len == 0)
		return 0;
	rc = tw->write(tw->ud, data, len, err);
	if (rc)
		return fail(tw, rc < 0 ? rc : ST_EIO);
	tw->offset += len;
	return 0;
}

static int pad(struct tar_writer *tw, uint64_t size, struct st_error *err)
{
	size_t rest = (size_t)(size % BLOCK);

	return rest ? emit(tw, zeros, BLOCK - rest, err) : 0;
}

/* Octal with a NUL in the last byte; GNU base-256 when it does not fit. */
static void put_num(char *field, size_t size, uint64_t v)
{
	if (size - 1 < 22 && v >> (3 * (size - 1))) {
		memset(field, 0, size);
		for (size_t i = size - 1; i > 0; i--, v >>= 8)
			field[i] = (char)(v & 0xff);
		field[0] = (char)0x80;
		return;
	}
	snprintf(field, size, "%0*llo", (int)(size - 1), (unsigned long long)v);
}

struct header {
	char b[BLOCK];
};

/* Field offsets of the ustar header. */
enum {
	H_NAME = 0, H_MODE = 100, H_UID = 108, H_GID = 116, H_SIZE = 124, H_MTIME = 136,
	H_CHKSUM = 148, H_TYPE = 156, H_LINK = 157, H_MAGIC = 257, H_VERSION = 263,
	H_UNAME = 265, H_GNAME = 297, H_PREFIX = 345,
};

static void finish_header(struct header *h, int gnu)
{
	unsigned sum = 0;

	if (gnu)
		memcpy(h->b + H_MAGIC, "ustar  ", 8); /* "ustar " + " \0" */
	else {
		memcpy(h->b + H_MAGIC, "ustar", 6);
		memcpy(h->b + H_VERSION, "00", 2);
	}
	memcpy(h->b + H_UNAME, "root", 4);
	memcpy(h->b + H_GNAME, "root", 4);
	memset(h->b + H_CHKSUM, ' ', 8);
	for (size_t i = 0; i < BLOCK; i++)
		sum += (unsigned char)h->b[i];
	snprintf(h->b + H_CHKSUM, 7, "%06o", sum & 0777777);
	h->b[H_CHKSUM + 7] = ' ';
}

/* A GNU 'L' or 'K' entry carrying a long name or link target. */
static int long_entry(struct tar_writer *tw, char type, const char *text, struct st_error *err)
{
	struct header h;
	size_t n = strlen(text) + 1;
	int rc;

	memset(&h, 0, sizeof(h));
	strcpy(h.b + H_NAME, "././@LongLink");
	put_num(h.b + H_MODE, 8, 0);
	put_num(h.b + H_UID, 8, 0);
	put_num(h.b + H_GID, 8, 0);
	put_num(h.b + H_SIZE, 12, n);
	put_num(h.b + H_MTIME, 12, 0);
	h.b[H_TYPE] = type;
	finish_header(&h, 1);
	if ((rc = emit(tw, h.b, BLOCK, err)) || (rc = emit(tw, text, n, err)))
		return rc;
	return pad(tw, n, err);
}

/* Where a name of n bytes splits into prefix '/' name for ustar, or -1. */
static long ustar_split(const char *name, size_t n)
{
	size_t i = n - 1 < 155 ? n - 1 : 155;

	for (;; i--) {
		if (name[i] == '/' && n - i - 1 <= 100 && n - i - 1 > 0)
			return (long)i;
		if (i == 0)
			return -1;
	}
}

static int header(struct tar_writer *tw, const char *name, char type, unsigned mode, uint64_t size,
		  long long mtime, const char *link, struct st_error *err)
{
	struct header h;
	size_t n, ln = link ? strlen(link) : 0;
	long split = -1;
	int gnu = 0, rc;

	while (*name == '/')
		name++;
	n = strlen(name);
	if (n == 0)
		return st_error_set(err, ST_EUSAGE, "empty name for an archive entry");
	memset(&h, 0, sizeof(h));
	if (n > 100) {
		split = n <= 256 ? ustar_split(name, n) : -1;
		if (split < 0) {
			if ((rc = long_entry(tw, 'L', name, err)))
				return rc;
			gnu = 1;
		}
	}
	if (ln > 100) {
		if ((rc = long_entry(tw, 'K', link, err)))
			return rc;
		gnu = 1;
		/* The ustar prefix field does not exist in GNU headers. */
		split = -1;
	}
	if (split >= 0) {
		memcpy(h.b + H_PREFIX, name, (size_t)split);
		memcpy(h.b + H_NAME, name + split + 1, n - (size_t)split - 1);
	} else {
		memcpy(h.b + H_NAME, name, n > 100 ? 100 : n);
	}
	if (link)
		memcpy(h.b + H_LINK, link, ln > 100 ? 100 : ln);
	put_num(h.b + H_MODE, 8, mode & 07777);
	put_num(h.b + H_UID, 8, 0);
	put_num(h.b + H_GID, 8, 0);
	put_num(h.b + H_SIZE, 12, size);
	put_num(h.b + H_MTIME, 12, mtime > 0 ? (uint64_t)mtime : 0);
	h.b[H_TYPE] = type;
	finish_header(&h, gnu);
	return emit(tw, h.b, BLOCK, err);
}

int tar_add_memory(struct tar_writer *tw, const char *name, const void *data, size_t len,
		   unsigned mode, struct st_error *err)
{
	int rc;

	if ((rc = check(tw, err)))
		return rc;
	if ((rc = header(tw, name, '0', mode, len, tw->mtime, NULL, err)) ||
	    (rc = emit(tw, data, len, err)))
		return rc;
	return pad(tw, len, err);
}

static int dir_entry(struct tar_writer *tw, const char *name, unsigned mode, long long mtime,
		     struct st_error *err)
{
	struct sbuf sb = SBUF_INIT;
	int rc;

	if (sbuf_puts(&sb, name) || (sb.len && sb.buf[sb.len - 1] != '/' && sbuf_puts(&sb, "/"))) {
		rc = st_error_set(err, ST_ENOMEM, "out of memory naming '%s'", name);
		goto out;
	}
	rc = header(tw, sbuf_str(&sb), '5', mode, 0, mtime, NULL, err);
out:
	sbuf_release(&sb);
	return rc;
}

int tar_add_dir(struct tar_writer *tw, const char *name, unsigned mode, struct st_error *err)
{
	int rc;

	if ((rc = check(tw, err)))
		return rc;
	return dir_entry(tw, name, mode, tw->mtime, err);
}

static int symlink_entry(struct tar_writer *tw, const char *name, const char *target, long long mtime,
			 struct st_error *err)
{
	if (!*target)
		return st_error_set(err, ST_EUSAGE, "empty target for symlink '%s'", name);
	return header(tw, name, '2', 0777, 0, mtime, target, err);
}

int tar_add_symlink(struct tar_writer *tw, const char *name, const char *target,
		    struct st_error *err)
{
	int rc;

	if ((rc = check(tw, err)))
		return rc;
	return symlink_entry(tw, name, target, tw->mtime, err);
}

/* A regular file's entry. seen: what the walk's lstat found at path, or
 * NULL for a file named by the caller (symlinks followed). With seen, the
 * file opened must be that one: a symlink swapped in since (pointing out
 * of the tree) is refused, not followed. */
static int file_entry(struct tar_writer *tw, const char *name, const char *path,
		      const struct stat *seen, struct st_error *err)
{
	struct stat st;
	char *buf = NULL;
	uint64_t left;
	int fd = -1, rc = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC | (seen ? O_NOFOLLOW : 0));
	if (fd < 0 && seen && errno == ELOOP) {
		rc = st_error_set(err, ST_EIO, "'%s' changed while being archived (now a symlink)", path);
		goto out;
	}
	if (fd < 0 || fstat(fd, &st)) {
		rc = st_error_set(err, ST_EIO, "cannot read '%s': %s", path, strerror(errno));
		goto out;
	}
	if (seen && (st.st_dev != seen->st_dev || st.st_ino != seen->st_ino)) {
		rc = st_error_set(err, ST_EIO, "'%s' changed while being archived", path);
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = st_error_set(err, ST_EUSAGE, "cannot archive '%s': not a regular file", path);
		goto out;
	}
	buf = malloc(CHUNK);
	if (!buf) {
		rc = st_error_set(err, ST_ENOMEM, "out of memory archiving '%s'", path);
		goto out;
	}
	if ((rc = header(tw, name, '0', st.st_mode, (uint64_t)st.st_size, (long long)st.st_mtime, NULL,
			 err)))
		goto out;
	for (left = (uint64_t)st.st_size; left > 0;) {
		ssize_t n = read(fd, buf, left < CHUNK ? (size_t)left : CHUNK);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = fail(tw, st_error_set(err, ST_EIO, "cannot read '%s': %s", path, strerror(errno)));
			goto out;
		}
		if (n == 0) {
			rc = fail(tw, st_error_set(err, ST_EIO, "'%s' shrank while being archived", path));
			goto out;
		}
		if ((rc = emit(tw, buf, (size_t)n, err)))
			goto out;
		left -= (uint64_t)n;
	}
	rc = pad(tw, (uint64_t)st.st_size, err);
out:
	free(buf);
	if (fd >= 0)
		close(fd);
	return rc;
}

int tar_add_file(struct tar_writer *tw, const char *name, const char *path, struct st_error *err)
{
	int rc;

	if ((rc = check(tw, err)))
		return rc;
	return file_entry(tw, name, path, NULL, err);
}

static int path_entry(struct tar_writer *tw, const char *name, const char *path, const struct stat *st,
		      struct st_error *err)
{
	char target[PATH_MAX + 1];
	ssize_t n;

	if (S_ISREG(st->st_mode))
		return file_entry(tw, name, path, st, err);
	if (S_ISDIR(st->st_mode))
		return dir_entry(tw, name, st->st_mode, (long long)st->st_mtime, err);
	if (S_ISLNK(st->st_mode)) {
		n = readlink(path, target, sizeof(target) - 1);
		if (n < 0)
			return st_error_set(err, ST_EIO, "cannot read link '%s': %s", path, strerror(errno));
		target[n] = '\0';
		return symlink_entry(tw, name, target, (long long)st->st_mtime, err);
	}
	return st_error_set(err, ST_EUSAGE, "cannot archive '%s': not a file, directory or symlink",
			    path);
}

int tar_add_path(struct tar_writer *tw, const char *name, const char *path, struct st_error *err)
{
	struct stat st;
	int rc;

	if ((rc = check(tw, err)))
		return rc;
	if (lstat(path, &st))
		return st_error_set(err, ST_EIO, "cannot read '%s': %s", path, strerror(errno));
	return path_entry(tw, name, path, &st, err);
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static int skip_dots(const struct dirent *d)
{
	return strcmp(d->d_name, ".") && strcmp(d->d_name, "..");
}

static int walk(struct tar_writer *tw, struct sbuf *name, struct sbuf *path, tar_filter_fn filter,
		void *ud, struct st_error *err)
{
	struct dirent **list = NULL;
	size_t name_len = name->len, path_len = path->len;
	int n, rc = 0, i = 0;

	n = scandir(sbuf_str(path), &list, skip_dots, by_name);
	if (n < 0)
		return st_error_set(err, ST_EIO, "cannot list '%s': %s", sbuf_str(path), strerror(errno));
	for (; i < n; i++) {
		struct stat st;

		name->len = name_len;
		path->len = path_len;
		if ((name_len && sbuf_puts(name, "/")) || sbuf_puts(name, list[i]->d_name) ||
		    sbuf_puts(path, "/") || sbuf_puts(path, list[i]->d_name)) {
			rc = st_error_set(err, ST_ENOMEM, "out of memory walking '%s'", sbuf_str(path));
			goto out;
		}
		if (lstat(path->buf, &st)) {
			rc = st_error_set(err, ST_EIO, "cannot read '%s': %s", path->buf, strerror(errno));
			goto out;
		}
		if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode) && !S_ISLNK(st.st_mode))
			continue;
		if (filter) {
			rc = filter(ud, name->buf, &st, err);
			if (rc < 0)
				goto out;
			if (rc == 0)
				continue;
			rc = 0;
		}
		if ((rc = path_entry(tw, name->buf, path->buf, &st, err)))
			goto out;
		if (S_ISDIR(st.st_mode) && (rc = walk(tw, name, path, filter, ud, err)))
			goto out;
	}
out:
	for (i = 0; i < n; i++)
		free(list[i]);
	free(list);
	name->len = name_len;
	path->len = path_len;
	if (name->buf)
		name->buf[name_len] = '\0';
	if (path->buf)
		path->buf[path_len] = '\0';
	return rc;
}

int tar_add_tree(struct tar_writer *tw, const char *prefix, const char *dir, tar_filter_fn filter,
		 void *ud, struct st_error *err)
{
	struct sbuf name = SBUF_INIT, path = SBUF_INIT;
	int rc;

	if ((rc = check(tw, err)))
		return rc;
	if (prefix)
		while (*prefix == '/')
			prefix++;
	if (sbuf_puts(&name, prefix ? prefix : "") || sbuf_puts(&path, dir)) {
		rc = st_error_set(err, ST_ENOMEM, "out of memory walking '%s'", dir);
		goto out;
	}
	while (name.len > 0 && name.buf[name.len - 1] == '/')
		name.buf[--name.len] = '\0';
	while (path.len > 1 && path.buf[path.len - 1] == '/')
		path.buf[--path.len] = '\0';
	rc = walk(tw, &name, &path, filter, ud, err);
out:
	sbuf_release(&name);
	sbuf_release(&path);
	return rc;
}

int tar_finish(struct tar_writer *tw, struct st_error *err)
{
	int rc;

	if ((rc = check(tw, err)) || (rc = emit(tw, zeros, sizeof(zeros), err)))
		return rc;
	tw->finished = 1;
	return 0;
}

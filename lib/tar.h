/*
 * tar.h - a streaming ustar writer.
 *
 * Writes an archive through a callback, entry by entry, so a Docker build
 * context (or anything else) is produced as it is sent and never sits whole
 * in memory: file contents are read and written in 64 KiB pieces.
 *
 * Format: POSIX ustar. Names up to 100 bytes go in the name field, up to 256
 * through the ustar prefix field when they split at a '/'; anything longer
 * (and link targets over 100 bytes) uses a GNU long-name entry
 * ("././@LongLink", type 'L'/'K'), which GNU tar, bsdtar and Go's
 * archive/tar (dockerd) all read. Sizes of 8 GiB and more use the GNU
 * base-256 encoding. Owner is 0:0 (root), as Docker gives COPYed files.
 *
 * After any failure the writer is poisoned: every later call fails, since
 * the archive on the other side is already inconsistent.
 */
#ifndef ST_TAR_H
#define ST_TAR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "error.h"

/* Consumes the next len bytes of the archive. 0, or a negative ST_E* code
 * with err filled. */
typedef int (*tar_write_fn)(void *ud, const void *data, size_t len, struct st_error *err);

/* Decides over one entry found by tar_add_tree: name is its path inside the
 * archive, st its lstat. Returns 1 to include it (a directory: and descend),
 * 0 to leave it out (a directory: with everything below), or a negative
 * ST_E* code (with err filled) to stop. */
typedef int (*tar_filter_fn)(void *ud, const char *name, const struct stat *st, struct st_error *err);

struct tar_writer {
	tar_write_fn write;
	void *ud;
	uint64_t offset;      /* archive bytes written so far */
	long long mtime;      /* mtime of entries without a file behind them (default 0) */
	int failed;           /* the first error code; every later call fails with it */
	int finished;
};

void tar_writer_init(struct tar_writer *tw, tar_write_fn write, void *ud);

/* A regular file with the given contents. mode like 0644. */
int tar_add_memory(struct tar_writer *tw, const char *name, const void *data, size_t len,
		   unsigned mode, struct st_error *err);

/* A directory entry (only the entry; see tar_add_tree for contents). */
int tar_add_dir(struct tar_writer *tw, const char *name, unsigned mode, struct st_error *err);

/* A symbolic link name -> target. */
int tar_add_symlink(struct tar_writer *tw, const char *name, const char *target,
		    struct st_error *err);

/* The regular file at path (symlinks followed), with its mode and mtime,
 * streamed in pieces. ST_EIO if it cannot be read or shrinks meanwhile;
 * ST_EUSAGE if it is not a regular file. */
int tar_add_file(struct tar_writer *tw, const char *name, const char *path, struct st_error *err);

/* Whatever is at path, not following a final symlink: a regular file, a
 * directory entry (not its contents) or a symlink. Sockets, FIFOs and
 * devices give ST_EUSAGE. A file replaced (by a symlink, say) between the
 * look and the read gives ST_EIO: what is archived is what was looked at. */
int tar_add_path(struct tar_writer *tw, const char *name, const char *path, struct st_error *err);

/* Everything below directory dir (not dir itself), depth first, entries of
 * a directory in byte order of their names, so the same tree gives the same
 * archive. prefix is prepended to names inside the archive ("" or NULL: at
 * the top). filter may be NULL (everything). Sockets, FIFOs and devices are
 * left out. Files are checked like tar_add_path's. */
int tar_add_tree(struct tar_writer *tw, const char *prefix, const char *dir, tar_filter_fn filter,
		 void *ud, struct st_error *err);

/* Writes the end-of-archive marker (two zero blocks). */
int tar_finish(struct tar_writer *tw, struct st_error *err);

#endif

/*
 * atomic_file.h - THE one place where spilttea-ops replaces a file: readers
 * see the old content or the new content, never a torn mix, even when the
 * process or the machine dies half way (pgBackRest storage/posix/write.c).
 *
 * The data goes to a temporary file in the same directory, named
 * ".NAME.XXXXXX.partial" (XXXXXX random, created with O_CREAT|O_EXCL so two
 * writers never share one), then: fsync(file), close, rename(temp, NAME),
 * fsync(directory). A crash before the rename leaves NAME untouched and at
 * most a ".NAME.*.partial" file, which anything listing the directory
 * (backup list/prune) can recognise with atomic_file_is_partial().
 *
 * Modes are applied exactly (fchmod, not filtered through the umask): a
 * caller that says 0600 gets 0600. Mode 0 means the default, 0600 (data and
 * secrets). OR ATOMIC_FILE_PRESERVE_MODE into the mode to keep the mode (and,
 * when running as root, the owner) of an existing file; the given mode is
 * then used only when NAME does not exist yet (".env" rewrites).
 *
 * When NAME is a symbolic link, the link stays and the file it resolves to
 * (realpath) is the one replaced, with its temporary file in that file's
 * directory; a link whose target cannot be resolved is refused (ST_EIO)
 * rather than replaced by a regular file.
 */
#ifndef ST_ATOMIC_FILE_H
#define ST_ATOMIC_FILE_H

#include <stddef.h>
#include <sys/types.h>

#include "error.h"

#define ATOMIC_FILE_DEFAULT_MODE 0600
/* Flag bit above the permission bits; see above. */
#define ATOMIC_FILE_PRESERVE_MODE 0x10000u

struct atomic_file;

/* Starts writing path. *out is owned by the caller and released by exactly
 * one of atomic_file_commit() or atomic_file_abort().
 * Errors: ST_EIO (directory missing or not writable...), ST_ENOMEM. */
int atomic_file_open(const char *path, unsigned mode, struct atomic_file **out,
		     struct st_error *err);

/* Appends len bytes (restarts on EINTR and short writes). ST_EIO (ENOSPC...). */
int atomic_file_write(struct atomic_file *af, const void *data, size_t len, struct st_error *err);

/* The temporary file's descriptor, for callers that stream with their own
 * writes (sendfile, a compressor). Borrowed: do not close it. */
int atomic_file_fd(const struct atomic_file *af);

/* Final (symbolic links resolved) and temporary paths; borrowed, valid
 * until commit/abort. */
const char *atomic_file_path(const struct atomic_file *af);
const char *atomic_file_temp_path(const struct atomic_file *af);

/* fsync, rename over the final name, fsync the directory. Frees af whatever
 * happens; on failure the temporary file is removed and the final file is
 * left as it was. ST_EIO. */
int atomic_file_commit(struct atomic_file *af, struct st_error *err);

/* atomic_file_commit(), also saying in *renamed whether the rename was done:
 * when it fails after that (the directory could not be synced), the new
 * file is in place under its final name and only its durability is in
 * doubt, so a caller must not undo what it published with it. */
int atomic_file_commit_renamed(struct atomic_file *af, int *renamed, struct st_error *err);

/* Removes the temporary file and frees af. NULL-safe. */
void atomic_file_abort(struct atomic_file *af);

/* open + write + commit of one buffer. */
int atomic_file_write_all(const char *path, const void *data, size_t len, unsigned mode,
			  struct st_error *err);

/* Creates dir and any missing parents with mode (0 = 0700); existing
 * directories are left as they are. ST_EIO when a component cannot be made. */
int atomic_file_mkdirs(const char *dir, unsigned mode, struct st_error *err);

/* True when a directory entry's name looks like one of our temporary files
 * (".NAME.XXXXXX.partial"). */
int atomic_file_is_partial(const char *basename);

#endif

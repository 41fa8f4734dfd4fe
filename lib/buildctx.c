/*
 * buildctx.c - build context tars from a directory or a git commit (see
 * buildctx.h).
 */
#include "buildctx.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dockerignore.h"
#include "sbuf.h"
#include "tar.h"
#include "text.h"

/* The largest .dockerignore read, from the tree or from a commit. */
#define DOCKERIGNORE_MAX (1 << 20)

extern char **environ;

/* ---- running git ------------------------------------------------------------ */

/* How long a read from git waits before it looks again whether to stop. */
#define CHILD_POLL_MS 250

struct child {
	pid_t pid;
	int out;                 /* its stdout, or -1 */
	int errfd;               /* its stderr, or -1 */
	struct sbuf errtext;     /* first bytes of stderr */
	/* Checked every CHILD_POLL_MS while git says nothing: a set cancel
	 * flag or a non-zero stop() (the build request gone) ends the read.
	 * Both may be NULL. */
	volatile sig_atomic_t *cancel;
	int (*stop)(void *ud);
	void *stop_ud;
	int stopped;             /* a read ended because of them */
};

static int spawn_git(const char *dir, const char *const *argv, struct child *ch, struct st_error *err)
{
	posix_spawn_file_actions_t fa;
	int out[2] = { -1, -1 }, errp[2] = { -1, -1 }, rc = 0, e;
	const char **full = NULL;
	size_t n = 0, i;

	memset(ch, 0, sizeof(*ch));
	ch->pid = -1;
	ch->out = ch->errfd = -1;
	while (argv[n])
		n++;
	/* git -C DIR <argv[1..]> */
	if (!(full = calloc(n + 3, sizeof(*full))))
		return st_error_set(err, ST_ENOMEM, "out of memory");
	full[0] = "git";
	full[1] = "-C";
	full[2] = dir;
	for (i = 1; i < n; i++)
		full[i + 2] = argv[i];
	if (pipe2(out, O_CLOEXEC) != 0 || pipe2(errp, O_CLOEXEC) != 0) {
		rc = st_error_set(err, ST_EIO, "cannot run git: %s", strerror(errno));
		goto out;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	posix_spawn_file_actions_adddup2(&fa, errp[1], 2);
	e = posix_spawnp(&ch->pid, "git", &fa, NULL, (char *const *)full, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (e != 0) {
		ch->pid = -1;
		rc = st_error_set(err, e == ENOENT ? ST_ENOTFOUND : ST_EIO, "cannot run git: %s",
				  strerror(e));
		if (e == ENOENT)
			st_error_hint(err, "install git (apt-get install git)");
		goto out;
	}
	ch->out = out[0];
	ch->errfd = errp[0];
	out[0] = errp[0] = -1;
out:
	for (i = 0; i < 2; i++) {
		if (out[i] >= 0)
			close(out[i]);
		if (errp[i] >= 0)
			close(errp[i]);
	}
	free(full);
	return rc;
}

/* Reads up to cap bytes of stdout (0 at its end), keeping stderr drained.
 * -1 with errno on failure; -1 with ch->stopped set when ch->stop asked
 * to stop (a git that hangs is never waited for past an interrupt). */
static ssize_t child_read(struct child *ch, void *buf, size_t cap)
{
	for (;;) {
		struct pollfd p[2] = { { ch->out, POLLIN, 0 }, { ch->errfd, POLLIN, 0 } };
		int n;

		if ((ch->cancel && *ch->cancel) || (ch->stop && ch->stop(ch->stop_ud))) {
			ch->stopped = 1;
			errno = ECANCELED;
			return -1;
		}
		n = poll(p, ch->errfd >= 0 ? 2 : 1, CHILD_POLL_MS);
		if (n == 0 || (n < 0 && errno == EINTR))
			continue;
		if (n < 0)
			return -1;
		if (ch->errfd >= 0 && (p[1].revents & (POLLIN | POLLHUP | POLLERR))) {
			char eb[512];
			ssize_t r = read(ch->errfd, eb, sizeof(eb));

			if (r > 0 && ch->errtext.len < 4096)
				sbuf_append(&ch->errtext, eb, (size_t)r);
			if (r == 0 || (r < 0 && errno != EINTR)) {
				close(ch->errfd);
				ch->errfd = -1;
			}
		}
		if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t r = read(ch->out, buf, cap);

			if (r < 0 && errno == EINTR)
				continue;
			return r;
		}
	}
}

/* Reads exactly len bytes; 1 done, 0 at end of stream, -1 error/short. */
static int child_read_full(struct child *ch, void *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t r = child_read(ch, (char *)buf + got, len - got);

		if (r < 0)
			return -1;
		if (r == 0)
			return got == 0 ? 0 : -1;
		got += (size_t)r;
	}
	return 1;
}

/* Waits for the child (killing it first when kill_it) and turns a
 * failure into err. what names the command. */
static int child_finish(struct child *ch, int kill_it, const char *what, struct st_error *err)
{
	int status = 0, rc = 0;
	char line[300];
	const char *nl;

	if (ch->out >= 0) {
		if (!kill_it) {
			/* drain what is left so git is not stuck writing */
			char buf[4096];

			while (child_read(ch, buf, sizeof(buf)) > 0)
				;
		}
		close(ch->out);
		ch->out = -1;
	}
	if (ch->pid > 0) {
		/* A git being given up on may hang (that may be why): it gets no
		 * chance to, and its stderr is not waited for (a process it
		 * started may hold it open). */
		if (kill_it)
			kill(ch->pid, SIGKILL);
		while (!kill_it && ch->errfd >= 0) {
			char eb[512];
			ssize_t r = read(ch->errfd, eb, sizeof(eb));

			if (r > 0 && ch->errtext.len < 4096)
				sbuf_append(&ch->errtext, eb, (size_t)r);
			else if (r == 0 || errno != EINTR)
				break;
		}
		while (waitpid(ch->pid, &status, 0) < 0 && errno == EINTR)
			;
		ch->pid = -1;
		if (!kill_it && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
			const char *t = sbuf_str(&ch->errtext);

			nl = strchr(t, '\n');
			snprintf(line, sizeof(line), "%.*s", nl ? (int)(nl - t) : (int)strlen(t), t);
			if (WIFEXITED(status))
				rc = st_error_set(err, ST_EFAILED, "%s failed (exit %d)%s%s", what,
						  WEXITSTATUS(status), *line ? ": " : "", line);
			else
				rc = st_error_set(err, ST_EFAILED, "%s was killed by signal %d", what,
						  WTERMSIG(status));
		}
	}
	if (ch->errfd >= 0)
		close(ch->errfd);
	ch->errfd = -1;
	sbuf_release(&ch->errtext);
	return rc;
}

int buildctx_git(const char *dir, const char *const *argv, size_t max_out, char **out,
		 volatile sig_atomic_t *cancel, struct st_error *err)
{
	struct child ch;
	struct sbuf sb = SBUF_INIT;
	char what[128];
	int rc, failed = 0;

	if (out)
		*out = NULL;
	snprintf(what, sizeof(what), "git %s", argv[1] ? argv[1] : "");
	if ((rc = spawn_git(dir, argv, &ch, err)) != 0)
		return rc;
	ch.cancel = cancel;
	for (;;) {
		char buf[4096];
		ssize_t r = child_read(&ch, buf, sizeof(buf));

		if (r <= 0) {
			failed = r < 0;
			break;
		}
		if (sb.len < max_out && sbuf_append(&sb, buf, (size_t)r) != 0) {
			failed = 1;
			break;
		}
	}
	rc = child_finish(&ch, failed, what, err);
	if (!rc && ch.stopped)
		rc = st_error_set(err, ST_EABORTED, "%s interrupted", what);
	else if (!rc && failed)
		rc = st_error_set(err, ST_EIO, "cannot read the output of %s", what);
	if (!rc && out) {
		if (sb.len > max_out)
			sb.len = max_out;
		*out = sbuf_detach(&sb);
		if (!*out)
			rc = st_error_set(err, ST_ENOMEM, "out of memory");
	}
	sbuf_release(&sb);
	return rc;
}

/* First line of a git answer, in place. */
static char *chomp(char *s)
{
	char *nl = s ? strchr(s, '\n') : NULL;

	if (nl)
		*nl = '\0';
	return s;
}

/* ---- opening ----------------------------------------------------------------- */

void buildctx_free(struct buildctx *bc)
{
	if (!bc)
		return;
	free(bc->dir);
	free(bc->dockerfile);
	free(bc->ref);
	free(bc->git_toplevel);
	free(bc->git_prefix);
	free(bc->git_commit);
	dockerignore_free(bc->ignore);
	free(bc);
}

/* "prefix/name" within the repository, for SHA:path. Caller frees. */
static char *repo_path(const struct buildctx *bc, const char *name)
{
	char *p = NULL;

	if (asprintf(&p, "%s%s", bc->git_prefix, name) < 0)
		return NULL;
	return p;
}

/* Reads .dockerignore from the working tree or the commit's tree. */
static int load_ignore(struct buildctx *bc, struct st_error *err)
{
	char *text = NULL, *path = NULL, *spec = NULL;
	size_t len = 0;
	int rc = 0;

	if (bc->ref) {
		const char *argv[] = { "git", "cat-file", "blob", NULL, NULL };
		struct st_error ignored = { 0 };

		if (!(path = repo_path(bc, ".dockerignore")) ||
		    asprintf(&spec, "%s:%s", bc->git_commit, path) < 0) {
			spec = NULL;
			rc = st_error_set(err, ST_ENOMEM, "out of memory");
			goto out;
		}
		argv[3] = spec;
		/* Absent from the tree: nothing ignored. */
		if (buildctx_git(bc->dir, argv, DOCKERIGNORE_MAX, &text, bc->cancel, &ignored) != 0) {
			if (ignored.code == ST_EABORTED) {
				if (err)
					*err = ignored;
				rc = ignored.code;
			}
			goto out;
		}
		len = strlen(text);
	} else {
		if (asprintf(&path, "%s/.dockerignore", bc->dir) < 0) {
			path = NULL;
			rc = st_error_set(err, ST_ENOMEM, "out of memory");
			goto out;
		}
		/* None: nothing ignored. */
		if ((rc = text_read_file(path, DOCKERIGNORE_MAX, 0, "file", &text, &len, err)) == ST_ENOTFOUND) {
			st_error_clear(err);
			rc = 0;
			goto out;
		}
		if (rc)
			goto out;
	}
	rc = dockerignore_parse(bc->ref ? spec : path, text, len, &bc->ignore, err);
out:
	free(text);
	free(path);
	free(spec);
	return rc;
}

int buildctx_open(const char *dir, const char *dockerfile, const char *ref, volatile sig_atomic_t *cancel,
		  struct buildctx **out, struct st_error *err)
{
	struct buildctx *bc = NULL;
	struct st_error gerr = { 0 };
	char *top = NULL, *prefix = NULL, *sha = NULL, *status = NULL, *spec = NULL, *df = NULL;
	struct stat st;
	int rc = 0;

	*out = NULL;
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		rc = st_error_set(err, ST_ENOTFOUND, "build context '%s' is not a directory", dir);
		st_error_hint(err, "check services.<name>.build or the compose file's build.context");
		return rc;
	}
	if (!(bc = calloc(1, sizeof(*bc))) || !(bc->dir = strdup(dir)) ||
	    !(bc->dockerfile = strdup(dockerfile && *dockerfile ? dockerfile : "Dockerfile")) ||
	    (ref && !(bc->ref = strdup(ref))))
		goto nomem;
	bc->cancel = cancel;

	/* Is it a git work tree? */
	{
		const char *a1[] = { "git", "rev-parse", "--show-toplevel", NULL };
		const char *a2[] = { "git", "rev-parse", "--show-prefix", NULL };

		if (buildctx_git(dir, a1, 4096, &top, cancel, &gerr) == 0 &&
		    buildctx_git(dir, a2, 4096, &prefix, cancel, &gerr) == 0) {
			bc->git_toplevel = strdup(chomp(top));
			bc->git_prefix = strdup(chomp(prefix));
			if (!bc->git_toplevel || !bc->git_prefix)
				goto nomem;
		} else if ((gerr.code == ST_ENOTFOUND && ref) || gerr.code == ST_EABORTED) {
			if (err)
				*err = gerr;
			rc = gerr.code;
			goto out;
		}
	}
	if (ref && !bc->git_toplevel) {
		rc = st_error_set(err, ST_EUSAGE, "cannot build --ref '%s': '%s' is not in a git work tree",
				  ref, dir);
		goto out;
	}
	if (bc->git_toplevel) {
		const char *argv[] = { "git", "rev-parse", "--verify", "--quiet", NULL, NULL };

		if (asprintf(&spec, "%s^{commit}", ref ? ref : "HEAD") < 0) {
			spec = NULL;
			goto nomem;
		}
		argv[4] = spec;
		if (buildctx_git(dir, argv, 4096, &sha, cancel, &gerr) != 0) {
			if (gerr.code == ST_EABORTED)
				goto aborted;
			if (ref) {
				rc = st_error_set(err, ST_ENOTFOUND, "git ref '%s' names no commit in '%s'", ref,
						  bc->git_toplevel);
				st_error_hint(err, "list recent commits with 'git -C %s log --oneline -10'",
					      bc->git_toplevel);
				goto out;
			}
			/* A repository without commits yet: no commit to record. */
		} else if (!(bc->git_commit = strdup(chomp(sha)))) {
			goto nomem;
		}
	}
	if (bc->git_commit && !ref) {
		const char *argv[] = { "git", "status", "--porcelain", "--untracked-files=normal", "--", ".",
				       NULL };

		if (buildctx_git(dir, argv, 1 << 16, &status, cancel, &gerr) == 0)
			bc->git_dirty = status[0] != '\0';
		else if (gerr.code == ST_EABORTED)
			goto aborted;
	}
	/* The Dockerfile must be there. */
	if (ref) {
		const char *argv[] = { "git", "cat-file", "-e", NULL, NULL };
		char *p = repo_path(bc, bc->dockerfile);

		free(spec);
		spec = NULL;
		if (!p || asprintf(&spec, "%s:%s", bc->git_commit, p) < 0) {
			free(p);
			spec = NULL;
			goto nomem;
		}
		free(p);
		argv[3] = spec;
		if (buildctx_git(dir, argv, 0, NULL, cancel, &gerr) != 0) {
			if (gerr.code == ST_EABORTED)
				goto aborted;
			rc = st_error_set(err, ST_ENOTFOUND, "'%s' has no %s in commit %.12s (ref '%s')",
					  dir, bc->dockerfile, bc->git_commit, ref);
			goto out;
		}
	} else {
		if (asprintf(&df, "%s/%s", dir, bc->dockerfile) < 0) {
			df = NULL;
			goto nomem;
		}
		if (stat(df, &st) != 0 || !S_ISREG(st.st_mode)) {
			rc = st_error_set(err, ST_ENOTFOUND, "no %s in build context '%s'", bc->dockerfile, dir);
			goto out;
		}
	}
	if ((rc = load_ignore(bc, err)) != 0)
		goto out;
	*out = bc;
	bc = NULL;
	goto out;
aborted:
	if (err)
		*err = gerr;
	rc = gerr.code;
	goto out;
nomem:
	rc = st_error_set(err, ST_ENOMEM, "out of memory");
out:
	free(top);
	free(prefix);
	free(sha);
	free(status);
	free(spec);
	free(df);
	buildctx_free(bc);
	return rc;
}

int buildctx_always_sent(const struct buildctx *bc, const char *path)
{
	const char *df = bc->dockerfile;

	while (df[0] == '.' && df[1] == '/')
		df += 2;
	return !strcmp(path, ".dockerignore") || !strcmp(path, df);
}

/* ---- the working tree ------------------------------------------------------------ */

struct walk {
	struct buildctx *bc;
	struct tar_writer *tw;
	int sent_dockerfile;
	int sent_ignore;
};

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int walk_dir(struct walk *w, const char *rel, struct st_error *err)
{
	char *abs = NULL, **names = NULL;
	size_t n = 0, cap = 0, i;
	DIR *d = NULL;
	struct dirent *de;
	int rc = 0;

	if (asprintf(&abs, "%s%s%s", w->bc->dir, *rel ? "/" : "", rel) < 0)
		return st_error_set(err, ST_ENOMEM, "out of memory");
	if (!(d = opendir(abs))) {
		rc = st_error_set(err, ST_EIO, "cannot read directory '%s': %s", abs, strerror(errno));
		goto out;
	}
	while ((de = readdir(d)) != NULL) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (n == cap) {
			char **nn = realloc(names, (cap = cap ? cap * 2 : 32) * sizeof(*nn));

			if (!nn)
				goto nomem;
			names = nn;
		}
		if (!(names[n] = strdup(de->d_name)))
			goto nomem;
		n++;
	}
	qsort(names, n, sizeof(*names), cmp_names);
	for (i = 0; i < n && !rc; i++) {
		char *path = NULL, *full = NULL;
		struct stat st;
		int always, excluded;

		if (asprintf(&path, "%s%s%s", rel, *rel ? "/" : "", names[i]) < 0 ||
		    asprintf(&full, "%s/%s", abs, names[i]) < 0) {
			free(path);
			goto nomem;
		}
		if (lstat(full, &st) != 0) {
			rc = st_error_set(err, ST_EIO, "cannot read '%s': %s", full, strerror(errno));
		} else if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode) && !S_ISLNK(st.st_mode)) {
			w->bc->skipped++;  /* sockets, FIFOs, devices: docker leaves them out too */
		} else {
			always = buildctx_always_sent(w->bc, path);
			excluded = !always && dockerignore_excluded(w->bc->ignore, path);
			if (excluded && S_ISDIR(st.st_mode) &&
			    dockerignore_must_descend(w->bc->ignore, path)) {
				/* Not itself, but an exception may bring back something below. */
				w->bc->skipped++;
				rc = walk_dir(w, path, err);
			} else if (excluded) {
				w->bc->skipped++;
			} else {
				rc = tar_add_path(w->tw, path, full, err);
				w->bc->entries++;
				if (!strcmp(path, ".dockerignore"))
					w->sent_ignore = 1;
				if (always && strcmp(path, ".dockerignore"))
					w->sent_dockerfile = 1;
				if (!rc && S_ISDIR(st.st_mode))
					rc = walk_dir(w, path, err);
			}
		}
		free(path);
		free(full);
	}
	goto out;
nomem:
	rc = st_error_set(err, ST_ENOMEM, "out of memory");
out:
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	if (d)
		closedir(d);
	free(abs);
	return rc;
}

static int produce_tree(struct buildctx *bc, struct tar_writer *tw, struct st_error *err)
{
	struct walk w = { bc, tw, 0, 0 };
	int rc;

	if ((rc = walk_dir(&w, "", err)) != 0)
		return rc;
	/* A Dockerfile under an excluded directory still goes (docker does so). */
	if (!w.sent_dockerfile) {
		char *full = NULL;
		const char *df = bc->dockerfile;

		while (df[0] == '.' && df[1] == '/')
			df += 2;
		if (asprintf(&full, "%s/%s", bc->dir, df) < 0)
			return st_error_set(err, ST_ENOMEM, "out of memory");
		rc = tar_add_file(tw, df, full, err);
		free(full);
		if (rc)
			return rc;
		bc->entries++;
	}
	return tar_finish(tw, err);
}

/* ---- a commit through git archive ------------------------------------------------- */

/* Parsing of the ustar stream git archive writes: pax extended headers
 * ('x', path=), a global pax header ('g', dropped), then ustar entries. */

static uint64_t octal_field(const unsigned char *f, size_t n)
{
	uint64_t v = 0;
	size_t i = 0;

	while (i < n && (f[i] == ' ' || f[i] == '\0'))
		i++;
	for (; i < n && f[i] >= '0' && f[i] <= '7'; i++)
		v = v * 8 + (uint64_t)(f[i] - '0');
	return v;
}

static int all_zero(const unsigned char *b)
{
	size_t i;

	for (i = 0; i < 512; i++)
		if (b[i])
			return 0;
	return 1;
}

/* path= from a pax extended header's records; *out caller frees. */
static char *pax_path(const char *data, size_t len)
{
	size_t pos = 0;

	while (pos < len) {
		char *end;
		unsigned long rl = strtoul(data + pos, &end, 10);
		const char *kv;

		if (rl == 0 || end == data + pos || pos + rl > len || *end != ' ')
			return NULL;
		kv = end + 1;
		if (!strncmp(kv, "path=", 5)) {
			size_t vl = (size_t)(data + pos + rl - (kv + 5));

			if (vl && kv[5 + vl - 1] == '\n')
				vl--;
			return strndup(kv + 5, vl);
		}
		pos += rl;
	}
	return NULL;
}

struct streamer {
	struct buildctx *bc;
	docker_write_fn write;
	void *wud;
	struct child ch;
	struct sbuf pending;        /* an 'x' header with its data, until its entry is decided */
	char *pax_name;
	char **pruned;              /* excluded directories not descended into */
	size_t npruned;
};

/* child stop for git archive: the build request no longer reads (a write
 * of nothing fails: docker_write_fn). */
static int streamer_stop(void *ud)
{
	struct streamer *s = ud;
	struct st_error ignored = { 0 };

	return s->write(s->wud, NULL, 0, &ignored) != 0;
}

/* git archive's output ended early: because it was stopped, or cut short. */
static int cut_short(const struct streamer *s, const char *what, struct st_error *err)
{
	if (s->ch.stopped)
		return st_error_set(err, ST_EABORTED, "git archive interrupted");
	return st_error_set(err, ST_EPROTO, "%s", what);
}

static int under_pruned(const struct streamer *s, const char *path)
{
	size_t i;

	for (i = 0; i < s->npruned; i++) {
		size_t l = strlen(s->pruned[i]);

		if (!strncmp(path, s->pruned[i], l) && path[l] == '/')
			return 1;
	}
	return 0;
}

/* Copies (or skips) size bytes of data, padded to blocks. */
static int pass_data(struct streamer *s, uint64_t size, int send, struct st_error *err)
{
	unsigned char buf[512 * 16];
	uint64_t left = (size + 511) / 512 * 512;
	int rc;

	while (left > 0) {
		size_t chunk = left < sizeof(buf) ? (size_t)left : sizeof(buf);

		if (child_read_full(&s->ch, buf, chunk) != 1)
			return cut_short(s, "git archive ended in the middle of an entry", err);
		if (send && (rc = s->write(s->wud, buf, chunk, err)) != 0)
			return rc;
		left -= chunk;
	}
	return 0;
}

static int stream_archive(struct streamer *s, struct st_error *err)
{
	unsigned char h[512];
	int rc = 0;

	for (;;) {
		char name[512], *path;
		uint64_t size;
		char type;
		int got = child_read_full(&s->ch, h, sizeof(h)), send;

		if (got == 0 || (got == 1 && all_zero(h)))
			break;
		if (got != 1)
			return cut_short(s, "git archive's output is cut short", err);
		size = octal_field(h + 124, 12);
		type = (char)h[156];
		if (type == 'g') {
			if ((rc = pass_data(s, size, 0, err)) != 0)
				return rc;
			continue;
		}
		if (type == 'x') {
			size_t blocks = (size_t)((size + 511) / 512 * 512);
			size_t at;

			if (size > (1 << 20))
				return st_error_set(err, ST_EPROTO, "git archive wrote a pax header of %llu bytes",
						    (unsigned long long)size);
			sbuf_reset(&s->pending);
			if (sbuf_append(&s->pending, h, 512) != 0 || sbuf_grow(&s->pending, blocks) != 0)
				return st_error_set(err, ST_ENOMEM, "out of memory");
			at = s->pending.len;
			if (child_read_full(&s->ch, s->pending.buf + at, blocks) != 1)
				return cut_short(s, "git archive's output is cut short", err);
			s->pending.len += blocks;
			free(s->pax_name);
			s->pax_name = pax_path(s->pending.buf + at, (size_t)size);
			continue;
		}
		if (s->pax_name) {
			snprintf(name, sizeof(name), "%s", s->pax_name);
		} else if (h[345]) {
			snprintf(name, sizeof(name), "%.155s/%.100s", (const char *)h + 345, (const char *)h);
		} else {
			snprintf(name, sizeof(name), "%.100s", (const char *)h);
		}
		path = name;
		while (path[0] == '.' && path[1] == '/')
			path += 2;
		if (*path && path[strlen(path) - 1] == '/')
			path[strlen(path) - 1] = '\0';
		send = 1;
		if (*path && !buildctx_always_sent(s->bc, path) &&
		    (under_pruned(s, path) || dockerignore_excluded(s->bc->ignore, path))) {
			send = 0;
			if (type == '5' && !under_pruned(s, path) &&
			    !dockerignore_must_descend(s->bc->ignore, path)) {
				char **np = realloc(s->pruned, (s->npruned + 1) * sizeof(*np));

				if (!np || !(np[s->npruned] = strdup(path))) {
					if (np)
						s->pruned = np;
					return st_error_set(err, ST_ENOMEM, "out of memory");
				}
				s->pruned = np;
				s->npruned++;
			}
		}
		if (send) {
			if (s->pending.len && (rc = s->write(s->wud, s->pending.buf, s->pending.len, err)) != 0)
				return rc;
			if ((rc = s->write(s->wud, h, sizeof(h), err)) != 0)
				return rc;
			s->bc->entries++;
		} else {
			s->bc->skipped++;
		}
		sbuf_reset(&s->pending);
		free(s->pax_name);
		s->pax_name = NULL;
		/* Only regular files carry data in git's archives. */
		if ((type == '0' || type == '\0') && (rc = pass_data(s, size, send, err)) != 0)
			return rc;
	}
	{
		static const unsigned char end[1024];

		return s->write(s->wud, end, sizeof(end), err);
	}
}

static int produce_ref(struct buildctx *bc, docker_write_fn write, void *wud, struct st_error *err)
{
	struct streamer s;
	const char *argv[] = { "git", "archive", "--format=tar", NULL, NULL };
	char *tree = NULL;
	size_t i;
	int rc, rc2;

	memset(&s, 0, sizeof(s));
	s.bc = bc;
	s.write = write;
	s.wud = wud;
	/* SHA:prefix is the context's tree, with its contents at the top. */
	if (asprintf(&tree, "%s%s%.*s", bc->git_commit, *bc->git_prefix ? ":" : "",
		     *bc->git_prefix ? (int)strlen(bc->git_prefix) - 1 : 0, bc->git_prefix) < 0)
		return st_error_set(err, ST_ENOMEM, "out of memory");
	argv[3] = tree;
	if ((rc = spawn_git(bc->git_toplevel, argv, &s.ch, err)) != 0)
		goto out;
	s.ch.cancel = bc->cancel;
	s.ch.stop = streamer_stop;
	s.ch.stop_ud = &s;
	rc = stream_archive(&s, err);
	rc2 = child_finish(&s.ch, rc != 0, "git archive", rc ? NULL : err);
	if (!rc)
		rc = rc2;
out:
	sbuf_release(&s.pending);
	free(s.pax_name);
	for (i = 0; i < s.npruned; i++)
		free(s.pruned[i]);
	free(s.pruned);
	free(tree);
	return rc;
}

/* ---- producer ---------------------------------------------------------------------- */

int buildctx_produce(void *ud, docker_write_fn write, void *wud, struct st_error *err)
{
	struct buildctx *bc = ud;
	struct tar_writer tw;

	bc->entries = bc->skipped = 0;
	if (bc->ref)
		return produce_ref(bc, write, wud, err);
	tar_writer_init(&tw, write, wud);
	return produce_tree(bc, &tw, err);
}

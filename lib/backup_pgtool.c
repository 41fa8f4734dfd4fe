/*
 * backup_pgtool.c - runs pg_dump and psql in the postgres container (Docker
 * exec) or on this host (posix_spawn), password in the environment only.
 */
#include "backup_internal.h"
#include "config.h"
#include "text.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define IO_BUF (256 * 1024)
#define MAX_ARGS 32

/* ---- stderr ------------------------------------------------------------ */

static void stderr_line(struct pgtool_stderr *s)
{
	size_t n = s->line_len < PGTOOL_LINE_KEEP - 1 ? s->line_len : PGTOOL_LINE_KEEP - 1;

	/* The line as kept: without a CRLF's CR and trailing blanks. */
	while (n > 0 && (s->line[n - 1] == '\r' || s->line[n - 1] == ' '))
		n--;
	s->line[n] = '\0';
	if (!s->line[0])
		return;
	if (!s->first_line[0])
		text_copy(s->first_line, sizeof(s->first_line), s->line);
	if (!s->error_line[0] &&
	    (strstr(s->line, "error:") || strstr(s->line, "ERROR:") || strstr(s->line, "FATAL:") ||
	     strstr(s->line, "fatal:") || strstr(s->line, "PANIC:")))
		text_copy(s->error_line, sizeof(s->error_line), s->line);
}

void pgtool_stderr_feed(struct pgtool_stderr *s, const char *data, size_t len)
{
	const char *p = data, *end = data + len;

	s->bytes += len;
	if (s->text_len < sizeof(s->text) - 1) {
		size_t room = sizeof(s->text) - 1 - s->text_len;
		size_t n = len < room ? len : room;

		memcpy(s->text + s->text_len, data, n);
		s->text_len += n;
		s->text[s->text_len] = '\0';
	}
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = (size_t)((nl ? nl : end) - p);

		if (s->line_len < PGTOOL_LINE_KEEP - 1) {
			size_t room = PGTOOL_LINE_KEEP - 1 - s->line_len;
			memcpy(s->line + s->line_len, p, n < room ? n : room);
		}
		s->line_len += n;
		if (!nl)
			break;
		stderr_line(s);
		s->line_len = 0;
		p = nl + 1;
	}
}

void pgtool_stderr_finish(struct pgtool_stderr *s)
{
	if (s->line_len > 0) {
		stderr_line(s);
		s->line_len = 0;
	}
}

/* ---- finding binaries and the password ---------------------------------- */

const char *pgtool_failure(const struct pgtool_run *r, char *buf, size_t size)
{
	if (r->err_out.error_line[0])
		return r->err_out.error_line;
	if (r->err_out.first_line[0])
		return r->err_out.first_line;
	if (r->exit_code > 128 && r->exit_code < 160)
		snprintf(buf, size, "killed by signal %d without a message (was the postgres container stopped, "
			 "or its server killed?)", r->exit_code - 128);
	else
		snprintf(buf, size, "no message");
	return buf;
}

int pgtool_find_bin(const char *tool, char *out, size_t size, struct st_error *err)
{
	static const char base[] = "/usr/lib/postgresql";
	DIR *d = opendir(base);
	struct dirent *de;
	long best = -1;

	if (d) {
		while ((de = readdir(d)) != NULL) {
			char path[512], *end;
			long v = strtol(de->d_name, &end, 10);

			if (*end || end == de->d_name || v <= best)
				continue;
			snprintf(path, sizeof(path), "%s/%s/bin/%s", base, de->d_name, tool);
			if (access(path, X_OK) == 0) {
				best = v;
				snprintf(out, size, "%s/%s/bin", base, de->d_name);
			}
		}
		closedir(d);
	}
	if (best < 0) {
		st_error_set(err, ST_ENOTFOUND, "cannot find %s under %s/N/bin", tool, base);
		return st_error_hint(err, "install postgresql-client (Debian's /usr/bin/%s is a wrapper), "
				     "or set backup.via: exec", tool);
	}
	return 0;
}

int backup_read_password(const struct st_config *cfg, char **out, struct st_error *err)
{
	*out = NULL;
	return config_read_secret(&cfg->postgres.password, out, err);
}

/* ---- running ------------------------------------------------------------ */

/* "NAME=value" into a fresh string; the caller frees (and wipes secrets). */
static char *env_pair(const char *name, const char *value)
{
	size_t n = strlen(name) + strlen(value) + 2;
	char *s = malloc(n);

	if (s)
		snprintf(s, n, "%s=%s", name, value);
	return s;
}

static void wipe_free(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

static int run_exec(struct pgtool_run *r, const char *const *argv, const char *const *env,
		    struct st_error *err);
static int run_local(struct pgtool_run *r, const char *const *argv, char **env, struct st_error *err);

static int on_stderr(void *ud, const char *data, size_t len)
{
	struct pgtool_run *r = ud;

	pgtool_stderr_feed(&r->err_out, data, len);
	return 0;
}

static int on_stdout(void *ud, const char *data, size_t len)
{
	struct pgtool_run *r = ud;

	r->stdout_bytes += len;
	return r->on_stdout ? r->on_stdout(r->ud, data, len) : 0;
}

int pgtool_run(struct pgtool_run *r, struct st_error *err)
{
	const struct config_postgres *pg = &r->cfg->postgres;
	const char *argv[MAX_ARGS + 8];
	char *env[8] = { NULL };
	char bin[512], tool_path[600], port[16];
	int nenv = 0, n = 0, rc = 0, i;

	r->exit_code = -1;
	r->stdin_complete = 0;
	r->stdout_bytes = 0;
	memset(&r->err_out, 0, sizeof(r->err_out));
	if (r->via == CONFIG_VIA_LOCAL) {
		if (r->pg_bin)
			snprintf(bin, sizeof(bin), "%s", r->pg_bin);
		else if ((rc = pgtool_find_bin(r->tool, bin, sizeof(bin), err)) != 0)
			return rc;
		snprintf(tool_path, sizeof(tool_path), "%s/%s", bin, r->tool);
		argv[n++] = tool_path;
	} else {
		argv[n++] = r->tool;
	}
	argv[n++] = "-w"; /* never wait for a password prompt */
	for (i = 0; r->args && r->args[i]; i++) {
		if (n >= MAX_ARGS)
			return st_error_set(err, ST_EUSAGE, "too many arguments for %s", r->tool);
		argv[n++] = r->args[i];
	}
	argv[n] = NULL;

	/* The connection travels in the environment: a database name is never
	 * parsed as a connection string there, and the password is in no argv. */
	snprintf(port, sizeof(port), "%ld", pg->port);
	if (!(env[nenv++] = env_pair("PGUSER", pg->user)) ||
	    !(env[nenv++] = env_pair("PGDATABASE", r->database)) ||
	    !(env[nenv++] = env_pair("PGAPPNAME", "spilttea-ops")) ||
	    (r->via == CONFIG_VIA_LOCAL && !(env[nenv++] = env_pair("PGHOST", pg->host))) ||
	    (r->via == CONFIG_VIA_LOCAL && !(env[nenv++] = env_pair("PGPORT", port))) ||
	    (r->password && !(env[nenv++] = env_pair("PGPASSWORD", r->password)))) {
		rc = st_error_set(err, ST_ENOMEM, "out of memory");
		goto out;
	}
	env[nenv] = NULL;
	if (r->via == CONFIG_VIA_LOCAL)
		rc = run_local(r, argv, env, err);
	else
		rc = run_exec(r, argv, (const char *const *)env, err);
	pgtool_stderr_finish(&r->err_out);
out:
	for (i = 0; i < nenv; i++)
		wipe_free(env[i]);
	return rc;
}

static int run_exec(struct pgtool_run *r, const char *const *argv, const char *const *env,
		    struct st_error *err)
{
	const struct config_service *svc = config_service(r->cfg, "postgres");
	struct docker_exec_opts o;
	struct docker_exec_result res;
	int rc;

	if (!svc)
		return st_error_set(err, ST_ECONFIG, "backup.via is exec but services.postgres is not configured");
	if (!r->docker)
		return st_error_set(err, ST_EUSAGE, "backup.via exec needs a docker client");
	memset(&o, 0, sizeof(o));
	o.argv = argv;
	o.env = env;
	o.on_stdout = on_stdout;
	o.on_stderr = on_stderr;
	o.ud = r;
	o.stdin_read = r->stdin_read;
	o.stdin_ud = r->stdin_ud;
	o.timeout = DOCKER_TIMEOUT_NONE;
	rc = docker_exec(r->docker, svc->container, &o, &res, err);
	r->exit_code = res.exit_code;
	r->stdin_complete = res.stdin_complete;
	return rc;
}

/* Local: posix_spawn with stdout/stderr pipes and stdin on a socket (send()
 * with MSG_NOSIGNAL: a child that stops reading gives EPIPE, not SIGPIPE). */
static int run_local(struct pgtool_run *r, const char *const *argv, char **env, struct st_error *err)
{
	posix_spawn_file_actions_t fa;
	char **envp = NULL;
	char *buf = NULL, *inbuf = NULL;
	size_t nenv = 0, k, in_len = 0, in_off = 0;
	int out_p[2] = { -1, -1 }, err_p[2] = { -1, -1 }, in_s[2] = { -1, -1 };
	int fa_ready = 0, rc = 0, status = 0, stdin_done = 0, open_out = 1, open_err = 1;
	pid_t pid = -1;

	for (k = 0; environ[k]; k++)
		;
	envp = calloc(k + 9, sizeof(*envp));
	buf = malloc(IO_BUF);
	inbuf = r->stdin_read ? malloc(IO_BUF) : NULL;
	if (!envp || !buf || (r->stdin_read && !inbuf)) {
		rc = st_error_set(err, ST_ENOMEM, "out of memory");
		goto out;
	}
	/* Our environment minus any PG* the child must not inherit, plus ours. */
	for (k = 0; environ[k]; k++)
		if (strncmp(environ[k], "PG", 2) != 0)
			envp[nenv++] = environ[k];
	for (k = 0; env[k]; k++)
		envp[nenv++] = env[k];
	envp[nenv] = NULL;

	if (pipe2(out_p, O_CLOEXEC) || pipe2(err_p, O_CLOEXEC) ||
	    (r->stdin_read && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in_s))) {
		rc = st_error_set(err, ST_EIO, "cannot create pipes: %s", strerror(errno));
		goto out;
	}
	if (posix_spawn_file_actions_init(&fa) != 0) {
		rc = st_error_set(err, ST_ENOMEM, "out of memory");
		goto out;
	}
	fa_ready = 1;
	posix_spawn_file_actions_adddup2(&fa, out_p[1], STDOUT_FILENO);
	posix_spawn_file_actions_adddup2(&fa, err_p[1], STDERR_FILENO);
	if (r->stdin_read)
		posix_spawn_file_actions_adddup2(&fa, in_s[1], STDIN_FILENO);
	else
		posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
	rc = posix_spawn(&pid, argv[0], &fa, NULL, (char *const *)argv, envp);
	if (rc != 0) {
		pid = -1;
		rc = st_error_set(err, ST_ESERVICE, "cannot run '%s': %s", argv[0], strerror(rc));
		goto out;
	}
	close(out_p[1]);
	close(err_p[1]);
	out_p[1] = err_p[1] = -1;
	if (r->stdin_read) {
		close(in_s[1]);
		in_s[1] = -1;
		fcntl(in_s[0], F_SETFL, fcntl(in_s[0], F_GETFL) | O_NONBLOCK);
	}
	while (open_out || open_err) {
		struct pollfd p[3];
		int np = 0, io = -1, ie = -1, ii = -1;

		if (r->cancel && *r->cancel) {
			rc = st_error_set(err, ST_EABORTED, "%s interrupted", r->tool);
			goto out;
		}
		if (r->stdin_read && !stdin_done && in_off == in_len) {
			ssize_t got = r->stdin_read(r->stdin_ud, inbuf, IO_BUF, err);

			if (got < 0) {
				rc = (int)got;
				goto out;
			}
			if (got == 0) {
				close(in_s[0]);
				in_s[0] = -1;
				stdin_done = 1;
				r->stdin_complete = 1;
			} else {
				in_len = (size_t)got;
				in_off = 0;
			}
		}
		if (open_out) {
			p[np] = (struct pollfd){ .fd = out_p[0], .events = POLLIN };
			io = np++;
		}
		if (open_err) {
			p[np] = (struct pollfd){ .fd = err_p[0], .events = POLLIN };
			ie = np++;
		}
		if (r->stdin_read && !stdin_done) {
			p[np] = (struct pollfd){ .fd = in_s[0], .events = POLLOUT };
			ii = np++;
		}
		if (poll(p, (nfds_t)np, 250) < 0) {
			if (errno == EINTR)
				continue;
			rc = st_error_set(err, ST_EIO, "poll failed: %s", strerror(errno));
			goto out;
		}
		if (io >= 0 && (p[io].revents & (POLLIN | POLLHUP | POLLERR))) {
			ssize_t got = read(out_p[0], buf, IO_BUF);

			if (got > 0) {
				if (on_stdout(r, buf, (size_t)got)) {
					rc = st_error_set(err, ST_EABORTED, "stopped by the output callback");
					goto out;
				}
			} else if (got == 0 || errno != EINTR) {
				open_out = 0;
			}
		}
		if (ie >= 0 && (p[ie].revents & (POLLIN | POLLHUP | POLLERR))) {
			ssize_t got = read(err_p[0], buf, IO_BUF);

			if (got > 0)
				on_stderr(r, buf, (size_t)got);
			else if (got == 0 || errno != EINTR)
				open_err = 0;
		}
		if (ii >= 0 && (p[ii].revents & (POLLOUT | POLLHUP | POLLERR))) {
			ssize_t w = send(in_s[0], inbuf + in_off, in_len - in_off, MSG_NOSIGNAL);

			if (w > 0) {
				in_off += (size_t)w;
			} else if (w < 0 && (errno == EPIPE || errno == ECONNRESET)) {
				/* The child stopped reading (it failed): collect its output. */
				stdin_done = 1;
				close(in_s[0]);
				in_s[0] = -1;
			}
		}
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	pid = -1;
	r->exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
out:
	if (pid > 0) {
		/* Stopped half way: the child must not finish on its own. */
		kill(pid, SIGKILL);
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
	}
	if (fa_ready)
		posix_spawn_file_actions_destroy(&fa);
	for (k = 0; k < 2; k++) {
		if (out_p[k] >= 0)
			close(out_p[k]);
		if (err_p[k] >= 0)
			close(err_p[k]);
		if (in_s[k] >= 0)
			close(in_s[k]);
	}
	free(envp);
	free(buf);
	free(inbuf);
	return rc;
}

/*
 * incident_net.c - the runbook's "Rate Limit Exceeded / DDoS": requests per
 * client address from the backend's logs (Docker logs API, not `docker
 * logs | awk`), and the iptables rule that blocks one.
 */
#include "incident.h"
#include "docker.h"
#include "timeutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

struct top_state {
	struct accesslog_counter *counter;
	const struct accesslog_trust *trust;
	unsigned long long lines;
	int continuing;               /* inside a line longer than max_line */
};

static int on_line(void *ud, const struct docker_log_line *l, struct st_error *err)
{
	struct top_state *s = ud;
	struct accesslog_request rq;
	int piece_of_long = s->continuing;

	s->continuing = l->split;
	if (piece_of_long)
		return 0; /* the rest of an over-long line: its start was judged */
	s->lines++;
	if (!accesslog_parse_line(l->text, l->len, s->trust, &rq))
		return 0;
	return accesslog_counter_add(s->counter, rq.client, err);
}

int incident_top_ips(struct docker_client *docker, const struct incident_top_ips_opts *o,
		     json_t **out, struct st_error *err)
{
	struct top_state s;
	struct docker_logs_opts lo;
	struct accesslog_count *top = NULL;
	json_t *res = NULL, *arr;
	size_t n = 0, i;
	char since[40];
	int rc;

	*out = NULL;
	memset(&s, 0, sizeof(s));
	s.trust = o->trust;
	if ((rc = accesslog_counter_new(&s.counter, err)) != 0)
		return rc;
	memset(&lo, 0, sizeof(lo));
	lo.since = o->since;
	lo.tail = DOCKER_LOGS_TAIL_ALL;
	lo.timestamps = 1;
	lo.max_line = 64 * 1024;
	lo.timeout = o->timeout;
	if ((rc = docker_container_logs(docker, o->container, &lo, on_line, &s, err)) != 0) {
		st_error_wrap(err, "cannot count requests");
		goto out;
	}
	if ((rc = accesslog_counter_top(s.counter, o->limit, &top, &n, err)) != 0)
		goto out;
	res = json_pack("{s:s,s:s*,s:I,s:I,s:I,s:b,s:[]}", "container", o->container, "since",
			o->since > 0 ? time_format_rfc3339(o->since, since, sizeof(since)) : NULL, "lines",
			(json_int_t)s.lines, "requests", (json_int_t)accesslog_counter_total(s.counter),
			"distinct", (json_int_t)accesslog_counter_distinct(s.counter), "approximate",
			!accesslog_counter_exact(s.counter), "top");
	if (!res) {
		rc = st_error_set(err, ST_ENOMEM, "out of memory");
		goto out;
	}
	arr = json_object_get(res, "top");
	for (i = 0; i < n; i++) {
		double pct = 100.0 * (double)top[i].count / (double)accesslog_counter_total(s.counter);

		if (json_array_append_new(arr, json_pack("{s:s,s:I,s:f,s:I}", "ip", top[i].ip, "requests",
							 (json_int_t)top[i].count, "percent", pct, "overcount_max",
							 (json_int_t)top[i].error))) {
			rc = st_error_set(err, ST_ENOMEM, "out of memory");
			goto out;
		}
	}
	*out = res;
	res = NULL;
out:
	free(top);
	json_decref(res);
	accesslog_counter_free(s.counter);
	return rc;
}

/* ---- blocking --------------------------------------------------------------- */

/* The IPv4 address an IPv4-mapped IPv6 address (::ffff:a.b.c.d) carries,
 * as canonical text in place; anything else unchanged. */
static int unmap_v4(char *canon, size_t size, int family)
{
	unsigned char a[16];
	static const unsigned char prefix[12] = { [10] = 0xff, [11] = 0xff };

	if (family != AF_INET6 || inet_pton(AF_INET6, canon, a) != 1 || memcmp(a, prefix, 12) != 0 ||
	    !inet_ntop(AF_INET, a + 12, canon, (socklen_t)size))
		return family;
	return AF_INET;
}

/* 1 when canon (of family) is the client address of ssh_connection. */
static int is_ssh_peer(const char *canon, int family, const char *ssh_connection)
{
	char peer[ACCESSLOG_IP_MAX], text[ACCESSLOG_IP_MAX];
	size_t n;
	int pf;

	if (!ssh_connection)
		return 0;
	n = strcspn(ssh_connection, " ");
	if (n == 0 || n >= sizeof(text))
		return 0;
	memcpy(text, ssh_connection, n);
	text[n] = '\0';
	if (!(pf = accesslog_ip_parse(text, peer, sizeof(peer))))
		return 0;
	pf = unmap_v4(peer, sizeof(peer), pf);
	return pf == family && !strcmp(peer, canon);
}

int incident_block_check(const char *ip, const struct accesslog_trust *trust, const char *ssh_connection,
			 char *canon, size_t size, struct st_error *err)
{
	unsigned char a[16];
	int family = accesslog_ip_parse(ip, canon, size);
	const char *why = NULL;

	if (!family)
		return st_error_set(err, ST_EUSAGE,
				    "'%s' is not an IP address (a dotted quad like 203.0.113.7, or IPv6)",
				    ip ? ip : "");
	family = unmap_v4(canon, size, family);
	inet_pton(family, canon, a);
	if (family == AF_INET) {
		if (a[0] == 0)
			why = "is in 0.0.0.0/8 (this network)";
		else if (a[0] == 127)
			why = "is a loopback address: blocking it breaks this host's own services";
		else if (a[0] >= 224 && a[0] <= 239)
			why = "is a multicast address";
		else if (a[0] == 255 && a[1] == 255 && a[2] == 255 && a[3] == 255)
			why = "is the broadcast address";
	} else {
		static const unsigned char zero[16], one[16] = { [15] = 1 };

		if (!memcmp(a, zero, 16))
			why = "is the unspecified address";
		else if (!memcmp(a, one, 16))
			why = "is the loopback address: blocking it breaks this host's own services";
		else if (a[0] == 0xff)
			why = "is a multicast address";
	}
	if (!why && accesslog_trust_contains(trust, canon))
		why = "is a trusted proxy (incident.trusted_proxies): blocking it blocks everyone behind it";
	if (!why && is_ssh_peer(canon, family, ssh_connection))
		why = "is where this SSH session comes from (SSH_CONNECTION): blocking it locks you out";
	if (why)
		return st_error_set(err, ST_EUSAGE, "refusing to block '%s': it %s", canon, why);
	return family;
}

const char *incident_ssh_connection(void)
{
	const char *v = getenv("SSH_CONNECTION");

	return v && *v ? v : getenv("SSH_CLIENT");
}

void incident_block_argv(const char *canon, int family, const char *chain, const char *argv[8])
{
	argv[0] = family == AF_INET6 ? "ip6tables" : "iptables";
	argv[1] = "-I";
	argv[2] = chain && *chain ? chain : "INPUT";
	argv[3] = "-s";
	argv[4] = canon;
	argv[5] = "-j";
	argv[6] = "DROP";
	argv[7] = NULL;
}

char *incident_block_text(const char *canon, int family, const char *chain, char *text, size_t size)
{
	const char *argv[8];

	incident_block_argv(canon, family, chain, argv);
	snprintf(text, size, "%s %s %s %s %s %s %s", argv[0], argv[1], argv[2], argv[3], argv[4],
		 argv[5], argv[6]);
	return text;
}

/* Absolute path of prog in $PATH (executable regular file); 0 or -1. */
static int find_in_path(const char *prog, char *out, size_t size)
{
	const char *path = getenv("PATH"), *p, *e;

	if (!path || !*path)
		return -1;
	for (p = path; *p; p = *e ? e + 1 : e) {
		struct stat st;

		e = strchr(p, ':');
		if (!e)
			e = p + strlen(p);
		if (e == p || *p != '/')
			continue; /* relative PATH entries are not trusted for a root command */
		if (snprintf(out, size, "%.*s/%s", (int)(e - p), p, prog) >= (int)size)
			continue;
		if (stat(out, &st) == 0 && S_ISREG(st.st_mode) && access(out, X_OK) == 0)
			return 0;
	}
	return -1;
}

/* Runs path with argv (no shell), for at most timeout seconds (then it is
 * killed: ST_ETIMEOUT); *status its exit status, the first line of its
 * stderr into msg. stderr is read to its end, whatever its size: a child
 * blocked on a full pipe would never exit. 0, or ST_EIO when it could not
 * be run. */
static int run(const char *path, const char *const *argv, double timeout, int *status, char *msg,
	       size_t msize, struct st_error *err)
{
	double deadline = time_monotonic() + timeout;
	int fds[2], ws = 0, rc = 0, open_pipe = 1;
	size_t got = 0;
	pid_t pid;

	msg[0] = '\0';
	if (pipe2(fds, O_CLOEXEC) != 0)
		return st_error_set(err, ST_EIO, "cannot run %s: %s", path, strerror(errno));
	pid = fork();
	if (pid < 0) {
		close(fds[0]);
		close(fds[1]);
		return st_error_set(err, ST_EIO, "cannot run %s: %s", path, strerror(errno));
	}
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDWR);

		if (devnull >= 0) {
			dup2(devnull, STDIN_FILENO);
			dup2(devnull, STDOUT_FILENO);
		}
		dup2(fds[1], STDERR_FILENO);
		execv(path, (char *const *)argv);
		_exit(127);
	}
	close(fds[1]);
	for (;;) {
		double left = deadline - time_monotonic();
		pid_t w;

		if (!open_pipe) {
			w = waitpid(pid, &ws, WNOHANG);
			if (w == pid || (w < 0 && errno != EINTR))
				break;
		}
		if (left <= 0) {
			kill(pid, SIGKILL);
			while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
				;
			rc = st_error_set(err, ST_ETIMEOUT, "%s did not finish within %.0f s", path, timeout);
			st_error_hint(err, "another program may hold the xtables lock: see 'ps -ef | grep tables'");
			break;
		}
		if (open_pipe) {
			struct pollfd pfd = { fds[0], POLLIN, 0 };
			char sink[4096];
			ssize_t n;

			if (poll(&pfd, 1, (int)(left * 1000) + 1) <= 0)
				continue;
			n = got + 1 < msize ? read(fds[0], msg + got, msize - 1 - got) : read(fds[0], sink, sizeof(sink));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				open_pipe = 0;
			else if (got + 1 < msize)
				got += (size_t)n;
		} else {
			time_sleep(left < 0.02 ? left : 0.02);
		}
	}
	close(fds[0]);
	msg[got] = '\0';
	msg[strcspn(msg, "\n")] = '\0';
	if (rc == 0)
		*status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + (WIFSIGNALED(ws) ? WTERMSIG(ws) : 0);
	return rc;
}

int incident_block_apply(const char *canon, int family, const char *chain, double timeout, int *already,
			 struct st_error *err)
{
	const char *rule[8], *argv[11];
	char path[4096], msg[512];
	int status = 0, rc, i;

	*already = 0;
	incident_block_argv(canon, family, chain, rule);
	if (geteuid() != 0) {
		st_error_set(err, ST_EABORTED, "adding a firewall rule needs root (running as uid %ld)",
			     (long)geteuid());
		return st_error_hint(err, "run it as root, or add the printed rule by hand");
	}
	if (find_in_path(rule[0], path, sizeof(path)) != 0) {
		st_error_set(err, ST_ENOTFOUND, "%s is not installed (not found in PATH)", rule[0]);
		return st_error_hint(err, "install it (apt-get install iptables), or block the address "
				     "in your cloud firewall");
	}
	/* iptables -w 5 RULE...: wait up to 5 s for the xtables lock instead of
	 * failing at once when another program (docker, fail2ban) holds it. */
	argv[0] = rule[0];
	argv[1] = "-w";
	argv[2] = "5";
	for (i = 1; i <= 7; i++)
		argv[i + 2] = rule[i];
	/* -C: the same rule exists already. */
	argv[3] = "-C";
	if ((rc = run(path, argv, timeout, &status, msg, sizeof(msg), err)) != 0)
		return rc;
	if (status == 0) {
		*already = 1;
		return 0;
	}
	argv[3] = "-I";
	if ((rc = run(path, argv, timeout, &status, msg, sizeof(msg), err)) != 0)
		return rc;
	if (status != 0)
		return st_error_set(err, ST_EFAILED, "%s -I %s -s %s -j DROP failed (exit %d)%s%s",
				    rule[0], rule[2], canon, status, msg[0] ? ": " : "", msg);
	return 0;
}

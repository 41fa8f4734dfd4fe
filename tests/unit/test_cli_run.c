/*
 * The `run` command as a process: exit statuses, signals (SIGPIPE, SIGHUP)
 * and what they leave behind (journal end record, no lock file). Runbooks
 * of generic actions only: no service is needed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "timeutil.h"
#include "testutil.h"

/* The least a configuration needs; nothing here connects to it. */
#define CONFIG_REST \
	"services:\n  backend:\n    container: spilttea-test-none\n" \
	"postgres:\n  host: 127.0.0.1\n  user: u\n  database: d\nredis:\n  host: 127.0.0.1\n"

#define SLOW_RUNBOOK \
	"name: slow\nlock: slow\nsteps:\n" \
	"  - { name: a, action: sleep, args: { seconds: 0.3 } }\n" \
	"  - { name: b, action: sleep, args: { seconds: 0.3 } }\n"

struct proc {
	int status;       /* exit status, or 128 + signal */
	char *out, *err;  /* caller frees */
};

struct fx {
	char *dir;
	char cfg[600], state[600], slow[600];
};

static int setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	char text[1200];

	fx->dir = tu_mkdtemp();
	snprintf(fx->state, sizeof(fx->state), "%s/state", fx->dir);
	snprintf(fx->cfg, sizeof(fx->cfg), "%s/config.yaml", fx->dir);
	snprintf(text, sizeof(text), "state_dir: %s\n" CONFIG_REST, fx->state);
	tu_write(fx->cfg, text);
	snprintf(fx->slow, sizeof(fx->slow), "%s/slow.yaml", fx->dir);
	tu_write(fx->slow, SLOW_RUNBOOK);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fx *fx = *state;

	tu_rmtree(fx->dir);
	free(fx->dir);
	free(fx);
	return 0;
}

enum { OUT_FILE, OUT_BROKEN_PIPE };

/* Runs the binary with args; stdout to a file or to a pipe nobody reads;
 * signal (0: none) sent after delay seconds. */
static void run_bin(struct fx *fx, struct proc *p, int out_mode, int sig, double delay,
		    const char *const *args)
{
	const char *bin = getenv("ST_BINARY");
	char *argv[16], outp[700], errp[700];
	int pfd[2] = { -1, -1 }, st, i;
	pid_t pid;

	assert_non_null(bin);
	argv[0] = (char *)bin;
	for (i = 0; args[i] && i < 14; i++)
		argv[i + 1] = (char *)args[i];
	argv[i + 1] = NULL;
	snprintf(outp, sizeof(outp), "%s/out", fx->dir);
	snprintf(errp, sizeof(errp), "%s/err", fx->dir);
	if (out_mode == OUT_BROKEN_PIPE)
		assert_int_equal(pipe(pfd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int o = out_mode == OUT_FILE ? open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0600) : pfd[1];
		int e = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		/* As after `| true`: SIGPIPE at its default, nobody reading. */
		signal(SIGPIPE, SIG_DFL);
		if (pfd[0] >= 0)
			close(pfd[0]);
		if (o < 0 || e < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0 || chdir(fx->dir) != 0)
			_exit(127);
		unsetenv("SPILTTEA_OPS_CONFIG");
		execv(bin, argv);
		_exit(127);
	}
	if (pfd[0] >= 0) {
		close(pfd[0]);
		close(pfd[1]);
	}
	if (sig) {
		char lockp[700];
		int waited;

		/* The lock exists once the run is inside its steps, so its signal
		 * handlers are in place: a fixed delay alone races a loaded CI
		 * machine (ASan start-up takes longer than 0.15 s there). */
		snprintf(lockp, sizeof(lockp), "%s/locks/slow.lock", fx->state);
		for (waited = 0; waited < 1000 && access(lockp, F_OK) != 0; waited++)
			time_sleep(0.01);
		time_sleep(delay);
		kill(pid, sig);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	p->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	p->out = out_mode == OUT_FILE ? tu_read(outp) : strdup("");
	p->err = tu_read(errp);
}

static void proc_release(struct proc *p)
{
	free(p->out);
	free(p->err);
}

/* The result of the journal's last record ("" when none). */
static void last_end(struct fx *fx, char *buf, size_t size)
{
	char path[700], *text, *last;

	snprintf(path, sizeof(path), "%s/journal.jsonl", fx->state);
	text = tu_read(path);
	buf[0] = '\0';
	if (!text)
		return;
	last = strstr(text, "\"type\":\"end\"");
	if (last) {
		char *r = strstr(last, "\"result\":\"");

		if (r)
			snprintf(buf, size, "%.*s", (int)strcspn(r + 10, "\""), r + 10);
	}
	free(text);
}

static int lock_left(struct fx *fx)
{
	char path[700];

	snprintf(path, sizeof(path), "%s/locks/slow.lock", fx->state);
	return access(path, F_OK) == 0;
}

/* `run ... | true`: stdout goes away; the run must finish, journal its
 * end and release its lock, not die of SIGPIPE (review item 4). */
static void test_closed_stdout_does_not_kill_the_run(void **state)
{
	struct fx *fx = *state;
	struct proc p;
	char end[32];

	run_bin(fx, &p, OUT_BROKEN_PIPE, 0, 0,
		(const char *const[]){ "-c", fx->cfg, "run", fx->slow, NULL });
	assert_int_equal(p.status, 0);
	last_end(fx, end, sizeof(end));
	assert_string_equal(end, "ok");
	assert_false(lock_left(fx));
	proc_release(&p);
}

/* SIGHUP (terminal closed) stops the run like SIGTERM: undo, journal end,
 * lock released, exit 3. */
static void test_sighup_stops_like_sigterm(void **state)
{
	struct fx *fx = *state;
	struct proc p;
	char end[32];

	run_bin(fx, &p, OUT_FILE, SIGHUP, 0.15,
		(const char *const[]){ "-c", fx->cfg, "run", fx->slow, NULL });
	assert_int_equal(p.status, 3);
	last_end(fx, end, sizeof(end));
	assert_string_equal(end, "aborted");
	assert_false(lock_left(fx));
	proc_release(&p);
}

/* Exit statuses (review item 9): what the operator must fix in the
 * runbook, parameters or configuration is 2, not 1. */
static void test_exit_status_of_setup_errors(void **state)
{
	struct fx *fx = *state;
	char rb[700], cfg2[700], text[1200];
	struct proc p;

	/* --dry-run with a ${config.*} that is not set. */
	snprintf(rb, sizeof(rb), "%s/cfgref.yaml", fx->dir);
	tu_write(rb, "name: cfgref\nsteps:\n  - name: one\n    action: sleep\n"
		     "    args: { seconds: \"${config.nope.key}\" }\n");
	run_bin(fx, &p, OUT_FILE, 0, 0,
		(const char *const[]){ "-c", fx->cfg, "--dry-run", "run", rb, NULL });
	assert_int_equal(p.status, 2);
	assert_non_null(strstr(p.err, "configuration key 'nope.key' is not set"));
	proc_release(&p);

	/* A parameter value that is not UTF-8: a usage error that says so. */
	snprintf(rb, sizeof(rb), "%s/ctl.yaml", fx->dir);
	tu_write(rb, "name: ctl\nparams:\n  msg: {}\nsteps:\n  - name: one\n    action: fail\n"
		     "    args: { message: \"${args.msg}\" }\n");
	run_bin(fx, &p, OUT_FILE, 0, 0,
		(const char *const[]){ "-c", fx->cfg, "run", rb, "msg=caf\xe9", NULL });
	assert_int_equal(p.status, 2);
	assert_null(strstr(p.err, "out of memory"));
	assert_non_null(strstr(p.err, "parameter 'msg' is not valid UTF-8"));
	proc_release(&p);

	/* A state_dir that cannot be created: the configuration is wrong. */
	snprintf(cfg2, sizeof(cfg2), "%s/bad.yaml", fx->dir);
	snprintf(text, sizeof(text), "state_dir: %s/slow.yaml/state\n" CONFIG_REST, fx->dir);
	tu_write(cfg2, text);
	run_bin(fx, &p, OUT_FILE, 0, 0, (const char *const[]){ "-c", cfg2, "run", fx->slow, NULL });
	assert_int_equal(p.status, 2);
	assert_non_null(strstr(p.err, "state_dir"));
	proc_release(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
		T(test_closed_stdout_does_not_kill_the_run),
		T(test_sighup_stops_like_sigterm),
		T(test_exit_status_of_setup_errors),
#undef T
	};

	if (!getenv("ST_BINARY")) {
		fprintf(stderr, "ST_BINARY is not set (run through ctest)\n");
		return 1;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}

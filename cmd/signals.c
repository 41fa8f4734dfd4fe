/*
 * signals.c - how every command is interrupted (see cmd.h).
 */
#include "cmd.h"

#include <signal.h>
#include <string.h>

volatile sig_atomic_t cmd_interrupted;

static const int caught[CMD_SIGNALS_N] = { SIGINT, SIGTERM, SIGHUP };

/* First signal: ask the run to stop after what it is doing and undo.
 * Second (the operator insists, or the session is gone for good): die the
 * way that signal kills. */
static void on_signal(int sig)
{
	if (cmd_interrupted) {
		signal(sig, SIG_DFL);
		raise(sig);
		return;
	}
	cmd_interrupted = 1;
}

volatile sig_atomic_t *cmd_signals_catch(struct cmd_signals *s)
{
	struct sigaction sa;
	size_t i;

	memset(s, 0, sizeof(*s));
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0; /* no SA_RESTART: a prompt, a poll or a sleep must wake up */
	cmd_interrupted = 0;
	for (i = 0; i < CMD_SIGNALS_N; i++)
		s->set[i] = sigaction(caught[i], &sa, &s->old[i]) == 0;
	return &cmd_interrupted;
}

void cmd_signals_restore(struct cmd_signals *s)
{
	size_t i;

	for (i = 0; i < CMD_SIGNALS_N; i++)
		if (s->set[i])
			sigaction(caught[i], &s->old[i], NULL);
	memset(s->set, 0, sizeof(s->set));
}

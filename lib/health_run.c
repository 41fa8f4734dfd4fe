/*
 * health_run.c - runs health tasks concurrently, each on a detached thread
 * with its own deadline, and never waits for one past it.
 *
 * Ownership is what makes abandoning a thread safe: each task's slot holds
 * everything the thread touches (its task, argument, result array and a
 * private copy of its previous state). The session (mutex, condition, count
 * of pending tasks) is reference-counted by the runner and every live thread.
 * When the runner gives up on a slot it marks it abandoned under the lock,
 * detaches its thread and never touches it again; the thread, when it
 * finally returns, sees the mark and frees the slot itself. Whoever drops
 * the last session reference frees the session. A thread that finished in
 * time is joined: once health_run returns, none of its threads is still
 * exiting (OpenSSL frees a thread's state in its thread-exit handlers; one
 * still running them when the process exits leaks that state, or crashes
 * in OpenSSL's atexit cleanup).
 */
#include "health.h"
#include "sbuf.h"
#include "timeutil.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Time granted after a deadline for a task that honoured it to report its
 * own, more precise error (a client timeout) before the runner calls it a
 * time out. */
#define HEALTH_GRACE_SECONDS 0.25

/* Threads given up on that have not returned yet, in this process. */
static atomic_size_t abandoned_running;

size_t health_abandoned_running(void)
{
	return atomic_load(&abandoned_running);
}

struct session {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int refs;
	size_t pending;
};

struct slot {
	struct session *s;
	struct health_task task;
	struct health_task_run run;
	pthread_t thread;
	int joinable;   /* started, and the runner's to join (or detach) */
	int done;
	int abandoned;
};

int health_task_add_name(struct health_task *t, const char *name)
{
	char **grown, *copy;

	copy = strdup(name);
	if (!copy)
		return ST_ENOMEM;
	grown = realloc(t->names, (t->n_names + 1) * sizeof(*grown));
	if (!grown) {
		free(copy);
		return ST_ENOMEM;
	}
	t->names = grown;
	t->names[t->n_names++] = copy;
	return 0;
}

void health_task_release(struct health_task *t)
{
	size_t i;

	if (!t)
		return;
	for (i = 0; i < t->n_names; i++)
		free(t->names[i]);
	free(t->names);
	if (t->free_arg && t->arg)
		t->free_arg(t->arg);
	free(t->state_key);
	memset(t, 0, sizeof(*t));
}

static void session_free(struct session *s)
{
	pthread_cond_destroy(&s->cond);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

static void slot_free(struct slot *sl)
{
	size_t i;

	if (!sl)
		return;
	for (i = 0; i < sl->run.n_results; i++)
		health_result_release(&sl->run.results[i]);
	free(sl->run.results);
	json_decref((json_t *)sl->run.prev_state);
	json_decref(sl->run.state);
	health_task_release(&sl->task);
	free(sl);
}

static void *task_thread(void *p)
{
	struct slot *sl = p;
	struct session *s = sl->s;
	double t0 = time_monotonic(), elapsed;
	size_t i;
	int abandoned, last;

	sl->task.fn(sl->task.arg, &sl->run);
	elapsed = time_monotonic() - t0;
	/* The argument is the thread's alone: free it before reporting. */
	if (sl->task.free_arg && sl->task.arg)
		sl->task.free_arg(sl->task.arg);
	sl->task.arg = NULL;
	for (i = 0; i < sl->run.n_results; i++)
		if (sl->run.results[i].duration < 0)
			sl->run.results[i].duration = elapsed;

	pthread_mutex_lock(&s->lock);
	sl->done = 1;
	s->pending--;
	abandoned = sl->abandoned;
	last = --s->refs == 0;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	/* Not abandoned: the slot is the runner's from here on. */
	if (abandoned)
		slot_free(sl);
	if (last)
		session_free(s);
	if (abandoned)
		atomic_fetch_sub(&abandoned_running, 1);
	return NULL;
}

static int name_selected(const char *name, const char *const *select)
{
	size_t i;

	if (!select)
		return 1;
	for (i = 0; select[i]; i++)
		if (health_name_matches(name, select[i]))
			return 1;
	return 0;
}

/* 1 when the group (id up to its first '.') of tasks[ti].names[ni] already
 * appeared earlier. */
static int group_seen(const struct health_task *tasks, size_t ti, size_t ni)
{
	const char *name = tasks[ti].names[ni];
	size_t len = strcspn(name, "."), i, j;

	for (i = 0; i <= ti; i++)
		for (j = 0; j < (i == ti ? ni : tasks[i].n_names); j++)
			if (strcspn(tasks[i].names[j], ".") == len &&
			    !strncmp(tasks[i].names[j], name, len))
				return 1;
	return 0;
}

/* ST_EUSAGE naming the first pattern that selects nothing; the hint lists
 * the groups of check ids (the full list is in --help). */
static int check_patterns(const struct health_task *tasks, size_t n, const char *const *select,
			  struct st_error *err)
{
	size_t p, i, j;
	int found;
	struct sbuf groups = SBUF_INIT;

	for (p = 0; select && select[p]; p++) {
		found = 0;
		for (i = 0; i < n && !found; i++)
			for (j = 0; j < tasks[i].n_names && !found; j++)
				found = health_name_matches(tasks[i].names[j], select[p]);
		if (found)
			continue;
		for (i = 0; i < n; i++)
			for (j = 0; j < tasks[i].n_names; j++)
				if (!group_seen(tasks, i, j))
					sbuf_printf(&groups, "%s%.*s", groups.len ? ", " : "",
						    (int)strcspn(tasks[i].names[j], "."),
						    tasks[i].names[j]);
		st_error_set(err, ST_EUSAGE, "no health check matches '%s'", select[p]);
		st_error_hint(err, "give a check id or one of its groups: %s", sbuf_str(&groups));
		sbuf_release(&groups);
		return ST_EUSAGE;
	}
	return 0;
}

static int session_new(struct session **out)
{
	struct session *s = calloc(1, sizeof(*s));
	pthread_condattr_t ca;

	if (!s)
		return ST_ENOMEM;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, &ca);
	pthread_condattr_destroy(&ca);
	s->refs = 1;
	*out = s;
	return 0;
}

/* Builds a slot for t (moved in) with one pre-set result per name. */
static int slot_new(struct session *s, struct health_task *t, const struct health_run_opts *opts,
		    struct slot **out)
{
	struct slot *sl = calloc(1, sizeof(*sl));
	const json_t *prev = NULL;
	size_t i;
	int rc = 0;

	if (!sl) {
		health_task_release(t);
		return ST_ENOMEM;
	}
	sl->s = s;
	sl->task = *t;
	memset(t, 0, sizeof(*t));
	sl->run.timeout = opts->timeout;
	sl->run.results = calloc(sl->task.n_names ? sl->task.n_names : 1, sizeof(*sl->run.results));
	if (!sl->run.results) {
		rc = ST_ENOMEM;
		goto out;
	}
	for (i = 0; i < sl->task.n_names && !rc; i++) {
		rc = health_result_init(&sl->run.results[i], sl->task.names[i]);
		if (!rc)
			sl->run.n_results++;
	}
	if (opts->prev_state && sl->task.state_key)
		prev = json_object_get(opts->prev_state, sl->task.state_key);
	if (!rc && prev) {
		sl->run.prev_state = json_deep_copy(prev);
		if (!sl->run.prev_state)
			rc = ST_ENOMEM;
	}
out:
	if (rc) {
		slot_free(sl);
		return rc;
	}
	*out = sl;
	return 0;
}

static struct timespec abs_monotonic(double t)
{
	struct timespec ts;

	ts.tv_sec = (time_t)floor(t);
	ts.tv_nsec = (long)((t - floor(t)) * 1e9);
	if (ts.tv_nsec >= 1000000000L)
		ts.tv_nsec = 999999999L;
	return ts;
}

/* Moves the selected results of a finished slot into rep. */
static void take_results(struct slot *sl, const char *const *select, struct health_report *rep)
{
	size_t i;

	for (i = 0; i < sl->run.n_results; i++) {
		if (name_selected(sl->run.results[i].name, select)) {
			rep->results[rep->n++] = sl->run.results[i];
			memset(&sl->run.results[i], 0, sizeof(sl->run.results[i]));
		}
	}
}

/* Adds CRITICAL "timed out" results for an abandoned slot's names. */
static int add_timeouts(const struct slot *sl, const char *const *select, double timeout,
			struct health_report *rep)
{
	size_t i;
	int rc = 0;

	for (i = 0; i < sl->task.n_names && !rc; i++) {
		struct health_result *r;

		if (!name_selected(sl->task.names[i], select))
			continue;
		r = &rep->results[rep->n];
		rc = health_result_init(r, sl->task.names[i]);
		if (rc)
			break;
		rep->n++;
		rc = health_result_set(r, HEALTH_CRITICAL, "timed out after %gs", timeout);
		r->duration = timeout;
	}
	return rc;
}

int health_run(struct health_task *tasks, size_t n_tasks, const struct health_run_opts *opts,
	       struct health_report *rep, json_t **new_state, struct st_error *err)
{
	struct session *s = NULL;
	struct slot **slots = NULL;
	json_t *state = NULL;
	size_t i, j, n_slots = 0, n_results = 0;
	double t0 = time_monotonic(), wait_until = 0;
	pthread_attr_t attr;
	int rc = 0, attr_ok = 0;

	memset(rep, 0, sizeof(*rep));
	rep->generated_at = time_wall();
	if (new_state)
		*new_state = NULL;

	rc = check_patterns(tasks, n_tasks, opts->select, err);
	if (rc)
		goto out;
	for (i = 0; i < n_tasks; i++)
		for (j = 0; j < tasks[i].n_names; j++)
			n_results += name_selected(tasks[i].names[j], opts->select);
	rep->results = calloc(n_results ? n_results : 1, sizeof(*rep->results));
	slots = calloc(n_tasks ? n_tasks : 1, sizeof(*slots));
	state = opts->prev_state && json_is_object(opts->prev_state)
			? json_deep_copy(opts->prev_state) : json_object();
	if (!rep->results || !slots || !state) {
		rc = st_error_set(err, ST_ENOMEM, "out of memory");
		goto out;
	}
	rc = session_new(&s);
	if (rc) {
		st_error_set(err, rc, "out of memory");
		goto out;
	}
	if (pthread_attr_init(&attr) != 0) {
		rc = st_error_set(err, ST_EFAILED, "cannot set up health check threads");
		goto out;
	}
	attr_ok = 1;
	/* Joinable: joined when done in time, detached when given up on. */
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_JOINABLE);

	for (i = 0; i < n_tasks; i++) {
		struct slot *sl = NULL;
		int any = 0;

		for (j = 0; j < tasks[i].n_names && !any; j++)
			any = name_selected(tasks[i].names[j], opts->select);
		if (!any || !tasks[i].fn) {
			health_task_release(&tasks[i]);
			continue;
		}
		rc = slot_new(s, &tasks[i], opts, &sl);
		if (rc) {
			/* Threads already started must still be collected below. */
			st_error_set(err, rc, "out of memory");
			break;
		}
		slots[n_slots++] = sl;
		sl->run.deadline = time_monotonic() + opts->timeout;
		if (sl->run.deadline > wait_until)
			wait_until = sl->run.deadline;
		pthread_mutex_lock(&s->lock);
		s->refs++;
		s->pending++;
		pthread_mutex_unlock(&s->lock);
		if (pthread_create(&sl->thread, &attr, task_thread, sl) == 0) {
			sl->joinable = 1;
		} else {
			pthread_mutex_lock(&s->lock);
			s->refs--;
			s->pending--;
			sl->done = 1;
			pthread_mutex_unlock(&s->lock);
			for (j = 0; j < sl->run.n_results; j++)
				health_result_set(&sl->run.results[j], HEALTH_UNKNOWN,
						  "cannot start a thread for this check");
		}
	}

	wait_until += HEALTH_GRACE_SECONDS;
	pthread_mutex_lock(&s->lock);
	while (s->pending > 0 && time_monotonic() < wait_until) {
		struct timespec ts = abs_monotonic(wait_until);
		pthread_cond_timedwait(&s->cond, &s->lock, &ts);
	}
	for (i = 0; i < n_slots; i++) {
		struct slot *sl = slots[i];

		if (sl->done) {
			take_results(sl, opts->select, rep);
			if (sl->task.state_key && sl->run.state) {
				json_object_set(state, sl->task.state_key, sl->run.state);
			}
			continue;
		}
		if (add_timeouts(sl, opts->select, opts->timeout, rep))
			rc = st_error_set(err, ST_ENOMEM, "out of memory");
		if (sl->joinable)
			pthread_detach(sl->thread);
		sl->abandoned = 1;
		atomic_fetch_add(&abandoned_running, 1);
		rep->abandoned++;
		slots[i] = NULL; /* the thread frees it */
	}
	pthread_mutex_unlock(&s->lock);

out:
	if (attr_ok)
		pthread_attr_destroy(&attr);
	for (i = 0; i < n_slots; i++) {
		/* Done (or never started): past its last use of the slot. */
		if (slots[i] && slots[i]->joinable)
			pthread_join(slots[i]->thread, NULL);
		slot_free(slots[i]);
	}
	free(slots);
	for (i = 0; i < n_tasks; i++)
		health_task_release(&tasks[i]);
	if (s) {
		int last;

		pthread_mutex_lock(&s->lock);
		last = --s->refs == 0;
		pthread_mutex_unlock(&s->lock);
		if (last)
			session_free(s);
	}
	rep->duration = time_monotonic() - t0;
	health_report_update_status(rep);
	if (!rc && new_state) {
		*new_state = state;
		state = NULL;
	}
	json_decref(state);
	return rc;
}

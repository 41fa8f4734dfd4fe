#include "timeutil.h"
#include "text.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

double time_monotonic(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double time_wall(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int time_parse_duration(const char *text, double *seconds)
{
	char *end;
	double v, mult;

	if (!text || !*text)
		return -1;
	errno = 0;
	v = strtod(text, &end);
	if (errno || end == text || !isfinite(v) || v < 0)
		return -1;
	if (!*end || !strcmp(end, "s"))
		mult = 1;
	else if (!strcmp(end, "ms"))
		mult = 0.001;
	else if (!strcmp(end, "m") || !strcmp(end, "min"))
		mult = 60;
	else if (!strcmp(end, "h"))
		mult = 3600;
	else if (!strcmp(end, "d"))
		mult = 86400;
	else
		return -1;
	/* "1e306d" is finite text but no finite number of seconds. */
	if (!isfinite(v * mult))
		return -1;
	*seconds = v * mult;
	return 0;
}

char *time_format_rfc3339(double t, char *buf, size_t size)
{
	/* Rounded, not truncated, to the millisecond: "15.1" parses to a double
	 * just below .1, and truncating printed .099, so every rewrite of a
	 * manifest moved its times back by a millisecond. */
	double total_ms = floor(t * 1000.0 + 0.5), whole;
	time_t secs;
	int ms;
	struct tm tm;

	/* Kept within years 1-9999 (4-digit years; time_t holds them). */
	if (isnan(total_ms))
		total_ms = 0;
	else if (total_ms < -62135596800000.0)
		total_ms = -62135596800000.0;
	else if (total_ms > 253402300799999.0)
		total_ms = 253402300799999.0;
	whole = floor(total_ms / 1000.0);
	secs = (time_t)whole;
	ms = (int)(total_ms - whole * 1000.0);
	gmtime_r(&secs, &tm);
	snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
	return buf;
}

char *time_format_compact(double t, char *buf, size_t size)
{
	time_t secs = (time_t)floor(t);
	struct tm tm;

	gmtime_r(&secs, &tm);
	snprintf(buf, size, "%04d%02d%02d_%02d%02d%02d", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
	return buf;
}

char *time_format_duration(double seconds, char *buf, size_t size)
{
	long s;

	if (seconds < 0)
		seconds = 0;
	if (seconds < 1) {
		snprintf(buf, size, "%.0fms", seconds * 1000);
		return buf;
	}
	if (seconds < 60) {
		snprintf(buf, size, "%.1fs", seconds);
		return buf;
	}
	/* Past what a long holds (a duration typed as 99999999999999999999d
	 * parses: it is finite) the cast would be undefined: whole days in
	 * floating point instead. */
	if (seconds >= 1e15) {
		snprintf(buf, size, "%.0fd", floor(seconds / 86400));
		return buf;
	}
	s = (long)seconds;
	if (s < 3600)
		snprintf(buf, size, "%ldm%02lds", s / 60, s % 60);
	else if (s < 86400)
		snprintf(buf, size, "%ldh%02ldm", s / 3600, (s % 3600) / 60);
	else
		snprintf(buf, size, "%ldd%02ldh", s / 86400, (s % 86400) / 3600);
	return buf;
}

char *time_format_duration_exact(double s, char *buf, size_t size)
{
	double ms = s * 1000.0;
	char num[40];

	/* Whole milliseconds (and small enough for llround): the largest unit. */
	if (fabs(ms) < 1e15 && fabs(ms - (double)llround(ms)) < 1e-6) {
		long long ims = llround(ms), sec = ims / 1000;

		if (ims % 1000)
			snprintf(buf, size, "%lldms", ims);
		else if (sec && sec % 86400 == 0)
			snprintf(buf, size, "%lldd", sec / 86400);
		else if (sec && sec % 3600 == 0)
			snprintf(buf, size, "%lldh", sec / 3600);
		else if (sec && sec % 60 == 0)
			snprintf(buf, size, "%lldm", sec / 60);
		else
			snprintf(buf, size, "%llds", sec);
		return buf;
	}
	snprintf(buf, size, "%ss", text_format_number(s, num, sizeof(num)));
	return buf;
}

void time_sleep(double seconds)
{
	struct timespec req, rem;

	if (seconds <= 0)
		return;
	req.tv_sec = (time_t)seconds;
	req.tv_nsec = (long)((seconds - (double)req.tv_sec) * 1e9);
	while (nanosleep(&req, &rem) == -1 && errno == EINTR)
		req = rem;
}

int time_sleep_cancellable(double seconds, volatile sig_atomic_t *cancel)
{
	static const double slice = 0.05;
	double end = time_monotonic() + seconds, left;

	for (;;) {
		if (cancel && *cancel)
			return -1;
		left = end - time_monotonic();
		if (left <= 0)
			return 0;
		time_sleep(left < slice ? left : slice);
	}
}

/*
 * timeutil.h - clocks, durations and UTC timestamps shared by every module,
 * so "--since 1h", config durations and journal times all mean the same.
 */
#ifndef ST_TIMEUTIL_H
#define ST_TIMEUTIL_H

#include <signal.h>
#include <stddef.h>
#include <time.h>

/* Seconds from an arbitrary origin; for deadlines and durations only. */
double time_monotonic(void);

/* Seconds since the epoch, with sub-second precision. */
double time_wall(void);

/* Parses "30", "1.5", "500ms", "30s", "5m", "2h", "7d" into seconds.
 * Returns 0, or -1 when text is not such a duration (negative or not a
 * finite number of seconds included). */
int time_parse_duration(const char *text, double *seconds);

/* Formats t (epoch seconds) as UTC RFC 3339 with milliseconds
 * ("2026-11-27T22:34:16.123Z") into buf; returns buf. */
char *time_format_rfc3339(double t, char *buf, size_t size);

/* "YYYYmmdd_HHMMSS" in UTC, as used in backup and database names. */
char *time_format_compact(double t, char *buf, size_t size);

/* Human duration: "850ms", "12.3s", "4m05s", "3h12m", "2d04h". */
char *time_format_duration(double seconds, char *buf, size_t size);

/* Exact duration that time_parse_duration() reads back as the same value,
 * in the largest whole unit: "500ms", "30s", "5m", "2h", "7d"; other
 * values as seconds ("1.0005s", "90.5s"). For configuration and plans
 * that show what was written. Returns buf. */
char *time_format_duration_exact(double seconds, char *buf, size_t size);

/* Sleeps for seconds (restarting on EINTR). */
void time_sleep(double seconds);

/* Sleeps up to seconds, waking every 50 ms to look at cancel (may be NULL:
 * time_sleep). 0 after the whole time, -1 as soon as *cancel is non-zero
 * (also when it already is). */
int time_sleep_cancellable(double seconds, volatile sig_atomic_t *cancel);

#endif

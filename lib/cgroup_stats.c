#include "cgroup_stats.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "timeutil.h"

/* memory.stat is the largest file read here, a few KiB */
#define CGROUP_FILE_MAX 65536

/* NUL-terminated content of path into buf. ST_ENOTFOUND when the file is
 * absent (the container stopped, or it is not this layout). */
static int read_path(const char *path, char *buf, size_t size, struct st_error *err)
{
	size_t used = 0;
	ssize_t n;
	int fd, rc = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return st_error_set(err, errno == ENOENT ? ST_ENOTFOUND : ST_EIO,
				    "cannot open '%s': %s", path, strerror(errno));
	while (used + 1 < size && (n = read(fd, buf + used, size - 1 - used)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = st_error_set(err, errno == ENODEV ? ST_ENOTFOUND : ST_EIO,
					  "cannot read '%s': %s", path, strerror(errno));
			goto out;
		}
		used += (size_t)n;
	}
	buf[used] = '\0';
out:
	close(fd);
	return rc;
}

static int read_small(const char *dir, const char *name, char *buf, size_t size,
		      struct st_error *err)
{
	char path[4096];

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path))
		return st_error_set(err, ST_ENOTFOUND, "cgroup path too long");
	return read_path(path, buf, size, err);
}

static int parse_u64(const char *s, uint64_t *v)
{
	char *end;
	unsigned long long x;

	while (*s == ' ' || *s == '\t')
		s++;
	if (*s < '0' || *s > '9')
		return ST_EPROTO;
	errno = 0;
	x = strtoull(s, &end, 10);
	if (errno || (*end && *end != '\n' && *end != ' '))
		return ST_EPROTO;
	*v = x;
	return 0;
}

int cgroup_parse_keyed(const char *text, const char *key, uint64_t *value)
{
	size_t klen = strlen(key);
	const char *line = text;

	while (line && *line) {
		if (!strncmp(line, key, klen) && line[klen] == ' ')
			return parse_u64(line + klen + 1, value);
		line = strchr(line, '\n');
		if (line)
			line++;
	}
	return ST_ENOTFOUND;
}

int cgroup_parse_proc_stat(const char *text, long ticks_per_second, uint64_t *ns)
{
	const char *p = text;
	uint64_t total = 0, t, q, r;
	int i;

	/* the aggregate line comes first: "cpu  user nice system idle ..." */
	if (ticks_per_second <= 0 || strncmp(p, "cpu ", 4) != 0)
		return ST_EPROTO;
	p += 4;
	for (i = 0; i < 7; i++) {
		char *end;
		unsigned long long v;

		while (*p == ' ')
			p++;
		if (*p < '0' || *p > '9')
			return ST_EPROTO;
		errno = 0;
		v = strtoull(p, &end, 10);
		if (errno || (*end != ' ' && *end != '\n') || total + v < total)
			return ST_EPROTO;
		total += v;
		p = end;
	}
	/* as the daemon: ticks * 1e9 / ticks_per_second, exactly (floor), or
	 * ST_EPROTO when that does not fit in 64 bits rather than a wrapped
	 * figure */
	t = (uint64_t)ticks_per_second;
	q = total / t;
	r = total % t;
	if (t > UINT64_MAX / 1000000000u || q > UINT64_MAX / 1000000000u ||
	    q * 1000000000u > UINT64_MAX - r * 1000000000u / t)
		return ST_EPROTO;
	*ns = q * 1000000000u + r * 1000000000u / t;
	return 0;
}

static int is_full_id(const char *id)
{
	size_t i;

	for (i = 0; id[i]; i++)
		if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
			return 0;
	return i == 64;
}

static int is_dir(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The first existing of root/ctl/docker/ID and root/ctl/system.slice/docker-ID.scope
 * (ctl "" for the v2 unified tree) into dir. */
static int find_dir(const char *root, const char *ctl, const char *id, char *dir, size_t size)
{
	const char *sep = *ctl ? "/" : "";

	if ((size_t)snprintf(dir, size, "%s%s%s/docker/%s", root, sep, ctl, id) < size && is_dir(dir))
		return 1;
	if ((size_t)snprintf(dir, size, "%s%s%s/system.slice/docker-%s.scope", root, sep, ctl, id) <
		    size &&
	    is_dir(dir))
		return 1;
	return 0;
}

static int read_u64_file(const char *dir, const char *name, char *buf, size_t size, uint64_t *v,
			 struct st_error *err)
{
	int rc = read_small(dir, name, buf, size, err);

	if (!rc && parse_u64(buf, v) != 0)
		rc = st_error_set(err, ST_EPROTO, "'%s/%s' does not hold a number", dir, name);
	return rc;
}

static int read_v1(const char *memdir, const char *cpudir, char *buf, size_t size,
		   struct docker_stats_sample *out, struct st_error *err)
{
	int rc;

	rc = read_u64_file(memdir, "memory.usage_in_bytes", buf, size, &out->mem_usage, err);
	if (!rc)
		rc = read_u64_file(memdir, "memory.limit_in_bytes", buf, size, &out->mem_limit, err);
	if (!rc)
		rc = read_small(memdir, "memory.stat", buf, size, err);
	if (!rc && cgroup_parse_keyed(buf, "total_inactive_file", &out->mem_inactive_file) == ST_EPROTO)
		rc = st_error_set(err, ST_EPROTO, "'%s/memory.stat' does not parse", memdir);
	if (!rc)
		rc = read_u64_file(cpudir, "cpuacct.usage", buf, size, &out->cpu_total, err);
	return rc;
}

static int read_v2(const char *dir, char *buf, size_t size, struct docker_stats_sample *out,
		   struct st_error *err)
{
	uint64_t usec = 0;
	int rc;

	out->cgroup_v2 = 1;
	rc = read_u64_file(dir, "memory.current", buf, size, &out->mem_usage, err);
	if (!rc)
		rc = read_small(dir, "memory.max", buf, size, err);
	if (!rc) {
		if (!strncmp(buf, "max", 3))
			out->mem_limit = UINT64_MAX;
		else if (parse_u64(buf, &out->mem_limit) != 0)
			rc = st_error_set(err, ST_EPROTO, "'%s/memory.max' does not parse", dir);
	}
	if (!rc)
		rc = read_small(dir, "memory.stat", buf, size, err);
	if (!rc && cgroup_parse_keyed(buf, "inactive_file", &out->mem_inactive_file) == ST_EPROTO)
		rc = st_error_set(err, ST_EPROTO, "'%s/memory.stat' does not parse", dir);
	if (!rc)
		rc = read_small(dir, "cpu.stat", buf, size, err);
	if (!rc && cgroup_parse_keyed(buf, "usage_usec", &usec) != 0)
		rc = st_error_set(err, ST_EPROTO, "'%s/cpu.stat' has no usage_usec", dir);
	out->cpu_total = usec * 1000u;
	return rc;
}

int cgroup_stats_read(const char *container_id, const struct cgroup_roots *roots,
		      struct docker_stats_sample *out, struct st_error *err)
{
	static const struct cgroup_roots defaults = { "/sys/fs/cgroup", "/proc/stat", 0, 0 };
	char memdir[4096], cpudir[4096];
	char *buf = NULL;
	long cpus;
	int rc;

	if (!roots)
		roots = &defaults;
	memset(out, 0, sizeof(*out));
	if (!container_id || !is_full_id(container_id))
		return st_error_set(err, ST_EPROTO, "'%s' is not a full container id",
				    container_id ? container_id : "");
	buf = malloc(CGROUP_FILE_MAX);
	if (!buf)
		return st_error_set(err, ST_ENOMEM, "out of memory");
	if (find_dir(roots->cgroup, "memory", container_id, memdir, sizeof(memdir))) {
		if (!find_dir(roots->cgroup, "cpuacct", container_id, cpudir, sizeof(cpudir))) {
			rc = st_error_set(err, ST_ENOTFOUND, "no cpuacct cgroup for container %.12s",
					  container_id);
			goto out;
		}
		rc = read_v1(memdir, cpudir, buf, CGROUP_FILE_MAX, out, err);
	} else if (find_dir(roots->cgroup, "", container_id, memdir, sizeof(memdir))) {
		rc = read_v2(memdir, buf, CGROUP_FILE_MAX, out, err);
	} else {
		rc = st_error_set(err, ST_ENOTFOUND, "no cgroup of container %.12s under '%s'",
				  container_id, roots->cgroup);
	}
	if (rc)
		goto out;
	rc = read_path(roots->proc_stat, buf, CGROUP_FILE_MAX, err);
	if (!rc && cgroup_parse_proc_stat(buf, sysconf(_SC_CLK_TCK), &out->cpu_system) != 0)
		rc = st_error_set(err, ST_EPROTO, "'%s' has no cpu line", roots->proc_stat);
	if (rc)
		goto out;
	cpus = roots->online_cpus ? (long)roots->online_cpus : sysconf(_SC_NPROCESSORS_ONLN);
	out->online_cpus = cpus > 0 ? (unsigned)cpus : 1;
	if (roots->host_ram > 0 && (double)out->mem_limit > roots->host_ram)
		out->mem_limit = (uint64_t)roots->host_ram;
	out->read = time_wall();
	out->has_cpu = 1;
	out->has_memory = 1;
out:
	free(buf);
	return rc;
}

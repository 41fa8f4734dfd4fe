/*
 * replay.c - main() for the ctest form of a fuzz target: runs
 * LLVMFuzzerTestOneInput on every file of the directories (or the files)
 * named on the command line, in name order. A missing directory is empty
 * (a target without regressions has no tests/fuzz/regress/<name>/). Fails
 * when nothing was replayed at all, so a wrong path cannot pass silently.
 */
#include "fuzz.h"

#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

static int replay_file(const char *path)
{
	unsigned char *buf = NULL;
	size_t len = 0, cap = 0, n;
	FILE *f = fopen(path, "rb");
	int rc = -1;

	if (!f) {
		fprintf(stderr, "replay: cannot open '%s': %s\n", path, strerror(errno));
		return -1;
	}
	for (;;) {
		if (len == cap) {
			unsigned char *nb = realloc(buf, cap ? cap * 2 : 4096);

			if (!nb)
				goto out;
			buf = nb;
			cap = cap ? cap * 2 : 4096;
		}
		n = fread(buf + len, 1, cap - len, f);
		if (n == 0)
			break;
		len += n;
	}
	if (ferror(f)) {
		fprintf(stderr, "replay: cannot read '%s'\n", path);
		goto out;
	}
	/* Named first: a crash or a failed check ends the process without a
	 * word about which input it was. */
	fprintf(stderr, "replay: %s\n", path);
	/* An exact-size copy, so ASan sees a read past the input's end. */
	{
		unsigned char *exact = malloc(len ? len : 1);

		if (!exact)
			goto out;
		if (len)
			memcpy(exact, buf, len);
		LLVMFuzzerTestOneInput(exact, len);
		free(exact);
	}
	rc = 0;
out:
	free(buf);
	fclose(f);
	return rc;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static int skip_entry(const struct dirent *e)
{
	return e->d_name[0] != '.';
}

int main(int argc, char **argv)
{
	unsigned long count = 0;
	int i, failed = 0;

	for (i = 1; i < argc; i++) {
		struct dirent **names = NULL;
		struct stat st;
		int n, k;

		if (stat(argv[i], &st) != 0) {
			if (errno == ENOENT)
				continue;
			fprintf(stderr, "replay: '%s': %s\n", argv[i], strerror(errno));
			failed = 1;
			continue;
		}
		if (!S_ISDIR(st.st_mode)) {
			failed |= replay_file(argv[i]) != 0;
			count++;
			continue;
		}
		n = scandir(argv[i], &names, skip_entry, by_name);
		if (n < 0) {
			fprintf(stderr, "replay: cannot list '%s': %s\n", argv[i], strerror(errno));
			failed = 1;
			continue;
		}
		for (k = 0; k < n; k++) {
			char path[4096];

			snprintf(path, sizeof(path), "%s/%s", argv[i], names[k]->d_name);
			if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
				failed |= replay_file(path) != 0;
				count++;
			}
			free(names[k]);
		}
		free(names);
	}
	printf("%lu inputs replayed\n", count);
	if (count == 0) {
		fprintf(stderr, "replay: no input found in the paths given\n");
		failed = 1;
	}
	return failed ? 1 : 0;
}

/*
 * test_bad_input.c - hostile input through the public APIs (issue 7, "bad
 * input"): backup names that walk out of the backup directory or are
 * symlinks, manifests that are symlinks, incident and user ids carrying
 * SQL or shell, and a .env file with every feature at once (CRLF, export,
 * quotes, comments, no final newline, odd bytes) rewritten byte for byte.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backup.h"
#include "backup_catalog.h"
#include "envfile.h"
#include "incident.h"
#include "testutil.h"

static char *path_in(const char *dir, const char *name)
{
	static char buf[4096];

	snprintf(buf, sizeof(buf), "%s/%s", dir, name);
	return buf;
}

/* backup_resolve refuses with ST_EUSAGE and a message holding want. */
static void resolve_refused(const char *dir, const char *file, int code, const char *want)
{
	struct backup_check c;
	struct st_error err = { 0 };

	assert_int_equal(backup_resolve(dir, file, &c, &err), code);
	if (!strstr(err.message, want))
		fail_msg("'%s': message '%s' lacks '%s'", file, err.message, want);
}

static void test_backup_names(void **state)
{
	const char *dir = *state;
	char name[BACKUP_NAME_MAX], sub[4096];
	struct backup_check c;
	struct st_error err = { 0 };

	backup_name_format(1795000000.0, BACKUP_KIND_FULL, BACKUP_CODEC_GZIP, name, sizeof(name));

	/* Walking out of the directory: the base name is what must be ours. */
	resolve_refused(dir, "../../etc/passwd", ST_EUSAGE, "'passwd' is not a spilttea-ops backup name");
	resolve_refused(dir, "../x", ST_EUSAGE, "'x' is not a spilttea-ops backup name");
	resolve_refused(dir, "/etc/passwd", ST_EUSAGE, "'passwd' is not a spilttea-ops backup name");
	resolve_refused(dir, "..", ST_EUSAGE, "'..' is not a spilttea-ops backup name");
	resolve_refused(dir, ".", ST_EUSAGE, "'.' is not a spilttea-ops backup name");
	resolve_refused(dir, "", ST_EUSAGE, "'' is not a spilttea-ops backup name");
	resolve_refused(dir, "backup_x/", ST_EUSAGE, "'' is not a spilttea-ops backup name");
	/* Names that are almost ours. */
	resolve_refused(dir, "backup_20261127_223416.sql.gz.json", ST_EUSAGE, "not a spilttea-ops backup name");
	resolve_refused(dir, "backup_20261127_223416.sql.gz\n", ST_EUSAGE, "not a spilttea-ops backup name");
	resolve_refused(dir, "backup_20261127_22341.sql.gz", ST_EUSAGE, "not a spilttea-ops backup name");
	resolve_refused(dir, "backup_20261127_223416.sql.bz2", ST_EUSAGE, "not a spilttea-ops backup name");
	resolve_refused(dir, "backup_20261127_223416;rm -rf ~.sql.gz", ST_EUSAGE, "not a spilttea-ops backup name");
	resolve_refused(dir, ".backup_20261127_223416.sql.gz.AbC123.partial", ST_EUSAGE,
			"not a spilttea-ops backup name");
	/* Our name but through "..": resolved as the path it is, so it is
	 * judged as a file there (absent here). */
	snprintf(sub, sizeof(sub), "%s/../%s", dir, name);
	resolve_refused(dir, sub, ST_ENOTFOUND, "No such file");
	/* Our name, not a regular file: a directory, a symlink to a real dump. */
	assert_int_equal(mkdir(path_in(dir, name), 0700), 0);
	resolve_refused(dir, name, ST_EUSAGE, "is not a regular file");
	assert_int_equal(rmdir(path_in(dir, name)), 0);
	tu_write(path_in(dir, "real.sql.gz"), "x");
	assert_int_equal(symlink("real.sql.gz", path_in(dir, name)), 0);
	resolve_refused(dir, name, ST_EUSAGE, "is not a regular file");
	snprintf(sub, sizeof(sub), "%s/%s", dir, name);
	resolve_refused(dir, sub, ST_EUSAGE, "is not a regular file");
	/* Full verification refuses it before reading anything. */
	assert_int_equal(backup_verify(dir, name, 1, &c, &err), ST_EUSAGE);
	backup_check_release(&c);
	assert_int_equal(access(path_in(dir, "real.sql.gz.json"), F_OK), -1);
	assert_int_equal(unlink(path_in(dir, name)), 0);
	/* A regular file of our name resolves, by name and by path. */
	tu_write(path_in(dir, name), "x");
	assert_int_equal(backup_resolve(dir, name, &c, &err), 0);
	assert_string_equal(c.name, name);
	assert_string_equal(c.path, path_in(dir, name));
}

/* A manifest that is a symlink is not read: its target's bytes would be
 * quoted in the "not valid JSON" error. */
static void test_manifest_symlink(void **state)
{
	const char *dir = *state;
	char name[BACKUP_NAME_MAX], mname[BACKUP_NAME_MAX + 8];
	struct backup_manifest m;
	struct st_error err = { 0 };

	backup_name_format(1795000000.0, BACKUP_KIND_FULL, BACKUP_CODEC_GZIP, name, sizeof(name));
	backup_manifest_name(name, mname, sizeof(mname));
	tu_write(path_in(dir, "secret.txt"), "root:TOPSECRETVALUE:19000:0:99999:7:::\n");
	assert_int_equal(symlink("secret.txt", path_in(dir, mname)), 0);
	assert_int_equal(backup_manifest_load(dir, name, &m, &err), ST_EPROTO);
	assert_non_null(strstr(err.message, "is a symbolic link"));
	assert_null(strstr(err.message, "TOPSECRET"));
	assert_int_equal(unlink(path_in(dir, mname)), 0);
	/* The same bytes in a regular manifest: an error, still no crash. */
	tu_write(path_in(dir, mname), "{\"name\": \x01}");
	assert_int_equal(backup_manifest_load(dir, name, &m, &err), ST_EPROTO);
	assert_non_null(strstr(err.message, "is not valid JSON"));
	assert_int_equal(unlink(path_in(dir, mname)), 0);
	assert_int_equal(mkdir(path_in(dir, mname), 0700), 0);
	assert_int_equal(backup_manifest_load(dir, name, &m, &err), ST_EPROTO);
	assert_non_null(strstr(err.message, "is not a regular file"));
	assert_int_equal(rmdir(path_in(dir, mname)), 0);
	assert_int_equal(backup_manifest_load(dir, name, &m, &err), ST_ENOTFOUND);
}

static void test_incident_ids(void **state)
{
	static const char *const bad[] = {
		"", "../../etc", "..", ".", "a/b", "/abs", "-rf", ".hidden", "1;DROP TABLE x",
		"1' OR '1'='1", "$(id)", "`id`", "a b", "a\nb", "a\rb", "\x1b[31mred", "caf\xc3\xa9",
		"\xff\xfe", "current", "0123456789012345678901234567890123456789",
	};
	static const char *const good[] = { "INC-20261127-223416", "INC-42", "7", "a.b_c-d" };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (incident_id_valid(bad[i]))
			fail_msg("incident id '%s' accepted", bad[i]);
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (!incident_id_valid(good[i]))
			fail_msg("incident id '%s' refused", good[i]);
}

static void user_ids_refused(enum incident_id_kind kind, const char *id)
{
	struct st_error err = { 0 };
	const char *ids[1] = { id };

	if (incident_user_ids_check(kind, ids, 1, &err) != ST_EUSAGE)
		fail_msg("user id '%s' (kind %d) accepted", id, (int)kind);
}

static void test_user_ids(void **state)
{
	static const char *const injections[] = {
		"1 OR 1=1", "1;DROP TABLE \"User\"", "1' OR '1'='1", "$(reboot)", "`id`", "1\n2", "",
		"\x1b[2J", "1\xff",
	};
	static const char *const numbers[] = {
		"abc", "-1", "+1", "1e3", "0x10", " 1", "1 ", "1.0", "2147483648", "99999999999999999999",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(injections) / sizeof(injections[0]); i++) {
		user_ids_refused(INCIDENT_ID_INT, injections[i]);
		user_ids_refused(INCIDENT_ID_BIGINT, injections[i]);
		user_ids_refused(INCIDENT_ID_UUID, injections[i]);
		user_ids_refused(INCIDENT_ID_TEXT, injections[i]);
	}
	for (i = 0; i < sizeof(numbers) / sizeof(numbers[0]); i++)
		user_ids_refused(INCIDENT_ID_INT, numbers[i]);
	user_ids_refused(INCIDENT_ID_BIGINT, "9223372036854775808");
	user_ids_refused(INCIDENT_ID_UUID, "0000-not-a-uuid");
}

/* Every feature of a dotenv file at once; one key rewritten. */
#define ENV_BEFORE                                                                 \
	"# backend/.env\r\n"                                                       \
	"\r\n"                                                                     \
	"export NODE_ENV=production\r\n"                                           \
	"DATABASE_URL=\"postgresql://u:p@db:5432/x?schema=public\" # quoted\r\n"   \
	"  # indented comment\n"                                                   \
	"export JWT_SECRET='old-secret-1' # rotate me\r\n"                         \
	"SMTP_PASSWORD=a#b\r\n"                                                    \
	"EMPTY=\r\n"                                                               \
	"not a line at all\r\n"                                                    \
	"BYTES=caf\xc3\xa9 \xff\xfe\r\n"                                           \
	"=novalue\n"                                                               \
	"JWT_SECRET=old-secret-2\n"                                                \
	"LAST=\"no final newline\""
#define ENV_AFTER                                                                  \
	"# backend/.env\r\n"                                                       \
	"\r\n"                                                                     \
	"export NODE_ENV=production\r\n"                                           \
	"DATABASE_URL=\"postgresql://u:p@db:5432/x?schema=public\" # quoted\r\n"   \
	"  # indented comment\n"                                                   \
	"export JWT_SECRET='n3w-S3cret' # rotate me\r\n"                           \
	"SMTP_PASSWORD=a#b\r\n"                                                    \
	"EMPTY=\r\n"                                                               \
	"not a line at all\r\n"                                                    \
	"BYTES=caf\xc3\xa9 \xff\xfe\r\n"                                           \
	"=novalue\n"                                                               \
	"JWT_SECRET=n3w-S3cret\n"                                                  \
	"LAST=\"no final newline\""

static void test_envfile_rewrite_keeps_bytes(void **state)
{
	const char *dir = *state;
	const char *path = path_in(dir, "backend.env");
	struct envfile ef = ENVFILE_INIT;
	struct st_error err = { 0 };
	size_t replaced = 0;
	char *got;
	int fd;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0640);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, ENV_BEFORE, sizeof(ENV_BEFORE) - 1), (ssize_t)(sizeof(ENV_BEFORE) - 1));
	close(fd);
	assert_int_equal(chmod(path, 0640), 0);

	assert_int_equal(envfile_load(path, &ef, &err), 0);
	assert_string_equal(envfile_get(&ef, "NODE_ENV"), "production");
	assert_string_equal(envfile_get(&ef, "DATABASE_URL"), "postgresql://u:p@db:5432/x?schema=public");
	assert_string_equal(envfile_get(&ef, "JWT_SECRET"), "old-secret-2");
	assert_string_equal(envfile_get(&ef, "EMPTY"), "");
	assert_string_equal(envfile_get(&ef, "LAST"), "no final newline");
	envfile_release(&ef);

	assert_int_equal(envfile_update(path, "JWT_SECRET", "n3w-S3cret", 0, &replaced, &err), 0);
	assert_int_equal(replaced, 2);
	got = tu_read(path);
	assert_non_null(got);
	assert_int_equal(strlen(got), sizeof(ENV_AFTER) - 1);
	assert_memory_equal(got, ENV_AFTER, sizeof(ENV_AFTER) - 1);
	free(got);
	assert_int_equal(tu_mode(path) & 07777, 0640);

	/* Values the file could not hold literally are refused, file untouched. */
	assert_int_equal(envfile_update(path, "JWT_SECRET", "a\r\nINJECTED=1", 0, NULL, &err), ST_EUSAGE);
	assert_int_equal(envfile_update(path, "JWT_SECRET", "a'b", 0, NULL, &err), ST_EUSAGE);
	assert_null(strstr(err.message, "a'b"));
	assert_int_equal(envfile_update(path, "BAD KEY", "x", 1, NULL, &err), ST_EUSAGE);
	assert_int_equal(envfile_update(path, "X;rm", "x", 1, NULL, &err), ST_EUSAGE);
	got = tu_read(path);
	assert_memory_equal(got, ENV_AFTER, sizeof(ENV_AFTER) - 1);
	free(got);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		tu_dir_test(test_backup_names),
		tu_dir_test(test_manifest_symlink),
		cmocka_unit_test(test_incident_ids),
		cmocka_unit_test(test_user_ids),
		tu_dir_test(test_envfile_rewrite_keeps_bytes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

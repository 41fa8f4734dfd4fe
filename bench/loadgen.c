/*
 * loadgen.c - a bounded, steady HTTP load for bench/deploy.sh: GET URL at a
 * fixed total rate from a few threads (half keep their connection, half
 * open a new one per request), until at least MIN requests were sent AND
 * the stop file exists (or MAX requests). Counts every request that did
 * not answer 2xx as failed, notes which upstream (X-Upstream) answered and
 * when each was first seen, and prints one JSON object.
 *
 *   cc -O2 -o loadgen bench/loadgen.c -lcurl -lpthread
 *   loadgen URL RATE MIN MAX STOPFILE
 */
#define _GNU_SOURCE
#include <curl/curl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define THREADS 4
#define UPSTREAMS 8
#define ERRORS_KEPT 5

static const char *url, *stop_file;
static double rate;
static long min_req, max_req;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static long sent, ok, failed;
static double *lat;            /* milliseconds of every request */
static long nlat;
static char up_name[UPSTREAMS][64];
static long up_count[UPSTREAMS];
static double up_first[UPSTREAMS], up_last[UPSTREAMS];
static int nup;
static char errors[ERRORS_KEPT][200];
static int nerrors;
static int stopping;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct answer {
	char upstream[64];
};

static size_t on_header(char *data, size_t size, size_t n, void *ud)
{
	struct answer *a = ud;
	size_t len = size * n;

	if (len > 11 && !strncasecmp(data, "X-Upstream:", 11)) {
		size_t i = 11, j = 0;
		while (i < len && data[i] == ' ')
			i++;
		while (i < len && data[i] != '\r' && data[i] != '\n' && j + 1 < sizeof(a->upstream))
			a->upstream[j++] = data[i++];
		a->upstream[j] = '\0';
	}
	return len;
}

static size_t on_body(char *data, size_t size, size_t n, void *ud)
{
	(void)data;
	(void)ud;
	return size * n;
}

static void record(double t, double ms, long status, CURLcode cc, const struct answer *a)
{
	int i;

	pthread_mutex_lock(&mu);
	lat[nlat++] = ms;
	if (cc == CURLE_OK && status >= 200 && status < 300) {
		ok++;
	} else {
		failed++;
		if (nerrors < ERRORS_KEPT)
			snprintf(errors[nerrors++], sizeof(errors[0]), "%.3f %s %ld %s", t,
				 cc == CURLE_OK ? "status" : curl_easy_strerror(cc), status, a->upstream);
	}
	if (a->upstream[0]) {
		for (i = 0; i < nup && strcmp(up_name[i], a->upstream); i++)
			;
		if (i == nup && nup < UPSTREAMS) {
			snprintf(up_name[nup], sizeof(up_name[0]), "%s", a->upstream);
			up_first[nup] = t;
			nup++;
		}
		if (i < nup) {
			up_count[i]++;
			up_last[i] = t;
		}
	}
	pthread_mutex_unlock(&mu);
}

/* Takes the next request slot, or -1 when the run is over. */
static long next_slot(void)
{
	long s = -1;

	pthread_mutex_lock(&mu);
	if (sent >= max_req || (sent >= min_req && (stopping || access(stop_file, F_OK) == 0)))
		stopping = 1;
	else
		s = sent++;
	pthread_mutex_unlock(&mu);
	return s;
}

static double t0;

static void *worker(void *arg)
{
	long id = (long)arg, s;
	CURL *h = curl_easy_init();

	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "spilttea-bench-loadgen");
	/* Odd threads: a new connection for every request. */
	if (id % 2)
		curl_easy_setopt(h, CURLOPT_FORBID_REUSE, 1L);
	while ((s = next_slot()) >= 0) {
		/* Request s is due at t0 + s / rate: a steady total rate. */
		double due = t0 + (double)s / rate, wait = due - now(), start, ms;
		struct answer a;
		long status = 0;
		CURLcode cc;

		if (wait > 0)
			usleep((useconds_t)(wait * 1e6));
		memset(&a, 0, sizeof(a));
		curl_easy_setopt(h, CURLOPT_HEADERDATA, &a);
		start = now();
		cc = curl_easy_perform(h);
		ms = (now() - start) * 1000.0;
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
		record(start, ms, status, cc, &a);
	}
	curl_easy_cleanup(h);
	return NULL;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	pthread_t th[THREADS];
	double dur;
	long i;
	int k;

	if (argc != 6) {
		fprintf(stderr, "usage: loadgen URL RATE MIN MAX STOPFILE\n");
		return 2;
	}
	url = argv[1];
	rate = atof(argv[2]);
	min_req = atol(argv[3]);
	max_req = atol(argv[4]);
	stop_file = argv[5];
	if (rate <= 0 || min_req < 1 || max_req < min_req) {
		fprintf(stderr, "loadgen: bad RATE, MIN or MAX\n");
		return 2;
	}
	lat = calloc((size_t)max_req, sizeof(*lat));
	if (!lat || curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
		return 1;
	t0 = now();
	for (i = 0; i < THREADS; i++)
		pthread_create(&th[i], NULL, worker, (void *)i);
	for (i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	dur = now() - t0;
	qsort(lat, (size_t)nlat, sizeof(*lat), cmp);
	printf("{\"start\":%.3f,\"duration\":%.3f,\"sent\":%ld,\"ok\":%ld,\"failed\":%ld,\"rate\":%.1f,"
	       "\"p50_ms\":%.2f,\"p99_ms\":%.2f,\"max_ms\":%.2f,\"upstreams\":{",
	       t0, dur, sent, ok, failed, (double)sent / dur, nlat ? lat[nlat / 2] : 0,
	       nlat ? lat[(long)floor((double)(nlat - 1) * 0.99)] : 0, nlat ? lat[nlat - 1] : 0);
	for (k = 0; k < nup; k++)
		printf("%s\"%s\":{\"count\":%ld,\"first\":%.3f,\"last\":%.3f}", k ? "," : "", up_name[k], up_count[k],
		       up_first[k], up_last[k]);
	printf("},\"errors\":[");
	for (k = 0; k < nerrors; k++)
		printf("%s\"%s\"", k ? "," : "", errors[k]);
	printf("]}\n");
	curl_global_cleanup();
	free(lat);
	return 0;
}

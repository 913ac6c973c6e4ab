/*
 * curl-loop: the transport's ceiling for hookgate's delivery benchmark.
 *
 * A bare libcurl multi-interface loop that does nothing but POST one body to one URL,
 * keeping exactly C transfers in flight on one multi handle over at most C keep-alive
 * connections, with the options and headers hookgate's CurlTransport uses (no signals,
 * no redirects, no proxy, "Expect:" off, the Standard Webhooks header trio with dummy
 * values of realistic length). No store, no scheduler, no signing: whatever hookgate
 * delivers to the same sink in the same run is judged against this figure
 * (README "Performance": deliveries >= 0.7 x this loop).
 *
 *   curl-loop --url URL --body-file F --connections C --requests N [--warmup W]
 *
 * The first W completions (default 1000) open and warm the connections and are not
 * counted; the next N are timed, from the W-th completion to the (W+N)-th. Latency is
 * CURLINFO_TOTAL_TIME_T per request. A response that is not 2xx, or a transfer that
 * fails, is an error. Prints one line:
 *   curl-loop: N requests, C connections, X.XX s, R req/s, errors E, p50 A ms, p99 B ms
 *
 * Build: gcc -O2 -Wall -Wextra -o curl-loop curl-loop.c -lcurl
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime under -std=c11 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void die(const char *what) {
    fprintf(stderr, "curl-loop: %s\n", what);
    exit(2);
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t discard(char *data, size_t size, size_t count, void *context) {
    (void)data;
    (void)context;
    return size * count;
}

static int by_value(const void *a, const void *b) {
    curl_off_t x = *(const curl_off_t *)a, y = *(const curl_off_t *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted microseconds, in milliseconds. */
static double percentile_ms(const curl_off_t *sorted, long count, int percent) {
    long rank = (count * percent + 99) / 100;
    return (double)sorted[rank > 0 ? rank - 1 : 0] / 1000.0;
}

static char *read_file(const char *path, long *size) {
    FILE *file = fopen(path, "rb");
    if (!file) die("cannot open the body file");
    fseek(file, 0, SEEK_END);
    *size = ftell(file);
    rewind(file);
    char *data = malloc((size_t)*size + 1);
    if (!data || fread(data, 1, (size_t)*size, file) != (size_t)*size) die("cannot read the body file");
    fclose(file);
    return data;
}

int main(int argc, char **argv) {
    const char *url = NULL, *body_path = NULL;
    long connections = 0, requests = 0, warmup = 1000;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--url")) url = argv[i + 1];
        else if (!strcmp(argv[i], "--body-file")) body_path = argv[i + 1];
        else if (!strcmp(argv[i], "--connections")) connections = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--requests")) requests = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--warmup")) warmup = atol(argv[i + 1]);
        else die("unknown option");
    }
    if (argc % 2 == 0 || !url || !body_path || connections < 1 || requests < 1 || warmup < 0)
        die("usage: curl-loop --url URL --body-file F --connections C --requests N [--warmup W]");

    long body_size;
    char *body = read_file(body_path, &body_size);
    curl_off_t *latencies = malloc(sizeof *latencies * (size_t)requests);
    CURL **handles = calloc((size_t)connections, sizeof *handles);
    if (!latencies || !handles) die("out of memory");

    curl_global_init(CURL_GLOBAL_DEFAULT);
    /* What hookgate sends besides the body; the values are dummies of the real lengths
       (webhook-id is msg_<event uuid>_<webhook uuid>, the signature v1,<base64 SHA-256>). */
    struct curl_slist *headers = NULL;
    const char *lines[] = {
        "Content-Type: application/json",
        "User-Agent: hookgate/0.1.0",
        "webhook-id: msg_3f2c8a9e-6b1d-4e7a-9c3f-2a8b7d6e5f41_9b7e4c2a-1d3f-4a6b-8e5c-7f2d1a9b3c60",
        "webhook-timestamp: 1745366718",
        "webhook-signature: v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=",
        "Expect:",
    };
    for (size_t i = 0; i < sizeof lines / sizeof *lines; i++) headers = curl_slist_append(headers, lines[i]);

    CURLM *multi = curl_multi_init();
    curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, connections);
    curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, connections);

    for (long i = 0; i < connections; i++) {
        CURL *easy = curl_easy_init();
        if (!easy) die("curl_easy_init failed");
        curl_easy_setopt(easy, CURLOPT_URL, url);
        curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
        curl_easy_setopt(easy, CURLOPT_PROXY, "");
        curl_easy_setopt(easy, CURLOPT_POST, 1L);
        curl_easy_setopt(easy, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_size);
        curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, discard);
        handles[i] = easy;
        curl_multi_add_handle(multi, easy);
    }

    /* Every finished transfer is re-added at once, so C stay in flight until the end. */
    long done = 0, errors = 0, connects = 0, total = warmup + requests;
    double start = now_seconds();
    while (done < total) {
        int running;
        if (curl_multi_perform(multi, &running) != CURLM_OK) die("curl_multi_perform failed");
        CURLMsg *message;
        int queued;
        while (done < total && (message = curl_multi_info_read(multi, &queued))) {
            if (message->msg != CURLMSG_DONE) continue;
            CURL *easy = message->easy_handle;
            CURLcode result = message->data.result;
            long status = 0, opened = 0;
            curl_off_t micros = 0;
            curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
            curl_easy_getinfo(easy, CURLINFO_TOTAL_TIME_T, &micros);
            curl_easy_getinfo(easy, CURLINFO_NUM_CONNECTS, &opened);
            if (done >= warmup) {
                latencies[done - warmup] = micros;
                connects += opened;
                if (result != CURLE_OK || status < 200 || status > 299) {
                    if (errors++ == 0)
                        fprintf(stderr, "curl-loop: first error: %s, HTTP %ld\n", curl_easy_strerror(result), status);
                }
            }
            if (++done == warmup) start = now_seconds();
            curl_multi_remove_handle(multi, easy);
            curl_multi_add_handle(multi, easy);
        }
        if (done < total && curl_multi_poll(multi, NULL, 0, 1000, NULL) != CURLM_OK) die("curl_multi_poll failed");
    }
    double seconds = now_seconds() - start;

    qsort(latencies, (size_t)requests, sizeof *latencies, by_value);
    printf("curl-loop: %ld requests, %ld connections, %.2f s, %.0f req/s, errors %ld, p50 %.2f ms, p99 %.2f ms\n",
           requests, connections, seconds, (double)requests / seconds, errors, percentile_ms(latencies, requests, 50),
           percentile_ms(latencies, requests, 99));
    /* Without a warmup the first C transfers open the connections; after it, none should. */
    if (connects > (warmup > 0 ? 0 : connections))
        fprintf(stderr, "curl-loop: %ld connections opened while timed (keep-alive broken?)\n", connects);

    for (long i = 0; i < connections; i++) {
        curl_multi_remove_handle(multi, handles[i]);
        curl_easy_cleanup(handles[i]);
    }
    curl_multi_cleanup(multi);
    curl_slist_free_all(headers);
    curl_global_cleanup();
    free(latencies);
    free(handles);
    free(body);
    return errors > 0;
}

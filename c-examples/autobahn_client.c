/*
 * Autobahn|Testsuite driver: runs every fuzzingserver case through wsc's
 * public C API only (include/wsc.h), so the conformance result is the one a
 * C program linking libwsc gets.
 *
 *   autobahn_client BASE_URI [CA_FILE]
 *
 * BASE_URI is the fuzzingserver, e.g. ws://127.0.0.1:9001 or
 * wss://localhost:9001; CA_FILE, for wss, is the PEM of the CA that signed
 * the server's certificate (verified, never skipped). The driver asks for the
 * case count, runs each case echoing every text and binary message back
 * unchanged, then asks the server to write its reports. Exit status 0 means
 * every case ran to a terminal callback; the verdicts are in the reports.
 *
 * Built by tests/autobahn/run.sh.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "testutil.h" /* after_ms, cond_init_monotonic */
#include "wsc.h"

#define AGENT "wsc"
#define CASE_DEADLINE_S 120

/* One connection's life, shared between its callbacks and main(). */
struct run {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
    char outcome[256];
    char first_text[64]; /* the first text message, for /getCaseCount */
    int echo;
};

static void finish(struct run *r, const char *outcome)
{
    pthread_mutex_lock(&r->mu);
    snprintf(r->outcome, sizeof r->outcome, "%s", outcome);
    r->done = 1;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

static void on_message(wsc_id id, const uint8_t *data, size_t len, bool is_binary, void *user_data)
{
    struct run *r = user_data;
    if (!r->echo) {
        if (!is_binary && r->first_text[0] == '\0') {
            size_t n = len < sizeof r->first_text - 1 ? len : sizeof r->first_text - 1;
            memcpy(r->first_text, data, n);
            r->first_text[n] = '\0';
        }
        return;
    }
    /* A refusal (closing, queue full) is part of what a case tests: ignore it. */
    if (is_binary)
        (void)wsc_send_binary(id, data, len);
    else
        (void)wsc_send_text(id, (const char *)data, len);
}

static void on_error(wsc_id id, const char *message, void *user_data)
{
    char outcome[256];
    (void)id;
    snprintf(outcome, sizeof outcome, "error: %s", message);
    finish(user_data, outcome);
}

static void on_close(wsc_id id, uint16_t code, const char *reason, void *user_data)
{
    char outcome[256];
    (void)id;
    snprintf(outcome, sizeof outcome, "close %u%s%.200s", (unsigned)code, *reason ? " " : "", reason);
    finish(user_data, outcome);
}

static const wsc_callbacks callbacks = {NULL, on_message, on_error, on_close};

/* Connects, waits for the terminal callback; 0 when it came. */
static int run_one(const char *uri, const wsc_options *options, struct run *r)
{
    wsc_id id = 0;
    struct timespec until;
    int timed_out = 0;

    pthread_mutex_init(&r->mu, NULL);
    cond_init_monotonic(&r->cv);
    r->done = 0;
    r->outcome[0] = r->first_text[0] = '\0';
    wsc_status st = wsc_connect(uri, options, &callbacks, r, &id);
    if (st != WSC_OK) {
        snprintf(r->outcome, sizeof r->outcome, "wsc_connect: %s (%s)", wsc_status_str(st),
                 wsc_last_error());
        return -1;
    }
    until = after_ms(CASE_DEADLINE_S * 1000L);
    pthread_mutex_lock(&r->mu);
    while (!r->done) {
        if (!timed_out && pthread_cond_timedwait(&r->cv, &r->mu, &until) == ETIMEDOUT) {
            /* Stuck: close (never blocks) and wait for the terminal callback. */
            timed_out = 1;
            fprintf(stderr, "  %s: no end after %d s, closing\n", uri, CASE_DEADLINE_S);
            (void)wsc_close(id);
        } else if (timed_out) {
            pthread_cond_wait(&r->cv, &r->mu);
        }
    }
    pthread_mutex_unlock(&r->mu);
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    return timed_out ? -1 : 0;
}

static wsc_options *make_options(const char *ca_file)
{
    wsc_options *o = wsc_options_new();
    if (!o)
        return NULL;
    /* Case 9.x sends up to 16 MiB messages; echo them whole. */
    if (wsc_options_set_max_message_size(o, 64u << 20) != WSC_OK ||
        (ca_file && wsc_options_set_ca_file(o, ca_file) != WSC_OK)) {
        fprintf(stderr, "options: %s\n", wsc_last_error());
        wsc_options_free(o);
        return NULL;
    }
    return o;
}

int main(int argc, char **argv)
{
    static struct run r;
    char uri[1024];
    int failures = 0;

    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: %s BASE_URI [CA_FILE]\n", argv[0]);
        return 2;
    }
    const char *base = argv[1];
    wsc_options *options = make_options(argc == 3 ? argv[2] : NULL);
    if (!options)
        return 2;

    snprintf(uri, sizeof uri, "%s/getCaseCount", base);
    r.echo = 0;
    if (run_one(uri, options, &r) != 0 || r.first_text[0] == '\0') {
        fprintf(stderr, "cannot get the case count from %s: %s\n", uri, r.outcome);
        wsc_options_free(options);
        return 1;
    }
    int count = atoi(r.first_text);
    printf("wsc %s: %d cases at %s\n", wsc_version(), count, base);

    for (int i = 1; i <= count; i++) {
        snprintf(uri, sizeof uri, "%s/runCase?case=%d&agent=%s", base, i, AGENT);
        r.echo = 1;
        if (run_one(uri, options, &r) != 0)
            failures++;
        printf("[%3d/%d] %s\n", i, count, r.outcome);
        fflush(stdout);
    }

    snprintf(uri, sizeof uri, "%s/updateReports?agent=%s", base, AGENT);
    r.echo = 0;
    if (run_one(uri, options, &r) != 0)
        failures++;
    wsc_options_free(options);

    wsc_status st = wsc_shutdown(10000);
    if (st != WSC_OK) {
        fprintf(stderr, "wsc_shutdown: %s\n", wsc_status_str(st));
        failures++;
    }
    if (failures)
        fprintf(stderr, "%d run(s) did not end by themselves\n", failures);
    return failures ? 1 : 0;
}

/*
 * reconnect_test: opt-in reconnect through the C API. The setters' status
 * paths, on_reconnecting (set on the options, since wsc_callbacks is
 * frozen) counting attempts with delays within the bounds and the
 * connection's user_data, one on_error after max_attempts, and a named
 * handler seeing "onreconnecting" with its getters. Against a port that is
 * bound but not listening (refused, held for the whole test).
 *
 *   reconnect_test
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed;

struct seen {
    int reconnecting, opens, errors, closes, bad_user_data, ended;
    uint32_t last_attempt, max_delay_ms;
    char reason[256];
};

static struct seen callbacks_seen, handler_seen;

static void note(struct seen *s, int *field)
{
    pthread_mutex_lock(&lock);
    (*field)++;
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&lock);
    (void)s;
}

static void on_reconnecting(wsc_id id, uint32_t attempt, uint32_t delay_ms, const char *reason, void *ud)
{
    struct seen *s = &callbacks_seen;
    (void)id;
    pthread_mutex_lock(&lock);
    s->bad_user_data += ud != &callbacks_seen;
    s->last_attempt = attempt;
    if (delay_ms > s->max_delay_ms)
        s->max_delay_ms = delay_ms;
    snprintf(s->reason, sizeof s->reason, "%s", reason ? reason : "(null)");
    pthread_mutex_unlock(&lock);
    note(s, &s->reconnecting);
}

static void on_open(wsc_id id, void *ud)
{
    (void)id, (void)ud;
    note(&callbacks_seen, &callbacks_seen.opens);
}

static void on_error(wsc_id id, const char *m, void *ud)
{
    (void)id, (void)m, (void)ud;
    note(&callbacks_seen, &callbacks_seen.errors);
    note(&callbacks_seen, &callbacks_seen.ended);
}

static void on_close(wsc_id id, uint16_t code, const char *r, void *ud)
{
    (void)id, (void)code, (void)r, (void)ud;
    note(&callbacks_seen, &callbacks_seen.closes);
    note(&callbacks_seen, &callbacks_seen.ended);
}

static void handler(wsc_id id, void *ud)
{
    struct seen *s = &handler_seen;
    (void)id, (void)ud;
    if (strcmp(wsc_get_method(), "onreconnecting") == 0) {
        pthread_mutex_lock(&lock);
        s->last_attempt = wsc_get_reconnect_attempt();
        if (wsc_get_reconnect_delay_ms() > s->max_delay_ms)
            s->max_delay_ms = wsc_get_reconnect_delay_ms();
        snprintf(s->reason, sizeof s->reason, "%s", wsc_get_error() ? wsc_get_error() : "(null)");
        pthread_mutex_unlock(&lock);
        note(s, &s->reconnecting);
    } else if (wsc_is_on_error() || wsc_is_on_close()) {
        note(s, wsc_is_on_error() ? &s->errors : &s->closes);
        note(s, &s->ended);
    }
}

static void test_setters(void)
{
    wsc_options *o = wsc_options_new();
    CHECK_ST(wsc_options_set_reconnect(NULL, 1, 10, 0), WSC_ERR_INVALID_ARGUMENT);
    CHECK_ST(wsc_options_set_reconnect(o, 1, 0, 0), WSC_ERR_INVALID_ARGUMENT);
    CHECK_ST(wsc_options_set_reconnect(o, 20, 10, 0), WSC_ERR_INVALID_ARGUMENT);
    CHECK_ST(wsc_options_set_reconnect(o, 0, UINT32_MAX, UINT32_MAX), WSC_OK);
    CHECK_ST(wsc_options_set_on_reconnecting(NULL, on_reconnecting), WSC_ERR_INVALID_ARGUMENT);
    CHECK_ST(wsc_options_set_on_reconnecting(o, NULL), WSC_OK);
    CHECK(wsc_get_reconnect_attempt() == 0 && wsc_get_reconnect_delay_ms() == 0); /* outside a handler */
    wsc_options_free(o);
}

static void test_callbacks_count_attempts_then_one_error(void)
{
    int port = 0, fd = loopback_socket(0, &port);
    char uri[64];
    wsc_callbacks cb = {on_open, NULL, on_error, on_close};
    wsc_options *o = wsc_options_new();
    wsc_id id;
    CHECK(fd >= 0);
    snprintf(uri, sizeof uri, "ws://127.0.0.1:%d/", port);
    CHECK_ST(wsc_options_set_reconnect(o, 1, 5, 3), WSC_OK);
    CHECK_ST(wsc_options_set_on_reconnecting(o, on_reconnecting), WSC_OK);
    CHECK_ST(wsc_connect(uri, o, &cb, &callbacks_seen, &id), WSC_OK);
    wsc_options_free(o);
    CHECK(wait_count(&lock, &changed, &callbacks_seen.ended, 1, NULL, 20000));
    CHECK_ST(wsc_wait(id, 20000), WSC_OK);
    CHECK(callbacks_seen.reconnecting == 3 && callbacks_seen.last_attempt == 3);
    CHECK(callbacks_seen.max_delay_ms <= 5);
    CHECK(callbacks_seen.errors == 1 && callbacks_seen.closes == 0 && callbacks_seen.opens == 0);
    CHECK(callbacks_seen.bad_user_data == 0);
    CHECK(strstr(callbacks_seen.reason, "127.0.0.1") != NULL);
    close(fd);
}

static void test_handler_sees_onreconnecting(void)
{
    int port = 0, fd = loopback_socket(0, &port);
    char uri[64];
    wsc_options *o = wsc_options_new();
    wsc_id id;
    CHECK(fd >= 0);
    snprintf(uri, sizeof uri, "ws://127.0.0.1:%d/", port);
    CHECK_ST(wsc_register_handler("reconnect-test/h", handler, NULL), WSC_OK);
    CHECK_ST(wsc_options_set_reconnect(o, 60000, 60000, 0), WSC_OK);
    CHECK_ST(wsc_create_websocket(uri, "reconnect-test/h", NULL, o, &id), WSC_OK);
    wsc_options_free(o);
    CHECK(wait_count(&lock, &changed, &handler_seen.reconnecting, 1, NULL, 20000));
    CHECK(handler_seen.last_attempt == 1 && handler_seen.max_delay_ms <= 60000);
    CHECK(strlen(handler_seen.reason) > 0);
    {
        wsc_state st;
        CHECK_ST(wsc_get_state(id, &st), WSC_OK);
        CHECK(st == WSC_STATE_CONNECTING); /* during backoff */
    }
    CHECK_ST(wsc_send(id, "queued during backoff"), WSC_OK);
    CHECK_ST(wsc_close(id), WSC_OK); /* ends the backoff at once */
    CHECK(wait_count(&lock, &changed, &handler_seen.ended, 1, NULL, 20000));
    CHECK(handler_seen.closes == 1 && handler_seen.errors == 0);
    CHECK_ST(wsc_unregister_handler("reconnect-test/h"), WSC_OK);
    close(fd);
}

static const struct test_case tests[] = {
    TEST_CASE(test_setters),
    TEST_CASE(test_callbacks_count_attempts_then_one_error),
    TEST_CASE(test_handler_sees_onreconnecting),
};

int main(void)
{
    cond_init_monotonic(&changed);
    setvbuf(stdout, NULL, _IOLBF, 0);
    return run_tests(tests, sizeof tests / sizeof tests[0], shutdown_and_init, NULL);
}

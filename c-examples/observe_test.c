/*
 * observe_test: issue 14's C API, from C, against wsc's echo server:
 * wsc_ping and on_pong (payload, RTT, user_data), wsc_get_stats,
 * wsc_get_response_header, wsc_get_error_kind / wsc_get_http_status inside
 * on_error, and a log callback that calls back into wsc.
 *
 *   observe_test ECHO_URL
 *
 * Runs under valgrind and ASan (check.sh). Waits are condition variables
 * with deadlines, never sleeps.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"
#include "wsc.h"

#define WAIT_MS 10000

static const char *ECHO;

/* What one connection's callbacks saw; guarded by `lock`. */
struct rec {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    int opened, messages, pongs, ended;
    unsigned char pong_data[125];
    size_t pong_len;
    uint32_t pong_rtt_us;
    void *pong_user_data;
    wsc_error_kind kind;
    uint16_t http_status;
};

static void rec_init(struct rec *r)
{
    memset(r, 0, sizeof *r);
    pthread_mutex_init(&r->lock, NULL);
    cond_init_monotonic(&r->changed);
}

static void rec_free(struct rec *r)
{
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->changed);
}

static void bump(struct rec *r, int *field)
{
    pthread_mutex_lock(&r->lock);
    (*field)++;
    pthread_cond_broadcast(&r->changed);
    pthread_mutex_unlock(&r->lock);
}

static void on_open(wsc_id id, void *u)
{
    (void)id;
    bump(u, &((struct rec *)u)->opened);
}

static void on_message(wsc_id id, const uint8_t *data, size_t len, bool binary, void *u)
{
    (void)id, (void)data, (void)len, (void)binary;
    bump(u, &((struct rec *)u)->messages);
}

static void on_error(wsc_id id, const char *message, void *u)
{
    struct rec *r = u;
    (void)id, (void)message;
    pthread_mutex_lock(&r->lock);
    r->kind = wsc_get_error_kind();
    r->http_status = wsc_get_http_status();
    pthread_mutex_unlock(&r->lock);
    bump(r, &r->ended);
}

static void on_close(wsc_id id, uint16_t code, const char *reason, void *u)
{
    (void)id, (void)code, (void)reason;
    bump(u, &((struct rec *)u)->ended);
}

static void on_pong(wsc_id id, const uint8_t *data, size_t len, uint32_t rtt_us, void *u)
{
    struct rec *r = u;
    (void)id;
    pthread_mutex_lock(&r->lock);
    r->pong_len = len < sizeof r->pong_data ? len : sizeof r->pong_data;
    memcpy(r->pong_data, data, r->pong_len);
    r->pong_rtt_us = rtt_us;
    r->pong_user_data = u;
    pthread_mutex_unlock(&r->lock);
    bump(r, &r->pongs);
}

static const wsc_callbacks CALLBACKS = {on_open, on_message, on_error, on_close};

/* Connects to `url` with on_pong set; waits for the open unless `expect_open` is 0. */
static wsc_id open_conn(const char *url, struct rec *r, int expect_open)
{
    wsc_options *o = wsc_options_new();
    wsc_id id = 0;
    CHECK_ST(wsc_options_set_on_pong(o, on_pong), WSC_OK);
    CHECK_ST(wsc_connect(url, o, &CALLBACKS, r, &id), WSC_OK);
    wsc_options_free(o);
    if (expect_open)
        CHECK(wait_count(&r->lock, &r->changed, &r->opened, 1, &r->ended, WAIT_MS));
    return id;
}

static void close_conn(wsc_id id, struct rec *r)
{
    CHECK_ST(wsc_close(id), WSC_OK);
    CHECK_ST(wsc_wait(id, WAIT_MS), WSC_OK);
    CHECK(r->ended == 1);
}

static void ping_reaches_on_pong_with_the_rtt(void)
{
    struct rec r;
    uint8_t big[126] = {0};
    wsc_stats s;
    wsc_id id;
    rec_init(&r);
    id = open_conn(ECHO, &r, 1);
    CHECK_ST(wsc_ping(id, big, sizeof big), WSC_ERR_INVALID_ARGUMENT);
    CHECK_ST(wsc_ping(id, NULL, 3), WSC_ERR_INVALID_ARGUMENT);
    CHECK_ST(wsc_ping(id, (const uint8_t *)"abc", 3), WSC_OK);
    CHECK(wait_count(&r.lock, &r.changed, &r.pongs, 1, &r.ended, WAIT_MS));
    pthread_mutex_lock(&r.lock);
    CHECK(r.pong_len == 3 && memcmp(r.pong_data, "abc", 3) == 0);
    CHECK(r.pong_rtt_us > 0);
    CHECK(r.pong_user_data == &r);
    pthread_mutex_unlock(&r.lock);
    memset(&s, 0, sizeof s);
    s.struct_size = sizeof s;
    CHECK_ST(wsc_get_stats(id, &s), WSC_OK);
    /* The whole struct: its last field ends at sizeof (no trailing padding). */
    CHECK(s.struct_size == sizeof s);
    CHECK(s.pings_sent == 1 && s.pongs_received == 1);
    CHECK(s.last_rtt_us == r.pong_rtt_us);
    close_conn(id, &r);
    CHECK_ST(wsc_ping(id, NULL, 0), WSC_ERR_UNKNOWN_ID);
    rec_free(&r);
}

static void stats_count_messages_and_connect_phases(void)
{
    struct rec r;
    wsc_stats s;
    wsc_id id;
    rec_init(&r);
    id = open_conn(ECHO, &r, 1);
    CHECK_ST(wsc_send(id, "one"), WSC_OK);
    CHECK_ST(wsc_send_binary(id, (const uint8_t *)"four", 4), WSC_OK);
    CHECK(wait_count(&r.lock, &r.changed, &r.messages, 2, &r.ended, WAIT_MS));
    memset(&s, 0, sizeof s);
    s.struct_size = sizeof s;
    CHECK_ST(wsc_get_stats(id, &s), WSC_OK);
    CHECK(s.messages_sent == 2 && s.bytes_sent == 7);
    CHECK(s.messages_received == 2 && s.bytes_received == 7);
    CHECK(s.frames_sent == 2 && s.frames_received == 2);
    CHECK(s.reconnects == 0);
    CHECK(s.tcp_us > 0 && s.upgrade_us > 0);
    CHECK(s.tls_us == 0 && s.proxy_us == 0 && s.dns_us == 0); /* ws:// to an IP literal */
    /* A struct_size ending inside a field: that field is not touched, and
       struct_size comes back as the end of the last whole field. */
    memset(&s, 0xA5, sizeof s);
    s.struct_size = offsetof(wsc_stats, messages_sent) + 4;
    CHECK_ST(wsc_get_stats(id, &s), WSC_OK);
    CHECK(s.struct_size == offsetof(wsc_stats, messages_sent));
    CHECK(s.bytes_sent == 7 && s.bytes_received == 7);
    CHECK(s.messages_sent == 0xA5A5A5A5A5A5A5A5ULL);
    s.struct_size = 0;
    CHECK_ST(wsc_get_stats(id, &s), WSC_ERR_INVALID_ARGUMENT);
    CHECK_ST(wsc_get_stats(id, NULL), WSC_ERR_INVALID_ARGUMENT);
    close_conn(id, &r);
    rec_free(&r);
}

static void response_headers_after_open(void)
{
    struct rec r;
    char buf[64];
    wsc_id id;
    rec_init(&r);
    id = open_conn(ECHO, &r, 1);
    CHECK_ST(wsc_get_response_header(id, "UPGRADE", buf, sizeof buf), WSC_OK);
    CHECK(strcmp(buf, "websocket") == 0);
    CHECK_ST(wsc_get_response_header(id, "upgrade", buf, 9), WSC_ERR_INVALID_ARGUMENT);
    CHECK(strstr(wsc_last_error(), "too small") != NULL);
    CHECK_ST(wsc_get_response_header(id, "x-not-there", buf, sizeof buf), WSC_ERR_INVALID_ARGUMENT);
    CHECK(strstr(wsc_last_error(), "absent") != NULL);
    CHECK_ST(wsc_get_response_header(id, NULL, buf, sizeof buf), WSC_ERR_INVALID_ARGUMENT);
    close_conn(id, &r);
    rec_free(&r);
}

static void error_kind_inside_on_error_only(void)
{
    struct rec r;
    char url[64];
    int port = 0, fd = loopback_socket(0, &port); /* bound, not listening: refused */
    wsc_id id;
    rec_init(&r);
    CHECK(fd >= 0);
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/", port);
    id = open_conn(url, &r, 0);
    CHECK_ST(wsc_wait(id, WAIT_MS), WSC_OK);
    CHECK(r.kind == WSC_ERROR_CONNECT);
    CHECK(r.http_status == 0);
    CHECK(wsc_get_error_kind() == WSC_ERROR_NONE);
    CHECK(wsc_get_http_status() == 0);
    if (fd >= 0)
        close(fd);
    rec_free(&r);
}

/* The log: lines counted per level; each line asks wsc for its id's state. */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static int log_lines, log_with_id, log_bad;

static void on_log(wsc_log_level level, wsc_id id, const char *message, void *user_data)
{
    wsc_state state;
    if (id != 0)
        (void)wsc_get_state(id, &state); /* re-entrant: must not deadlock */
    pthread_mutex_lock(&log_lock);
    log_lines++;
    log_with_id += id != 0;
    log_bad += user_data != &log_lines || level < WSC_LOG_ERROR || level > WSC_LOG_TRACE || !message ||
               strstr(message, "SECRET") != NULL;
    pthread_mutex_unlock(&log_lock);
}

static void log_callback_gets_lines_and_may_call_wsc(void)
{
    struct rec r;
    wsc_options *o = wsc_options_new();
    wsc_id id = 0;
    rec_init(&r);
    CHECK_ST(wsc_set_log_callback(on_log, (wsc_log_level)9, NULL), WSC_ERR_INVALID_ARGUMENT);
    CHECK_ST(wsc_set_log_callback(on_log, WSC_LOG_TRACE, &log_lines), WSC_OK);
    CHECK_ST(wsc_options_add_header(o, "Authorization", "Bearer SECRET"), WSC_OK);
    CHECK_ST(wsc_connect(ECHO, o, &CALLBACKS, &r, &id), WSC_OK);
    wsc_options_free(o);
    CHECK(wait_count(&r.lock, &r.changed, &r.opened, 1, &r.ended, WAIT_MS));
    CHECK_ST(wsc_ping(id, (const uint8_t *)"p", 1), WSC_OK);
    close_conn(id, &r);
    CHECK_ST(wsc_set_log_callback(NULL, WSC_LOG_TRACE, NULL), WSC_OK);
    pthread_mutex_lock(&log_lock);
    CHECK(log_lines >= 5);
    CHECK(log_with_id == log_lines);
    CHECK(log_bad == 0);
    pthread_mutex_unlock(&log_lock);
    rec_free(&r);
}

int main(int argc, char **argv)
{
    static const struct test_case tests[] = {
        TEST_CASE(ping_reaches_on_pong_with_the_rtt),
        TEST_CASE(stats_count_messages_and_connect_phases),
        TEST_CASE(response_headers_after_open),
        TEST_CASE(error_kind_inside_on_error_only),
        TEST_CASE(log_callback_gets_lines_and_may_call_wsc),
    };
    int status;
    if (argc < 2) {
        fprintf(stderr, "usage: %s ECHO_URL\n", argv[0]);
        return 2;
    }
    ECHO = argv[1];
    status = run_tests(tests, sizeof tests / sizeof tests[0], NULL, NULL);
    if (wsc_shutdown(WAIT_MS) != WSC_OK)
        status = 1;
    return status;
}

/*
 * server_test: the endpoint server's C contract (wsc_server_*,
 * wsc_get_endpoint), from C, against itself on loopback: one C handler
 * serving both sides, server-side ids taking the same calls as clients,
 * NULL and bad UTF-8 on every pointer, bad names and descriptors, limits
 * (the pending-handshake cap included),
 * stop from inside a handler refused, stop closing clients with 1001.
 *
 *   server_test
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed;

/* What the shared handler saw, under lock. */
static struct {
    int client_messages, server_messages, client_closes, server_closes, server_opens;
    uint16_t client_close_code;
    char server_endpoint[64];
    int client_endpoint_null;
    char last_client_text[64];
    wsc_id server_id;
    wsc_status stop_inside; /* wsc_server_stop called from the handler */
} seen;

static wsc_server *stop_me; /* when set, the handler tries to stop it on open */

static void bump(int *counter)
{
    pthread_mutex_lock(&lock);
    (*counter)++;
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&lock);
}

/* One handler for both sides: the server side echoes, the client side records. */
static void both_sides(wsc_id id, void *user_data)
{
    const char *endpoint = wsc_get_endpoint();
    (void)user_data;
    if (endpoint) {
        pthread_mutex_lock(&lock);
        snprintf(seen.server_endpoint, sizeof seen.server_endpoint, "%s", endpoint);
        seen.server_id = id;
        pthread_mutex_unlock(&lock);
        if (wsc_is_on_open()) {
            if (stop_me)
                seen.stop_inside = wsc_server_stop(stop_me);
            bump(&seen.server_opens);
        } else if (wsc_is_on_message()) {
            if (wsc_get_message_is_binary())
                wsc_send_binary(id, (const uint8_t *)wsc_get_message(), wsc_get_message_length());
            else
                wsc_send_text(id, wsc_get_message(), wsc_get_message_length());
            bump(&seen.server_messages);
        } else if (wsc_is_on_close() || wsc_is_on_error()) {
            bump(&seen.server_closes);
        }
        return;
    }
    if (wsc_is_on_message()) {
        pthread_mutex_lock(&lock);
        seen.client_endpoint_null = 1;
        snprintf(seen.last_client_text, sizeof seen.last_client_text, "%s", wsc_get_message());
        pthread_mutex_unlock(&lock);
        bump(&seen.client_messages);
    } else if (wsc_is_on_close() || wsc_is_on_error()) {
        seen.client_close_code = wsc_get_close_code();
        bump(&seen.client_closes);
    }
}

static int wait_for(const int *counter, int want)
{
    return wait_count(&lock, &changed, counter, want, NULL, 20000);
}

static wsc_server *start(void)
{
    wsc_server *s = NULL;
    CHECK_ST(wsc_server_start("127.0.0.1:0", NULL, &s), WSC_OK);
    if (s)
        CHECK_ST(wsc_server_add_endpoint(s, "both", "c-server/both"), WSC_OK);
    return s;
}

static void url_of(wsc_server *s, const char *endpoint, char *buf, size_t len)
{
    snprintf(buf, len, "ws://127.0.0.1:%u/websockets/v4/service/%s", wsc_server_local_port(s), endpoint);
}

static void test_one_handler_serves_both_sides(void)
{
    wsc_server *s = start();
    char url[128];
    wsc_id client;
    wsc_state state;
    if (!s)
        return;
    url_of(s, "both", url, sizeof url);
    memset(&seen, 0, sizeof seen);
    CHECK_ST(wsc_create_websocket(url, "c-server/both", NULL, NULL, &client), WSC_OK);
    CHECK_ST(wsc_send(client, "hello server"), WSC_OK);
    CHECK(wait_for(&seen.client_messages, 1));
    CHECK(strcmp(seen.last_client_text, "hello server") == 0);
    CHECK(strcmp(seen.server_endpoint, "both") == 0);
    CHECK(seen.client_endpoint_null);
    /* a server-side id takes the calls a client id takes, but is no client */
    CHECK_ST(wsc_get_state(seen.server_id, &state), WSC_OK);
    CHECK(state == WSC_STATE_OPEN);
    CHECK_ST(wsc_set_flow_control(seen.server_id, false), WSC_OK);
    CHECK_ST(wsc_get_client(seen.server_id, &(wsc_client_info){0}), WSC_ERR_UNKNOWN_ID);
    CHECK(wsc_get_client_by_handler("c-server/both") == client);
    /* stop: the client sees 1001, then every server thread is gone */
    CHECK_ST(wsc_server_stop(s), WSC_OK);
    CHECK(wait_for(&seen.client_closes, 1));
    CHECK(seen.client_close_code == 1001);
    CHECK_ST(wsc_wait(client, 20000), WSC_OK);
    CHECK_ST(wsc_get_state(seen.server_id, &state), WSC_ERR_UNKNOWN_ID);
}

static void test_stop_from_inside_a_handler_is_refused(void)
{
    wsc_server *s = start();
    char url[128];
    wsc_id client;
    if (!s)
        return;
    url_of(s, "both", url, sizeof url);
    memset(&seen, 0, sizeof seen);
    stop_me = s;
    CHECK_ST(wsc_create_websocket(url, "c-server/both", NULL, NULL, &client), WSC_OK);
    CHECK(wait_for(&seen.server_opens, 1));
    stop_me = NULL;
    CHECK_ST(seen.stop_inside, WSC_ERR_INVALID_ARGUMENT);
    CHECK_ST(wsc_server_stop(s), WSC_OK); /* still valid, and stops from here */
    CHECK_ST(wsc_wait(client, 20000), WSC_OK);
}

static void test_bad_arguments(void)
{
    wsc_server *s = NULL;
    const char bad_utf8[] = {'\xff', '\xfe', 0};
    char dir[] = "/tmp/wsc-server-test-XXXXXX", path[256];
    FILE *f;
    CHECK_ST(wsc_server_start(NULL, NULL, &s), WSC_ERR_INVALID_ARGUMENT);
    CHECK_ST(wsc_server_start("127.0.0.1:0", NULL, NULL), WSC_ERR_INVALID_ARGUMENT);
    CHECK_ST(wsc_server_start(bad_utf8, NULL, &s), WSC_ERR_INVALID_ARGUMENT);
    CHECK_ST(wsc_server_start("no address", NULL, &s), WSC_ERR_INVALID_ARGUMENT);
    CHECK_ST(wsc_server_start("127.0.0.1:0", "/nonexistent/wsc", &s), WSC_ERR_INVALID_ARGUMENT);
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/broken.websocket", dir);
    if ((f = fopen(path, "w")) != NULL) {
        fputs("{\"handler\": \"h\"}", f);
        fclose(f);
    }
    CHECK_ST(wsc_server_start("127.0.0.1:0", dir, &s), WSC_ERR_INVALID_ARGUMENT);
    CHECK(strstr(wsc_last_error(), "broken.websocket") && strstr(wsc_last_error(), "'endpoint'"));
    unlink(path);
    rmdir(dir);
    CHECK(wsc_server_local_port(NULL) == 0);
    CHECK_ST(wsc_server_add_endpoint(NULL, "e", "h"), WSC_ERR_INVALID_ARGUMENT);
    CHECK_ST(wsc_server_set_limits(NULL, 1, 1, 1), WSC_ERR_INVALID_ARGUMENT);
    CHECK_ST(wsc_server_set_max_pending(NULL, 1024), WSC_ERR_INVALID_ARGUMENT);
    CHECK_ST(wsc_server_add_allowed_origin(NULL, "http://x"), WSC_ERR_INVALID_ARGUMENT);
    CHECK_ST(wsc_server_stop(NULL), WSC_ERR_INVALID_ARGUMENT);
    s = start();
    if (!s)
        return;
    {
        wsc_server *again = NULL;
        char bind[32];
        snprintf(bind, sizeof bind, "127.0.0.1:%u", wsc_server_local_port(s));
        CHECK_ST(wsc_server_start(bind, NULL, &again), WSC_ERR_INTERNAL);
        CHECK(strstr(wsc_last_error(), "in use") != NULL);
    }
    CHECK_ST(wsc_server_add_endpoint(s, NULL, "h"), WSC_ERR_INVALID_ARGUMENT);
    CHECK_ST(wsc_server_add_endpoint(s, "e", NULL), WSC_ERR_INVALID_ARGUMENT);
    CHECK_ST(wsc_server_add_endpoint(s, bad_utf8, "h"), WSC_ERR_INVALID_ARGUMENT);
    CHECK_ST(wsc_server_add_endpoint(s, "..", "h"), WSC_ERR_INVALID_ARGUMENT);
    CHECK_ST(wsc_server_add_endpoint(s, "a/b", "h"), WSC_ERR_INVALID_ARGUMENT);
    CHECK_ST(wsc_server_add_endpoint(s, "both", "h"), WSC_ERR_INVALID_ARGUMENT); /* already served */
    CHECK_ST(wsc_server_add_endpoint(s, "later", "not-registered-yet"), WSC_OK);
    CHECK_ST(wsc_server_set_limits(s, 0, 1, 1), WSC_ERR_INVALID_ARGUMENT);
    CHECK_ST(wsc_server_set_limits(s, 10, 1 << 20, 5000), WSC_OK);
    CHECK_ST(wsc_server_set_max_pending(s, 0), WSC_ERR_INVALID_ARGUMENT);
    CHECK(strstr(wsc_last_error(), "pending") != NULL);
    CHECK_ST(wsc_server_set_max_pending(s, UINT32_MAX), WSC_OK);
    CHECK_ST(wsc_server_set_max_pending(s, 1), WSC_OK);
    CHECK_ST(wsc_server_set_max_pending(s, 1024), WSC_OK);
    CHECK_ST(wsc_server_add_allowed_origin(s, NULL), WSC_ERR_INVALID_ARGUMENT);
    CHECK_ST(wsc_server_add_allowed_origin(s, "http://127.0.0.1"), WSC_OK);
    CHECK(wsc_get_endpoint() == NULL); /* outside a handler */
    CHECK_ST(wsc_server_stop(s), WSC_OK);
}

static const struct test_case tests[] = {
    TEST_CASE(test_one_handler_serves_both_sides),
    TEST_CASE(test_stop_from_inside_a_handler_is_refused),
    TEST_CASE(test_bad_arguments),
};

int main(void)
{
    cond_init_monotonic(&changed);
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (wsc_register_handler("c-server/both", both_sides, NULL) != WSC_OK)
        return fprintf(stderr, "register: %s\n", wsc_last_error()), 1;
    return run_tests(tests, sizeof tests / sizeof tests[0], shutdown_and_init, NULL);
}

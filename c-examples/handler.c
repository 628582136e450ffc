/*
 * handler: Dirigible's WebSocket client example, in C.
 *
 *   // JavaScript, sdk/net
 *   let websocket = websockets.createWebsocket(uri, "my-project/ws-handler");
 *   websocket.send("hello");
 *   websockets.getClientByHandler(handler).close();
 *
 * One function, registered under a name, receives every event of the
 * connections created with that name, and asks which event it is.
 *
 *   handler [ws://host:port/path]
 *
 * Without an argument: $WSC_URL, else the local demo server at
 * ws://127.0.0.1:${WSC_DEMO_PORT:-8080}/websockets/v4/service/my-endpoint.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h" /* cond_init_monotonic, wait_count: waiting with a deadline */
#include "wsc.h"

static const char *const HANDLER = "my-project/ws-handler";

struct progress {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    int echoed;
    int finished;
};

static void advance(struct progress *p, int *field)
{
    pthread_mutex_lock(&p->lock);
    *field = 1;
    pthread_cond_broadcast(&p->changed);
    pthread_mutex_unlock(&p->lock);
}

/* The handler: the same entry point for onopen, onmessage, onerror, onclose. */
static void ws_handler(wsc_id id, void *user_data)
{
    struct progress *p = user_data;
    printf("[%llu] %s", (unsigned long long)id, wsc_get_method());
    if (wsc_is_on_message())
        printf(": %s", wsc_get_message_is_binary() ? "(binary)" : wsc_get_message());
    else if (wsc_is_on_error())
        printf(": %s", wsc_get_error());
    else if (wsc_is_on_close())
        printf(": code %u", (unsigned)wsc_get_close_code());
    printf("\n");
    if (wsc_is_on_message())
        advance(p, &p->echoed);
    if (wsc_is_on_error() || wsc_is_on_close())
        advance(p, &p->finished);
}

/* Waits until *flag is set or the connection has ended; false on timeout. */
static int wait_flag(struct progress *p, const int *flag, int timeout_ms)
{
    return wait_count(&p->lock, &p->changed, flag, 1, &p->finished, timeout_ms);
}

static void default_uri(char *buf, size_t len)
{
    const char *url = getenv("WSC_URL");
    const char *port = getenv("WSC_DEMO_PORT");
    if (url)
        snprintf(buf, len, "%s", url);
    else
        snprintf(buf, len, "ws://127.0.0.1:%s/websockets/v4/service/my-endpoint",
                 port ? port : "8080");
}

int main(int argc, char **argv)
{
    struct progress p = {0};
    char uri[512];
    wsc_id id, found;
    int ok;

    cond_init_monotonic(&p.changed);
    pthread_mutex_init(&p.lock, NULL);
    if (argc > 1)
        snprintf(uri, sizeof uri, "%s", argv[1]);
    else
        default_uri(uri, sizeof uri);

    if (wsc_register_handler(HANDLER, ws_handler, &p) != WSC_OK ||
        wsc_create_websocket(uri, HANDLER, NULL, NULL, &id) != WSC_OK) {
        fprintf(stderr, "handler: %s\n", wsc_last_error());
        return 1;
    }
    printf("connect to: %s\n", uri);
    wsc_send(id, "hello"); /* queued until the handshake is done */

    /* Wait for the echo before closing, so the example shows it. */
    ok = wait_flag(&p, &p.echoed, 10000);
    found = wsc_get_client_by_handler(HANDLER);
    printf("client by handler: %s\n", found == id ? "found" : "NOT FOUND");
    ok = ok && found == id && wsc_close(found) == WSC_OK;
    ok = wait_flag(&p, &p.finished, 10000) && ok;

    /* Every worker joined: the connection has certainly finished by now. */
    ok = wsc_shutdown(5000) == WSC_OK && ok;
    found = wsc_get_client_by_handler(HANDLER);
    printf("client by handler after close: %llu\n", (unsigned long long)found);
    ok = ok && found == 0;
    wsc_unregister_handler(HANDLER);
    return ok ? 0 : 1;
}

/*
 * handler: Dirigible's WebSocket example, both halves, in C.
 *
 *   // JavaScript, sdk/net: the client half
 *   let websocket = websockets.createWebsocket(uri, "my-project/ws-handler");
 *   websocket.send("hello");
 *   websockets.getClientByHandler(handler).close();
 *
 *   // my-endpoint.websocket: the server half, served with the same handler
 *   { "handler": "my-project/ws-handler", "endpoint": "my-endpoint", "description": "My Websocket" }
 *
 * One function, registered under a name, receives every event of the
 * connections created with that name and of those a server accepts on an
 * endpoint bound to it, and asks which event it is (and, on the server
 * side, which endpoint).
 *
 *   handler                      both halves: serves my-endpoint on
 *                                127.0.0.1 (a free port), connects to it
 *   handler ws://host:port/path  the client half only, to that server
 *
 * $WSC_URL stands in for the argument.
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

/* The handler: the same entry point for onopen, onmessage, onerror,
 * onclose, on both sides. The server side echoes what it gets. */
static void ws_handler(wsc_id id, void *user_data)
{
    struct progress *p = user_data;
    const char *endpoint = wsc_get_endpoint();
    if (endpoint) {
        printf("[%llu @%s] %s%s%s\n", (unsigned long long)id, endpoint, wsc_get_method(),
               wsc_is_on_message() ? ": " : "", wsc_is_on_message() ? wsc_get_message() : "");
        if (wsc_is_on_message())
            wsc_send_text(id, wsc_get_message(), wsc_get_message_length());
        return;
    }
    {
        char detail[256] = "";
        if (wsc_is_on_message())
            snprintf(detail, sizeof detail, ": %s", wsc_get_message_is_binary() ? "(binary)" : wsc_get_message());
        else if (wsc_is_on_error())
            snprintf(detail, sizeof detail, ": %s", wsc_get_error());
        else if (wsc_is_on_close())
            snprintf(detail, sizeof detail, ": code %u", (unsigned)wsc_get_close_code());
        printf("[%llu] %s%s\n", (unsigned long long)id, wsc_get_method(), detail); /* one line per call */
    }
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


int main(int argc, char **argv)
{
    struct progress p = {0};
    char uri[512];
    const char *given = argc > 1 ? argv[1] : getenv("WSC_URL");
    wsc_server *server = NULL;
    wsc_id id, found;
    int ok;

    cond_init_monotonic(&p.changed);
    pthread_mutex_init(&p.lock, NULL);
    if (wsc_register_handler(HANDLER, ws_handler, &p) != WSC_OK)
        return fprintf(stderr, "handler: %s\n", wsc_last_error()), 1;
    if (given) {
        snprintf(uri, sizeof uri, "%s", given);
    } else { /* the server half: my-endpoint, bound to the same handler */
        if (wsc_server_start("127.0.0.1:0", NULL, &server) != WSC_OK ||
            wsc_server_add_endpoint(server, "my-endpoint", HANDLER) != WSC_OK)
            return fprintf(stderr, "handler: %s\n", wsc_last_error()), 1;
        snprintf(uri, sizeof uri, "ws://127.0.0.1:%u/websockets/v4/service/my-endpoint",
                 (unsigned)wsc_server_local_port(server));
        printf("serving my-endpoint at %s (and a test page at http://127.0.0.1:%u/)\n", uri,
               (unsigned)wsc_server_local_port(server));
    }
    if (wsc_create_websocket(uri, HANDLER, NULL, NULL, &id) != WSC_OK) {
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

    if (server)
        ok = wsc_server_stop(server) == WSC_OK && ok;
    /* Every worker joined: the connection has certainly finished by now. */
    ok = wsc_shutdown(5000) == WSC_OK && ok;
    found = wsc_get_client_by_handler(HANDLER);
    printf("client by handler after close: %llu\n", (unsigned long long)found);
    ok = ok && found == 0;
    wsc_unregister_handler(HANDLER);
    return ok ? 0 : 1;
}

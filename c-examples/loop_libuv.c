/*
 * loop_libuv: wsc's event loop inside a libuv loop: a uv_poll_t watches
 * wsc_loop_fd() and dispatches; every callback runs on the libuv thread.
 *
 *   loop_libuv ECHO_URL [CONNECTIONS]    (default 100)
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <uv.h>

#include "wsc.h"

static int ended, echoes, connections = 100;
static wsc_loop *loop;
static uv_poll_t watcher;

static void on_open(wsc_id id, void *ud)
{
    (void)ud;
    wsc_send(id, "hello from libuv");
}

static void on_message(wsc_id id, const uint8_t *data, size_t len, bool binary, void *ud)
{
    (void)data, (void)len, (void)binary, (void)ud;
    echoes++;
    wsc_close(id);
}

static void on_end(void)
{
    if (++ended == connections)
        uv_poll_stop(&watcher); /* nothing left: the libuv loop ends */
}

static void on_error(wsc_id id, const char *m, void *ud)
{
    (void)id, (void)ud;
    fprintf(stderr, "on_error: %s\n", m);
    on_end();
}

static void on_close(wsc_id id, uint16_t code, const char *r, void *ud)
{
    (void)id, (void)code, (void)r, (void)ud;
    on_end();
}

static void readable(uv_poll_t *w, int status, int events)
{
    (void)w, (void)status, (void)events;
    wsc_loop_dispatch(loop, 0, NULL);
}

int main(int argc, char **argv)
{
    wsc_callbacks cb = {on_open, on_message, on_error, on_close};
    wsc_options *o = wsc_options_new();
    int i;
    if (argc < 2)
        return fprintf(stderr, "usage: loop_libuv ECHO_URL [CONNECTIONS]\n"), 2;
    if (argc > 2)
        connections = atoi(argv[2]);
    if (wsc_loop_new(&loop) != WSC_OK || wsc_options_set_loop(o, loop) != WSC_OK)
        return fprintf(stderr, "loop: %s\n", wsc_last_error()), 1;
    for (i = 0; i < connections; i++) {
        wsc_id id;
        if (wsc_connect(argv[1], o, &cb, NULL, &id) != WSC_OK)
            return fprintf(stderr, "connect: %s\n", wsc_last_error()), 1;
    }
    wsc_options_free(o);
    uv_poll_init(uv_default_loop(), &watcher, wsc_loop_fd(loop));
    uv_poll_start(&watcher, UV_READABLE, readable);
    uv_run(uv_default_loop(), UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&watcher, NULL);
    uv_run(uv_default_loop(), UV_RUN_DEFAULT);
    uv_loop_close(uv_default_loop());
    printf("loop_libuv: %d connections, %d echoes, %d ended\n", connections, echoes, ended);
    if (wsc_shutdown(20000) != WSC_OK || wsc_loop_free(loop) != WSC_OK)
        return fprintf(stderr, "teardown: %s\n", wsc_last_error()), 1;
    return echoes == connections && ended == connections ? 0 : 1;
}

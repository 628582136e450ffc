/*
 * loop_glib: wsc's event loop inside a GLib main loop: g_unix_fd_add
 * watches wsc_loop_fd() and dispatches; every callback runs on the GLib
 * thread.
 *
 *   loop_glib ECHO_URL [CONNECTIONS]    (default 100)
 */
#include <glib-unix.h>
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>

#include "wsc.h"

static int ended, echoes, connections = 100;
static wsc_loop *loop;
static GMainLoop *main_loop;

static void on_open(wsc_id id, void *ud)
{
    (void)ud;
    wsc_send(id, "hello from GLib");
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
        g_main_loop_quit(main_loop);
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

static gboolean readable(gint fd, GIOCondition condition, gpointer data)
{
    (void)fd, (void)condition, (void)data;
    wsc_loop_dispatch(loop, 0, NULL);
    return G_SOURCE_CONTINUE;
}

int main(int argc, char **argv)
{
    wsc_callbacks cb = {on_open, on_message, on_error, on_close};
    wsc_options *o = wsc_options_new();
    guint source;
    int i;
    if (argc < 2)
        return fprintf(stderr, "usage: loop_glib ECHO_URL [CONNECTIONS]\n"), 2;
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
    main_loop = g_main_loop_new(NULL, FALSE);
    source = g_unix_fd_add(wsc_loop_fd(loop), G_IO_IN, readable, NULL);
    g_main_loop_run(main_loop);
    g_source_remove(source);
    g_main_loop_unref(main_loop);
    printf("loop_glib: %d connections, %d echoes, %d ended\n", connections, echoes, ended);
    if (wsc_shutdown(20000) != WSC_OK || wsc_loop_free(loop) != WSC_OK)
        return fprintf(stderr, "teardown: %s\n", wsc_last_error()), 1;
    return echoes == connections && ended == connections ? 0 : 1;
}

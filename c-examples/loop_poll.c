/*
 * loop_poll: many connections served from one thread with a plain poll(2)
 * loop: every callback runs inside wsc_loop_dispatch on this thread, while
 * the I/O stays on wsc's worker threads.
 *
 *   loop_poll ECHO_URL [CONNECTIONS]     (default 100)
 *
 * Each connection sends three messages from on_open and closes after the
 * third echo. Prints what arrived; exit status 1 if anything ran on another
 * thread, arrived out of order, or a connection did not end exactly once.
 */
#define _GNU_SOURCE
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wsc.h"

struct conn {
    int next, ends;
};

static pthread_t loop_thread;
static int wrong_thread, out_of_order, ended, connections = 100;

static void check_thread(void)
{
    wrong_thread += !pthread_equal(pthread_self(), loop_thread);
}

static void on_open(wsc_id id, void *ud)
{
    (void)ud;
    check_thread();
    wsc_send(id, "0"), wsc_send(id, "1"), wsc_send(id, "2");
}

static void on_message(wsc_id id, const uint8_t *data, size_t len, bool binary, void *ud)
{
    struct conn *c = ud;
    check_thread();
    out_of_order += binary || len != 1 || data[0] != '0' + c->next;
    if (++c->next == 3)
        wsc_close(id);
}

static void on_end(struct conn *c)
{
    check_thread();
    c->ends++;
    ended++;
}

static void on_error(wsc_id id, const char *m, void *ud)
{
    (void)id;
    fprintf(stderr, "on_error: %s\n", m);
    on_end(ud);
}

static void on_close(wsc_id id, uint16_t code, const char *r, void *ud)
{
    (void)id, (void)code, (void)r;
    on_end(ud);
}

int main(int argc, char **argv)
{
    wsc_callbacks cb = {on_open, on_message, on_error, on_close};
    wsc_loop *loop;
    wsc_options *o = wsc_options_new();
    struct conn *conns;
    int i, bad_ends = 0;
    if (argc < 2)
        return fprintf(stderr, "usage: loop_poll ECHO_URL [CONNECTIONS]\n"), 2;
    if (argc > 2)
        connections = atoi(argv[2]);
    loop_thread = pthread_self();
    conns = calloc((size_t)connections, sizeof *conns);
    if (wsc_loop_new(&loop) != WSC_OK || wsc_options_set_loop(o, loop) != WSC_OK)
        return fprintf(stderr, "loop: %s\n", wsc_last_error()), 1;
    for (i = 0; i < connections; i++) {
        wsc_id id;
        if (wsc_connect(argv[1], o, &cb, &conns[i], &id) != WSC_OK)
            return fprintf(stderr, "connect: %s\n", wsc_last_error()), 1;
    }
    wsc_options_free(o);
    while (ended < connections) {
        struct pollfd p = {wsc_loop_fd(loop), POLLIN, 0};
        if (poll(&p, 1, 20000) != 1)
            return fprintf(stderr, "loop_poll: nothing happened for 20 s (%d ended)\n", ended), 1;
        wsc_loop_dispatch(loop, 0, NULL);
    }
    for (i = 0; i < connections; i++)
        bad_ends += conns[i].ends != 1;
    printf("loop_poll: %d connections, %d ended, %d out of order, %d callbacks on another thread, %d bad ends\n",
           connections, ended, out_of_order, wrong_thread, bad_ends);
    if (wsc_shutdown(20000) != WSC_OK || wsc_loop_free(loop) != WSC_OK)
        return fprintf(stderr, "teardown: %s\n", wsc_last_error()), 1;
    free(conns);
    return out_of_order || wrong_thread || bad_ends ? 1 : 0;
}

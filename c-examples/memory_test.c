/*
 * memory_test: what an idle connection keeps after large messages. Opens a
 * connection to an echo server, measures the malloc heap in use, echoes three
 * 12 MiB text messages through the C callbacks, and measures again once the
 * connection is idle: right away (tungstenite still holds buffers of the
 * largest frame's size), then until it is back within 64 KiB of where it
 * began (wsc gives those buffers back after 1 s of idleness; the C sink's
 * text copy at once). The wait for that is bounded (10 s): the drop is
 * only observable by looking.
 *
 *   memory_test ECHO_URL
 *
 * Prints the figures; exit status 1 past the limit. Under valgrind or ASan
 * (which replace malloc) mallinfo2 reads 0 and only the exchange is checked.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "testutil.h"

#define BIG (12u << 20)
#define ROUNDS 3

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed;
static int opened, echoes, ended, bad;

static void on_open(wsc_id id, void *ud)
{
    (void)id, (void)ud;
    pthread_mutex_lock(&lock);
    opened = 1;
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&lock);
}

static void on_message(wsc_id id, const uint8_t *data, size_t len, bool binary, void *ud)
{
    (void)id, (void)ud;
    pthread_mutex_lock(&lock);
    bad += binary || (len != BIG && len != 5) || data[len] != 0 || data[0] != (len == 5 ? 'h' : 'x');
    echoes++;
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&lock);
}

static void on_end(void)
{
    pthread_mutex_lock(&lock);
    ended = 1;
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&lock);
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

/* Waits (60 s at most) until *counter reaches want or the connection ended. */
static int wait_for(const int *counter, int want)
{
    return wait_count(&lock, &changed, counter, want, &ended, 60000);
}

static long heap_kib(void)
{
    return (long)(heap_in_use() >> 10);
}

int main(int argc, char **argv)
{
    wsc_callbacks cb = {on_open, on_message, on_error, on_close};
    wsc_id id;
    char *big;
    long before, after, settled, limit = 64;
    struct timespec start;
    int i;
    if (argc < 2) {
        fprintf(stderr, "usage: memory_test ECHO_URL\n");
        return 2;
    }
    cond_init_monotonic(&changed);
    if (wsc_connect(argv[1], NULL, &cb, NULL, &id) != WSC_OK || !wait_for(&opened, 1))
        return fprintf(stderr, "connect failed: %s\n", wsc_last_error()), 1;
    wsc_send(id, "hello");
    if (!wait_for(&echoes, 1))
        return fprintf(stderr, "no small echo\n"), 1;
    before = heap_kib();
    big = malloc(BIG + 1);
    memset(big, 'x', BIG);
    big[BIG] = 0;
    for (i = 0; i < ROUNDS; i++) {
        if (wsc_send_text(id, big, BIG) != WSC_OK || !wait_for(&echoes, 2 + i))
            return fprintf(stderr, "echo %d failed: %s\n", i, wsc_last_error()), 1;
    }
    free(big);
    /* one more small echo: the last big message's callback has returned */
    wsc_send(id, "hello");
    if (!wait_for(&echoes, 2 + ROUNDS))
        return fprintf(stderr, "no small echo\n"), 1;
    after = heap_kib();
    clock_gettime(CLOCK_MONOTONIC, &start);
    do {
        struct timespec pause = {0, 20 * 1000 * 1000};
        nanosleep(&pause, NULL); /* polling an effect seen only by looking */
        settled = heap_kib();
    } while (settled - before > limit && elapsed_ms(&start) < 10000);
    printf("memory_test: heap in use %ld KiB before, after %d x %u MiB text echoes %+ld KiB at once and %+ld KiB "
           "idle after %ld ms (limit %+ld KiB)\n",
           before, ROUNDS, BIG >> 20, after - before, settled - before,
           elapsed_ms(&start), limit);
    wsc_close(id);
    wsc_wait(id, 20000);
    if (wsc_shutdown(20000) != WSC_OK)
        return fprintf(stderr, "shutdown: %s\n", wsc_last_error()), 1;
    if (bad)
        return fprintf(stderr, "%d echo(es) came back wrong\n", bad), 1;
    return settled - before > limit ? 1 : 0;
}

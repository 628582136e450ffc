/*
 * race_test: wsc_shutdown at the same moment as everything else, through the
 * C ABI, for many rounds. Each round, three application threads call
 * wsc_connect / wsc_send / wsc_close / wsc_message_complete /
 * wsc_set_flow_control / wsc_shutdown in a random order (seeded per round,
 * so a failing round is reproducible) until wsc_connect is refused with
 * WSC_ERR_SHUTDOWN, while the main thread calls wsc_shutdown at a varying
 * moment. After every WSC_OK from wsc_shutdown, on whichever thread:
 * nothing is listed; once the round is over: no wsc- thread, every id
 * unknown, exactly one terminal callback per admitted connection. Every
 * status must be one the contract allows for that call. Then wsc_init and
 * the next round.
 *
 *   race_test ECHO_URL [ROUNDS]      (default 1500 rounds)
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "testutil.h"

#define APPS 3
#define MAX_IDS 4096

static const char *ECHO;
static int failures;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static long terminals; /* terminal callbacks this round, under lock */

#define FAIL(...)                                                                                                      \
    do {                                                                                                               \
        pthread_mutex_lock(&lock);                                                                                     \
        failures++;                                                                                                    \
        fprintf(stderr, "FAIL line %d: ", __LINE__);                                                                   \
        fprintf(stderr, __VA_ARGS__);                                                                                  \
        fprintf(stderr, " (%s)\n", wsc_last_error());                                                                  \
        pthread_mutex_unlock(&lock);                                                                                   \
    } while (0)

static void on_terminal(void)
{
    pthread_mutex_lock(&lock);
    terminals++;
    pthread_mutex_unlock(&lock);
}

static void on_error(wsc_id id, const char *message, void *ud)
{
    (void)id, (void)message, (void)ud;
    on_terminal();
}

static void on_close(wsc_id id, uint16_t code, const char *reason, void *ud)
{
    (void)id, (void)code, (void)reason, (void)ud;
    on_terminal();
}

static unsigned next(unsigned *seed)
{
    *seed ^= *seed << 13;
    *seed ^= *seed >> 17;
    *seed ^= *seed << 5;
    return *seed;
}

static int worker_threads(void)
{
    DIR *dir = opendir("/proc/self/task");
    struct dirent *e;
    int n = 0;
    char path[300], name[64];
    if (!dir)
        return -1;
    while ((e = readdir(dir)) != NULL) {
        FILE *f;
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
        if ((f = fopen(path, "r")) == NULL)
            continue; /* the thread left meanwhile */
        if (fgets(name, sizeof name, f) && strncmp(name, "wsc-", 4) == 0)
            n++;
        fclose(f);
    }
    closedir(dir);
    return n;
}

/* The kernel drops a joined thread from /proc/self/task a moment after
 * pthread_join returns; wait that out (at most 2 s), then count. */
static int worker_threads_settled(void)
{
    struct timespec start;
    int n;
    clock_gettime(CLOCK_MONOTONIC, &start);
    while ((n = worker_threads()) > 0 && elapsed_ms(&start) < 2000)
        sched_yield();
    return n;
}

struct app {
    pthread_t thread;
    unsigned seed;
    wsc_id ids[MAX_IDS];
    int n;
    pthread_barrier_t *start;
};

static int one_of(wsc_status st, wsc_status a, wsc_status b, wsc_status c, wsc_status d)
{
    return st == a || st == b || st == c || st == d;
}

static void *app_main(void *arg)
{
    struct app *a = arg;
    wsc_callbacks cb = {NULL, NULL, on_error, on_close};
    pthread_barrier_wait(a->start);
    for (;;) {
        unsigned r = next(&a->seed);
        wsc_id id = a->n ? a->ids[next(&a->seed) % (unsigned)a->n] : 0;
        wsc_status st;
        switch (r % 9) {
        case 0:
        case 1:
            st = wsc_connect(ECHO, NULL, &cb, NULL, &id);
            if (st == WSC_ERR_SHUTDOWN)
                return NULL;
            if (st != WSC_OK)
                FAIL("wsc_connect: %s", wsc_status_str(st));
            else if (a->n < MAX_IDS)
                a->ids[a->n++] = id;
            break;
        case 2:
            st = wsc_send(id, "x");
            if (a->n && !one_of(st, WSC_OK, WSC_ERR_CLOSED, WSC_ERR_UNKNOWN_ID, WSC_ERR_QUEUE_FULL))
                FAIL("wsc_send: %s", wsc_status_str(st));
            break;
        case 3:
            st = wsc_close(id);
            if (a->n && !one_of(st, WSC_OK, WSC_ERR_CLOSED, WSC_ERR_UNKNOWN_ID, WSC_ERR_UNKNOWN_ID))
                FAIL("wsc_close: %s", wsc_status_str(st));
            break;
        case 4:
            st = wsc_message_complete(id);
            if (a->n && !one_of(st, WSC_OK, WSC_ERR_UNKNOWN_ID, WSC_ERR_UNKNOWN_ID, WSC_ERR_UNKNOWN_ID))
                FAIL("wsc_message_complete: %s", wsc_status_str(st));
            break;
        case 5:
            st = wsc_set_flow_control(id, r & 16);
            if (a->n && !one_of(st, WSC_OK, WSC_ERR_UNKNOWN_ID, WSC_ERR_UNKNOWN_ID, WSC_ERR_UNKNOWN_ID))
                FAIL("wsc_set_flow_control: %s", wsc_status_str(st));
            break;
        case 6:
            if (r % 64 == 6) { /* now and then, a shutdown from an application thread too */
                st = wsc_shutdown(r % 3);
                if (st == WSC_OK && listed_clients() != 0)
                    FAIL("listed connections after WSC_OK from an application thread's shutdown");
                if (!one_of(st, WSC_OK, WSC_ERR_TIMEOUT, WSC_ERR_TIMEOUT, WSC_ERR_TIMEOUT))
                    FAIL("wsc_shutdown: %s", wsc_status_str(st));
            }
            break;
        default:
            sched_yield();
        }
    }
}

static void round_once(unsigned round)
{
    struct app apps[APPS];
    pthread_barrier_t start;
    wsc_status st;
    long connected = 0, spin;
    int i, j, n;
    volatile long sink = 0;

    terminals = 0;
    pthread_barrier_init(&start, NULL, APPS + 1);
    for (i = 0; i < APPS; i++) {
        apps[i].seed = round * 7919u + (unsigned)i * 104729u + 1u;
        apps[i].n = 0;
        apps[i].start = &start;
        pthread_create(&apps[i].thread, NULL, app_main, &apps[i]);
    }
    pthread_barrier_wait(&start);
    for (spin = (long)((round * 2654435761u) % 20000u); spin > 0; spin--)
        sink += spin; /* vary the moment of shutdown */
    st = wsc_shutdown(20000);
    if (st != WSC_OK)
        FAIL("round %u: wsc_shutdown: %s", round, wsc_status_str(st));
    if ((n = listed_clients()) != 0)
        FAIL("round %u: %d connection(s) listed after WSC_OK", round, n);
    for (i = 0; i < APPS; i++)
        pthread_join(apps[i].thread, NULL);
    pthread_barrier_destroy(&start);
    if ((n = worker_threads_settled()) != 0)
        FAIL("round %u: %d wsc- thread(s) after WSC_OK", round, n);
    for (i = 0; i < APPS; i++) {
        for (j = 0; j < apps[i].n; j++) {
            wsc_state state;
            st = wsc_get_state(apps[i].ids[j], &state);
            if (st != WSC_ERR_UNKNOWN_ID)
                FAIL("round %u: id %llu answers %s after shutdown", round, (unsigned long long)apps[i].ids[j],
                     wsc_status_str(st));
        }
        connected += apps[i].n;
    }
    pthread_mutex_lock(&lock);
    if (terminals != connected)
        fprintf(stderr, "FAIL round %u: %ld terminal callbacks for %ld connections\n", round, terminals, connected),
            failures++;
    pthread_mutex_unlock(&lock);
    if ((st = wsc_init()) != WSC_OK)
        FAIL("wsc_init: %s", wsc_status_str(st));
    (void)sink;
}

int main(int argc, char **argv)
{
    unsigned rounds = 1500, r;
    if (argc < 2) {
        fprintf(stderr, "usage: race_test ECHO_URL [ROUNDS]\n");
        return 2;
    }
    ECHO = argv[1];
    if (argc > 2)
        rounds = (unsigned)strtoul(argv[2], NULL, 10);
    for (r = 0; r < rounds && failures < 20; r++)
        round_once(r);
    printf("race_test: %u rounds, %d failures\n", r, failures);
    return failures ? 1 : 0;
}

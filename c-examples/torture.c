/*
 * API torture through the public C API (include/wsc.h): many application
 * threads call wsc_send, wsc_send_binary, wsc_close, wsc_close_with,
 * wsc_message_complete, wsc_set_flow_control, wsc_get_state and
 * wsc_buffered_amount at random on live, connecting, closing and finished
 * ids (and ids that never existed) while connections come and go, from the
 * application threads and from inside callbacks.
 *
 *   torture ECHO_BASE_URI SECONDS THREADS
 *
 * ECHO_BASE_URI is an independent server serving tests/interop's paths
 * (/echo, /close, /drop, /ping), e.g. ws://127.0.0.1:PORT. The program also
 * opens a loopback listener that never answers the handshake, and dials a
 * closed port, so some connections are still connecting when closed.
 *
 * Checks, each a non-zero exit: no call returns WSC_ERR_INTERNAL or a status
 * its contract does not allow; every connection gets exactly one terminal
 * callback and nothing after it; callbacks of one connection never overlap;
 * afterwards wsc_shutdown returns WSC_OK, every id answers
 * WSC_ERR_UNKNOWN_ID, no thread but main is left (/proc/self/task) and no
 * file descriptor is left open (/proc/self/fd).
 *
 * With TORTURE_RECONNECT=1 every connection has reconnect on (1-50 ms
 * backoff, unlimited) and an on_reconnecting callback, while run.sh kills
 * the peer with SIGKILL and restarts it at random: the same checks hold
 * (on_open may now come once per reconnect).
 *
 * Built and run by tests/torture/run.sh (also under helgrind / drd).
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h" /* after_ms, cond_init_monotonic, thread_count, fd_count, loopback_socket */
#include "wsc.h"

#define MAX_CONNS 200000
#define MAX_LIVE 48

struct conn {
    wsc_id id; /* 0 until wsc_connect returned */
    int terminals;
    int after_terminal; /* callbacks seen after the terminal one */
    int in_callback;
    int overlaps;
    unsigned seed;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ended; /* cond_init_monotonic in main */
static struct conn *conns;
static size_t n_conns, n_terminal;
static unsigned long n_calls, n_bad, n_opened, n_messages, n_errors, n_closes;
static int stop; /* under mu */
static pthread_mutex_t stats_mu = PTHREAD_MUTEX_INITIALIZER;
static char urls[6][256];
static wsc_options *options;

/* Plain counters under a mutex, so helgrind and drd see every access ordered. */
static void count(unsigned long *counter)
{
    pthread_mutex_lock(&stats_mu);
    (*counter)++;
    pthread_mutex_unlock(&stats_mu);
}

static int stopping(void)
{
    pthread_mutex_lock(&mu);
    int s = stop;
    pthread_mutex_unlock(&mu);
    return s;
}

static void bad(const char *what, wsc_id id, wsc_status st)
{
    pthread_mutex_lock(&mu);
    if (n_bad++ < 20)
        fprintf(stderr, "BAD: %s on id %llu returned %s (%s)\n", what, (unsigned long long)id,
                wsc_status_str(st), wsc_last_error());
    pthread_mutex_unlock(&mu);
}

/* The statuses each call may return during the run, as a bit set. */
#define S(x) (1u << (x))
#define ON_ID (S(WSC_OK) | S(WSC_ERR_UNKNOWN_ID))
#define SENDING (ON_ID | S(WSC_ERR_CLOSED) | S(WSC_ERR_QUEUE_FULL))
/* A bad argument is refused; which refusal wins over a gone id is unspecified. */
#define REFUSED (S(WSC_ERR_INVALID_ARGUMENT) | S(WSC_ERR_UNKNOWN_ID) | S(WSC_ERR_CLOSED))

static void check(const char *what, wsc_id id, wsc_status st, unsigned allowed)
{
    if (id == 0)
        allowed |= S(WSC_ERR_INVALID_ARGUMENT) | S(WSC_ERR_UNKNOWN_ID);
    if (!(allowed & S(st)))
        bad(what, id, st);
}

static void enter(struct conn *c)
{
    pthread_mutex_lock(&mu);
    if (c->in_callback)
        c->overlaps++;
    if (c->terminals)
        c->after_terminal++;
    c->in_callback = 1;
    pthread_mutex_unlock(&mu);
}

static void leave(struct conn *c, int terminal)
{
    pthread_mutex_lock(&mu);
    c->in_callback = 0;
    if (terminal) {
        c->terminals++;
        n_terminal++;
        pthread_cond_broadcast(&ended);
    }
    pthread_mutex_unlock(&mu);
}

/* One random call on `id`; also used from inside callbacks. */
static void poke(wsc_id id, unsigned *seed)
{
    static const char bad_utf8[] = "\xc3\x28";
    static const uint8_t blob[1024];
    wsc_state state;
    size_t bytes;
    unsigned r = rand_r(seed) % 1000;
    if (r < 300)
        check("wsc_send", id, wsc_send(id, "torture"), SENDING);
    else if (r < 450)
        check("wsc_send_binary", id, wsc_send_binary(id, blob, rand_r(seed) % sizeof blob), SENDING);
    else if (r < 480)
        check("wsc_send_text(bad UTF-8)", id, wsc_send_text(id, bad_utf8, 2), REFUSED);
    else if (r < 482)
        check("wsc_close", id, wsc_close(id), ON_ID | S(WSC_ERR_CLOSED));
    else if (r < 484)
        check("wsc_close_with", id, wsc_close_with(id, 4000, "bye"), ON_ID | S(WSC_ERR_CLOSED));
    else if (r < 494)
        check("wsc_close_with(1001)", id, wsc_close_with(id, 1001, NULL), REFUSED);
    else if (r < 644)
        check("wsc_message_complete", id, wsc_message_complete(id), ON_ID);
    else if (r < 744)
        check("wsc_set_flow_control", id, wsc_set_flow_control(id, rand_r(seed) % 2), ON_ID);
    else if (r < 844)
        check("wsc_get_state", id, wsc_get_state(id, &state), ON_ID);
    else if (r < 944)
        check("wsc_buffered_amount", id, wsc_buffered_amount(id, &bytes), ON_ID);
    else
        check("wsc_send(NULL)", id, wsc_send(id, NULL), REFUSED);
    count(&n_calls);
}

static void on_open(wsc_id id, void *ud)
{
    struct conn *c = ud;
    enter(c);
    count(&n_opened);
    poke(id, &c->seed);
    leave(c, 0);
}

static void on_message(wsc_id id, const uint8_t *data, size_t len, bool is_binary, void *ud)
{
    struct conn *c = ud;
    enter(c);
    count(&n_messages);
    if (!is_binary && data[len] != '\0')
        bad("on_message: text not NUL-terminated", id, WSC_OK);
    poke(id, &c->seed);
    leave(c, 0);
}

/* Both terminal callbacks: counted in `counter`, named `what` in a complaint. */
static void terminal(struct conn *c, wsc_id id, unsigned long *counter, const char *what)
{
    wsc_state state;
    enter(c);
    count(counter);
    /* Inside the terminal callback the id still answers. */
    if (wsc_get_state(id, &state) != WSC_OK || state != WSC_STATE_CLOSING)
        bad(what, id, wsc_get_state(id, &state));
    poke(id, &c->seed);
    leave(c, 1);
}

static void on_error(wsc_id id, const char *message, void *ud)
{
    (void)message;
    terminal(ud, id, &n_errors, "wsc_get_state inside on_error");
}

static void on_close(wsc_id id, uint16_t code, const char *reason, void *ud)
{
    (void)code, (void)reason;
    terminal(ud, id, &n_closes, "wsc_get_state inside on_close");
}

static const wsc_callbacks callbacks = {on_open, on_message, on_error, on_close};

static unsigned long n_reconnecting;

static void on_reconnecting(wsc_id id, uint32_t attempt, uint32_t delay_ms, const char *reason, void *ud)
{
    struct conn *c = ud;
    enter(c);
    count(&n_reconnecting);
    if (attempt == 0 || delay_ms > 50 || reason == NULL)
        bad("on_reconnecting arguments", id, WSC_OK);
    poke(id, &c->seed);
    leave(c, 0);
}

/* A random id: usually a known one (live or finished), sometimes bogus. */
static wsc_id pick(unsigned *seed)
{
    unsigned r = rand_r(seed) % 100;
    if (r == 0)
        return 0;
    if (r == 1)
        return (wsc_id)-1;
    pthread_mutex_lock(&mu);
    wsc_id id = 0;
    if (n_conns) {
        /* Favour recent connections: they are the live ones. */
        size_t back = r < 70 ? (size_t)rand_r(seed) % (MAX_LIVE * 2) : (size_t)rand_r(seed) % n_conns;
        id = conns[n_conns - 1 - back % n_conns].id;
    }
    pthread_mutex_unlock(&mu);
    return id;
}

static void maybe_connect(unsigned *seed)
{
    pthread_mutex_lock(&mu);
    int full = n_conns - n_terminal >= MAX_LIVE || n_conns == MAX_CONNS;
    struct conn *c = full ? NULL : &conns[n_conns++];
    if (c)
        c->seed = rand_r(seed);
    pthread_mutex_unlock(&mu);
    if (!c)
        return;
    wsc_id id = 0;
    const char *url = urls[rand_r(seed) % 6];
    wsc_status st = wsc_connect(url, options, &callbacks, c, &id);
    pthread_mutex_lock(&mu);
    if (st == WSC_OK) {
        c->id = id;
    } else {
        c->terminals = 1; /* never started: count it as ended */
        n_terminal++;
    }
    pthread_mutex_unlock(&mu);
    if (st != WSC_OK)
        bad("wsc_connect", 0, st);
}

static void *app_thread(void *arg)
{
    unsigned seed = (unsigned)(size_t)arg * 2654435761u;
    while (!stopping()) {
        if (rand_r(&seed) % 8 == 0)
            maybe_connect(&seed);
        else
            poke(pick(&seed), &seed);
        /* Pacing, so that connections get to open between the closes. */
        struct timespec pause = {0, 20000};
        nanosleep(&pause, NULL);
    }
    return NULL;
}

static int wait_all_ended(int seconds)
{
    struct timespec until = after_ms(seconds * 1000L);
    pthread_mutex_lock(&mu);
    while (n_terminal < n_conns && pthread_cond_timedwait(&ended, &mu, &until) == 0) {
    }
    int ok = n_terminal >= n_conns;
    pthread_mutex_unlock(&mu);
    return ok;
}

/* After shutdown: exactly one terminal each, nothing after it, no overlap,
 * and every id is gone. */
static int verify(void)
{
    int failures = 0;
    pthread_mutex_lock(&mu);
    for (size_t i = 0; i < n_conns; i++) {
        struct conn *c = &conns[i];
        wsc_state state;
        if (c->terminals != 1 || c->after_terminal || c->overlaps) {
            if (failures++ < 20)
                fprintf(stderr, "BAD: connection %llu: %d terminal callbacks, %d after, %d overlaps\n",
                        (unsigned long long)c->id, c->terminals, c->after_terminal, c->overlaps);
        }
        if (c->id && wsc_get_state(c->id, &state) != WSC_ERR_UNKNOWN_ID && failures++ < 20)
            fprintf(stderr, "BAD: id %llu still answers after shutdown\n", (unsigned long long)c->id);
    }
    pthread_mutex_unlock(&mu);
    return failures;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s ECHO_BASE_URI SECONDS THREADS\n", argv[0]);
        return 2;
    }
    const char *base = argv[1];
    int seconds = atoi(argv[2]), n_threads = atoi(argv[3]);
    int threads_at_start = thread_count(), silent_port = 0;
    /* A loopback listener that accepts nothing: handshakes to it hang. */
    int silent = loopback_socket(4096, &silent_port);
    int fds_at_start = fd_count();
    conns = calloc(MAX_CONNS, sizeof *conns);
    if (silent < 0 || !conns || n_threads < 1 || n_threads > 64) {
        fprintf(stderr, "setup failed\n");
        return 2;
    }
    snprintf(urls[0], sizeof urls[0], "%s/echo", base);
    snprintf(urls[1], sizeof urls[1], "%s/echo", base);
    snprintf(urls[2], sizeof urls[2], "%s/ping?count=3", base);
    snprintf(urls[3], sizeof urls[3], "%s/close?code=4001&reason=server", base);
    snprintf(urls[4], sizeof urls[4], "%s/drop", base);
    snprintf(urls[5], sizeof urls[5], "ws://127.0.0.1:%d/silent", silent_port);

    cond_init_monotonic(&ended);
    options = wsc_options_new();
    wsc_options_set_connect_timeout_ms(options, 2000);
    wsc_options_set_close_timeout_ms(options, 2000);
    wsc_options_set_max_buffered_bytes(options, 256 << 10);
    if (getenv("TORTURE_RECONNECT")) {
        wsc_options_set_reconnect(options, 1, 50, 0);
        wsc_options_set_on_reconnecting(options, on_reconnecting);
    }

    pthread_t t[64];
    for (int i = 0; i < n_threads; i++)
        pthread_create(&t[i], NULL, app_thread, (void *)(size_t)(i + 1));
    struct timespec run = {seconds, 0};
    nanosleep(&run, NULL); /* the test's duration, not synchronisation */
    pthread_mutex_lock(&mu);
    stop = 1;
    pthread_mutex_unlock(&mu);
    for (int i = 0; i < n_threads; i++)
        pthread_join(t[i], NULL);

    for (size_t i = 0; i < n_conns; i++)
        if (conns[i].id)
            check("final wsc_close", conns[i].id, wsc_close(conns[i].id), ON_ID | S(WSC_ERR_CLOSED));
    int all_ended = wait_all_ended(30);
    wsc_status st = wsc_shutdown(10000);
    int threads_left = thread_count(), fds_left = fd_count();
    int failures = verify() + (n_bad > 0) + !all_ended + (st != WSC_OK) + (threads_left != threads_at_start) +
                   (fds_left != fds_at_start);

    printf("torture: %d threads, %d s: %zu connections (%lu opened), %lu calls, %lu messages, "
           "%lu on_close, %lu on_error, %lu on_reconnecting\n",
           n_threads, seconds, n_conns, n_opened, n_calls, n_messages, n_closes, n_errors, n_reconnecting);
    printf("torture: all ended: %s, wsc_shutdown: %s, threads %d -> %d, fds %d -> %d, bad statuses: %lu\n",
           all_ended ? "yes" : "NO", wsc_status_str(st), threads_at_start, threads_left, fds_at_start, fds_left,
           n_bad);
    wsc_options_free(options);
    close(silent);
    free(conns);
    printf("torture: %s\n", failures ? "FAILED" : "PASSED");
    return failures ? 1 : 0;
}

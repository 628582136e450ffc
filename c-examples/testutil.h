/*
 * testutil.h: what the C tests and test programs of c-examples/ share, once.
 *
 *   deadlines     after_ms, elapsed_ms, cond_init_monotonic, wait_count
 *   the process   count_entries, thread_count, fd_count, threads_settled,
 *                 heap_in_use
 *   sockets       loopback_socket (a free loopback port: silent or refused)
 *   checks        CHECK, CHECK_ST (counted, never abort), run_tests (TAP)
 *
 * Header-only: every function is `static inline`, so a program gets only
 * what it calls and no unused-function warning. C99 and C++17, clean under
 * -Wall -Wextra -Werror -pedantic. Needs POSIX.1-2008: define
 * _POSIX_C_SOURCE 200809L (or _GNU_SOURCE) before the first #include.
 * wsc.h is included for its types; only CHECK_ST calls into libwsc.
 *
 * Waits never sleep: a callback signals a condition variable and the waiter
 * waits on it until a deadline on CLOCK_MONOTONIC (wall-clock jumps do not
 * move it).
 */
#ifndef WSC_TESTUTIL_H
#define WSC_TESTUTIL_H

#if !defined(__cplusplus) && !defined(_POSIX_C_SOURCE) && !defined(_GNU_SOURCE)
#error "testutil.h: define _POSIX_C_SOURCE 200809L (or _GNU_SOURCE) before any #include"
#endif

#include <arpa/inet.h>
#include <dirent.h>
#include <malloc.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "wsc.h"

/* --------------------------------------------------------------- deadlines */

/* The CLOCK_MONOTONIC time `ms` milliseconds from now. */
static inline struct timespec after_ms(long ms)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    t.tv_sec += ms / 1000;
    t.tv_nsec += (ms % 1000) * 1000000L;
    if (t.tv_nsec >= 1000000000L) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000L;
    }
    return t;
}

/* Milliseconds since `since` (a CLOCK_MONOTONIC time). */
static inline long elapsed_ms(const struct timespec *since)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long)(now.tv_sec - since->tv_sec) * 1000L + (now.tv_nsec - since->tv_nsec) / 1000000L;
}

/* A condition variable whose timed waits take CLOCK_MONOTONIC deadlines (after_ms). */
static inline void cond_init_monotonic(pthread_cond_t *c)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(c, &attr);
    pthread_condattr_destroy(&attr);
}

/* Waits until *count >= want, for at most `ms`; gives up early once
 * *give_up is non-zero (NULL: never). `count` and `give_up` are guarded by
 * `lock` (not held by the caller) and announced on `changed`, a condition
 * variable from cond_init_monotonic. Returns whether *count >= want. */
static inline int wait_count(pthread_mutex_t *lock, pthread_cond_t *changed, const int *count,
                             int want, const int *give_up, long ms)
{
    struct timespec deadline = after_ms(ms);
    int ok;
    pthread_mutex_lock(lock);
    while (*count < want && !(give_up && *give_up) &&
           pthread_cond_timedwait(changed, lock, &deadline) == 0) {
    }
    ok = *count >= want;
    pthread_mutex_unlock(lock);
    return ok;
}

/* ------------------------------------------------------------- the process */

/* Entries of a directory such as /proc/self/task, or -1 if it cannot be read. */
static inline int count_entries(const char *path)
{
    DIR *dir = opendir(path);
    struct dirent *e;
    int n = 0;
    if (!dir)
        return -1;
    while ((e = readdir(dir)) != NULL)
        n += e->d_name[0] != '.';
    closedir(dir);
    return n;
}

/* This process's threads, main included. */
static inline int thread_count(void)
{
    return count_entries("/proc/self/task");
}

/* This process's open file descriptors (the one reading the list included). */
static inline int fd_count(void)
{
    return count_entries("/proc/self/fd");
}

/* The kernel drops a thread from /proc/self/task a moment after
 * pthread_join() has returned (the join wakes on the thread's tid being
 * cleared, before the kernel releases the task). wsc_shutdown() returning
 * WSC_OK means every worker was joined; this waits out that last step
 * (at most 2 s, without sleeping) and returns the count it ended with. */
static inline int threads_settled(int want)
{
    struct timespec start;
    int n;
    clock_gettime(CLOCK_MONOTONIC, &start);
    while ((n = thread_count()) > want && elapsed_ms(&start) < 2000)
        sched_yield();
    return n;
}

/* How many connections wsc_get_clients lists, or -1 if it fails. */
static inline int listed_clients(void)
{
    wsc_client_info *list = NULL;
    size_t len = 0;
    if (wsc_get_clients(&list, &len) != WSC_OK)
        return -1;
    wsc_free_clients(list, len);
    return (int)len;
}

/* Bytes in use on the malloc heap (0 under valgrind or ASan, which replace malloc). */
static inline size_t heap_in_use(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

/* ----------------------------------------------------------------- sockets */

/* A TCP socket bound to a free port on 127.0.0.1, its port in *port. With
 * backlog > 0 it listens and never accepts: the TCP handshake completes in
 * the kernel backlog and an HTTP upgrade is never answered. With backlog 0
 * it does not listen: once closed, connecting to the port is refused.
 * Returns the socket, or -1. */
static inline int loopback_socket(int backlog, int *port)
{
    struct sockaddr_in a;
    socklen_t alen = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        (backlog > 0 && listen(fd, backlog) != 0) ||
        getsockname(fd, (struct sockaddr *)&a, &alen) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    *port = ntohs(a.sin_port);
    return fd;
}

/* ------------------------------------------------------------------ checks */

/* Counts of the checks so far; guarded by `lock` (checks run on any thread). */
struct check_counts {
    pthread_mutex_t lock;
    int checks, failures;
    int test_failures;        /* failures in the current test */
    const char *current_test; /* named in failure messages */
};

static inline struct check_counts *check_counts(void)
{
    static struct check_counts counts = {PTHREAD_MUTEX_INITIALIZER, 0, 0, 0, ""};
    return &counts;
}

/* Counts one check; a failure is reported on stderr and the run goes on. */
static inline int check_(int ok, const char *what, int line)
{
    struct check_counts *c = check_counts();
    pthread_mutex_lock(&c->lock);
    c->checks++;
    if (!ok) {
        c->failures++;
        c->test_failures++;
        fprintf(stderr, "  FAIL %s (line %d): %s\n", c->current_test, line, what);
    }
    pthread_mutex_unlock(&c->lock);
    return ok;
}

static inline int check_status_(wsc_status got, wsc_status want, const char *what, int line)
{
    char buf[512];
    if (got == want)
        return check_(1, what, line);
    snprintf(buf, sizeof buf, "%s: got %s, want %s (last error: %s)", what, wsc_status_str(got),
             wsc_status_str(want), wsc_last_error());
    return check_(0, buf, line);
}

/* CHECK(cond) and CHECK_ST(call, WSC_...) count and report; both return whether they held. */
#define CHECK(cond) check_((cond) ? 1 : 0, #cond, __LINE__)
#define CHECK_ST(expr, want) check_status_((expr), (want), #expr, __LINE__)

struct test_case {
    const char *name;
    void (*run)(void);
};

#define TEST_CASE(f) {#f, f}

/* Runs every test whose name contains $WSC_TEST_FILTER (all without it), in
 * order, each followed by `after_each` (may be NULL; its checks count to the
 * test), and prints a TAP line per test; then `at_end` (may be NULL) and the
 * summary "# N tests, F failed, C checks, X failed". Returns the exit
 * status: 0 when no check failed. */
static inline int run_tests(const struct test_case *tests, size_t n, void (*after_each)(void),
                            void (*at_end)(void))
{
    struct check_counts *c = check_counts();
    const char *filter = getenv("WSC_TEST_FILTER");
    size_t i, ran = 0, failed = 0;
    for (i = 0; i < n; i++) {
        if (filter && !strstr(tests[i].name, filter))
            continue;
        c->current_test = tests[i].name;
        c->test_failures = 0;
        tests[i].run();
        if (after_each)
            after_each();
        ran++;
        failed += c->test_failures > 0;
        printf("%s %zu - %s\n", c->test_failures ? "not ok" : "ok", i + 1, tests[i].name);
    }
    if (at_end)
        at_end();
    printf("# %zu tests, %zu failed, %d checks, %d failed\n", ran, failed, c->checks, c->failures);
    return c->failures ? 1 : 0;
}

/* Between tests: every worker thread gone, wsc accepting connections again. */
static inline void shutdown_and_init(void)
{
    CHECK_ST(wsc_shutdown(20000), WSC_OK);
    CHECK_ST(wsc_init(), WSC_OK);
}

#endif /* WSC_TESTUTIL_H */

/*
 * benchutil.h: what the benchmark's client programs share, once: the C twin
 * (bench.c) and the peer clients wsc is compared with (bench_lws.c,
 * bench_wspp.cpp). examples/bench runs each in its own process and parses
 * the one RESULT line it prints, so the three must measure the same way as
 * the Rust rows do (examples/bench/pingpong.rs, stream.rs, scale.rs):
 *
 *   ping-pong   bench_rt: one unmeasured round trip, then n measured ones;
 *               latency send-to-echo, CPU getrusage(RUSAGE_SELF) over the
 *               measured part. RESULT msgs_per_s p50_us p99_us cpu_us_per_rt
 *   streaming   bench_window (at most 4 MiB unanswered, refilled from half),
 *               RESULT msgs_per_s mb_per_s cpu_us_per_msg
 *   scale       bench_scale: per-connection deltas over the process before
 *               the first connection, idle CPU and wake-ups of every thread
 *               but the sleeping main one (/proc/self/task/TID/schedstat),
 *               RESULT open_s rss_kib threads fds idle_cpu_ms idle_wakeups
 *               echo_ms errors
 *
 * Header-only (static inline), C99 and C++17, on top of testutil.h.
 */
#ifndef WSC_BENCHUTIL_H
#define WSC_BENCHUTIL_H

#include "testutil.h" /* cond_init_monotonic, wait_count, thread_count, fd_count */

#include <stdint.h>
#include <sys/resource.h>

/* How long any wait may take before the run counts as failed (as PATIENCE). */
#define BENCH_PATIENCE_MS 60000L

static inline double bench_secs(struct timespec t) { return (double)t.tv_sec + (double)t.tv_nsec / 1e9; }

static inline struct timespec bench_clock(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t;
}

static inline uint64_t bench_ns_between(struct timespec a, struct timespec b)
{
    return (uint64_t)((b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec));
}

/* User + system CPU seconds of this whole process so far. */
static inline double bench_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           (double)ru.ru_stime.tv_usec / 1e6;
}

/* Raises the soft descriptor limit to the hard one (scale opens thousands). */
static inline void bench_raise_nofile(void)
{
    struct rlimit r;
    if (getrlimit(RLIMIT_NOFILE, &r) == 0) {
        r.rlim_cur = r.rlim_max;
        setrlimit(RLIMIT_NOFILE, &r);
    }
}

static inline void bench_sleep_ms(long ms)
{
    struct timespec t;
    t.tv_sec = ms / 1000;
    t.tv_nsec = (ms % 1000) * 1000000L;
    while (nanosleep(&t, &t) != 0) {
    }
}

/* ------------------------------------------------- counters across threads */

/* Counters one thread bumps (a callback) and another waits on. */
typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t changed;
} bench_signal;

static inline void bench_signal_init(bench_signal *s)
{
    pthread_mutex_init(&s->lock, NULL);
    cond_init_monotonic(&s->changed);
}

/* ++*counter, waking the waiter. */
static inline void bench_bump(bench_signal *s, int *counter)
{
    pthread_mutex_lock(&s->lock);
    ++*counter;
    pthread_cond_broadcast(&s->changed);
    pthread_mutex_unlock(&s->lock);
}

/* Waits until *counter >= want or *give_up (NULL: never) is set; 0 on failure. */
static inline int bench_wait(bench_signal *s, const int *counter, int want, const int *give_up)
{
    return wait_count(&s->lock, &s->changed, counter, want, give_up, BENCH_PATIENCE_MS);
}

/* --------------------------------------------------------------- ping-pong */

typedef struct {
    size_t n, count;
    int started;
    uint64_t *lat_ns;
    struct timespec sent_at, t0;
    double cpu0, elapsed_s, cpu_s;
} bench_rt;

/* 0 if the sample buffer cannot be allocated. */
static inline int bench_rt_init(bench_rt *r, size_t n)
{
    memset(r, 0, sizeof *r);
    r->n = n;
    r->lat_ns = (uint64_t *)malloc(sizeof(uint64_t) * (n ? n : 1));
    return r->lat_ns != NULL && n > 0;
}

/* An echo is in hand. Returns 1 if the next message should go out now (its
 * send time is taken here), 0 when the run is complete. The first echo is
 * the unmeasured warm-up: timing starts there. */
static inline int bench_rt_echo(bench_rt *r)
{
    struct timespec now = bench_clock();
    if (!r->started) {
        r->started = 1;
        r->t0 = now;
        r->cpu0 = bench_cpu_s();
    } else {
        r->lat_ns[r->count++] = bench_ns_between(r->sent_at, now);
    }
    if (r->count < r->n) {
        r->sent_at = bench_clock();
        return 1;
    }
    r->elapsed_s = bench_secs(now) - bench_secs(r->t0);
    r->cpu_s = bench_cpu_s() - r->cpu0;
    return 0;
}

static inline int bench_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static inline double bench_pct_us(const uint64_t *sorted, size_t n, double p)
{
    size_t rank = (size_t)(p / 100.0 * (double)n + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return (double)sorted[rank - 1] / 1000.0;
}

static inline void bench_rt_print(bench_rt *r)
{
    qsort(r->lat_ns, r->n, sizeof(uint64_t), bench_cmp_u64);
    printf("RESULT %.1f %.2f %.2f %.3f\n", (double)r->n / r->elapsed_s, bench_pct_us(r->lat_ns, r->n, 50.0),
           bench_pct_us(r->lat_ns, r->n, 99.0), r->cpu_s * 1e6 / (double)r->n);
    fflush(stdout);
}

/* --------------------------------------------------------------- streaming */

/* examples/bench/stream.rs's window: at most 4 MiB (and at least 2
 * messages) unanswered; once full, sending resumes at half. */
typedef struct {
    uint64_t total, sent, received, window;
    int blocked;
    struct timespec t0;
    double cpu0;
} bench_window;

static inline void bench_window_init(bench_window *w, size_t size, uint64_t total)
{
    uint64_t win = (uint64_t)((4u << 20) / (size ? size : 1));
    memset(w, 0, sizeof *w);
    w->total = total;
    w->window = win < 2 ? 2 : win;
}

/* Whether one more message may go out now (then count it as sent). */
static inline int bench_window_may_send(bench_window *w)
{
    if (w->sent >= w->total || w->blocked)
        return 0;
    if (w->sent - w->received >= w->window) {
        w->blocked = 1;
        return 0;
    }
    return 1;
}

/* An echo arrived. Returns 1 if sending may resume (the window drained to half). */
static inline int bench_window_received(bench_window *w)
{
    w->received++;
    if (w->blocked && w->sent - w->received <= w->window / 2) {
        w->blocked = 0;
        return 1;
    }
    return 0;
}

static inline void bench_window_start(bench_window *w)
{
    w->t0 = bench_clock();
    w->cpu0 = bench_cpu_s();
}

static inline void bench_window_print(const bench_window *w, size_t size)
{
    double secs = bench_secs(bench_clock()) - bench_secs(w->t0), cpu = bench_cpu_s() - w->cpu0;
    double msgs = (double)w->total;
    printf("RESULT %.1f %.2f %.4f\n", msgs / secs, msgs * (double)size / secs / 1e6, cpu * 1e6 / msgs);
    fflush(stdout);
}

/* ------------------------------------------------------------------- scale */

typedef struct {
    long rss_kib;
    int threads, fds;
} bench_footprint;

static inline long bench_rss_kib(void)
{
    char line[256];
    long kib = 0;
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return 0;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kib = strtol(line + 6, NULL, 10);
    fclose(f);
    return kib;
}

static inline bench_footprint bench_footprint_now(void)
{
    bench_footprint f;
    f.rss_kib = bench_rss_kib();
    f.threads = thread_count();
    f.fds = fd_count();
    return f;
}

/* CPU ns and times scheduled, summed over every thread of this process but
 * the calling one (the kernel's per-thread schedstat). */
static inline void bench_other_threads_sched(uint64_t *cpu_ns, uint64_t *slices)
{
    char me[64] = "", path[300];
    ssize_t len = readlink("/proc/thread-self", me, sizeof me - 1);
    const char *tid = len > 0 ? strrchr(me, '/') : NULL;
    DIR *dir = opendir("/proc/self/task");
    struct dirent *e;
    *cpu_ns = *slices = 0;
    if (len > 0)
        me[len] = '\0';
    if (!dir)
        return;
    while ((e = readdir(dir)) != NULL) {
        unsigned long long run = 0, wait = 0, n = 0;
        FILE *f;
        if (e->d_name[0] == '.' || (tid && strcmp(e->d_name, tid + 1) == 0))
            continue;
        snprintf(path, sizeof path, "/proc/self/task/%s/schedstat", e->d_name);
        f = fopen(path, "r");
        if (!f)
            continue;
        if (fscanf(f, "%llu %llu %llu", &run, &wait, &n) == 3) {
            *cpu_ns += run;
            *slices += n;
        }
        fclose(f);
    }
    closedir(dir);
}

typedef struct {
    double open_s, rss_kib, threads, fds, idle_cpu_ms, idle_wakeups, echo_ms, errors;
} bench_scale;

/* Lets the event loop that just opened the last connection go to sleep. */
static inline void bench_settle(long idle_ms)
{
    long ms = idle_ms / 20;
    bench_sleep_ms(ms < 20 ? 20 : ms > 500 ? 500 : ms);
}

/* Per-connection RSS, threads and fds over `base`. */
static inline void bench_scale_footprint(bench_scale *s, bench_footprint base, int n)
{
    bench_footprint now = bench_footprint_now();
    double per = n > 0 ? (double)n : 1.0;
    s->rss_kib = (double)(now.rss_kib > base.rss_kib ? now.rss_kib - base.rss_kib : 0) / per;
    s->threads = (double)(now.threads > base.threads ? now.threads - base.threads : 0) / per;
    s->fds = (double)(now.fds > base.fds ? now.fds - base.fds : 0) / per;
}

/* Sleeps idle_ms on the calling thread, counting what every other thread did. */
static inline void bench_scale_idle(bench_scale *s, long idle_ms)
{
    uint64_t cpu0, woken0, cpu1, woken1;
    bench_other_threads_sched(&cpu0, &woken0);
    bench_sleep_ms(idle_ms);
    bench_other_threads_sched(&cpu1, &woken1);
    s->idle_cpu_ms = (double)(cpu1 - cpu0) / 1e6;
    s->idle_wakeups = (double)(woken1 - woken0);
}

static inline void bench_scale_print(const bench_scale *s)
{
    printf("RESULT %.4f %.4f %.4f %.4f %.4f %.4f %.4f %.4f\n", s->open_s, s->rss_kib, s->threads, s->fds,
           s->idle_cpu_ms, s->idle_wakeups, s->echo_ms, s->errors);
    fflush(stdout);
}

#endif /* WSC_BENCHUTIL_H */

/* The C twin of the ping-pong row (d): wsc used exactly as a C program links
 * it, the next message sent with wsc_send_binary from inside on_message.
 * examples/bench runs it (--c-bench PATH) alternately with its tungstenite
 * baseline; it runs in its own process, so getrusage(RUSAGE_SELF) is this
 * client's CPU alone.
 *
 *   bench URL SIZE N      prints: RESULT msgs_per_s p50_us p99_us cpu_us_per_rt
 *
 * Build (scripts/bench.sh does this):
 *   cc -O2 -std=c99 -Iinclude c-examples/bench.c -Ltarget/release -lwsc \
 *      -lpthread -Wl,-rpath,$PWD/target/release -o target/release/bench_c
 */
#define _POSIX_C_SOURCE 200809L
#include "testutil.h" /* cond_init_monotonic, wait_count */
#include "wsc.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    int opened, ended, done;
    size_t n, count, size;
    int started;
    uint8_t *payload;
    uint64_t *lat_ns;
    struct timespec sent_at, t0;
    double cpu0, elapsed_s, cpu_s;
} bench;

static double secs(struct timespec t) { return (double)t.tv_sec + (double)t.tv_nsec / 1e9; }

static uint64_t ns_between(struct timespec a, struct timespec b) {
    return (uint64_t)((b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec));
}

static double cpu_now(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void signal_flag(bench *b, int *flag) {
    pthread_mutex_lock(&b->lock);
    *flag = 1;
    pthread_cond_broadcast(&b->changed);
    pthread_mutex_unlock(&b->lock);
}

/* Waits up to 60 s for *flag; 0 on time out. */
static int wait_flag(bench *b, int *flag) {
    return wait_count(&b->lock, &b->changed, flag, 1, NULL, 60000);
}

static void on_open(wsc_id id, void *user) {
    (void)id;
    signal_flag(user, &((bench *)user)->opened);
}

static void on_message(wsc_id id, const uint8_t *data, size_t len, bool is_binary, void *user) {
    bench *b = user;
    struct timespec now;
    (void)data; (void)len; (void)is_binary;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (!b->started) { /* the echo of the unmeasured first message */
        b->started = 1;
        b->t0 = now;
        b->cpu0 = cpu_now();
    } else {
        b->lat_ns[b->count++] = ns_between(b->sent_at, now);
    }
    if (b->count < b->n) {
        clock_gettime(CLOCK_MONOTONIC, &b->sent_at);
        wsc_send_binary(id, b->payload, b->size);
        return;
    }
    b->elapsed_s = secs(now) - secs(b->t0);
    b->cpu_s = cpu_now() - b->cpu0;
    signal_flag(b, &b->done);
}

static void on_error(wsc_id id, const char *message, void *user) {
    (void)id;
    fprintf(stderr, "bench_c: error: %s\n", message);
    signal_flag(user, &((bench *)user)->ended);
}

static void on_close(wsc_id id, uint16_t code, const char *reason, void *user) {
    (void)id; (void)code; (void)reason;
    signal_flag(user, &((bench *)user)->ended);
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static double pct_us(const uint64_t *sorted, size_t n, double p) {
    size_t rank = (size_t)(p / 100.0 * (double)n + 0.999999);
    if (rank < 1) rank = 1;
    if (rank > n) rank = n;
    return (double)sorted[rank - 1] / 1000.0;
}

int main(int argc, char **argv) {
    bench b;
    wsc_callbacks cbs = {on_open, on_message, on_error, on_close};
    wsc_id id = 0;
    wsc_status st;
    if (argc != 4) {
        fprintf(stderr, "usage: %s URL SIZE N\n", argv[0]);
        return 2;
    }
    memset(&b, 0, sizeof b);
    pthread_mutex_init(&b.lock, NULL);
    cond_init_monotonic(&b.changed);
    b.size = (size_t)strtoul(argv[2], NULL, 10);
    b.n = (size_t)strtoul(argv[3], NULL, 10);
    b.payload = malloc(b.size ? b.size : 1);
    b.lat_ns = malloc(sizeof(uint64_t) * (b.n ? b.n : 1));
    if (!b.payload || !b.lat_ns || b.n == 0) return 2;
    memset(b.payload, 'a', b.size);

    st = wsc_connect(argv[1], NULL, &cbs, &b, &id);
    if (st != WSC_OK) {
        fprintf(stderr, "bench_c: wsc_connect: %s: %s\n", wsc_status_str(st), wsc_last_error());
        return 1;
    }
    if (!wait_flag(&b, &b.opened) || b.ended) {
        fprintf(stderr, "bench_c: no open\n");
        return 1;
    }
    wsc_send_binary(id, b.payload, b.size);
    if (!wait_flag(&b, &b.done)) {
        fprintf(stderr, "bench_c: only %zu of %zu round trips\n", b.count, b.n);
        return 1;
    }
    qsort(b.lat_ns, b.n, sizeof(uint64_t), cmp_u64);
    printf("RESULT %.1f %.2f %.2f %.3f\n", (double)b.n / b.elapsed_s, pct_us(b.lat_ns, b.n, 50.0),
           pct_us(b.lat_ns, b.n, 99.0), b.cpu_s * 1e6 / (double)b.n);
    fflush(stdout);
    wsc_close(id);
    wait_flag(&b, &b.ended);
    wsc_shutdown(5000);
    free(b.payload);
    free(b.lat_ns);
    return 0;
}

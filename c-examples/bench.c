/* The C twin of the ping-pong rows (d): wsc used exactly as a C program links
 * it, the next message sent from inside on_message (wsc_send_binary, or
 * wsc_send_text with --text). examples/bench runs it (--c-bench PATH)
 * alternately with its tungstenite baseline; it runs in its own process, so
 * getrusage(RUSAGE_SELF) is this client's CPU alone.
 *
 *   bench [--text] URL SIZE N   prints: RESULT msgs_per_s p50_us p99_us cpu_us_per_rt
 *
 * Every echo is checked: the same length, and the same kind (text or binary).
 *
 * Build (scripts/bench.sh does this):
 *   cc -O2 -std=c99 -Iinclude c-examples/bench.c -Ltarget/release -lwsc \
 *      -lpthread -Wl,-rpath,$PWD/target/release -o target/release/bench_c
 */
#define _POSIX_C_SOURCE 200809L
#include "benchutil.h" /* bench_rt, bench_signal */
#include "wsc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    bench_signal sig;
    int opened, ended, done, wrong;
    int text;
    size_t size;
    char *payload;
    bench_rt rt;
} bench;

static wsc_status send_one(wsc_id id, const bench *b)
{
    if (b->text)
        return wsc_send_text(id, b->payload, b->size);
    return wsc_send_binary(id, (const uint8_t *)b->payload, b->size);
}

static void on_open(wsc_id id, void *user)
{
    bench *b = user;
    (void)id;
    bench_bump(&b->sig, &b->opened);
}

static void on_message(wsc_id id, const uint8_t *data, size_t len, bool is_binary, void *user)
{
    bench *b = user;
    (void)data;
    if (len != b->size || is_binary == b->text) {
        fprintf(stderr, "bench_c: echo of %zu bytes, %s: want %zu, %s\n", len, is_binary ? "binary" : "text",
                b->size, b->text ? "text" : "binary");
        bench_bump(&b->sig, &b->wrong);
        return;
    }
    if (bench_rt_echo(&b->rt)) {
        send_one(id, b);
        return;
    }
    bench_bump(&b->sig, &b->done);
}

static void on_error(wsc_id id, const char *message, void *user)
{
    bench *b = user;
    (void)id;
    fprintf(stderr, "bench_c: error: %s\n", message);
    bench_bump(&b->sig, &b->ended);
}

static void on_close(wsc_id id, uint16_t code, const char *reason, void *user)
{
    bench *b = user;
    (void)id; (void)code; (void)reason;
    bench_bump(&b->sig, &b->ended);
}

int main(int argc, char **argv)
{
    bench b;
    wsc_callbacks cbs = {on_open, on_message, on_error, on_close};
    wsc_id id = 0;
    wsc_status st;
    int arg = 1;
    memset(&b, 0, sizeof b);
    if (argc > 1 && strcmp(argv[1], "--text") == 0) {
        b.text = 1;
        arg++;
    }
    if (argc - arg != 3) {
        fprintf(stderr, "usage: %s [--text] URL SIZE N\n", argv[0]);
        return 2;
    }
    bench_signal_init(&b.sig);
    b.size = (size_t)strtoul(argv[arg + 1], NULL, 10);
    b.payload = malloc(b.size ? b.size : 1);
    if (!b.payload || !bench_rt_init(&b.rt, (size_t)strtoul(argv[arg + 2], NULL, 10)))
        return 2;
    memset(b.payload, 'a', b.size); /* valid UTF-8 either way */

    st = wsc_connect(argv[arg], NULL, &cbs, &b, &id);
    if (st != WSC_OK) {
        fprintf(stderr, "bench_c: wsc_connect: %s: %s\n", wsc_status_str(st), wsc_last_error());
        return 1;
    }
    if (!bench_wait(&b.sig, &b.opened, 1, &b.ended) || b.ended) {
        fprintf(stderr, "bench_c: no open\n");
        return 1;
    }
    send_one(id, &b);
    if (!bench_wait(&b.sig, &b.done, 1, &b.wrong) || b.wrong) {
        fprintf(stderr, "bench_c: only %zu of %zu round trips\n", b.rt.count, b.rt.n);
        return 1;
    }
    bench_rt_print(&b.rt);
    wsc_close(id);
    bench_wait(&b.sig, &b.ended, 1, NULL);
    wsc_shutdown(5000);
    free(b.payload);
    free(b.rt.lat_ns);
    return 0;
}

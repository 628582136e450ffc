/* libwebsockets (C) doing the benchmark's work, so wsc is compared with the
 * C library users actually weigh it against, on the same peer, in the same
 * run (examples/bench/peers.rs runs it alternately with raw tungstenite).
 *
 *   bench_lws MODE URL SIZE N [IDLE_MS]      prints one RESULT line
 *
 *   pingpong          N round trips of SIZE-byte binary messages; the next
 *                     message is asked for in the receive callback
 *   pingpong-thread   the same, but an application thread waits for each
 *                     echo and asks for the next send
 *   stream            N messages pipelined, at most 4 MiB unanswered
 *   scale             N idle connections; then one SIZE-byte message each
 *
 * lws's own shape throughout: one service thread runs the event loop for
 * every connection, and writes happen only in LWS_CALLBACK_CLIENT_WRITEABLE
 * (the library's rule), so "send from the receive callback" means asking for
 * WRITEABLE there. Another thread may not touch a connection; it wakes the
 * loop with lws_cancel_service() and the loop asks for WRITEABLE
 * (LWS_CALLBACK_EVENT_WAIT_CANCELLED), which is how lws documents
 * cross-thread sends. Reads go through 8 KiB like the other clients; a
 * message goes to send() whole (tx_packet_size), not in rx-buffer chunks.
 *
 * Every echo is checked: binary, and SIZE bytes. lws masks client frames
 * (the peer, tungstenite, refuses unmasked ones).
 */
#define _POSIX_C_SOURCE 200809L
#include "benchutil.h"

#include <libwebsockets.h>

enum mode { PINGPONG, PINGPONG_THREAD, STREAM, SCALE };

/* What the main thread asks of the service thread (B.cmd). */
enum cmd { CMD_NONE, CMD_SEND, CMD_ECHO_ALL, CMD_CLOSE_ALL, CMD_STOP };

/* Per connection (lws allocates it: per_session_data_size). */
struct conn {
    size_t rx;   /* bytes of the message coming in so far */
    int binary;  /* its opcode */
    int to_send; /* a message to write at the next WRITEABLE */
};

static struct {
    enum mode mode;
    size_t size;
    unsigned char *buf; /* LWS_PRE + size */
    struct lws_context *ctx;
    struct lws *wsi;  /* the one connection, except in scale */
    struct lws **all; /* every open connection (service thread only) */
    int count;
    bench_signal sig;
    /* guarded by sig.lock, bumped from the service thread */
    int opened, failed, echoes, closed, done, wrong;
    int cmd;      /* enum cmd, set with __atomic_store_n */
    int closing;  /* service thread only */
    int stopping; /* service thread only */
    bench_rt rt;
    bench_window win;
    int streaming;
} B;

/* One binary message of B.size bytes (lws masks it in B.buf, in place). */
static int write_one(struct lws *wsi)
{
    int n = lws_write(wsi, B.buf + LWS_PRE, B.size, LWS_WRITE_BINARY);
    if (n < (int)B.size) {
        fprintf(stderr, "bench_lws: lws_write: %d\n", n);
        return -1;
    }
    return 0;
}

static void want_write(struct lws *wsi, struct conn *c)
{
    c->to_send = 1;
    lws_callback_on_writable(wsi);
}

/* A whole message is in. */
static void on_message(struct lws *wsi, struct conn *c)
{
    switch (B.mode) {
    case PINGPONG:
        if (bench_rt_echo(&B.rt))
            want_write(wsi, c);
        else
            bench_bump(&B.sig, &B.done);
        break;
    case PINGPONG_THREAD:
    case SCALE:
        bench_bump(&B.sig, &B.echoes);
        break;
    case STREAM:
        if (!B.streaming) { /* the unmeasured first echo */
            B.streaming = 1;
            bench_window_start(&B.win);
            lws_callback_on_writable(wsi);
        } else {
            if (bench_window_received(&B.win))
                lws_callback_on_writable(wsi);
            if (B.win.received == B.win.total) {
                bench_window_print(&B.win, B.size);
                bench_bump(&B.sig, &B.done);
            }
        }
        break;
    }
}

static int writeable(struct lws *wsi, struct conn *c)
{
    if (B.closing) {
        lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, NULL, 0);
        return -1;
    }
    if (B.mode == STREAM && B.streaming) {
        /* lws's minimal examples: write while the socket takes more. */
        while (bench_window_may_send(&B.win)) {
            if (write_one(wsi))
                return -1;
            B.win.sent++;
            if (lws_send_pipe_choked(wsi)) {
                lws_callback_on_writable(wsi);
                break;
            }
        }
        return 0;
    }
    if (c->to_send) {
        c->to_send = 0;
        return write_one(wsi);
    }
    return 0;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len);

/* tx_packet_size is set to the message size in main. */
static struct lws_protocols protocols[] = {
    {"bench", callback, sizeof(struct conn), 8 << 10, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
    struct conn *c = user;
    int i;
    switch (reason) {
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        fprintf(stderr, "bench_lws: connection error: %s\n", in ? (const char *)in : "(none)");
        bench_bump(&B.sig, &B.failed);
        break;
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        if (B.mode == PINGPONG || B.mode == STREAM)
            want_write(wsi, c); /* the first, unmeasured message */
        B.all[B.count++] = wsi;
        bench_bump(&B.sig, &B.opened);
        break;
    case LWS_CALLBACK_CLIENT_RECEIVE:
        if (c->rx == 0)
            c->binary = lws_frame_is_binary(wsi);
        c->rx += len;
        if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi) > 0)
            break;
        if (!c->binary || c->rx != B.size) {
            fprintf(stderr, "bench_lws: echo of %zu bytes, %s: want %zu, binary\n", c->rx,
                    c->binary ? "binary" : "text", B.size);
            bench_bump(&B.sig, &B.wrong);
            return -1;
        }
        c->rx = 0;
        on_message(wsi, c);
        break;
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        return writeable(wsi, c);
    case LWS_CALLBACK_CLIENT_CLOSED:
        for (i = 0; i < B.count; i++)
            if (B.all[i] == wsi)
                B.all[i] = B.all[--B.count];
        bench_bump(&B.sig, &B.closed);
        break;
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        switch (__atomic_exchange_n(&B.cmd, CMD_NONE, __ATOMIC_ACQ_REL)) {
        case CMD_SEND:
            want_write(B.wsi, lws_wsi_user(B.wsi));
            break;
        case CMD_ECHO_ALL:
            for (i = 0; i < B.count; i++)
                want_write(B.all[i], lws_wsi_user(B.all[i]));
            break;
        case CMD_CLOSE_ALL:
            B.closing = 1;
            for (i = 0; i < B.count; i++)
                lws_callback_on_writable(B.all[i]);
            break;
        case CMD_STOP:
            B.stopping = 1;
            break;
        default:
            break;
        }
        break;
    default:
        break;
    }
    return 0;
}

/* From another thread: hand `cmd` to the service thread and wake it. */
static void command(enum cmd cmd)
{
    __atomic_store_n(&B.cmd, cmd, __ATOMIC_RELEASE);
    lws_cancel_service(B.ctx);
}

static void *service(void *arg)
{
    (void)arg;
    while (!B.stopping)
        if (lws_service(B.ctx, 0) < 0)
            break;
    return NULL;
}

/* Starts a client connection (before the service thread runs, or from it). */
static struct lws *connect_one(const char *host, int port, const char *path)
{
    struct lws_client_connect_info ci;
    memset(&ci, 0, sizeof ci);
    ci.context = B.ctx;
    ci.address = host;
    ci.port = port;
    ci.path = path;
    ci.host = host;
    ci.origin = host;
    ci.local_protocol_name = protocols[0].name; /* no Sec-WebSocket-Protocol offered */
    return lws_client_connect_via_info(&ci);
}

/* Closes every connection politely and waits until each has closed. */
static int close_all(int n)
{
    command(CMD_CLOSE_ALL);
    return bench_wait(&B.sig, &B.closed, n, NULL);
}

int main(int argc, char **argv)
{
    struct lws_context_creation_info info;
    const char *prot, *host, *p;
    char url[512], path[512];
    int port, n;
    long idle_ms;
    pthread_t thread;
    bench_footprint base;
    bench_scale s;

    if (argc < 5 || argc > 6) {
        fprintf(stderr, "usage: %s pingpong|pingpong-thread|stream|scale URL SIZE N [IDLE_MS]\n", argv[0]);
        return 2;
    }
    if (strcmp(argv[1], "pingpong") == 0)
        B.mode = PINGPONG;
    else if (strcmp(argv[1], "pingpong-thread") == 0)
        B.mode = PINGPONG_THREAD;
    else if (strcmp(argv[1], "stream") == 0)
        B.mode = STREAM;
    else if (strcmp(argv[1], "scale") == 0)
        B.mode = SCALE;
    else {
        fprintf(stderr, "bench_lws: unknown mode %s\n", argv[1]);
        return 2;
    }
    snprintf(url, sizeof url, "%s", argv[2]);
    if (lws_parse_uri(url, &prot, &host, &port, &p) || strcmp(prot, "ws") != 0) {
        fprintf(stderr, "bench_lws: want a ws:// URL, not %s\n", argv[2]);
        return 2;
    }
    snprintf(path, sizeof path, "/%s", p[0] == '/' ? p + 1 : p); /* lws_parse_uri drops the '/' */
    B.size = (size_t)strtoul(argv[3], NULL, 10);
    n = atoi(argv[4]);
    idle_ms = argc > 5 ? atol(argv[5]) : 0;
    B.buf = malloc(LWS_PRE + (B.size ? B.size : 1));
    B.all = calloc((size_t)(n > 0 ? n : 1), sizeof *B.all);
    if (!B.buf || !B.all || n <= 0)
        return 2;
    memset(B.buf, 'a', LWS_PRE + B.size);
    bench_signal_init(&B.sig);
    if (B.mode == PINGPONG || B.mode == PINGPONG_THREAD) {
        if (!bench_rt_init(&B.rt, (size_t)n))
            return 2;
    }
    if (B.mode == STREAM)
        bench_window_init(&B.win, B.size, (uint64_t)n);

    bench_raise_nofile();
    lws_set_log_level(LLL_ERR, NULL);
    base = bench_footprint_now(); /* scale: the process before the library */
    protocols[0].tx_packet_size = B.size + 16;
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = protocols;
    info.pt_serv_buf_size = 8 << 10;
    info.gid = -1;
    info.uid = -1;
    B.ctx = lws_create_context(&info);
    if (!B.ctx) {
        fprintf(stderr, "bench_lws: lws_create_context failed\n");
        return 1;
    }

    if (B.mode == SCALE) {
        struct timespec t0;
        int i, ok;
        memset(&s, 0, sizeof s);
        t0 = bench_clock();
        for (i = 0; i < n; i++)
            if (!connect_one(host, port, path))
                bench_bump(&B.sig, &B.failed);
        pthread_create(&thread, NULL, service, NULL);
        ok = bench_wait(&B.sig, &B.opened, n, &B.failed) && !B.failed;
        s.open_s = bench_secs(bench_clock()) - bench_secs(t0);
        s.errors = B.failed;
        if (!ok) {
            fprintf(stderr, "bench_lws: %d of %d connections open, %d failed\n", B.opened, n, B.failed);
            return 1;
        }
        bench_settle(idle_ms);
        bench_scale_footprint(&s, base, n);
        bench_scale_idle(&s, idle_ms);
        t0 = bench_clock();
        command(CMD_ECHO_ALL);
        if (!bench_wait(&B.sig, &B.echoes, n, &B.wrong) || B.wrong) {
            fprintf(stderr, "bench_lws: %d of %d echoes\n", B.echoes, n);
            return 1;
        }
        s.echo_ms = (bench_secs(bench_clock()) - bench_secs(t0)) * 1e3;
        bench_scale_print(&s);
    } else {
        B.wsi = connect_one(host, port, path);
        if (!B.wsi) {
            fprintf(stderr, "bench_lws: cannot start connecting\n");
            return 1;
        }
        pthread_create(&thread, NULL, service, NULL);
        if (!bench_wait(&B.sig, &B.opened, 1, &B.failed) || B.failed) {
            fprintf(stderr, "bench_lws: no open\n");
            return 1;
        }
        if (B.mode == PINGPONG_THREAD) {
            int k = 0;
            do { /* this thread is the application: send, wait for the echo */
                command(CMD_SEND);
                if (!bench_wait(&B.sig, &B.echoes, ++k, &B.wrong) || B.wrong) {
                    fprintf(stderr, "bench_lws: no echo %d\n", k);
                    return 1;
                }
            } while (bench_rt_echo(&B.rt));
            B.done = 1;
        }
        if (!bench_wait(&B.sig, &B.done, 1, &B.wrong) || B.wrong) {
            fprintf(stderr, "bench_lws: the run did not complete\n");
            return 1;
        }
        if (B.mode != STREAM)
            bench_rt_print(&B.rt);
    }
    close_all(B.opened);
    command(CMD_STOP);
    pthread_join(thread, NULL);
    lws_context_destroy(B.ctx);
    free(B.buf);
    free(B.all);
    return 0;
}

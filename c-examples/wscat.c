/*
 * wscat: a small interactive WebSocket client. Each line read from stdin is
 * sent as a text message; each message received is printed as "< text"
 * (binary ones as hex). End of input closes the connection (code 1000).
 *
 *   wscat [-p subprotocol] [-H "Name: value"] [-n count] [-t ms] [--ca FILE] [-k] URI
 *
 *   -p  offer a subprotocol (repeatable)     -H  add a request header (repeatable)
 *   -n  at end of input, first wait for `count` messages in all, then close
 *   -t  how long -n waits, and the connect timeout (default 10000 ms)
 *   --ca FILE  also trust the PEM certificates in FILE (wss://)
 *   -k  insecure: accept any server certificate and host name (tests only)
 *
 * stdin and the connection's end are watched together with poll(2): the
 * terminal callback writes to a pipe, so a server that closes wakes us up.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h" /* after_ms, cond_init_monotonic: deadlines on CLOCK_MONOTONIC */
#include "wsc.h"

struct session {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    int opened;
    long received;
    int finished;
    int exit_code;
    int wake_pipe[2]; /* written once by the terminal callback */
};

static void notify(struct session *s)
{
    pthread_cond_broadcast(&s->changed);
    pthread_mutex_unlock(&s->lock);
}

static void on_open(wsc_id id, void *user_data)
{
    struct session *s = user_data;
    char protocol[128];
    if (wsc_get_protocol(id, protocol, sizeof protocol) == WSC_OK && protocol[0])
        fprintf(stderr, "connected (subprotocol %s)\n", protocol);
    else
        fprintf(stderr, "connected\n");
    pthread_mutex_lock(&s->lock);
    s->opened = 1;
    notify(s);
}

static void on_message(wsc_id id, const uint8_t *data, size_t len, bool is_binary, void *user_data)
{
    struct session *s = user_data;
    size_t i;
    (void)id;
    pthread_mutex_lock(&s->lock);
    if (is_binary) {
        printf("< [binary, %zu bytes]", len);
        for (i = 0; i < len && i < 64; i++)
            printf(" %02x", data[i]);
        printf("%s\n", len > 64 ? " ..." : "");
    } else {
        printf("< %s\n", (const char *)data);
    }
    fflush(stdout);
    s->received++;
    notify(s);
}

static void finish(struct session *s, int exit_code)
{
    pthread_mutex_lock(&s->lock);
    s->finished = 1;
    s->exit_code = exit_code;
    if (write(s->wake_pipe[1], "x", 1) < 0) {
        /* poll() also times out on its own; nothing else to do */
    }
    notify(s);
}

static void on_error(wsc_id id, const char *message, void *user_data)
{
    (void)id;
    fprintf(stderr, "error: %s\n", message);
    finish(user_data, 1);
}

static void on_close(wsc_id id, uint16_t code, const char *reason, void *user_data)
{
    (void)id;
    fprintf(stderr, "closed: %u%s%s\n", (unsigned)code, reason[0] ? " " : "", reason);
    finish(user_data, code == 1000 ? 0 : 1);
}

/* Waits until opened (want_received < 0) or `want_received` messages, or the end. */
static void wait_for(struct session *s, long want_received, long timeout_ms)
{
    struct timespec deadline = after_ms(timeout_ms);
    pthread_mutex_lock(&s->lock);
    while (!s->finished && (want_received < 0 ? !s->opened : s->received < want_received) &&
           pthread_cond_timedwait(&s->changed, &s->lock, &deadline) == 0) {
    }
    pthread_mutex_unlock(&s->lock);
}

static int is_finished(struct session *s)
{
    int f;
    pthread_mutex_lock(&s->lock);
    f = s->finished;
    pthread_mutex_unlock(&s->lock);
    return f;
}

/* Sends each complete line in buf[0..*len) and keeps the unfinished rest. */
static int send_lines(wsc_id id, char *buf, size_t *len, int at_eof)
{
    size_t start = 0, i;
    for (i = 0; i < *len; i++) {
        if (buf[i] != '\n')
            continue;
        if (wsc_send_text(id, buf + start, i - start) != WSC_OK)
            return 0;
        start = i + 1;
    }
    if (at_eof && start < *len && wsc_send_text(id, buf + start, *len - start) != WSC_OK)
        return 0;
    memmove(buf, buf + start, *len - start);
    *len -= start;
    return 1;
}

/* Sends each stdin line until end of input or the connection ends. Reads
 * with read(2), not stdio, so poll(2) never misses a buffered line. */
static void pump_stdin(struct session *s, wsc_id id)
{
    size_t len = 0, cap = 4096;
    char *buf = malloc(cap);
    struct pollfd fds[2];
    ssize_t n = 1;
    fds[0].fd = STDIN_FILENO;
    fds[0].events = POLLIN;
    fds[1].fd = s->wake_pipe[0];
    fds[1].events = POLLIN;
    while (buf && n > 0 && !is_finished(s)) {
        if (poll(fds, 2, -1) < 0 && errno != EINTR)
            break;
        if (fds[1].revents)
            break;
        if (!fds[0].revents)
            continue;
        if (len == cap) {
            char *bigger = realloc(buf, cap * 2);
            if (!bigger)
                break;
            buf = bigger;
            cap *= 2;
        }
        n = read(STDIN_FILENO, buf + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        len += n > 0 ? (size_t)n : 0;
        if (!send_lines(id, buf, &len, n <= 0)) {
            fprintf(stderr, "send: %s\n", wsc_last_error());
            break;
        }
    }
    free(buf);
}

static int usage(void)
{
    fprintf(stderr, "usage: wscat [-p subprotocol] [-H 'Name: value'] [-n count] [-t ms] [--ca FILE] [-k] URI\n");
    return 2;
}

/* Applies -p, -H, --ca and -k; returns the index of the URI argument, or -1. */
static int parse_options(int argc, char **argv, wsc_options *o, long *count, long *timeout_ms)
{
    int i;
    for (i = 1; i < argc && argv[i][0] == '-'; i += 2) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        char name[256];
        const char *colon;
        if (!strcmp(argv[i], "-k")) {
            if (wsc_options_set_danger_accept_invalid_certs(o, true) != WSC_OK)
                return -1;
            i--; /* no value */
            continue;
        }
        if (!v)
            return -1;
        if (!strcmp(argv[i], "--ca")) {
            if (wsc_options_set_ca_file(o, v) != WSC_OK)
                return -1;
        } else if (!strcmp(argv[i], "-p")) {
            if (wsc_options_add_subprotocol(o, v) != WSC_OK)
                return -1;
        } else if (!strcmp(argv[i], "-H") && (colon = strchr(v, ':')) != NULL &&
                   (size_t)(colon - v) < sizeof name) {
            memcpy(name, v, (size_t)(colon - v));
            name[colon - v] = '\0';
            for (colon++; *colon == ' '; colon++) {
            }
            if (wsc_options_add_header(o, name, colon) != WSC_OK)
                return -1;
        } else if (!strcmp(argv[i], "-n")) {
            *count = atol(v);
        } else if (!strcmp(argv[i], "-t")) {
            *timeout_ms = atol(v);
        } else {
            return -1;
        }
    }
    return i == argc - 1 ? i : -1;
}

int main(int argc, char **argv)
{
    struct session s = {0};
    wsc_callbacks callbacks = {0};
    wsc_options *options = wsc_options_new();
    long count = -1, timeout_ms = 10000;
    wsc_status status;
    wsc_id id;
    int uri_arg = parse_options(argc, argv, options, &count, &timeout_ms);

    if (uri_arg < 0) {
        const char *detail = wsc_last_error();
        if (detail && detail[0])
            fprintf(stderr, "wscat: %s\n", detail);
        wsc_options_free(options);
        return usage();
    }
    cond_init_monotonic(&s.changed);
    pthread_mutex_init(&s.lock, NULL);
    if (pipe(s.wake_pipe) != 0)
        return 1;
    callbacks.on_open = on_open;
    callbacks.on_message = on_message;
    callbacks.on_error = on_error;
    callbacks.on_close = on_close;

    wsc_options_set_connect_timeout_ms(options, (uint32_t)timeout_ms);
    status = wsc_connect(argv[uri_arg], options, &callbacks, &s, &id);
    wsc_options_free(options);
    if (status != WSC_OK) {
        fprintf(stderr, "wscat: %s: %s\n", wsc_status_str(status), wsc_last_error());
        return 1;
    }
    wait_for(&s, -1, timeout_ms + 1000);
    pump_stdin(&s, id);
    if (count >= 0)
        wait_for(&s, count, timeout_ms);
    wsc_close(id); /* WSC_ERR_UNKNOWN_ID if the server already ended it: fine */
    {
        struct timespec deadline = after_ms(timeout_ms);
        pthread_mutex_lock(&s.lock);
        while (!s.finished && pthread_cond_timedwait(&s.changed, &s.lock, &deadline) == 0) {
        }
        pthread_mutex_unlock(&s.lock);
    }
    wsc_shutdown(5000);
    close(s.wake_pipe[0]);
    close(s.wake_pipe[1]);
    return s.finished ? s.exit_code : 1;
}

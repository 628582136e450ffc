/*
 * echo_client: connect, send a text and a binary message, print what comes
 * back, close cleanly.
 *
 *   echo_client ws://127.0.0.1:PORT/websockets/v4/service/echo
 *
 * Callbacks run on the connection's own worker thread, so main() waits for
 * them on a condition variable, always with a deadline.
 *
 * Self-contained on purpose (no testutil.h): this is the file to copy, and
 * the install test builds it alone against an installed wsc.h.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <time.h>

#include "wsc.h"

/* What the callbacks report to main(), guarded by `lock`. */
struct session {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    int echoes;
    int finished;
    uint16_t close_code;
};

static void session_init(struct session *s)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&s->changed, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&s->lock, NULL);
    s->echoes = s->finished = 0;
    s->close_code = 0;
}

/* Waits until *counter >= want or the connection has finished; false on timeout. */
static int wait_for(struct session *s, const int *counter, int want, int timeout_ms)
{
    struct timespec deadline;
    int ok = 1;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&s->lock);
    while (ok && *counter < want && !s->finished)
        ok = pthread_cond_timedwait(&s->changed, &s->lock, &deadline) == 0;
    ok = *counter >= want;
    pthread_mutex_unlock(&s->lock);
    return ok;
}

static void on_open(wsc_id id, void *user_data)
{
    (void)user_data;
    printf("open: connection %llu\n", (unsigned long long)id);
}

static void on_message(wsc_id id, const uint8_t *data, size_t len, bool is_binary,
                       void *user_data)
{
    struct session *s = user_data;
    size_t i;
    (void)id;
    if (is_binary) {
        printf("binary echo (%zu bytes):", len);
        for (i = 0; i < len; i++)
            printf(" %02x", data[i]);
        printf("\n");
    } else {
        printf("text echo: %s\n", (const char *)data); /* text is NUL-terminated */
    }
    pthread_mutex_lock(&s->lock);
    s->echoes++;
    pthread_cond_broadcast(&s->changed);
    pthread_mutex_unlock(&s->lock);
}

static void finish(struct session *s, uint16_t code)
{
    pthread_mutex_lock(&s->lock);
    s->finished = 1;
    s->close_code = code;
    pthread_cond_broadcast(&s->changed);
    pthread_mutex_unlock(&s->lock);
}

static void on_error(wsc_id id, const char *message, void *user_data)
{
    (void)id;
    printf("error: %s\n", message);
    finish(user_data, 0);
}

static void on_close(wsc_id id, uint16_t code, const char *reason, void *user_data)
{
    (void)id;
    printf("closed: %u \"%s\"\n", (unsigned)code, reason);
    finish(user_data, code);
}

int main(int argc, char **argv)
{
    const char *uri = argc > 1 ? argv[1] : "ws://127.0.0.1:8080/websockets/v4/service/echo";
    static const uint8_t bytes[] = {0x00, 0x01, 0x02, 0xfe, 0xff};
    wsc_callbacks callbacks = {0};
    struct session s;
    wsc_status status;
    wsc_id id;
    int ok;

    session_init(&s);
    callbacks.on_open = on_open;
    callbacks.on_message = on_message;
    callbacks.on_error = on_error;
    callbacks.on_close = on_close;

    status = wsc_connect(uri, NULL, &callbacks, &s, &id);
    if (status != WSC_OK) {
        fprintf(stderr, "wsc_connect: %s: %s\n", wsc_status_str(status), wsc_last_error());
        return 1;
    }
    /* Sends made before the handshake completes are queued and go out right after it. */
    if (wsc_send(id, "hello, echo") != WSC_OK || wsc_send_binary(id, bytes, sizeof bytes) != WSC_OK) {
        fprintf(stderr, "send: %s\n", wsc_last_error());
        return 1;
    }
    ok = wait_for(&s, &s.echoes, 2, 10000);
    if (ok)
        wsc_close(id); /* fails only if the connection has already ended */
    ok = wait_for(&s, &s.finished, 1, 10000) && ok && s.close_code == 1000;

    /* Not required before exit, but it is how a library user unwinds: every worker joined. */
    status = wsc_shutdown(5000);
    printf("shutdown: %s\n", wsc_status_str(status));
    return ok && status == WSC_OK ? 0 : 1;
}

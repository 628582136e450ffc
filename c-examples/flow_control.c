/*
 * flow_control: with flow control on, wsc delivers one message and then
 * reads nothing more until wsc_message_complete() says the application is
 * done with it, from any thread, at any later time.
 *
 *   flow_control ws://127.0.0.1:PORT/websockets/v4/service/echo
 *
 * The echo server sends all five echoes back at once; a second thread
 * "processes" each message for 100 ms before completing it, and we check
 * that no message arrives while the previous one is still outstanding.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>

#include "testutil.h" /* after_ms, cond_init_monotonic: deadlines on CLOCK_MONOTONIC */
#include "wsc.h"

#define MESSAGES 5
#define PROCESSING_MS 100

struct session {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    wsc_id id;
    int received;    /* messages delivered so far */
    int outstanding; /* a delivered message not yet completed */
    int violations;  /* messages delivered while one was outstanding */
    int finished;
};

static void on_open(wsc_id id, void *user_data)
{
    char text[32];
    int i;
    (void)user_data;
    for (i = 1; i <= MESSAGES; i++) {
        snprintf(text, sizeof text, "message %d", i);
        wsc_send(id, text);
    }
}

static void on_message(wsc_id id, const uint8_t *data, size_t len, bool is_binary,
                       void *user_data)
{
    struct session *s = user_data;
    (void)id, (void)len, (void)is_binary;
    pthread_mutex_lock(&s->lock);
    if (s->outstanding)
        s->violations++;
    printf("received %s%s\n", (const char *)data,
           s->outstanding ? " WHILE THE PREVIOUS ONE WAS OUTSTANDING" : "");
    s->outstanding = 1;
    s->received++;
    pthread_cond_broadcast(&s->changed);
    pthread_mutex_unlock(&s->lock);
}

static void finish(struct session *s)
{
    pthread_mutex_lock(&s->lock);
    s->finished = 1;
    pthread_cond_broadcast(&s->changed);
    pthread_mutex_unlock(&s->lock);
}

static void on_error(wsc_id id, const char *message, void *user_data)
{
    (void)id;
    printf("error: %s\n", message);
    finish(user_data);
}

static void on_close(wsc_id id, uint16_t code, const char *reason, void *user_data)
{
    (void)id;
    printf("closed: %u \"%s\"\n", (unsigned)code, reason);
    finish(user_data);
}

/* The second thread: takes each message, works on it, then completes it. */
static void *completer(void *arg)
{
    struct session *s = arg;
    int k, waited_ok = 1;
    pthread_mutex_lock(&s->lock);
    for (k = 1; k <= MESSAGES && waited_ok; k++) {
        struct timespec deadline = after_ms(10000);
        while (waited_ok && s->received < k && !s->finished)
            waited_ok = pthread_cond_timedwait(&s->changed, &s->lock, &deadline) == 0;
        if (s->received < k)
            break;
        /* "Processing": a window in which any delivery would be a violation. */
        deadline = after_ms(PROCESSING_MS);
        while (s->received == k && !s->finished &&
               pthread_cond_timedwait(&s->changed, &s->lock, &deadline) == 0) {
        }
        printf("completing message %d\n", k);
        s->outstanding = 0;
        /* Safe to call with our lock held: wsc never calls back from inside a call. */
        wsc_message_complete(s->id);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

int main(int argc, char **argv)
{
    const char *uri = argc > 1 ? argv[1] : "ws://127.0.0.1:8080/websockets/v4/service/echo";
    wsc_callbacks callbacks = {0};
    struct session s = {0};
    wsc_options *options = wsc_options_new();
    struct timespec deadline;
    pthread_t thread;
    wsc_status status;
    int ok;

    cond_init_monotonic(&s.changed);
    pthread_mutex_init(&s.lock, NULL);
    callbacks.on_open = on_open;
    callbacks.on_message = on_message;
    callbacks.on_error = on_error;
    callbacks.on_close = on_close;

    wsc_options_set_flow_control(options, true);
    /* Hold the lock so the completer cannot see s.id before it is set. */
    pthread_mutex_lock(&s.lock);
    status = wsc_connect(uri, options, &callbacks, &s, &s.id);
    wsc_options_free(options); /* not retained by wsc_connect */
    if (status != WSC_OK) {
        fprintf(stderr, "wsc_connect: %s: %s\n", wsc_status_str(status), wsc_last_error());
        return 1;
    }
    pthread_create(&thread, NULL, completer, &s);
    pthread_mutex_unlock(&s.lock);
    pthread_join(thread, NULL);

    wsc_close(s.id);
    deadline = after_ms(10000);
    pthread_mutex_lock(&s.lock);
    while (!s.finished && pthread_cond_timedwait(&s.changed, &s.lock, &deadline) == 0) {
    }
    ok = s.finished && s.received == MESSAGES && s.violations == 0;
    pthread_mutex_unlock(&s.lock);

    printf("%d messages, %d delivered early: %s\n", s.received, s.violations,
           ok ? "flow control held" : "FAILED");
    status = wsc_shutdown(5000);
    return ok && status == WSC_OK ? 0 : 1;
}

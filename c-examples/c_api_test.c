/*
 * c_api_test: the C contract of include/wsc.h, checked from C against real
 * loopback servers -- what a C programmer would rely on: every status code,
 * NULL and bad UTF-8 on every pointer parameter, ids that are unknown or
 * finished, callbacks that call back into wsc, shutdown and init, no growth
 * in threads or memory over many connections, and the named-handler API.
 *
 *   c_api_test ECHO_URL [EXTRA_BASE]
 *
 * EXTRA_BASE is the base URL of c-examples/servers.rs's misbehaving peer
 * (paths /proto, /drop, /reset); without it those tests are skipped.
 * Environment: WSC_TEST_FILTER=substring runs only matching tests;
 * WSC_CYCLES sets the number of connect/close cycles (default 1000).
 *
 * Nothing waits by sleeping: callbacks signal a condition variable and the
 * test waits on it with a deadline; wsc_wait() says a terminal callback has
 * returned; wsc_shutdown() says every worker thread has exited. The only
 * timed windows are in checks that something does NOT happen.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h" /* CHECK, CHECK_ST, run_tests, after_ms, thread_count, ... */
#include "wsc.h"

#define WAIT_MS 10000
#define REC_MAGIC 0x5753430aU

static void dummy_handler_for_types(wsc_id id, void *user_data)
{
    (void)id, (void)user_data;
}

static const char *ECHO;  /* the echo server's URL */
static const char *EXTRA; /* base URL of the misbehaving peer, or NULL */
static pthread_t main_thread;

/* --------------------------------------------------------- process state */

/* Every worker thread exited, and wsc accepting connections again. */
static int quiesce(void)
{
    return CHECK_ST(wsc_shutdown(WAIT_MS), WSC_OK) && CHECK_ST(wsc_init(), WSC_OK);
}

/* ------------------------------------------------ local TCP misbehaviour */

/* ws://127.0.0.1:PORT<path> for a loopback_socket(backlog); exits if there is none. */
static int loopback_uri(int backlog, const char *path, char *uri, size_t len)
{
    int port, fd = loopback_socket(backlog, &port);
    if (fd < 0) {
        perror("loopback socket");
        exit(2);
    }
    snprintf(uri, len, "ws://127.0.0.1:%d%s", port, path);
    return fd;
}

/* A listener that never accepts: the TCP handshake completes in the kernel
 * backlog, the HTTP upgrade is never answered. */
static int silent_server(char *uri, size_t len)
{
    return loopback_uri(128, "/silent", uri, len);
}

/* A loopback port nobody listens on: connecting is refused. */
static void refused_uri(char *uri, size_t len)
{
    close(loopback_uri(0, "/", uri, len));
}

/* ------------------------------------------------- a recording connection */

struct rec;
typedef void (*open_hook)(struct rec *r, wsc_id id);
typedef void (*message_hook)(struct rec *r, wsc_id id, const uint8_t *data, size_t len, bool bin);
typedef void (*close_hook)(struct rec *r, wsc_id id, uint16_t code);

/* Everything the callbacks of one connection saw, guarded by `lock`. */
struct rec {
    unsigned magic;
    pthread_mutex_t lock;
    pthread_cond_t changed;
    wsc_id id;
    int opens, messages, errors, closes, terminal;
    int wrong_id, after_terminal, before_open_msg, overlap, other_thread, on_main, bad_name;
    int inside, has_worker, text_not_nul_terminated;
    pthread_t worker;
    uint16_t close_code;
    char reason[130];
    char error[256];
    char last[256];
    size_t last_len;
    int last_binary;
    open_hook on_open;
    message_hook on_message;
    close_hook on_close; /* runs for on_close and on_error (code 0) */
    wsc_status got[16];  /* statuses seen by hooks */
    int scratch[16];
    void *ctx;
};

static void rec_init(struct rec *r)
{
    memset(r, 0, sizeof *r);
    r->magic = REC_MAGIC;
    pthread_mutex_init(&r->lock, NULL);
    cond_init_monotonic(&r->changed);
}

/* Never frees a record a live connection still points at, even when a
 * check failed before the connection ended. */
static void rec_destroy(struct rec *r)
{
    if (r->id) {
        wsc_close(r->id);
        wsc_wait(r->id, WAIT_MS);
    }
    pthread_cond_destroy(&r->changed);
    pthread_mutex_destroy(&r->lock);
    r->magic = 0;
}

static void rec_enter(struct rec *r, wsc_id id)
{
    char name[32] = "";
    pthread_getname_np(pthread_self(), name, sizeof name);
    pthread_mutex_lock(&r->lock);
    r->wrong_id += id != r->id;
    r->after_terminal += r->terminal;
    r->overlap += r->inside++ > 0;
    r->on_main += pthread_equal(pthread_self(), main_thread);
    r->bad_name += strncmp(name, "wsc-", 4) != 0;
    if (!r->has_worker) {
        r->worker = pthread_self();
        r->has_worker = 1;
    } else {
        r->other_thread += !pthread_equal(r->worker, pthread_self());
    }
    pthread_mutex_unlock(&r->lock);
}

static void rec_leave(struct rec *r)
{
    pthread_mutex_lock(&r->lock);
    r->inside--;
    pthread_cond_broadcast(&r->changed);
    pthread_mutex_unlock(&r->lock);
}

static struct rec *rec_of(void *user_data)
{
    struct rec *r = user_data;
    if (!r || r->magic != REC_MAGIC) {
        fprintf(stderr, "user_data came back changed: %p\n", user_data);
        abort();
    }
    return r;
}

static void rec_on_open(wsc_id id, void *user_data)
{
    struct rec *r = rec_of(user_data);
    rec_enter(r, id);
    if (r->on_open)
        r->on_open(r, id);
    pthread_mutex_lock(&r->lock);
    r->opens++;
    pthread_mutex_unlock(&r->lock);
    rec_leave(r);
}

static void rec_on_message(wsc_id id, const uint8_t *data, size_t len, bool bin, void *user_data)
{
    struct rec *r = rec_of(user_data);
    rec_enter(r, id);
    if (r->on_message)
        r->on_message(r, id, data, len, bin);
    pthread_mutex_lock(&r->lock);
    r->before_open_msg += r->opens == 0;
    r->text_not_nul_terminated += !bin && data[len] != '\0';
    r->last_len = len;
    r->last_binary = bin;
    memcpy(r->last, data, len < sizeof r->last ? len : sizeof r->last);
    r->messages++;
    pthread_mutex_unlock(&r->lock);
    rec_leave(r);
}

static void rec_terminal(struct rec *r, wsc_id id, uint16_t code, const char *text, int is_error)
{
    rec_enter(r, id);
    if (r->on_close)
        r->on_close(r, id, code);
    pthread_mutex_lock(&r->lock);
    snprintf(is_error ? r->error : r->reason, is_error ? sizeof r->error : sizeof r->reason,
             "%s", text ? text : "(null)");
    r->close_code = code;
    r->errors += is_error;
    r->closes += !is_error;
    r->terminal++;
    pthread_mutex_unlock(&r->lock);
    rec_leave(r);
}

static void rec_on_error(wsc_id id, const char *message, void *user_data)
{
    rec_terminal(rec_of(user_data), id, 0, message, 1);
}

static void rec_on_close(wsc_id id, uint16_t code, const char *reason, void *user_data)
{
    rec_terminal(rec_of(user_data), id, code, reason, 0);
}

static wsc_callbacks rec_callbacks(void)
{
    wsc_callbacks cb;
    cb.on_open = rec_on_open;
    cb.on_message = rec_on_message;
    cb.on_error = rec_on_error;
    cb.on_close = rec_on_close;
    return cb;
}

/* Connects with the recording callbacks; r->id is set before any callback reads it. */
static wsc_status rec_connect(struct rec *r, const char *uri, const wsc_options *o)
{
    wsc_callbacks cb = rec_callbacks();
    wsc_status st;
    pthread_mutex_lock(&r->lock);
    st = wsc_connect(uri, o, &cb, r, &r->id);
    pthread_mutex_unlock(&r->lock);
    return st;
}

/* Waits until *counter >= want; gives up early once the connection has ended. */
static int rec_wait(struct rec *r, const int *counter, int want, long ms)
{
    return wait_count(&r->lock, &r->changed, counter, want,
                      counter == &r->terminal ? NULL : &r->terminal, ms);
}

/* The terminal callback has run and returned. */
static int rec_finished(struct rec *r)
{
    return CHECK(rec_wait(r, &r->terminal, 1, WAIT_MS)) &&
           CHECK_ST(wsc_wait(r->id, WAIT_MS), WSC_OK);
}

static int rec_get(struct rec *r, const int *field)
{
    int v;
    pthread_mutex_lock(&r->lock);
    v = *field;
    pthread_mutex_unlock(&r->lock);
    return v;
}

/* The rules every connection obeys, whatever the test did with it. */
static void rec_check_rules(struct rec *r)
{
    pthread_mutex_lock(&r->lock);
    CHECK(r->terminal == 1);
    CHECK(r->errors + r->closes == 1);
    CHECK(r->opens <= 1);
    CHECK(r->after_terminal == 0);
    CHECK(r->before_open_msg == 0);
    CHECK(r->overlap == 0);
    CHECK(r->other_thread == 0);
    CHECK(r->on_main == 0);
    CHECK(r->bad_name == 0);
    CHECK(r->wrong_id == 0);
    CHECK(r->text_not_nul_terminated == 0);
    pthread_mutex_unlock(&r->lock);
}

/* An open connection to the echo server. */
static int open_echo(struct rec *r, const wsc_options *o)
{
    rec_init(r);
    return CHECK_ST(rec_connect(r, ECHO, o), WSC_OK) && CHECK(rec_wait(r, &r->opens, 1, WAIT_MS));
}

/* Closes (if still open), waits for the end, checks the rules, frees r. */
static void close_and_finish(struct rec *r)
{
    wsc_close(r->id);
    rec_finished(r);
    rec_check_rules(r);
    rec_destroy(r);
}

static const char *extra(const char *path, char *buf, size_t len)
{
    snprintf(buf, len, "%s%s", EXTRA, path);
    return buf;
}

/* =================================================================== tests */

/* Compile-time: every function has exactly the contract's type (a mismatch
 * is an incompatible-pointer error under -Werror). Run time: all present. */
static void test_signatures_match_the_contract(void)
{
    wsc_options *(*options_new)(void) = wsc_options_new;
    void (*options_free)(wsc_options *) = wsc_options_free;
    wsc_status (*add_header)(wsc_options *, const char *, const char *) = wsc_options_add_header;
    wsc_status (*add_subprotocol)(wsc_options *, const char *) = wsc_options_add_subprotocol;
    wsc_status (*connect_timeout)(wsc_options *, uint32_t) = wsc_options_set_connect_timeout_ms;
    wsc_status (*close_timeout)(wsc_options *, uint32_t) = wsc_options_set_close_timeout_ms;
    wsc_status (*ping_interval)(wsc_options *, uint32_t) = wsc_options_set_ping_interval_ms;
    wsc_status (*pong_timeout)(wsc_options *, uint32_t) = wsc_options_set_pong_timeout_ms;
    wsc_status (*max_message)(wsc_options *, size_t) = wsc_options_set_max_message_size;
    wsc_status (*max_buffered)(wsc_options *, size_t) = wsc_options_set_max_buffered_bytes;
    wsc_status (*flow)(wsc_options *, bool) = wsc_options_set_flow_control;
    wsc_status (*ca_file)(wsc_options *, const char *) = wsc_options_set_ca_file;
    wsc_status (*danger)(wsc_options *, bool) = wsc_options_set_danger_accept_invalid_certs;
    wsc_status (*connect)(const char *, const wsc_options *, const wsc_callbacks *, void *,
                          wsc_id *) = wsc_connect;
    wsc_status (*send)(wsc_id, const char *) = wsc_send;
    wsc_status (*send_text)(wsc_id, const char *, size_t) = wsc_send_text;
    wsc_status (*send_binary)(wsc_id, const uint8_t *, size_t) = wsc_send_binary;
    wsc_status (*close_)(wsc_id) = wsc_close;
    wsc_status (*close_with)(wsc_id, uint16_t, const char *) = wsc_close_with;
    wsc_status (*set_flow)(wsc_id, bool) = wsc_set_flow_control;
    wsc_status (*complete)(wsc_id) = wsc_message_complete;
    wsc_status (*get_state)(wsc_id, wsc_state *) = wsc_get_state;
    wsc_status (*buffered)(wsc_id, size_t *) = wsc_buffered_amount;
    wsc_status (*get_protocol)(wsc_id, char *, size_t) = wsc_get_protocol;
    wsc_status (*shutdown_)(uint32_t) = wsc_shutdown;
    wsc_status (*init)(void) = wsc_init;
    const char *(*status_str)(wsc_status) = wsc_status_str;
    const char *(*last_error)(void) = wsc_last_error;
    const char *(*version)(void) = wsc_version;
    wsc_status (*register_)(const char *, wsc_handler_fn, void *) = wsc_register_handler;
    wsc_status (*unregister)(const char *) = wsc_unregister_handler;
    wsc_status (*create)(const char *, const char *, const char *, const wsc_options *,
                         wsc_id *) = wsc_create_websocket;
    const char *(*get_method)(void) = wsc_get_method;
    const char *(*get_message)(void) = wsc_get_message;
    size_t (*get_message_length)(void) = wsc_get_message_length;
    bool (*get_message_is_binary)(void) = wsc_get_message_is_binary;
    const char *(*get_error)(void) = wsc_get_error;
    uint16_t (*get_close_code)(void) = wsc_get_close_code;
    bool (*is_on_open)(void) = wsc_is_on_open;
    bool (*is_on_message)(void) = wsc_is_on_message;
    bool (*is_on_error)(void) = wsc_is_on_error;
    bool (*is_on_close)(void) = wsc_is_on_close;
    wsc_status (*get_clients)(wsc_client_info **, size_t *) = wsc_get_clients;
    void (*free_clients)(wsc_client_info *, size_t) = wsc_free_clients;
    wsc_status (*get_client)(wsc_id, wsc_client_info *) = wsc_get_client;
    void (*free_client_info)(wsc_client_info *) = wsc_free_client_info;
    wsc_id (*by_handler)(const char *) = wsc_get_client_by_handler;
    /* the callback and record types, member by member */
    wsc_callbacks cb;
    wsc_client_info info;
    void (*on_open)(wsc_id, void *) = 0;
    void (*on_message)(wsc_id, const uint8_t *, size_t, bool, void *) = 0;
    void (*on_error)(wsc_id, const char *, void *) = 0;
    void (*on_close)(wsc_id, uint16_t, const char *, void *) = 0;
    void (*handler)(wsc_id, void *) = dummy_handler_for_types;
    wsc_handler_fn as_typedef = handler;
    uint64_t *id_is_u64 = &info.id;
    char **uri = &info.uri, **handler_name = &info.handler;
    wsc_state *state = &info.state;
    cb.on_open = on_open;
    cb.on_message = on_message;
    cb.on_error = on_error;
    cb.on_close = on_close;
    CHECK(options_new && options_free && add_header && add_subprotocol && connect_timeout &&
          close_timeout && ping_interval && pong_timeout && max_message && max_buffered && flow &&
          ca_file && danger && connect && send && send_text && send_binary && close_ &&
          close_with && set_flow && complete && get_state && buffered && get_protocol &&
          shutdown_ && init && status_str && last_error && version);
    CHECK(register_ && unregister && create && get_method && get_message && get_message_length &&
          get_message_is_binary && get_error && get_close_code && is_on_open && is_on_message &&
          is_on_error && is_on_close && get_clients && free_clients && get_client &&
          free_client_info && by_handler && as_typedef);
    CHECK(id_is_u64 && uri && handler_name && state && !cb.on_open && sizeof(wsc_id) == 8);
}

/* The header's version macros agree with each other at compile time... */
#if WSC_VERSION_NUM != ((WSC_VERSION_MAJOR << 16) | (WSC_VERSION_MINOR << 8) | WSC_VERSION_PATCH)
#error "WSC_VERSION_NUM does not match WSC_VERSION_MAJOR/MINOR/PATCH"
#endif

static void test_version_and_status_strings(void)
{
    int i, j;
    char parts[32];
    const char *v = wsc_version();
    CHECK(v != NULL && v[0] >= '0' && v[0] <= '9');
    /* ... and with the library at run time. */
    CHECK(strcmp(v, WSC_VERSION) == 0);
    CHECK(wsc_version_num() == WSC_VERSION_NUM);
    snprintf(parts, sizeof parts, "%d.%d.%d", WSC_VERSION_MAJOR, WSC_VERSION_MINOR, WSC_VERSION_PATCH);
    CHECK(strcmp(parts, WSC_VERSION) == 0);
    CHECK(wsc_last_error() != NULL);
    for (i = WSC_OK; i <= WSC_ERR_TIMEOUT; i++) {
        CHECK(wsc_status_str((wsc_status)i) != NULL && wsc_status_str((wsc_status)i)[0]);
        for (j = 0; j < i; j++)
            CHECK(strcmp(wsc_status_str((wsc_status)i), wsc_status_str((wsc_status)j)) != 0);
    }
    CHECK(strstr(wsc_status_str(WSC_ERR_UNKNOWN_ID), "UNKNOWN_ID") != NULL);
    CHECK(wsc_status_str((wsc_status)42) != NULL); /* out of range: still a string */
    CHECK(WSC_OK == 0 && WSC_ERR_INVALID_ARGUMENT == 1 && WSC_ERR_INVALID_URI == 2 &&
          WSC_ERR_UNKNOWN_ID == 3 && WSC_ERR_CLOSED == 4 && WSC_ERR_QUEUE_FULL == 5 &&
          WSC_ERR_UNKNOWN_HANDLER == 6 && WSC_ERR_SHUTDOWN == 7 && WSC_ERR_INTERNAL == 8 &&
          WSC_ERR_TIMEOUT == 9);
    CHECK(WSC_STATE_CONNECTING == 0 && WSC_STATE_OPEN == 1 && WSC_STATE_CLOSING == 2);
    CHECK_ST(wsc_init(), WSC_OK); /* a no-op when not shut down */
}

static void null_option_setters(void)
{
    CHECK_ST(wsc_options_add_header(NULL, "X-A", "b"), WSC_ERR_INVALID_ARGUMENT);
    CHECK_ST(wsc_options_add_subprotocol(NULL, "p"), WSC_ERR_INVALID_ARGUMENT);
    CHECK_ST(wsc_options_set_connect_timeout_ms(NULL, 1000), WSC_ERR_INVALID_ARGUMENT);
    CHECK_ST(wsc_options_set_close_timeout_ms(NULL, 1000), WSC_ERR_INVALID_ARGUMENT);
    CHECK_ST(wsc_options_set_ping_interval_ms(NULL, 1000), WSC_ERR_INVALID_ARGUMENT);
    CHECK_ST(wsc_options_set_pong_timeout_ms(NULL, 1000), WSC_ERR_INVALID_ARGUMENT);
    CHECK_ST(wsc_options_set_max_message_size(NULL, 1000), WSC_ERR_INVALID_ARGUMENT);
    CHECK_ST(wsc_options_set_max_buffered_bytes(NULL, 1000), WSC_ERR_INVALID_ARGUMENT);
    CHECK_ST(wsc_options_set_flow_control(NULL, true), WSC_ERR_INVALID_ARGUMENT);
    CHECK_ST(wsc_options_set_ca_file(NULL, "/dev/null"), WSC_ERR_INVALID_ARGUMENT);
    CHECK_ST(wsc_options_set_danger_accept_invalid_certs(NULL, true), WSC_ERR_INVALID_ARGUMENT);
    CHECK_ST(wsc_options_set_client_certificate(NULL, "a", "b"), WSC_ERR_INVALID_ARGUMENT);
    CHECK_ST(wsc_options_set_stack_size(NULL, 1 << 20), WSC_ERR_INVALID_ARGUMENT);
    CHECK_ST(wsc_options_set_read_buffer_size(NULL, 1 << 16), WSC_ERR_INVALID_ARGUMENT);
    wsc_options_free(NULL);
}

static void null_option_strings(void)
{
    wsc_options *o = wsc_options_new();
    CHECK(o != NULL);
    CHECK_ST(wsc_options_add_header(o, NULL, "b"), WSC_ERR_INVALID_ARGUMENT);
    CHECK_ST(wsc_options_add_header(o, "X-A", NULL), WSC_ERR_INVALID_ARGUMENT);
    CHECK_ST(wsc_options_add_subprotocol(o, NULL), WSC_ERR_INVALID_ARGUMENT);
    CHECK_ST(wsc_options_set_ca_file(o, NULL), WSC_ERR_INVALID_ARGUMENT);
    CHECK_ST(wsc_options_set_client_certificate(o, NULL, "k"), WSC_ERR_INVALID_ARGUMENT);
    CHECK_ST(wsc_options_set_client_certificate(o, "c", NULL), WSC_ERR_INVALID_ARGUMENT);
    wsc_options_free(o);
}

static void null_connection_args(void)
{
    wsc_callbacks cb = rec_callbacks();
    struct rec r;
    wsc_state state;
    size_t n;
    wsc_id id = 0;
    CHECK_ST(wsc_connect(NULL, NULL, &cb, NULL, &id), WSC_ERR_INVALID_ARGUMENT);
    CHECK_ST(wsc_connect(ECHO, NULL, NULL, NULL, &id), WSC_ERR_INVALID_ARGUMENT);
    CHECK_ST(wsc_connect(ECHO, NULL, &cb, NULL, NULL), WSC_ERR_INVALID_ARGUMENT);
    CHECK(id == 0);
    CHECK(listed_clients() == 0); /* nothing was started */
    if (!open_echo(&r, NULL))
        return;
    CHECK_ST(wsc_send(r.id, NULL), WSC_ERR_INVALID_ARGUMENT);
    CHECK_ST(wsc_send_text(r.id, NULL, 3), WSC_ERR_INVALID_ARGUMENT);
    CHECK_ST(wsc_send_binary(r.id, NULL, 3), WSC_ERR_INVALID_ARGUMENT);
    CHECK_ST(wsc_get_state(r.id, NULL), WSC_ERR_INVALID_ARGUMENT);
    CHECK_ST(wsc_buffered_amount(r.id, NULL), WSC_ERR_INVALID_ARGUMENT);
    CHECK_ST(wsc_get_protocol(r.id, NULL, 16), WSC_ERR_INVALID_ARGUMENT);
    CHECK_ST(wsc_get_client(r.id, NULL), WSC_ERR_INVALID_ARGUMENT);
    /* the connection is unharmed: still open, and NULL reason is allowed */
    CHECK_ST(wsc_get_state(r.id, &state), WSC_OK);
    CHECK(state == WSC_STATE_OPEN);
    CHECK_ST(wsc_buffered_amount(r.id, &n), WSC_OK);
    CHECK_ST(wsc_close_with(r.id, 1000, NULL), WSC_OK);
    close_and_finish(&r);
}

static void dummy_handler(wsc_id id, void *user_data)
{
    (void)id, (void)user_data;
}

static void null_handler_args(void)
{
    wsc_client_info *list = NULL;
    size_t len = 0;
    wsc_id id = 0;
    CHECK_ST(wsc_register_handler(NULL, dummy_handler, NULL), WSC_ERR_INVALID_ARGUMENT);
    CHECK_ST(wsc_register_handler("t/null", NULL, NULL), WSC_ERR_INVALID_ARGUMENT);
    CHECK_ST(wsc_unregister_handler(NULL), WSC_ERR_INVALID_ARGUMENT);
    CHECK_ST(wsc_register_handler("t/null", dummy_handler, NULL), WSC_OK);
    CHECK_ST(wsc_create_websocket(NULL, "t/null", NULL, NULL, &id), WSC_ERR_INVALID_ARGUMENT);
    CHECK_ST(wsc_create_websocket(ECHO, NULL, NULL, NULL, &id), WSC_ERR_INVALID_ARGUMENT);
    CHECK_ST(wsc_create_websocket(ECHO, "t/null", NULL, NULL, NULL), WSC_ERR_INVALID_ARGUMENT);
    CHECK(id == 0);
    CHECK_ST(wsc_unregister_handler("t/null"), WSC_OK);
    CHECK_ST(wsc_get_clients(NULL, &len), WSC_ERR_INVALID_ARGUMENT);
    CHECK_ST(wsc_get_clients(&list, NULL), WSC_ERR_INVALID_ARGUMENT);
    CHECK(wsc_get_client_by_handler(NULL) == 0);
    wsc_free_clients(NULL, 0);
    wsc_free_client_info(NULL);
}

static void test_null_arguments(void)
{
    null_option_setters();
    null_option_strings();
    null_connection_args();
    null_handler_args();
}

static void test_invalid_utf8(void)
{
    static const char bad[] = "bad \xff\xfe text";
    wsc_callbacks cb = rec_callbacks();
    wsc_options *o = wsc_options_new();
    char uri[300];
    struct rec r;
    wsc_id id = 0;
    CHECK_ST(wsc_options_add_header(o, bad, "v"), WSC_ERR_INVALID_ARGUMENT);
    CHECK_ST(wsc_options_add_header(o, "X-A", bad), WSC_ERR_INVALID_ARGUMENT);
    CHECK_ST(wsc_options_add_subprotocol(o, bad), WSC_ERR_INVALID_ARGUMENT);
    wsc_options_free(o);
    snprintf(uri, sizeof uri, "%s/\xff\xfe", ECHO);
    CHECK_ST(wsc_connect(uri, NULL, &cb, NULL, &id), WSC_ERR_INVALID_ARGUMENT);
    CHECK_ST(wsc_register_handler(bad, dummy_handler, NULL), WSC_ERR_INVALID_ARGUMENT);
    CHECK_ST(wsc_unregister_handler(bad), WSC_ERR_INVALID_ARGUMENT);
    CHECK_ST(wsc_register_handler("t/utf8", dummy_handler, NULL), WSC_OK);
    CHECK_ST(wsc_create_websocket(uri, "t/utf8", NULL, NULL, &id), WSC_ERR_INVALID_ARGUMENT);
    CHECK_ST(wsc_create_websocket(ECHO, bad, NULL, NULL, &id), WSC_ERR_INVALID_ARGUMENT);
    CHECK_ST(wsc_create_websocket(ECHO, "t/utf8", bad, NULL, &id), WSC_ERR_INVALID_ARGUMENT);
    CHECK_ST(wsc_unregister_handler("t/utf8"), WSC_OK);
    CHECK(wsc_get_client_by_handler(bad) == 0);
    CHECK(id == 0);
    if (!open_echo(&r, NULL))
        return;
    CHECK_ST(wsc_send(r.id, bad), WSC_ERR_INVALID_ARGUMENT);
    CHECK_ST(wsc_send_text(r.id, bad, sizeof bad - 1), WSC_ERR_INVALID_ARGUMENT);
    CHECK_ST(wsc_send_text(r.id, "ok\0still ok", 11), WSC_OK); /* NUL is valid UTF-8 */
    CHECK_ST(wsc_send_text(r.id, "\xe2\x82\xac", 2), WSC_ERR_INVALID_ARGUMENT); /* cut in half */
    CHECK_ST(wsc_close_with(r.id, 1000, bad), WSC_ERR_INVALID_ARGUMENT);
    CHECK(rec_wait(&r, &r.messages, 1, WAIT_MS));
    CHECK(r.last_len == 11 && memcmp(r.last, "ok\0still ok", 11) == 0);
    close_and_finish(&r);
}

static void test_invalid_uri(void)
{
    static const char *const uris[] = {"", "not a uri", "http://127.0.0.1:1/",
                                       "ftp://127.0.0.1/", "ws://", "ws://:80/", "127.0.0.1:80"};
    wsc_callbacks cb = rec_callbacks();
    size_t i;
    wsc_id id = 0;
    CHECK_ST(wsc_register_handler("t/uri", dummy_handler, NULL), WSC_OK);
    for (i = 0; i < sizeof uris / sizeof uris[0]; i++) {
        CHECK_ST(wsc_connect(uris[i], NULL, &cb, NULL, &id), WSC_ERR_INVALID_URI);
        CHECK(wsc_last_error()[0] != '\0');
        CHECK_ST(wsc_create_websocket(uris[i], "t/uri", NULL, NULL, &id), WSC_ERR_INVALID_URI);
    }
    CHECK(id == 0);
    CHECK_ST(wsc_unregister_handler("t/uri"), WSC_OK);
    CHECK(listed_clients() == 0);
}

static void test_option_values(void)
{
    wsc_options *o = wsc_options_new();
    CHECK_ST(wsc_options_add_header(o, "Bad Name", "v"), WSC_ERR_INVALID_ARGUMENT);
    CHECK_ST(wsc_options_add_header(o, "X-Ok", "split\r\nX-Evil: 1"), WSC_ERR_INVALID_ARGUMENT);
    CHECK_ST(wsc_options_add_header(o, "X-Ok", "fine"), WSC_OK);
    CHECK_ST(wsc_options_add_subprotocol(o, "chat.v1"), WSC_OK);
    CHECK_ST(wsc_options_set_max_message_size(o, 0), WSC_ERR_INVALID_ARGUMENT);
    CHECK_ST(wsc_options_set_max_buffered_bytes(o, 0), WSC_ERR_INVALID_ARGUMENT);
    CHECK_ST(wsc_options_set_stack_size(o, 4096), WSC_ERR_INVALID_ARGUMENT);
    CHECK_ST(wsc_options_set_read_buffer_size(o, 16), WSC_ERR_INVALID_ARGUMENT);
    CHECK_ST(wsc_options_set_ca_file(o, "/nonexistent/ca.pem"), WSC_ERR_INVALID_ARGUMENT);
    CHECK_ST(wsc_options_set_ca_file(o, "/dev/null"), WSC_ERR_INVALID_ARGUMENT);
    CHECK_ST(wsc_options_set_client_certificate(o, "/nonexistent/c", "/nonexistent/k"),
             WSC_ERR_INVALID_ARGUMENT);
    CHECK_ST(wsc_options_set_connect_timeout_ms(o, 5000), WSC_OK);
    CHECK_ST(wsc_options_set_close_timeout_ms(o, 5000), WSC_OK);
    CHECK_ST(wsc_options_set_ping_interval_ms(o, 0), WSC_OK);
    CHECK_ST(wsc_options_set_pong_timeout_ms(o, 5000), WSC_OK);
    CHECK_ST(wsc_options_set_max_message_size(o, 1 << 20), WSC_OK);
    CHECK_ST(wsc_options_set_max_buffered_bytes(o, 1 << 20), WSC_OK);
    CHECK_ST(wsc_options_set_flow_control(o, false), WSC_OK);
    CHECK_ST(wsc_options_set_danger_accept_invalid_certs(o, false), WSC_OK);
    CHECK_ST(wsc_options_set_stack_size(o, 512 * 1024), WSC_OK);
    CHECK_ST(wsc_options_set_read_buffer_size(o, 8192), WSC_OK);
    wsc_options_free(o);
}

/* Proxy options: checked at the setter, "" is direct, and a proxy that
 * cannot be reached is an on_error naming it, never its password. */
static void test_proxy_options(void)
{
    wsc_status (*set_proxy)(wsc_options *, const char *) = wsc_options_set_proxy;
    wsc_status (*set_from_env)(wsc_options *, bool) = wsc_options_set_proxy_from_env;
    wsc_options *o = wsc_options_new();
    struct rec r;
    char refused[64], proxy[128];
    CHECK(set_proxy && set_from_env);
    CHECK_ST(wsc_options_set_proxy(NULL, "http://127.0.0.1:3128"), WSC_ERR_INVALID_ARGUMENT);
    CHECK_ST(wsc_options_set_proxy_from_env(NULL, true), WSC_ERR_INVALID_ARGUMENT);
    CHECK_ST(wsc_options_set_proxy(o, NULL), WSC_ERR_INVALID_ARGUMENT);
    CHECK_ST(wsc_options_set_proxy(o, "http://\xff:1"), WSC_ERR_INVALID_ARGUMENT);
    CHECK_ST(wsc_options_set_proxy(o, "https://127.0.0.1:3128"), WSC_ERR_INVALID_ARGUMENT);
    CHECK_ST(wsc_options_set_proxy(o, "socks4://127.0.0.1"), WSC_ERR_INVALID_ARGUMENT);
    CHECK_ST(wsc_options_set_proxy(o, "http://"), WSC_ERR_INVALID_ARGUMENT);
    CHECK_ST(wsc_options_set_proxy(o, "http://127.0.0.1:65536"), WSC_ERR_INVALID_ARGUMENT);
    CHECK_ST(wsc_options_set_proxy(o, "http://user:topsecret@127.0.0.1:0"), WSC_ERR_INVALID_ARGUMENT);
    CHECK(strstr(wsc_last_error(), "port") != NULL && strstr(wsc_last_error(), "topsecret") == NULL);
    CHECK_ST(wsc_options_set_proxy(o, "socks5h://u:p%40ss@[::1]"), WSC_OK);
    CHECK_ST(wsc_options_set_proxy_from_env(o, true), WSC_OK);
    /* "" is direct, even with the environment on */
    CHECK_ST(wsc_options_set_proxy(o, ""), WSC_OK);
    if (open_echo(&r, o)) {
        CHECK_ST(wsc_send(r.id, "direct"), WSC_OK);
        CHECK(rec_wait(&r, &r.messages, 1, WAIT_MS));
        close_and_finish(&r);
    }
    /* a proxy nobody listens on */
    refused_uri(refused, sizeof refused); /* ws://127.0.0.1:PORT/ */
    snprintf(proxy, sizeof proxy, "http://user:topsecret@%s", refused + strlen("ws://"));
    CHECK_ST(wsc_options_set_proxy(o, proxy), WSC_OK);
    rec_init(&r);
    CHECK_ST(rec_connect(&r, ECHO, o), WSC_OK);
    wsc_options_free(o);
    rec_finished(&r);
    CHECK(r.errors == 1 && r.opens == 0);
    CHECK(strstr(r.error, "proxy http://127.0.0.1:") != NULL && strstr(r.error, "topsecret") == NULL);
    rec_check_rules(&r);
    rec_destroy(&r);
}

/* Options are copied by wsc_connect: freeing them at once changes nothing. */
static void test_options_not_retained(void)
{
    wsc_options *o = wsc_options_new();
    struct rec r;
    rec_init(&r);
    wsc_options_add_header(o, "X-Test", "1");
    wsc_options_set_flow_control(o, true);
    CHECK_ST(rec_connect(&r, ECHO, o), WSC_OK);
    wsc_options_free(o);
    CHECK_ST(wsc_send(r.id, "a"), WSC_OK);
    CHECK_ST(wsc_send(r.id, "b"), WSC_OK);
    CHECK(rec_wait(&r, &r.messages, 1, WAIT_MS));
    CHECK_ST(wsc_message_complete(r.id), WSC_OK); /* flow control came through */
    CHECK(rec_wait(&r, &r.messages, 2, WAIT_MS));
    close_and_finish(&r);
}

static void test_echo_text_binary_empty(void)
{
    static const uint8_t bytes[] = {0, 1, 2, 0, 255};
    struct rec r;
    wsc_state st;
    if (!open_echo(&r, NULL))
        return;
    CHECK_ST(wsc_get_state(r.id, &st), WSC_OK);
    CHECK(st == WSC_STATE_OPEN);
    CHECK_ST(wsc_send(r.id, "hello"), WSC_OK);
    CHECK(rec_wait(&r, &r.messages, 1, WAIT_MS));
    CHECK(r.last_len == 5 && !r.last_binary && memcmp(r.last, "hello", 5) == 0);
    CHECK_ST(wsc_send_binary(r.id, bytes, sizeof bytes), WSC_OK);
    CHECK(rec_wait(&r, &r.messages, 2, WAIT_MS));
    CHECK(r.last_len == 5 && r.last_binary && memcmp(r.last, bytes, 5) == 0);
    CHECK_ST(wsc_send_text(r.id, NULL, 0), WSC_OK); /* empty text */
    CHECK(rec_wait(&r, &r.messages, 3, WAIT_MS));
    CHECK(r.last_len == 0 && !r.last_binary);
    CHECK_ST(wsc_send_binary(r.id, NULL, 0), WSC_OK); /* empty binary */
    CHECK(rec_wait(&r, &r.messages, 4, WAIT_MS));
    CHECK(r.last_len == 0 && r.last_binary);
    CHECK_ST(wsc_close(r.id), WSC_OK);
    rec_finished(&r);
    CHECK(r.closes == 1 && r.close_code == 1000);
    rec_check_rules(&r);
    rec_destroy(&r);
}

/* ---- user_data is passed back untouched, even when it is not a pointer */

#define SENTINEL ((void *)(unsigned long)0x5eed1e55UL)
static struct rec sentinel_rec; /* where the sentinel callbacks report */
static int sentinel_mismatch;

static void sentinel_note(void *user_data, int terminal)
{
    pthread_mutex_lock(&sentinel_rec.lock);
    sentinel_mismatch += user_data != SENTINEL;
    sentinel_rec.messages += !terminal;
    sentinel_rec.terminal += terminal;
    pthread_cond_broadcast(&sentinel_rec.changed);
    pthread_mutex_unlock(&sentinel_rec.lock);
}

static void s_open(wsc_id id, void *ud)
{
    (void)id;
    sentinel_note(ud, 0);
}

static void s_message(wsc_id id, const uint8_t *d, size_t n, bool b, void *ud)
{
    (void)id, (void)d, (void)n, (void)b;
    sentinel_note(ud, 0);
}

static void s_close(wsc_id id, uint16_t code, const char *reason, void *ud)
{
    (void)id, (void)code, (void)reason;
    sentinel_note(ud, 1);
}

static void test_user_data_untouched(void)
{
    wsc_callbacks cb = {0};
    wsc_id id;
    rec_init(&sentinel_rec);
    cb.on_open = s_open;
    cb.on_message = s_message;
    cb.on_close = s_close; /* on_error left NULL on purpose */
    CHECK_ST(wsc_connect(ECHO, NULL, &cb, SENTINEL, &id), WSC_OK);
    CHECK_ST(wsc_send(id, "x"), WSC_OK);
    CHECK(rec_wait(&sentinel_rec, &sentinel_rec.messages, 2, WAIT_MS)); /* open + echo */
    CHECK_ST(wsc_close(id), WSC_OK);
    CHECK(rec_wait(&sentinel_rec, &sentinel_rec.terminal, 1, WAIT_MS));
    CHECK_ST(wsc_wait(id, WAIT_MS), WSC_OK);
    CHECK(sentinel_mismatch == 0);
    rec_destroy(&sentinel_rec);
}

/* All-NULL callbacks are allowed: the connection still runs and ends. */
static void test_null_callback_members(void)
{
    wsc_callbacks cb = {0};
    wsc_id id;
    CHECK_ST(wsc_connect(ECHO, NULL, &cb, NULL, &id), WSC_OK);
    CHECK_ST(wsc_send(id, "nobody listens"), WSC_OK);
    CHECK_ST(wsc_close(id), WSC_OK);
    CHECK_ST(wsc_wait(id, WAIT_MS), WSC_OK);
    CHECK_ST(wsc_send(id, "x"), WSC_ERR_UNKNOWN_ID);
}

/* ---- ids that never existed or have finished */

static int closing_or_gone(wsc_status st)
{
    return st == WSC_ERR_CLOSED || st == WSC_ERR_UNKNOWN_ID;
}

static void check_unknown(wsc_id id)
{
    char buf[16] = "untouched";
    wsc_client_info info;
    wsc_state st;
    size_t n;
    CHECK_ST(wsc_send(id, "x"), WSC_ERR_UNKNOWN_ID);
    CHECK_ST(wsc_send_text(id, "x", 1), WSC_ERR_UNKNOWN_ID);
    CHECK_ST(wsc_send_binary(id, (const uint8_t *)"x", 1), WSC_ERR_UNKNOWN_ID);
    CHECK_ST(wsc_close(id), WSC_ERR_UNKNOWN_ID);
    CHECK_ST(wsc_close_with(id, 4000, "bye"), WSC_ERR_UNKNOWN_ID);
    CHECK_ST(wsc_set_flow_control(id, true), WSC_ERR_UNKNOWN_ID);
    CHECK_ST(wsc_message_complete(id), WSC_ERR_UNKNOWN_ID);
    CHECK_ST(wsc_get_state(id, &st), WSC_ERR_UNKNOWN_ID);
    CHECK_ST(wsc_buffered_amount(id, &n), WSC_ERR_UNKNOWN_ID);
    CHECK_ST(wsc_get_protocol(id, buf, sizeof buf), WSC_ERR_UNKNOWN_ID);
    CHECK_ST(wsc_get_client(id, &info), WSC_ERR_UNKNOWN_ID);
}

static void test_unknown_ids(void)
{
    check_unknown(0);
    check_unknown(0xfffffffffff0ULL);
    check_unknown(UINT64_MAX);
}

static void terminal_probe(struct rec *r, wsc_id id, uint16_t code)
{
    wsc_state st = (wsc_state)-1;
    (void)code;
    r->got[0] = wsc_get_state(id, &st);
    r->scratch[0] = (int)st;
    r->got[1] = wsc_send(id, "too late");
    r->got[2] = wsc_close(id);
}

static void test_double_close_and_use_after_terminal(void)
{
    struct rec r;
    if (!open_echo(&r, NULL))
        return;
    r.on_close = terminal_probe;
    CHECK_ST(wsc_close(r.id), WSC_OK);
    /* From this thread the closing handshake may (rarely) finish in between:
     * the deterministic version runs inside a callback (close_then_send). */
    CHECK(closing_or_gone(wsc_close(r.id)));
    CHECK(closing_or_gone(wsc_close_with(r.id, 4000, "again")));
    CHECK(closing_or_gone(wsc_send(r.id, "after close")));
    rec_finished(&r);
    /* inside the terminal callback the id still answered, as closing */
    CHECK_ST(r.got[0], WSC_OK);
    CHECK(r.scratch[0] == WSC_STATE_CLOSING);
    CHECK_ST(r.got[1], WSC_ERR_CLOSED);
    CHECK_ST(r.got[2], WSC_ERR_CLOSED);
    CHECK(r.closes == 1 && r.close_code == 1000);
    /* once it returned, the id is unknown to every call */
    check_unknown(r.id);
    rec_check_rules(&r);
    rec_destroy(&r);
}

/* ---- WSC_ERR_CLOSED: sending once closing, decided inside a callback so
 * the connection cannot have finished in between */

static void close_then_send(struct rec *r, wsc_id id, const uint8_t *d, size_t n, bool b)
{
    wsc_state st;
    (void)d, (void)n, (void)b;
    r->got[0] = wsc_close(id);
    r->got[1] = wsc_send(id, "x");
    r->got[2] = wsc_send_binary(id, (const uint8_t *)"x", 1);
    r->got[3] = wsc_get_state(id, &st);
    r->scratch[0] = (int)st;
    r->got[4] = wsc_message_complete(id);
    r->got[5] = wsc_set_flow_control(id, false);
    r->got[6] = wsc_close(id); /* double close */
    r->got[7] = wsc_close_with(id, 4000, "again");
}

/* Three sends from inside on_open: no echo can be delivered before it returns. */
static void send_three(struct rec *r, wsc_id id)
{
    r->got[8] = wsc_send(id, "1");
    r->got[9] = wsc_send(id, "2");
    r->got[10] = wsc_send(id, "3");
}

static void test_send_while_closing_is_closed(void)
{
    struct rec r;
    rec_init(&r);
    r.on_open = send_three;
    r.on_message = close_then_send;
    CHECK_ST(rec_connect(&r, ECHO, NULL), WSC_OK);
    rec_finished(&r);
    CHECK_ST(r.got[8], WSC_OK);
    CHECK_ST(r.got[9], WSC_OK);
    CHECK_ST(r.got[10], WSC_OK);
    CHECK_ST(r.got[0], WSC_OK);
    CHECK_ST(r.got[1], WSC_ERR_CLOSED);
    CHECK_ST(r.got[2], WSC_ERR_CLOSED);
    CHECK_ST(r.got[3], WSC_OK);
    CHECK(r.scratch[0] == WSC_STATE_CLOSING);
    CHECK_ST(r.got[4], WSC_OK); /* control calls still answer while closing */
    CHECK_ST(r.got[5], WSC_OK);
    CHECK_ST(r.got[6], WSC_ERR_CLOSED);
    CHECK_ST(r.got[7], WSC_ERR_CLOSED);
    CHECK(r.messages == 1); /* nothing delivered after wsc_close */
    CHECK(r.closes == 1 && r.close_code == 1000);
    rec_check_rules(&r);
    rec_destroy(&r);
}

/* ---- WSC_ERR_QUEUE_FULL: sends queue while the handshake is stuck */

static void test_queue_full(void)
{
    char uri[64], chunk[101];
    wsc_options *o = wsc_options_new();
    struct rec r;
    size_t buffered = 0;
    int fd = silent_server(uri, sizeof uri), i;
    memset(chunk, 'q', 100);
    chunk[100] = '\0';
    rec_init(&r);
    CHECK_ST(wsc_options_set_max_buffered_bytes(o, 1000), WSC_OK);
    CHECK_ST(rec_connect(&r, uri, o), WSC_OK);
    wsc_options_free(o);
    for (i = 0; i < 10; i++)
        CHECK_ST(wsc_send(r.id, chunk), WSC_OK);
    CHECK_ST(wsc_buffered_amount(r.id, &buffered), WSC_OK);
    CHECK(buffered == 1000);
    CHECK_ST(wsc_send(r.id, chunk), WSC_ERR_QUEUE_FULL);
    CHECK_ST(wsc_send_binary(r.id, (const uint8_t *)"x", 1), WSC_ERR_QUEUE_FULL);
    CHECK(strstr(wsc_last_error(), "1000") != NULL); /* the limit is named */
    CHECK_ST(wsc_send_text(r.id, NULL, 0), WSC_OK); /* an empty message still fits */
    close_and_finish(&r);
    close(fd);
}

/* ---- connecting: close aborts at once; connect timeout; refused */

static void test_close_while_connecting(void)
{
    char uri[64];
    wsc_options *o = wsc_options_new();
    struct timespec start;
    struct rec r;
    wsc_state st;
    int fd = silent_server(uri, sizeof uri);
    rec_init(&r);
    wsc_options_set_connect_timeout_ms(o, 60000);
    CHECK_ST(rec_connect(&r, uri, o), WSC_OK);
    wsc_options_free(o);
    CHECK_ST(wsc_get_state(r.id, &st), WSC_OK);
    CHECK(st == WSC_STATE_CONNECTING);
    CHECK_ST(wsc_send(r.id, "queued, never sent"), WSC_OK);
    clock_gettime(CLOCK_MONOTONIC, &start);
    CHECK_ST(wsc_close(r.id), WSC_OK);
    CHECK(closing_or_gone(wsc_close(r.id))); /* the abort may already be complete */
    rec_finished(&r);
    CHECK(elapsed_ms(&start) < 5000); /* not the 60 s connect timeout */
    CHECK(r.opens == 0 && r.messages == 0);
    CHECK(r.closes == 1 && r.close_code == 1006);
    rec_check_rules(&r);
    rec_destroy(&r);
    close(fd);
}

/* Closing right after connecting to a live server: whichever side of the
 * handshake it lands on, exactly one on_close. */
static void test_close_racing_the_handshake(void)
{
    int i;
    for (i = 0; i < 20; i++) {
        struct rec r;
        rec_init(&r);
        CHECK_ST(rec_connect(&r, ECHO, NULL), WSC_OK);
        CHECK_ST(wsc_close(r.id), WSC_OK);
        rec_finished(&r);
        CHECK(r.closes == 1 && (r.close_code == 1006 || r.close_code == 1000));
        rec_check_rules(&r);
        rec_destroy(&r);
    }
}

static void test_connect_timeout_and_refused(void)
{
    char uri[64];
    wsc_options *o = wsc_options_new();
    struct rec r;
    int fd = silent_server(uri, sizeof uri);
    rec_init(&r);
    wsc_options_set_connect_timeout_ms(o, 300);
    CHECK_ST(rec_connect(&r, uri, o), WSC_OK);
    wsc_options_free(o);
    rec_finished(&r);
    CHECK(r.errors == 1 && r.error[0] != '\0');
    rec_check_rules(&r);
    rec_destroy(&r);
    close(fd);

    refused_uri(uri, sizeof uri);
    rec_init(&r);
    CHECK_ST(rec_connect(&r, uri, NULL), WSC_OK);
    rec_finished(&r);
    CHECK(r.errors == 1 && r.opens == 0 && r.error[0] != '\0');
    rec_check_rules(&r);
    rec_destroy(&r);
}

/* ---- wsc_close_with: codes and reasons */

static void close_with_ok(uint16_t code, const char *reason)
{
    struct rec r;
    if (!open_echo(&r, NULL))
        return;
    CHECK_ST(wsc_close_with(r.id, code, reason), WSC_OK);
    rec_finished(&r);
    /* the echo server answers with our own code and reason */
    CHECK(r.closes == 1 && r.close_code == code);
    CHECK(strcmp(r.reason, reason ? reason : "") == 0);
    rec_check_rules(&r);
    rec_destroy(&r);
}

static void test_close_with_validation(void)
{
    static const uint16_t bad_codes[] = {0,    999,  1001, 1002, 1003, 1005, 1006,
                                         1011, 1015, 2999, 5000, 65535};
    char reason[200];
    struct rec r;
    wsc_state st;
    size_t i;
    if (!open_echo(&r, NULL))
        return;
    for (i = 0; i < sizeof bad_codes / sizeof bad_codes[0]; i++)
        CHECK_ST(wsc_close_with(r.id, bad_codes[i], "x"), WSC_ERR_INVALID_ARGUMENT);
    memset(reason, 'r', sizeof reason);
    reason[124] = '\0';
    CHECK_ST(wsc_close_with(r.id, 1000, reason), WSC_ERR_INVALID_ARGUMENT); /* 124 bytes */
    memcpy(reason + 122, "\xc3\xa9", 3); /* 122 + 2 = 124 bytes of valid UTF-8 */
    CHECK_ST(wsc_close_with(r.id, 4000, reason), WSC_ERR_INVALID_ARGUMENT);
    CHECK_ST(wsc_get_state(r.id, &st), WSC_OK);
    CHECK(st == WSC_STATE_OPEN); /* refused closes changed nothing */
    close_and_finish(&r);

    memcpy(reason + 121, "\xc3\xa9", 3); /* 121 + 2 = 123 bytes: the most that fits */
    CHECK(strlen(reason) == 123);
    close_with_ok(1000, NULL);
    close_with_ok(3000, "three thousand");
    close_with_ok(4999, reason);
}

/* ---- wsc_get_protocol */

static void test_get_protocol(void)
{
    char buf[16], uri[300];
    wsc_options *o;
    struct rec r;
    int fd = silent_server(uri, sizeof uri);
    rec_init(&r);
    CHECK_ST(rec_connect(&r, uri, NULL), WSC_OK);
    memset(buf, 'X', sizeof buf);
    CHECK_ST(wsc_get_protocol(r.id, buf, sizeof buf), WSC_OK); /* "" before open */
    CHECK(buf[0] == '\0');
    close_and_finish(&r);
    close(fd);

    if (!open_echo(&r, NULL))
        return;
    memset(buf, 'X', sizeof buf);
    CHECK_ST(wsc_get_protocol(r.id, buf, 0), WSC_ERR_INVALID_ARGUMENT);
    CHECK(buf[0] == 'X');
    CHECK_ST(wsc_get_protocol(r.id, buf, 1), WSC_OK); /* "" fits in one byte */
    CHECK(buf[0] == '\0' && buf[1] == 'X');
    close_and_finish(&r);

    if (!EXTRA)
        return;
    o = wsc_options_new();
    wsc_options_add_subprotocol(o, "chat.v1");
    wsc_options_add_subprotocol(o, "chat.v0");
    rec_init(&r);
    CHECK_ST(rec_connect(&r, extra("/proto", uri, sizeof uri), o), WSC_OK);
    wsc_options_free(o);
    CHECK(rec_wait(&r, &r.opens, 1, WAIT_MS));
    memset(buf, 'X', sizeof buf);
    CHECK_ST(wsc_get_protocol(r.id, buf, 7), WSC_ERR_INVALID_ARGUMENT); /* needs 8 */
    CHECK(buf[7] == 'X' && buf[8] == 'X');
    CHECK_ST(wsc_get_protocol(r.id, buf, 8), WSC_OK);
    CHECK(strcmp(buf, "chat.v1") == 0 && buf[8] == 'X');
    close_and_finish(&r);
}

/* ---- callbacks that call back into wsc */

static void api_from_open(struct rec *r, wsc_id id)
{
    wsc_state st;
    size_t n;
    char proto[8];
    r->got[0] = wsc_send(id, "from on_open");
    r->got[1] = wsc_get_state(id, &st);
    r->scratch[0] = (int)st;
    r->got[2] = wsc_buffered_amount(id, &n);
    r->got[3] = wsc_get_protocol(id, proto, sizeof proto);
    r->got[4] = wsc_set_flow_control(id, true);
    r->got[5] = wsc_message_complete(id); /* nothing outstanding: a no-op */
}

static void api_from_message(struct rec *r, wsc_id id, const uint8_t *d, size_t n, bool bin)
{
    (void)d, (void)n;
    if (!bin) {
        r->got[6] = wsc_send_binary(id, (const uint8_t *)"\x01\x02", 2);
        r->got[7] = wsc_message_complete(id);
    } else {
        r->got[8] = wsc_close(id);
        r->got[9] = wsc_send(id, "x");
        r->got[10] = wsc_close(id);
        r->got[11] = wsc_message_complete(id);
    }
}

static void test_callbacks_call_the_api(void)
{
    struct rec r;
    int i;
    rec_init(&r);
    r.on_open = api_from_open;
    r.on_message = api_from_message;
    CHECK_ST(rec_connect(&r, ECHO, NULL), WSC_OK);
    rec_finished(&r);
    for (i = 0; i <= 8; i++)
        CHECK_ST(r.got[i], WSC_OK);
    CHECK(r.scratch[0] == WSC_STATE_OPEN);
    CHECK_ST(r.got[9], WSC_ERR_CLOSED);
    CHECK_ST(r.got[10], WSC_ERR_CLOSED);
    CHECK_ST(r.got[11], WSC_OK);
    CHECK(r.messages == 2 && r.closes == 1 && r.close_code == 1000);
    rec_check_rules(&r);
    rec_destroy(&r);
}

/* ---- flow control: one permit, never banked; close drops the rest */

static void test_flow_control_gate(void)
{
    wsc_options *o = wsc_options_new();
    struct rec r;
    int i;
    wsc_options_set_flow_control(o, true);
    if (!open_echo(&r, o))
        return;
    wsc_options_free(o);
    for (i = 0; i < 3; i++) /* no message outstanding: these bank nothing */
        CHECK_ST(wsc_message_complete(r.id), WSC_OK);
    for (i = 0; i < 4; i++)
        CHECK_ST(wsc_send(r.id, "m"), WSC_OK);
    CHECK(rec_wait(&r, &r.messages, 1, WAIT_MS));
    CHECK(!rec_wait(&r, &r.messages, 2, 300)); /* the gate holds */
    CHECK_ST(wsc_message_complete(r.id), WSC_OK);
    CHECK(rec_wait(&r, &r.messages, 2, WAIT_MS));
    CHECK(!rec_wait(&r, &r.messages, 3, 300));
    CHECK_ST(wsc_set_flow_control(r.id, false), WSC_OK); /* releases the gate */
    CHECK(rec_wait(&r, &r.messages, 4, WAIT_MS));
    close_and_finish(&r);
}

static void test_no_message_after_close(void)
{
    wsc_options *o = wsc_options_new();
    struct rec r;
    wsc_status st;
    int i;
    wsc_options_set_flow_control(o, true);
    if (!open_echo(&r, o))
        return;
    wsc_options_free(o);
    for (i = 0; i < 5; i++)
        CHECK_ST(wsc_send(r.id, "pending"), WSC_OK);
    CHECK(rec_wait(&r, &r.messages, 1, WAIT_MS));
    CHECK_ST(wsc_close(r.id), WSC_OK);
    st = wsc_message_complete(r.id); /* would open the gate: still nothing delivered */
    CHECK(st == WSC_OK || st == WSC_ERR_UNKNOWN_ID); /* unknown if closing already finished */
    rec_finished(&r);
    CHECK(r.messages == 1);
    CHECK(r.closes == 1 && r.close_code == 1000);
    rec_check_rules(&r);
    rec_destroy(&r);
}

/* ---- callbacks of one connection never overlap */

static void slow_message(struct rec *r, wsc_id id, const uint8_t *d, size_t n, bool b)
{
    volatile unsigned x = 0;
    int i;
    (void)r, (void)id, (void)d, (void)n, (void)b;
    for (i = 0; i < 20000; i++)
        x += (unsigned)i;
}

static void *hammer(void *arg)
{
    struct rec *r = arg;
    wsc_state st;
    size_t n;
    int i;
    for (i = 0; i < 300; i++) {
        wsc_send(r->id, "from another thread");
        wsc_get_state(r->id, &st);
        wsc_buffered_amount(r->id, &n);
        wsc_message_complete(r->id);
    }
    return NULL;
}

static void test_callbacks_never_concurrent(void)
{
    pthread_t a, b;
    struct rec r;
    if (!open_echo(&r, NULL))
        return;
    r.on_message = slow_message;
    pthread_create(&a, NULL, hammer, &r);
    pthread_create(&b, NULL, hammer, &r);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    CHECK(rec_wait(&r, &r.messages, 600, WAIT_MS * 3));
    close_and_finish(&r); /* checks overlap == 0 and a single worker thread */
}

/* ---- the peer vanishes: on_error, and no SIGPIPE in this process */

static void flood(struct rec *r, wsc_id id)
{
    static uint8_t block[256 * 1024];
    int i;
    for (i = 0; i < 32; i++)
        r->got[0] = wsc_send_binary(id, block, sizeof block);
}

static void test_peer_vanishes(void)
{
    char uri[300];
    struct rec r;
    if (!EXTRA) {
        printf("  skipped: no misbehaving peer given\n");
        return;
    }
    rec_init(&r);
    CHECK_ST(rec_connect(&r, extra("/drop", uri, sizeof uri), NULL), WSC_OK);
    rec_finished(&r);
    CHECK(r.opens == 1 && r.errors == 1); /* TCP gone without a Close frame */
    rec_check_rules(&r);
    rec_destroy(&r);

    /* SIGPIPE is at its default (kill) in this process, as in most C hosts. */
    rec_init(&r);
    r.on_open = flood;
    CHECK_ST(rec_connect(&r, extra("/reset", uri, sizeof uri), NULL), WSC_OK);
    rec_finished(&r);
    CHECK(r.opens == 1 && r.errors == 1);
    rec_check_rules(&r);
    rec_destroy(&r);
}

/* ---- the process runs out of file descriptors: an error, never a crash */

static void test_out_of_file_descriptors(void)
{
    struct rlimit saved, lim;
    wsc_callbacks cb = rec_callbacks();
    struct rec r;
    wsc_status st;
    wsc_id id = 0;
    int lowest_free;
    quiesce(); /* no worker of an earlier test is still closing descriptors */
    lowest_free = dup(0);
    close(lowest_free);
    getrlimit(RLIMIT_NOFILE, &saved);
    lim = saved;
    lim.rlim_cur = (rlim_t)lowest_free; /* no new descriptor can be made */
    if (!CHECK(setrlimit(RLIMIT_NOFILE, &lim) == 0))
        return;
    st = wsc_connect(ECHO, NULL, &cb, NULL, &id);
    lim.rlim_cur = (rlim_t)lowest_free + 1; /* one: the connection's eventfd, not its socket */
    setrlimit(RLIMIT_NOFILE, &lim);
    CHECK(st != WSC_OK && id == 0);
    CHECK(wsc_last_error()[0] != '\0');
    printf("  no descriptor left: %s (%s)\n", wsc_status_str(st), wsc_last_error());
    rec_init(&r);
    st = rec_connect(&r, ECHO, NULL);
    if (st == WSC_OK) { /* then the socket cannot be made: the connection fails */
        rec_finished(&r);
        CHECK(r.errors == 1 && r.opens == 0);
        rec_check_rules(&r);
    }
    rec_destroy(&r);
    setrlimit(RLIMIT_NOFILE, &saved);
    if (open_echo(&r, NULL)) /* and everything works again */
        close_and_finish(&r);
}

/* ---- shutdown and init */

static void shutdown_from_callback(struct rec *r, wsc_id id)
{
    r->got[0] = wsc_shutdown(500);
    r->got[1] = wsc_send(id, "after shutdown"); /* behaves as closing */
}

static void test_shutdown_from_callback(void)
{
    wsc_callbacks cb = rec_callbacks();
    struct rec r;
    wsc_id id;
    rec_init(&r);
    r.on_open = shutdown_from_callback;
    CHECK_ST(rec_connect(&r, ECHO, NULL), WSC_OK);
    rec_finished(&r);
    CHECK_ST(r.got[0], WSC_ERR_TIMEOUT); /* it cannot wait for its own thread */
    CHECK_ST(r.got[1], WSC_ERR_CLOSED);
    CHECK(r.closes == 1);
    rec_check_rules(&r);
    CHECK_ST(wsc_connect(ECHO, NULL, &cb, &r, &id), WSC_ERR_SHUTDOWN);
    CHECK_ST(wsc_shutdown(WAIT_MS), WSC_OK); /* a later shutdown waits for the rest */
    CHECK_ST(wsc_init(), WSC_OK);
    rec_destroy(&r);
    if (open_echo(&r, NULL))
        close_and_finish(&r);
}

static void test_shutdown_then_init(void)
{
    char uri[64];
    struct rec live, connecting;
    wsc_callbacks cb = rec_callbacks();
    int fd = silent_server(uri, sizeof uri);
    wsc_id id = 0, old_id;
    if (!open_echo(&live, NULL))
        return;
    rec_init(&connecting);
    CHECK_ST(rec_connect(&connecting, uri, NULL), WSC_OK);
    CHECK_ST(wsc_register_handler("t/shutdown", dummy_handler, NULL), WSC_OK);

    CHECK_ST(wsc_shutdown(WAIT_MS), WSC_OK);
    CHECK(threads_settled(1) == 1); /* only main: every worker has exited */
    CHECK(rec_get(&live, &live.terminal) == 1 && rec_get(&connecting, &connecting.terminal) == 1);
    CHECK(live.closes == 1 && live.close_code == 1001); /* going away, echoed back */
    CHECK(connecting.opens == 0);
    check_unknown(live.id);
    check_unknown(connecting.id);
    CHECK(listed_clients() == 0);
    CHECK_ST(wsc_connect(ECHO, NULL, &cb, &live, &id), WSC_ERR_SHUTDOWN);
    CHECK_ST(wsc_create_websocket(ECHO, "t/shutdown", NULL, NULL, &id), WSC_ERR_SHUTDOWN);
    CHECK(id == 0);
    CHECK_ST(wsc_shutdown(0), WSC_OK); /* nothing left: at once */
    rec_check_rules(&live);
    rec_check_rules(&connecting);
    old_id = live.id;
    rec_destroy(&live);
    rec_destroy(&connecting);
    close(fd);

    CHECK_ST(wsc_init(), WSC_OK);
    CHECK_ST(wsc_init(), WSC_OK);
    if (open_echo(&live, NULL)) {
        CHECK(live.id > old_id); /* ids are never reused */
        close_and_finish(&live);
    }
    CHECK_ST(wsc_unregister_handler("t/shutdown"), WSC_OK);
}

/* ---- many connections: no growth in threads or memory */

static int one_cycle(long *last_id)
{
    struct rec r;
    int ok;
    rec_init(&r);
    ok = rec_connect(&r, ECHO, NULL) == WSC_OK && rec_wait(&r, &r.opens, 1, WAIT_MS) &&
         wsc_close(r.id) == WSC_OK && rec_wait(&r, &r.terminal, 1, WAIT_MS) &&
         wsc_wait(r.id, WAIT_MS) == WSC_OK && r.closes == 1 && r.close_code == 1000 &&
         (long)r.id > *last_id;
    *last_id = (long)r.id;
    rec_destroy(&r);
    return ok;
}

static void test_connect_close_cycles(void)
{
    const char *env = getenv("WSC_CYCLES");
    int cycles = env ? atoi(env) : 1000, warmup = cycles / 10, i, failed = 0;
    int base = 1, peak = thread_count(), now; /* main is our only thread */
    size_t heap_before = 0, heap_after;
    long last_id = 0;
    for (i = 0; i < cycles; i++) {
        if (i == warmup)
            heap_before = heap_in_use();
        failed += !one_cycle(&last_id);
        now = thread_count();
        peak = now > peak ? now : peak;
    }
    heap_after = heap_in_use();
    CHECK(failed == 0);
    CHECK(peak <= base + 8); /* finished workers may linger briefly; a leak would be hundreds */
    CHECK_ST(wsc_shutdown(WAIT_MS), WSC_OK);
    CHECK(threads_settled(base) == base);
    CHECK_ST(wsc_init(), WSC_OK);
    printf("  %d cycles: threads %d at start, peak %d, %d after shutdown; heap %zu -> %zu bytes\n",
           cycles, base, peak, thread_count(), heap_before, heap_after);
    /* 256 KiB over 900 cycles would be a leak of ~290 bytes per connection */
    CHECK(heap_after <= heap_before + 256 * 1024);
}

/* ====================================================== named handlers */

/* What a handler saw, event by event. */
struct seen {
    struct rec r;      /* counters, lock and condition */
    char methods[8][12];
    int inconsistent;  /* a getter disagreed with the method */
    int user_data_bad;
    char message[64];
    size_t message_len;
    int message_binary;
    char error[256];
    uint16_t close_code;
    wsc_id by_handler;  /* wsc_get_client_by_handler inside the handler */
    const char *name;
};

static int getters_match(const char *m)
{
    int open = !strcmp(m, "onopen"), msg = !strcmp(m, "onmessage"), err = !strcmp(m, "onerror"),
        cls = !strcmp(m, "onclose");
    int ok = open + msg + err + cls == 1;
    ok = ok && wsc_is_on_open() == open && wsc_is_on_message() == msg &&
         wsc_is_on_error() == err && wsc_is_on_close() == cls;
    ok = ok && (wsc_get_message() != NULL) == msg && (wsc_get_error() != NULL) == err;
    ok = ok && (msg || (wsc_get_message_length() == 0 && !wsc_get_message_is_binary()));
    return ok && (cls || wsc_get_close_code() == 0);
}

static void seen_record(struct seen *s, wsc_id id)
{
    const char *m = wsc_get_method();
    int k;
    pthread_mutex_lock(&s->r.lock);
    k = s->r.opens + s->r.messages + s->r.terminal;
    snprintf(s->methods[k < 8 ? k : 7], sizeof s->methods[0], "%s", m ? m : "(null)");
    s->inconsistent += !m || !getters_match(m);
    if (wsc_is_on_message()) {
        s->message_len = wsc_get_message_length();
        s->message_binary = wsc_get_message_is_binary();
        memcpy(s->message, wsc_get_message(), s->message_len < 63 ? s->message_len + 1 : 63);
        s->inconsistent += wsc_get_message()[s->message_len] != '\0';
    }
    if (wsc_is_on_error())
        snprintf(s->error, sizeof s->error, "%s", wsc_get_error());
    if (wsc_is_on_close())
        s->close_code = wsc_get_close_code();
    s->by_handler = s->name ? wsc_get_client_by_handler(s->name) : 0;
    s->r.opens += wsc_is_on_open();
    s->r.messages += wsc_is_on_message();
    s->r.errors += wsc_is_on_error();
    s->r.closes += wsc_is_on_close();
    s->r.terminal += wsc_is_on_error() || wsc_is_on_close();
    pthread_mutex_unlock(&s->r.lock);
    (void)id;
}

static void seen_handler(wsc_id id, void *user_data)
{
    struct seen *s = user_data;
    rec_enter(&s->r, id);
    seen_record(s, id);
    rec_leave(&s->r);
}

static void seen_init(struct seen *s, const char *name)
{
    memset(s, 0, sizeof *s);
    rec_init(&s->r);
    s->name = name;
}

/* Creates a websocket with handler `name`; s->r.id is set before the handler reads it. */
static wsc_status seen_create(struct seen *s, const char *uri, const char *name)
{
    wsc_status st;
    pthread_mutex_lock(&s->r.lock);
    st = wsc_create_websocket(uri, name, NULL, NULL, &s->r.id);
    pthread_mutex_unlock(&s->r.lock);
    return st;
}

static void check_no_context(void)
{
    CHECK(wsc_get_method() == NULL);
    CHECK(wsc_get_message() == NULL);
    CHECK(wsc_get_message_length() == 0);
    CHECK(!wsc_get_message_is_binary());
    CHECK(wsc_get_error() == NULL);
    CHECK(wsc_get_close_code() == 0);
    CHECK(!wsc_is_on_open() && !wsc_is_on_message() && !wsc_is_on_error() && !wsc_is_on_close());
}

/* Plain callbacks are not a handler context either. */
static void no_context_in_callback(struct rec *r, wsc_id id, const uint8_t *d, size_t n, bool b)
{
    (void)r, (void)id, (void)d, (void)n, (void)b;
    check_no_context();
}

static void test_getters_outside_a_handler(void)
{
    struct rec r;
    check_no_context();
    if (!open_echo(&r, NULL))
        return;
    r.on_message = no_context_in_callback;
    CHECK_ST(wsc_send(r.id, "x"), WSC_OK);
    CHECK(rec_wait(&r, &r.messages, 1, WAIT_MS));
    close_and_finish(&r);
    check_no_context();
}

static void test_getters_in_a_handler(void)
{
    static const uint8_t bytes[] = {1, 2, 3, 0};
    struct seen s;
    seen_init(&s, "t/getters");
    CHECK_ST(wsc_register_handler("t/getters", seen_handler, &s), WSC_OK);
    CHECK_ST(seen_create(&s, ECHO, "t/getters"), WSC_OK);
    CHECK_ST(wsc_send(s.r.id, "text"), WSC_OK);
    CHECK(rec_wait(&s.r, &s.r.messages, 1, WAIT_MS));
    CHECK(s.message_len == 4 && !s.message_binary && strcmp(s.message, "text") == 0);
    CHECK(s.by_handler == s.r.id);
    CHECK_ST(wsc_send_binary(s.r.id, bytes, sizeof bytes), WSC_OK);
    CHECK(rec_wait(&s.r, &s.r.messages, 2, WAIT_MS));
    CHECK(s.message_len == 4 && s.message_binary && memcmp(s.message, bytes, 4) == 0);
    CHECK_ST(wsc_close(s.r.id), WSC_OK);
    rec_finished(&s.r);
    CHECK(!strcmp(s.methods[0], "onopen") && !strcmp(s.methods[1], "onmessage") &&
          !strcmp(s.methods[2], "onmessage") && !strcmp(s.methods[3], "onclose"));
    CHECK(s.close_code == 1000);
    CHECK(s.by_handler == s.r.id); /* still listed inside its terminal event */
    CHECK(s.inconsistent == 0);
    rec_check_rules(&s.r);
    check_no_context();
    CHECK(wsc_get_client_by_handler("t/getters") == 0); /* finished */
    rec_destroy(&s.r);
    CHECK_ST(wsc_unregister_handler("t/getters"), WSC_OK);
}

static void test_getters_on_error(void)
{
    char uri[64];
    struct seen s;
    refused_uri(uri, sizeof uri);
    seen_init(&s, NULL);
    CHECK_ST(wsc_register_handler("t/error", seen_handler, &s), WSC_OK);
    CHECK_ST(seen_create(&s, uri, "t/error"), WSC_OK);
    rec_finished(&s.r);
    CHECK(!strcmp(s.methods[0], "onerror") && s.r.errors == 1 && s.error[0] != '\0');
    CHECK(s.inconsistent == 0);
    rec_check_rules(&s.r);
    rec_destroy(&s.r);
    CHECK_ST(wsc_unregister_handler("t/error"), WSC_OK);
}

/* Another thread asks for the context while a handler is running: nothing. */
struct spy {
    struct rec r;          /* lock/cond; r.scratch[0]: 1 = asked, 2 = answered */
    int saw_something;
};

static void *spy_thread(void *arg)
{
    struct spy *s = arg;
    struct timespec deadline = after_ms(WAIT_MS);
    pthread_mutex_lock(&s->r.lock);
    while (s->r.scratch[0] != 1 &&
           pthread_cond_timedwait(&s->r.changed, &s->r.lock, &deadline) == 0) {
    }
    s->saw_something = wsc_get_method() != NULL || wsc_get_message() != NULL ||
                       wsc_get_message_length() != 0 || wsc_get_message_is_binary() ||
                       wsc_get_error() != NULL || wsc_get_close_code() != 0 ||
                       wsc_is_on_open() || wsc_is_on_message() || wsc_is_on_error() ||
                       wsc_is_on_close();
    s->r.scratch[0] = 2;
    pthread_cond_broadcast(&s->r.changed);
    pthread_mutex_unlock(&s->r.lock);
    return NULL;
}

static void spy_handler(wsc_id id, void *user_data)
{
    struct spy *s = user_data;
    struct timespec deadline = after_ms(WAIT_MS);
    (void)id;
    if (!wsc_is_on_message())
        return;
    pthread_mutex_lock(&s->r.lock);
    s->r.scratch[0] = 1; /* the spy looks now, while we are inside the handler */
    pthread_cond_broadcast(&s->r.changed);
    while (s->r.scratch[0] != 2 &&
           pthread_cond_timedwait(&s->r.changed, &s->r.lock, &deadline) == 0) {
    }
    s->r.scratch[1] = wsc_is_on_message(); /* still ours on this thread */
    s->r.messages++;
    pthread_cond_broadcast(&s->r.changed);
    pthread_mutex_unlock(&s->r.lock);
}

static void test_getters_from_another_thread(void)
{
    struct spy s;
    pthread_t t;
    wsc_id id;
    memset(&s, 0, sizeof s);
    rec_init(&s.r);
    pthread_create(&t, NULL, spy_thread, &s);
    CHECK_ST(wsc_register_handler("t/spy", spy_handler, &s), WSC_OK);
    CHECK_ST(wsc_create_websocket(ECHO, "t/spy", "default", NULL, &id), WSC_OK);
    CHECK_ST(wsc_send(id, "look"), WSC_OK);
    CHECK(rec_wait(&s.r, &s.r.messages, 1, WAIT_MS));
    pthread_join(t, NULL);
    CHECK(s.r.scratch[0] == 2 && !s.saw_something && s.r.scratch[1] == 1);
    CHECK_ST(wsc_close(id), WSC_OK);
    CHECK_ST(wsc_wait(id, WAIT_MS), WSC_OK);
    CHECK_ST(wsc_unregister_handler("t/spy"), WSC_OK);
    rec_destroy(&s.r);
}

/* ---- the client registry */

static const wsc_client_info *find_client(const wsc_client_info *list, size_t n, wsc_id id)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (list[i].id == id)
            return &list[i];
    return NULL;
}

static int client_is(const wsc_client_info *c, const char *uri, const char *handler, wsc_state st)
{
    return c && c->uri && !strcmp(c->uri, uri) && c->state == st &&
           (handler ? c->handler && !strcmp(c->handler, handler) : c->handler == NULL);
}

struct snapshot_ctx {
    wsc_id connecting, handled;
    const char *silent_uri;
};

/* Inside a callback of `r`, so r's own connection is deterministically closing. */
static void snapshot_while_closing(struct rec *r, wsc_id id, const uint8_t *d, size_t n, bool b)
{
    struct snapshot_ctx *c = r->ctx;
    wsc_client_info *list = NULL, one;
    size_t len = 0;
    (void)d, (void)n, (void)b;
    r->got[0] = wsc_close(id);
    r->got[1] = wsc_get_clients(&list, &len);
    r->scratch[0] = len == 3 && list[0].id < list[1].id && list[1].id < list[2].id; /* oldest first */
    r->scratch[2] = client_is(find_client(list, len, c->connecting), c->silent_uri, NULL,
                              WSC_STATE_CONNECTING);
    r->scratch[3] = client_is(find_client(list, len, id), ECHO, NULL, WSC_STATE_CLOSING);
    r->scratch[4] = client_is(find_client(list, len, c->handled), ECHO, "t/snap", WSC_STATE_OPEN);
    wsc_free_clients(list, len);
    r->got[2] = wsc_get_client(id, &one);
    r->scratch[1] = r->got[2] == WSC_OK && client_is(&one, ECHO, NULL, WSC_STATE_CLOSING);
    wsc_free_client_info(&one);
    wsc_free_client_info(&one); /* harmless twice */
}

static void test_clients_snapshot(void)
{
    char uri[64];
    struct snapshot_ctx ctx;
    struct rec connecting, plain;
    struct seen handled;
    wsc_client_info info;
    int fd = silent_server(uri, sizeof uri);
    CHECK(listed_clients() == 0);
    rec_init(&connecting);
    CHECK_ST(rec_connect(&connecting, uri, NULL), WSC_OK);
    seen_init(&handled, NULL);
    CHECK_ST(wsc_register_handler("t/snap", seen_handler, &handled), WSC_OK);
    CHECK_ST(seen_create(&handled, ECHO, "t/snap"), WSC_OK);
    CHECK(rec_wait(&handled.r, &handled.r.opens, 1, WAIT_MS));
    CHECK_ST(wsc_get_client(handled.r.id, &info), WSC_OK);
    CHECK(client_is(&info, ECHO, "t/snap", WSC_STATE_OPEN) && info.id == handled.r.id);
    wsc_free_client_info(&info);
    CHECK(info.uri == NULL && info.handler == NULL);

    ctx.connecting = connecting.id;
    ctx.handled = handled.r.id;
    ctx.silent_uri = uri;
    if (!open_echo(&plain, NULL))
        return;
    plain.ctx = &ctx;
    plain.on_message = snapshot_while_closing;
    CHECK(listed_clients() == 3);
    CHECK_ST(wsc_send(plain.id, "snap"), WSC_OK);
    rec_finished(&plain);
    CHECK_ST(plain.got[0], WSC_OK);
    CHECK_ST(plain.got[1], WSC_OK);
    CHECK(plain.scratch[0] == 1);            /* three, oldest first */
    CHECK(plain.scratch[2] == 1);            /* connecting: silent server, no handler */
    CHECK(plain.scratch[3] == 1);            /* closing: wsc_close was called */
    CHECK(plain.scratch[4] == 1);            /* open, with its handler */
    CHECK(plain.scratch[1] == 1);            /* wsc_get_client agrees */
    CHECK(listed_clients() == 2); /* the finished one is gone */
    CHECK_ST(wsc_get_client(plain.id, &info), WSC_ERR_UNKNOWN_ID);

    close_and_finish(&connecting);
    CHECK_ST(wsc_close(handled.r.id), WSC_OK);
    rec_finished(&handled.r);
    CHECK(listed_clients() == 0);
    CHECK(wsc_get_client_by_handler("t/snap") == 0);
    rec_check_rules(&plain);
    rec_destroy(&plain);
    rec_destroy(&handled.r);
    CHECK_ST(wsc_unregister_handler("t/snap"), WSC_OK);
    close(fd);
}

/* Counts events of every connection using it (no per-connection checks). */
static void counting_handler(wsc_id id, void *user_data)
{
    struct rec *r = user_data;
    (void)id;
    pthread_mutex_lock(&r->lock);
    r->opens += wsc_is_on_open();
    r->terminal += wsc_is_on_close() || wsc_is_on_error();
    pthread_cond_broadcast(&r->changed);
    pthread_mutex_unlock(&r->lock);
}

static void test_client_by_handler(void)
{
    struct rec r;
    wsc_id a, b;
    rec_init(&r);
    CHECK_ST(wsc_register_handler("t/by", counting_handler, &r), WSC_OK);
    CHECK(wsc_get_client_by_handler("t/by") == 0);
    CHECK(wsc_get_client_by_handler("t/nobody") == 0);
    CHECK_ST(wsc_create_websocket(ECHO, "t/by", NULL, NULL, &a), WSC_OK);
    CHECK(wsc_get_client_by_handler("t/by") == a); /* listed while connecting */
    CHECK(rec_wait(&r, &r.opens, 1, WAIT_MS));
    CHECK_ST(wsc_create_websocket(ECHO, "t/by", NULL, NULL, &b), WSC_OK);
    CHECK(rec_wait(&r, &r.opens, 2, WAIT_MS));
    CHECK(b > a);
    CHECK(wsc_get_client_by_handler("t/by") == b); /* the newest */
    CHECK_ST(wsc_close(b), WSC_OK);
    CHECK_ST(wsc_wait(b, WAIT_MS), WSC_OK);
    CHECK(wsc_get_client_by_handler("t/by") == a); /* the newest unfinished */
    CHECK_ST(wsc_close(a), WSC_OK);
    CHECK_ST(wsc_wait(a, WAIT_MS), WSC_OK);
    CHECK(wsc_get_client_by_handler("t/by") == 0); /* after close: none */
    CHECK(rec_get(&r, &r.terminal) == 2);
    rec_destroy(&r);
    CHECK_ST(wsc_unregister_handler("t/by"), WSC_OK);
}

/* A handler that closes its own connection, found through the registry. */
static void closing_handler(wsc_id id, void *user_data)
{
    struct rec *r = user_data;
    wsc_id found = wsc_get_client_by_handler("t/self");
    rec_enter(r, id);
    pthread_mutex_lock(&r->lock);
    if (wsc_is_on_message()) {
        r->got[0] = found == id ? wsc_close(found) : WSC_ERR_INTERNAL;
        r->got[1] = wsc_send(id, "after own close");
        r->messages++;
    }
    if (wsc_is_on_close()) {
        r->close_code = wsc_get_close_code();
        r->closes++;
        r->terminal++;
    }
    pthread_mutex_unlock(&r->lock);
    rec_leave(r);
}

static void test_handler_closes_itself(void)
{
    struct rec r;
    rec_init(&r);
    CHECK_ST(wsc_register_handler("t/self", closing_handler, &r), WSC_OK);
    pthread_mutex_lock(&r.lock);
    CHECK_ST(wsc_create_websocket(ECHO, "t/self", "", NULL, &r.id), WSC_OK);
    pthread_mutex_unlock(&r.lock);
    CHECK_ST(wsc_send(r.id, "close yourself"), WSC_OK);
    rec_finished(&r);
    CHECK_ST(r.got[0], WSC_OK);
    CHECK_ST(r.got[1], WSC_ERR_CLOSED);
    CHECK(r.messages == 1 && r.closes == 1 && r.close_code == 1000);
    CHECK(r.overlap == 0 && r.after_terminal == 0);
    rec_destroy(&r);
    CHECK_ST(wsc_unregister_handler("t/self"), WSC_OK);
}

/* ---- replacing and unregistering a handler while connections use it:
 * events go to whatever is registered under the name at that moment, and
 * are dropped while nothing is. */

static struct seen *swap_to; /* where a swapping handler redirects the name */

static void swapping_handler(wsc_id id, void *user_data)
{
    struct seen *s = user_data;
    seen_handler(id, user_data);
    if (wsc_is_on_message() && swap_to) /* re-register from inside a handler */
        s->r.got[0] = wsc_register_handler("t/swap", seen_handler, swap_to);
}

static void test_replace_and_unregister_in_use(void)
{
    struct seen a, b;
    wsc_state st;
    seen_init(&a, NULL);
    seen_init(&b, NULL);
    CHECK_ST(wsc_register_handler("t/swap", seen_handler, &a), WSC_OK);
    CHECK_ST(seen_create(&a, ECHO, "t/swap"), WSC_OK);
    CHECK(rec_wait(&a.r, &a.r.opens, 1, WAIT_MS));
    b.r.id = a.r.id;

    /* replaced from outside: B, which hands the name back to A from inside */
    swap_to = &a;
    CHECK_ST(wsc_register_handler("t/swap", swapping_handler, &b), WSC_OK);
    CHECK_ST(wsc_send(a.r.id, "one"), WSC_OK);
    CHECK(rec_wait(&b.r, &b.r.messages, 1, WAIT_MS));
    CHECK(strcmp(b.message, "one") == 0 && a.r.messages == 0);
    CHECK_ST(wsc_send(a.r.id, "two"), WSC_OK);
    CHECK(rec_wait(&a.r, &a.r.messages, 1, WAIT_MS));
    CHECK_ST(b.r.got[0], WSC_OK); /* B's handler has returned: "two" came after it */
    CHECK(strcmp(a.message, "two") == 0 && rec_get(&b.r, &b.r.messages) == 1);

    /* unregistered: the connection carries on, its events are dropped */
    CHECK_ST(wsc_unregister_handler("t/swap"), WSC_OK);
    CHECK_ST(wsc_unregister_handler("t/swap"), WSC_ERR_UNKNOWN_HANDLER);
    CHECK_ST(wsc_send(a.r.id, "three"), WSC_OK);
    CHECK_ST(wsc_get_state(a.r.id, &st), WSC_OK);
    CHECK(st == WSC_STATE_OPEN);
    CHECK(wsc_get_client_by_handler("t/swap") == a.r.id); /* still its handler name */
    CHECK_ST(wsc_close(a.r.id), WSC_OK);
    CHECK_ST(wsc_wait(a.r.id, WAIT_MS), WSC_OK);
    CHECK(rec_get(&a.r, &a.r.messages) == 1 && rec_get(&a.r, &a.r.terminal) == 0);
    CHECK(rec_get(&b.r, &b.r.messages) == 1 && rec_get(&b.r, &b.r.terminal) == 0);
    CHECK(a.r.overlap == 0 && b.r.overlap == 0 && a.inconsistent == 0 && b.inconsistent == 0);
    swap_to = NULL;
    rec_destroy(&a.r);
    rec_destroy(&b.r);
}

static void test_create_websocket_errors(void)
{
    const char *const engines[] = {NULL, "", "default"};
    size_t i;
    wsc_id id = 0;
    CHECK_ST(wsc_create_websocket(ECHO, "t/unregistered", NULL, NULL, &id),
             WSC_ERR_UNKNOWN_HANDLER);
    CHECK(strstr(wsc_last_error(), "t/unregistered") != NULL);
    CHECK_ST(wsc_unregister_handler("t/unregistered"), WSC_ERR_UNKNOWN_HANDLER);
    CHECK_ST(wsc_register_handler("", dummy_handler, NULL), WSC_ERR_INVALID_ARGUMENT);
    CHECK_ST(wsc_register_handler("t/engine", dummy_handler, NULL), WSC_OK);
    CHECK_ST(wsc_create_websocket(ECHO, "t/engine", "netty", NULL, &id), WSC_ERR_INVALID_ARGUMENT);
    CHECK(strstr(wsc_last_error(), "default") != NULL); /* names the engines there are */
    CHECK(id == 0);
    CHECK(listed_clients() == 0);
    for (i = 0; i < 3; i++) {
        CHECK_ST(wsc_create_websocket(ECHO, "t/engine", engines[i], NULL, &id), WSC_OK);
        CHECK_ST(wsc_close(id), WSC_OK);
        CHECK_ST(wsc_wait(id, WAIT_MS), WSC_OK);
    }
    CHECK_ST(wsc_unregister_handler("t/engine"), WSC_OK);
}

/* A handler with options, and user_data that is not a pointer. */
static int handler_ud_bad;
static struct rec handler_ud_rec;

static void sentinel_handler(wsc_id id, void *user_data)
{
    (void)id;
    pthread_mutex_lock(&handler_ud_rec.lock);
    handler_ud_bad += user_data != SENTINEL;
    handler_ud_rec.terminal += wsc_is_on_close() || wsc_is_on_error();
    handler_ud_rec.messages += wsc_is_on_message();
    pthread_cond_broadcast(&handler_ud_rec.changed);
    pthread_mutex_unlock(&handler_ud_rec.lock);
}

static void test_handler_user_data_and_options(void)
{
    wsc_options *o = wsc_options_new();
    wsc_id id;
    rec_init(&handler_ud_rec);
    wsc_options_set_flow_control(o, true);
    CHECK_ST(wsc_register_handler("t/ud", sentinel_handler, SENTINEL), WSC_OK);
    CHECK_ST(wsc_create_websocket(ECHO, "t/ud", NULL, o, &id), WSC_OK);
    wsc_options_free(o);
    CHECK_ST(wsc_send(id, "a"), WSC_OK);
    CHECK_ST(wsc_send(id, "b"), WSC_OK);
    CHECK(rec_wait(&handler_ud_rec, &handler_ud_rec.messages, 1, WAIT_MS));
    CHECK(!rec_wait(&handler_ud_rec, &handler_ud_rec.messages, 2, 300)); /* flow control on */
    CHECK_ST(wsc_message_complete(id), WSC_OK);
    CHECK(rec_wait(&handler_ud_rec, &handler_ud_rec.messages, 2, WAIT_MS));
    CHECK_ST(wsc_close(id), WSC_OK);
    CHECK(rec_wait(&handler_ud_rec, &handler_ud_rec.terminal, 1, WAIT_MS));
    CHECK_ST(wsc_wait(id, WAIT_MS), WSC_OK);
    CHECK(handler_ud_bad == 0);
    CHECK_ST(wsc_unregister_handler("t/ud"), WSC_OK);
    rec_destroy(&handler_ud_rec);
}

/* ================================================================== main */

static const struct test_case tests[] = {
    TEST_CASE(test_signatures_match_the_contract),
    TEST_CASE(test_version_and_status_strings),
    TEST_CASE(test_null_arguments),
    TEST_CASE(test_invalid_utf8),
    TEST_CASE(test_invalid_uri),
    TEST_CASE(test_option_values),
    TEST_CASE(test_proxy_options),
    TEST_CASE(test_options_not_retained),
    TEST_CASE(test_echo_text_binary_empty),
    TEST_CASE(test_user_data_untouched),
    TEST_CASE(test_null_callback_members),
    TEST_CASE(test_unknown_ids),
    TEST_CASE(test_double_close_and_use_after_terminal),
    TEST_CASE(test_send_while_closing_is_closed),
    TEST_CASE(test_queue_full),
    TEST_CASE(test_close_while_connecting),
    TEST_CASE(test_close_racing_the_handshake),
    TEST_CASE(test_connect_timeout_and_refused),
    TEST_CASE(test_close_with_validation),
    TEST_CASE(test_get_protocol),
    TEST_CASE(test_callbacks_call_the_api),
    TEST_CASE(test_flow_control_gate),
    TEST_CASE(test_no_message_after_close),
    TEST_CASE(test_callbacks_never_concurrent),
    TEST_CASE(test_peer_vanishes),
    TEST_CASE(test_out_of_file_descriptors),
    TEST_CASE(test_shutdown_from_callback),
    TEST_CASE(test_shutdown_then_init),
    TEST_CASE(test_connect_close_cycles),
    TEST_CASE(test_getters_outside_a_handler),
    TEST_CASE(test_getters_in_a_handler),
    TEST_CASE(test_getters_on_error),
    TEST_CASE(test_getters_from_another_thread),
    TEST_CASE(test_clients_snapshot),
    TEST_CASE(test_client_by_handler),
    TEST_CASE(test_handler_closes_itself),
    TEST_CASE(test_replace_and_unregister_in_use),
    TEST_CASE(test_create_websocket_errors),
    TEST_CASE(test_handler_user_data_and_options),
};

/* Every test leaves nothing running behind it. */
static void nothing_left_running(void)
{
    CHECK(listed_clients() == 0);
}

static void final_quiesce(void)
{
    quiesce();
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: c_api_test ECHO_URL [EXTRA_BASE]\n");
        return 2;
    }
    ECHO = argv[1];
    EXTRA = argc > 2 ? argv[2] : NULL;
    main_thread = pthread_self();
    setvbuf(stdout, NULL, _IOLBF, 0);
    return run_tests(tests, sizeof tests / sizeof tests[0], nothing_left_running, final_quiesce);
}

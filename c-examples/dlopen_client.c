/*
 * dlopen_client: use wsc with no link-time dependency, as a PBX loads and
 * unloads a module: dlopen, dlsym every function, wsc_init, connect,
 * exchange, wsc_shutdown, dlclose -- several times over -- and end with no
 * thread left but our own.
 *
 *   dlopen_client ws://127.0.0.1:PORT/path [path/to/libwsc.so] [reloads]
 *
 * The library path defaults to $WSC_LIB, then "libwsc.so" (found through
 * LD_LIBRARY_PATH). wsc.h is included for its types only.
 *
 * wsc_init() after each dlopen() matters: glibc may keep the library mapped
 * after dlclose() and hand the same, already shut-down instance back.
 */
#define _GNU_SOURCE /* RTLD_NOLOAD */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h" /* threads_settled, cond_init_monotonic, wait_count (no libwsc call) */
#include "wsc.h"

/* The functions we use, looked up by name. */
struct api {
    wsc_status (*init)(void);
    wsc_status (*connect)(const char *, const wsc_options *, const wsc_callbacks *, void *,
                          wsc_id *);
    wsc_status (*send)(wsc_id, const char *);
    wsc_status (*close)(wsc_id);
    wsc_status (*shutdown)(uint32_t);
    const char *(*status_str)(wsc_status);
    const char *(*last_error)(void);
    const char *(*version)(void);
    uint32_t (*version_num)(void);
};

struct session {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    int echoed;
    int finished;
    uint16_t close_code;
};

/* ISO C has no cast from void * to a function pointer; copying the bytes is the portable way. */
static int lookup(void *lib, const char *name, void *fn_ptr, size_t size)
{
    void *sym = dlsym(lib, name);
    if (!sym) {
        fprintf(stderr, "dlsym %s: %s\n", name, dlerror());
        return 0;
    }
    memcpy(fn_ptr, &sym, size);
    return 1;
}

#define LOOKUP(lib, field, name) lookup(lib, name, &(field), sizeof(field))

static int load_api(void *lib, struct api *a)
{
    return LOOKUP(lib, a->init, "wsc_init") && LOOKUP(lib, a->connect, "wsc_connect") &&
           LOOKUP(lib, a->send, "wsc_send") && LOOKUP(lib, a->close, "wsc_close") &&
           LOOKUP(lib, a->shutdown, "wsc_shutdown") &&
           LOOKUP(lib, a->status_str, "wsc_status_str") &&
           LOOKUP(lib, a->last_error, "wsc_last_error") && LOOKUP(lib, a->version, "wsc_version") &&
           LOOKUP(lib, a->version_num, "wsc_version_num");
}

static void notify(struct session *s, int *field, uint16_t code)
{
    pthread_mutex_lock(&s->lock);
    *field = 1;
    if (code)
        s->close_code = code;
    pthread_cond_broadcast(&s->changed);
    pthread_mutex_unlock(&s->lock);
}

static void on_message(wsc_id id, const uint8_t *data, size_t len, bool is_binary, void *user_data)
{
    struct session *s = user_data;
    (void)id, (void)len, (void)is_binary;
    printf("  echo: %s\n", (const char *)data);
    notify(s, &s->echoed, 0);
}

static void on_error(wsc_id id, const char *message, void *user_data)
{
    struct session *s = user_data;
    (void)id;
    printf("  error: %s\n", message);
    notify(s, &s->finished, 0);
}

static void on_close(wsc_id id, uint16_t code, const char *reason, void *user_data)
{
    struct session *s = user_data;
    (void)id, (void)reason;
    printf("  closed: %u\n", (unsigned)code);
    notify(s, &s->finished, code);
}

/* Waits until *flag is set or the connection has finished. */
static int wait_flag(struct session *s, const int *flag, int timeout_ms)
{
    return wait_count(&s->lock, &s->changed, flag, 1, &s->finished, timeout_ms);
}

/* One load-use-unload round; returns 1 on success. */
static int round_trip(const char *lib_path, const char *uri, int round)
{
    wsc_callbacks callbacks = {0};
    struct session s = {0};
    struct api a;
    wsc_status status;
    char text[64];
    wsc_id id;
    int ok;
    void *lib = dlopen(lib_path, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        return 0;
    }
    if (!load_api(lib, &a) || a.init() != WSC_OK) {
        dlclose(lib);
        return 0;
    }
    /* What a dlopen host checks: the same major version as the header it was
     * compiled with (the soname's promise), and at least that version (it
     * may call what that header declares). */
    if (a.version_num() >> 16 != WSC_VERSION_MAJOR || a.version_num() < WSC_VERSION_NUM) {
        fprintf(stderr, "libwsc %s is not compatible with wsc.h %s\n", a.version(), WSC_VERSION);
        dlclose(lib);
        return 0;
    }
    printf("round %d: loaded wsc %s (header %s)\n", round, a.version(), WSC_VERSION);

    cond_init_monotonic(&s.changed);
    pthread_mutex_init(&s.lock, NULL);
    callbacks.on_message = on_message;
    callbacks.on_error = on_error;
    callbacks.on_close = on_close;

    snprintf(text, sizeof text, "hello from round %d", round);
    status = a.connect(uri, NULL, &callbacks, &s, &id);
    ok = status == WSC_OK && a.send(id, text) == WSC_OK && wait_flag(&s, &s.echoed, 10000);
    if (status != WSC_OK)
        fprintf(stderr, "wsc_connect: %s: %s\n", a.status_str(status), a.last_error());
    if (status == WSC_OK) {
        a.close(id);
        ok = wait_flag(&s, &s.finished, 10000) && s.close_code == 1000 && ok;
    }
    status = a.shutdown(5000); /* every worker thread joined: unloading is safe */
    printf("round %d: shutdown %s, %d thread(s)\n", round, a.status_str(status), threads_settled(1));
    ok = ok && status == WSC_OK;
    pthread_cond_destroy(&s.changed);
    pthread_mutex_destroy(&s.lock);
    if (dlclose(lib) != 0) {
        fprintf(stderr, "dlclose: %s\n", dlerror());
        ok = 0;
    }
    /* Informational: glibc may keep it mapped (see wsc_init above). */
    lib = dlopen(lib_path, RTLD_NOW | RTLD_NOLOAD);
    printf("round %d: %s after dlclose\n", round, lib ? "still mapped" : "unmapped");
    if (lib)
        dlclose(lib);
    return ok;
}

int main(int argc, char **argv)
{
    const char *uri = argc > 1 ? argv[1] : "ws://127.0.0.1:8080/websockets/v4/service/echo";
    const char *env = getenv("WSC_LIB");
    const char *lib = argc > 2 ? argv[2] : env ? env : "libwsc.so";
    int reloads = argc > 3 ? atoi(argv[3]) : 3;
    int round, threads;

    for (round = 1; round <= reloads; round++)
        if (!round_trip(lib, uri, round)) {
            fprintf(stderr, "round %d failed\n", round);
            return 1;
        }
    threads = threads_settled(1);
    printf("%d reloads done, %d thread(s) left%s\n", reloads, threads,
           threads == 1 ? ": only main" : "");
    return threads == 1 ? 0 : 1;
}

/*
 * exit_test: every wsc entry point called on the way out of a thread that
 * used wsc before -- from a C++ thread_local destructor (which runs after
 * the Rust thread-locals of that thread are destroyed, because it was
 * constructed first) and from a pthread key destructor (which runs after
 * all of them). Nothing may abort the process; each call returns its
 * documented result or fallback, and connections made from there work.
 *
 *   exit_test ECHO_URL
 */
#include <pthread.h>
#include <cstdio>
#include <cstring>
#include <string>

#include "wsc.h"

static const char *ECHO;
static int failures, checks;

#define CHECK(cond, who)                                                                                               \
    do {                                                                                                               \
        checks++;                                                                                                      \
        if (!(cond)) {                                                                                                 \
            failures++;                                                                                                \
            std::fprintf(stderr, "FAIL %s line %d: %s (%s)\n", who, __LINE__, #cond, wsc_last_error());               \
        }                                                                                                              \
    } while (0)

static void on_close(wsc_id, uint16_t, const char *, void *) {}
static void handler(wsc_id, void *) {}

/* One live connection made, used and closed from here. */
static void connect_and_close(const char *who)
{
    wsc_callbacks cb = {nullptr, nullptr, nullptr, on_close};
    wsc_options *o = wsc_options_new();
    wsc_id id = 0;
    CHECK(o != nullptr, who);
    CHECK(wsc_options_set_connect_timeout_ms(o, UINT32_MAX) == WSC_OK, who);
    CHECK(wsc_options_add_header(o, "X-Exit", "1") == WSC_OK, who);
    CHECK(wsc_connect(ECHO, o, &cb, nullptr, &id) == WSC_OK, who);
    wsc_options_free(o);
    if (id == 0)
        return;
    CHECK(wsc_send(id, "bye") == WSC_OK, who);
    CHECK(wsc_close(id) == WSC_OK, who);
    CHECK(wsc_wait(id, 20000) == WSC_OK, who);
    CHECK(wsc_get_client(id, nullptr) != WSC_OK, who);
}

static void call_everything(const char *who)
{
    const wsc_id unknown = UINT64_MAX - 1;
    wsc_state state;
    size_t n;
    char buf[16];
    wsc_client_info info, *list = nullptr;
    wsc_id id = 0;

    CHECK(wsc_version() != nullptr && wsc_status_str(WSC_OK) != nullptr, who);
    CHECK(wsc_close(unknown) == WSC_ERR_UNKNOWN_ID, who);
    CHECK(wsc_last_error() != nullptr, who);
    CHECK(wsc_send(unknown, "x") == WSC_ERR_UNKNOWN_ID, who);
    CHECK(wsc_send(unknown, nullptr) == WSC_ERR_INVALID_ARGUMENT, who);
    CHECK(wsc_send_text(unknown, "x", 1) == WSC_ERR_UNKNOWN_ID, who);
    CHECK(wsc_send_binary(unknown, reinterpret_cast<const uint8_t *>("x"), 1) == WSC_ERR_UNKNOWN_ID, who);
    CHECK(wsc_close_with(unknown, 4000, "x") == WSC_ERR_UNKNOWN_ID, who);
    CHECK(wsc_set_flow_control(unknown, true) == WSC_ERR_UNKNOWN_ID, who);
    CHECK(wsc_message_complete(unknown) == WSC_ERR_UNKNOWN_ID, who);
    CHECK(wsc_get_state(unknown, &state) == WSC_ERR_UNKNOWN_ID, who);
    CHECK(wsc_buffered_amount(unknown, &n) == WSC_ERR_UNKNOWN_ID, who);
    CHECK(wsc_get_protocol(unknown, buf, sizeof buf) == WSC_ERR_UNKNOWN_ID, who);
    CHECK(wsc_wait(unknown, 0) == WSC_ERR_UNKNOWN_ID, who);
    CHECK(wsc_get_client(unknown, &info) == WSC_ERR_UNKNOWN_ID, who);
    CHECK(wsc_get_clients(&list, &n) == WSC_OK, who);
    wsc_free_clients(list, n);
    CHECK(wsc_get_client_by_handler("exit-test/none") == 0, who);
    /* the event context: outside a handler, the fallbacks */
    CHECK(wsc_get_method() == nullptr && wsc_get_message() == nullptr && wsc_get_error() == nullptr, who);
    CHECK(wsc_get_message_length() == 0 && !wsc_get_message_is_binary() && wsc_get_close_code() == 0, who);
    CHECK(!wsc_is_on_open() && !wsc_is_on_message() && !wsc_is_on_error() && !wsc_is_on_close(), who);
    /* live connections, both API styles */
    connect_and_close(who);
    CHECK(wsc_register_handler("exit-test/h", handler, nullptr) == WSC_OK, who);
    CHECK(wsc_create_websocket(ECHO, "exit-test/h", nullptr, nullptr, &id) == WSC_OK, who);
    CHECK(id == 0 || wsc_close(id) == WSC_OK, who);
    CHECK(id == 0 || wsc_wait(id, 20000) == WSC_OK, who);
    CHECK(wsc_unregister_handler("exit-test/h") == WSC_OK, who);
    /* and the way out of the library itself */
    CHECK(wsc_shutdown(20000) == WSC_OK, who);
    CHECK(wsc_connect(ECHO, nullptr, nullptr, nullptr, &id) == WSC_ERR_INVALID_ARGUMENT, who);
    CHECK(wsc_init() == WSC_OK, who);
}

struct AtExit {
    bool armed = false;
    ~AtExit()
    {
        if (armed)
            call_everything("thread_local destructor");
    }
};

static thread_local AtExit at_exit;
static pthread_key_t key;

static void key_destructor(void *)
{
    call_everything("pthread key destructor");
}

static void *thread_main(void *)
{
    at_exit.armed = true; /* constructed before any Rust thread-local here */
    pthread_setspecific(key, &key);
    /* use wsc on this thread: its thread-locals come to life */
    CHECK(wsc_close(UINT64_MAX) == WSC_ERR_UNKNOWN_ID, "thread body");
    CHECK(std::strlen(wsc_last_error()) > 0, "thread body");
    CHECK(wsc_get_method() == nullptr, "thread body");
    connect_and_close("thread body");
    return nullptr;
}

int main(int argc, char **argv)
{
    pthread_t t;
    if (argc < 2) {
        std::fprintf(stderr, "usage: exit_test ECHO_URL\n");
        return 2;
    }
    ECHO = argv[1];
    pthread_key_create(&key, key_destructor);
    pthread_create(&t, nullptr, thread_main, nullptr);
    pthread_join(t, nullptr);
    CHECK(wsc_shutdown(20000) == WSC_OK, "main");
    std::printf("exit_test: %d checks, %d failed\n", checks, failures);
    return failures ? 1 : 0;
}

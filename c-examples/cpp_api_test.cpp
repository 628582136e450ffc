// cpp_api_test: the contract of include/wsc.hpp, the C++17 wrapper, against
// loopback servers: options as values, exceptions for refusals, message
// views, close/wait/state, moves, the destructor's wait, a Connection
// destroyed inside its own callback, an exception escaping a callback.
//
//   cpp_api_test ECHO_URL EXTRA_BASE      (EXTRA_BASE: see servers.rs)
//
// Prints a TAP line per test and "# N tests, F failed, ..." (testutil.h).
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "testutil.h" /* CHECK, CHECK_ST, run_tests */
#include "wsc.hpp"

namespace {

using namespace std::chrono_literals;

std::string ECHO;
std::string EXTRA;
std::thread::id main_thread;

// Records what a connection's callbacks saw; main waits on it with deadlines.
class Recorder {
public:
    wsc::Callbacks callbacks()
    {
        wsc::Callbacks cb;
        cb.on_open = [this](wsc::ConnectionRef c) { note([&] { opened++, ids.push_back(c.id()); }); };
        cb.on_message = [this](wsc::ConnectionRef, wsc::MessageView m) {
            note([&] { messages.push_back(std::string(m.text())), binary.push_back(m.is_binary()); });
        };
        cb.on_error = [this](wsc::ConnectionRef, std::string_view e) { note([&] { error = std::string(e), ended++; }); };
        cb.on_close = [this](wsc::ConnectionRef, std::uint16_t code, std::string_view) {
            note([&] { close_code = code, ended++; });
        };
        return cb;
    }

    template <class F>
    void note(F f)
    {
        std::lock_guard<std::mutex> lock(mutex);
        if (std::this_thread::get_id() == main_thread)
            on_main_thread++;
        f();
        changed.notify_all();
    }

    // Waits until pred() holds (under the lock) or 10 s pass.
    template <class P>
    bool wait_for(P pred)
    {
        std::unique_lock<std::mutex> lock(mutex);
        return changed.wait_for(lock, 10s, pred);
    }

    bool wait_messages(std::size_t n)
    {
        return wait_for([&] { return messages.size() >= n; });
    }
    bool wait_end()
    {
        return wait_for([&] { return ended > 0; });
    }

    std::mutex mutex;
    std::condition_variable changed;
    int opened = 0, ended = 0, on_main_thread = 0;
    std::vector<wsc_id> ids;
    std::deque<std::string> messages;
    std::vector<bool> binary;
    std::string error;
    int close_code = -1;
};

// Runs f, which must throw wsc::Error with `want`.
template <class F>
bool throws_status(F f, wsc_status want)
{
    try {
        f();
    } catch (const wsc::Error &e) {
        return e.status() == want && std::strlen(e.what()) > 0;
    }
    return false;
}

void test_versions_match_the_header()
{
    CHECK(wsc::version() == WSC_VERSION);
    CHECK(wsc::version_num() == WSC_VERSION_NUM);
    CHECK(WSC_VERSION_NUM == ((WSC_VERSION_MAJOR << 16) | (WSC_VERSION_MINOR << 8) | WSC_VERSION_PATCH));
}

void test_echo_text_and_binary_with_views()
{
    Recorder r;
    {
        wsc::Connection c(ECHO, r.callbacks(), wsc::Options().header("X-Test", "1").connect_timeout(10s));
        CHECK(bool(c) && c.id() != 0);
        c.send(std::string("a\0b", 3));
        c.send_binary(std::vector<std::uint8_t>{1, 2, 3});
        const unsigned char raw[] = {0xff, 0x00};
        c.send_binary(raw, sizeof raw);
        c.send("");
        CHECK(r.wait_messages(4));
        std::lock_guard<std::mutex> lock(r.mutex);
        CHECK(r.messages.size() == 4 && r.messages[0] == std::string("a\0b", 3) && !r.binary[0]);
        CHECK(r.messages.size() == 4 && r.messages[1] == "\x01\x02\x03" && r.binary[1]);
        CHECK(r.messages.size() == 4 && r.messages[2] == std::string("\xff\0", 2) && r.binary[2]);
        CHECK(r.messages.size() == 4 && r.messages[3].empty() && !r.binary[3]);
        CHECK(r.opened == 1 && r.ids.size() == 1 && r.ids[0] == c.id());
        CHECK(c.state() == wsc::State::open);
    }
    // ~Connection closed and waited: the terminal callback has already run.
    std::lock_guard<std::mutex> lock(r.mutex);
    CHECK(r.ended == 1 && r.close_code == 1000);
    CHECK(r.on_main_thread == 0); // callbacks run on the worker thread
}

void test_refusals_are_exceptions_with_the_status()
{
    Recorder r;
    CHECK(throws_status([&] { wsc::Connection c("http://example.com/", r.callbacks()); }, WSC_ERR_INVALID_URI));
    CHECK(throws_status([&] { wsc::Connection c(ECHO, r.callbacks(), wsc::Options().header("Bad Name", "x")); },
                        WSC_ERR_INVALID_ARGUMENT));
    CHECK(throws_status([&] { wsc::Connection c(ECHO, r.callbacks(), wsc::Options().max_message_size(0)); },
                        WSC_ERR_INVALID_ARGUMENT));
    CHECK(throws_status([&] { wsc::Connection c(ECHO, r.callbacks(), wsc::Options().ca_file("/nonexistent")); },
                        WSC_ERR_INVALID_ARGUMENT));
    CHECK(throws_status([] { wsc::ConnectionRef().send("x"); }, WSC_ERR_UNKNOWN_ID));
    CHECK(r.opened == 0 && r.ended == 0); // a refused connect calls nothing

    wsc::Connection c(ECHO, r.callbacks());
    CHECK(throws_status([&] { c.close(999, "bad code"); }, WSC_ERR_INVALID_ARGUMENT));
    CHECK(c.close(4000, "bye"));
    CHECK(!c.close()); // already closing (or, on a slow machine, finished): false, not an exception
    // WSC_ERR_CLOSED while closing; WSC_ERR_UNKNOWN_ID if it has finished meanwhile
    CHECK(throws_status([&] { c.send("late"); }, WSC_ERR_CLOSED) ||
          throws_status([&] { c.send("late"); }, WSC_ERR_UNKNOWN_ID));
    CHECK(c.wait(10s));
    CHECK(c.state() == wsc::State::finished);
    CHECK(!c.close()); // finished: false
    CHECK(throws_status([&] { c.send("later"); }, WSC_ERR_UNKNOWN_ID));
    CHECK(r.wait_end() && r.ended == 1);
}

void test_options_value_is_reusable_and_offers_subprotocols()
{
    wsc::Options options;
    options.subprotocol("chat.v1").close_timeout(2s).ping_interval(0ms).read_buffer_size(4096);
    const wsc::Options copy = options; // a value: copies are independent
    options.subprotocol("ignored.v2");
    for (int i = 0; i < 2; i++) {
        Recorder r;
        wsc::Connection c(EXTRA + "/proto", r.callbacks(), copy);
        c.send("hi");
        CHECK(r.wait_messages(1));
        CHECK(c.protocol() == "chat.v1");
        CHECK(c.buffered_amount() == 0);
    }
}

void test_flow_control_from_the_main_thread()
{
    Recorder r;
    wsc::Connection c(ECHO, r.callbacks(), wsc::Options().flow_control(true));
    for (int i = 0; i < 3; i++)
        c.send("m" + std::to_string(i));
    for (std::size_t i = 1; i <= 3; i++) {
        CHECK(r.wait_messages(i));
        {
            std::unique_lock<std::mutex> lock(r.mutex);
            // nothing more is delivered before message_complete
            CHECK(!r.changed.wait_for(lock, 100ms, [&] { return r.messages.size() > i; }));
        }
        c.message_complete();
    }
    c.set_flow_control(false);
    CHECK(c.close() && c.wait(10s));
}

void test_callbacks_may_use_their_connection_ref()
{
    Recorder r;
    wsc::Callbacks cb = r.callbacks();
    auto record_open = cb.on_open;
    cb.on_open = [record_open](wsc::ConnectionRef c) {
        record_open(c);
        c.send("sent from on_open");
    };
    auto record_message = cb.on_message;
    cb.on_message = [record_message](wsc::ConnectionRef c, wsc::MessageView m) {
        record_message(c, m);
        CHECK(!c.wait(10s)); // its own callback: false at once, no deadlock
        c.close();
    };
    wsc::Connection conn(ECHO, std::move(cb));
    CHECK(r.wait_end());
    std::lock_guard<std::mutex> lock(r.mutex);
    CHECK(!r.messages.empty() && r.messages.front() == "sent from on_open" && r.close_code == 1000);
}

void test_moves_transfer_ownership()
{
    Recorder a, b;
    wsc::Connection first(ECHO, a.callbacks());
    const wsc_id id = first.id();
    wsc::Connection moved(std::move(first));
    CHECK(!first && first.id() == 0 && moved.id() == id); // NOLINT: use after move is the point
    moved.send("still works");
    CHECK(a.wait_messages(1));
    moved = wsc::Connection(ECHO, b.callbacks()); // closes and waits for the old one
    {
        std::lock_guard<std::mutex> lock(a.mutex);
        CHECK(a.ended == 1 && a.close_code == 1000);
    }
    CHECK(moved.id() != id);
    moved.reset();
    CHECK(!moved);
    std::lock_guard<std::mutex> lock(b.mutex);
    CHECK(b.ended == 1);
}

void test_destroyed_inside_its_own_callback()
{
    Recorder r;
    std::mutex slot_lock;
    std::unique_ptr<wsc::Connection> slot;
    wsc::Callbacks cb = r.callbacks();
    auto record = cb.on_message;
    cb.on_message = [&](wsc::ConnectionRef c, wsc::MessageView m) {
        std::unique_ptr<wsc::Connection> mine;
        {
            std::lock_guard<std::mutex> lock(slot_lock);
            mine = std::move(slot);
        }
        mine.reset(); // ~Connection on its own worker thread: closes, cannot wait
        record(c, m); // the callbacks are still alive
    };
    {
        std::lock_guard<std::mutex> lock(slot_lock);
        slot = std::make_unique<wsc::Connection>(ECHO, std::move(cb));
        slot->send("destroy me");
    }
    CHECK(r.wait_end());
    std::lock_guard<std::mutex> lock(r.mutex);
    CHECK(r.messages.size() == 1 && r.close_code == 1000);
}

void test_an_exception_in_a_callback_closes_the_connection()
{
    Recorder r;
    wsc::Callbacks cb = r.callbacks();
    cb.on_message = [](wsc::ConnectionRef, wsc::MessageView) { throw std::runtime_error("bug in the application"); };
    wsc::Connection c(ECHO, std::move(cb));
    c.send("boom");
    CHECK(r.wait_end());
    CHECK(c.wait(10s));
    std::lock_guard<std::mutex> lock(r.mutex);
    CHECK(r.close_code == 1000);
}

void test_connection_failure_reaches_on_error()
{
    Recorder r;
    int port = 0;
    const int fd = loopback_socket(0, &port); // bound, not listening: refused once closed
    close(fd);
    wsc::Connection c("ws://127.0.0.1:" + std::to_string(port) + "/", r.callbacks());
    CHECK(r.wait_end());
    std::lock_guard<std::mutex> lock(r.mutex);
    CHECK(!r.error.empty() && r.close_code == -1 && r.opened == 0);
}

void test_shutdown_joins_every_worker()
{
    Recorder r;
    wsc::Connection c(ECHO, r.callbacks());
    CHECK(wsc::shutdown(10s));
    CHECK(c.state() == wsc::State::finished);
    CHECK(throws_status([] { wsc::Connection again(ECHO, wsc::Callbacks()); }, WSC_ERR_SHUTDOWN));
    wsc::init();
    wsc::Connection again(ECHO, r.callbacks());
    CHECK(again.close());
}

const test_case tests[] = {
    TEST_CASE(test_versions_match_the_header),
    TEST_CASE(test_echo_text_and_binary_with_views),
    TEST_CASE(test_refusals_are_exceptions_with_the_status),
    TEST_CASE(test_options_value_is_reusable_and_offers_subprotocols),
    TEST_CASE(test_flow_control_from_the_main_thread),
    TEST_CASE(test_callbacks_may_use_their_connection_ref),
    TEST_CASE(test_moves_transfer_ownership),
    TEST_CASE(test_destroyed_inside_its_own_callback),
    TEST_CASE(test_an_exception_in_a_callback_closes_the_connection),
    TEST_CASE(test_connection_failure_reaches_on_error),
    TEST_CASE(test_shutdown_joins_every_worker),
};

void final_shutdown()
{
    CHECK(wsc::shutdown(10s));
}

}  // namespace

int main(int argc, char **argv)
{
    if (argc < 3) {
        std::fprintf(stderr, "usage: cpp_api_test ECHO_URL EXTRA_BASE\n");
        return 2;
    }
    ECHO = argv[1];
    EXTRA = argv[2];
    main_thread = std::this_thread::get_id();
    setvbuf(stdout, nullptr, _IOLBF, 0);
    return run_tests(tests, sizeof tests / sizeof tests[0], nullptr, final_shutdown);
}

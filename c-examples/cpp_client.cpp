// cpp_client: wsc from C++17 through include/wsc.hpp, the header-only
// wrapper over wsc.h: a move-only wsc::Connection that closes and waits when
// destroyed, std::function callbacks, message views, exceptions for refusals.
//
//   cpp_client ws://127.0.0.1:PORT/websockets/v4/service/echo
//
// Callbacks run on the connection's worker thread, so they hand events to
// main through a mutex-guarded inbox, and main waits with deadlines.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

#include "wsc.hpp"

namespace {

struct Received {
    std::string data;
    bool binary;
};

// What the callbacks share with main. Declared before the Connection, so it
// outlives it: ~Connection waits for the last callback.
class Inbox {
public:
    void push(wsc::MessageView m)
    {
        std::lock_guard<std::mutex> lock(mutex_);
        messages_.push_back({std::string(m.text()), m.is_binary()});  // the view dies with the call: copy
        changed_.notify_all();
    }

    void finish(std::uint16_t code)
    {
        std::lock_guard<std::mutex> lock(mutex_);
        finished_ = true;
        close_code_ = code;
        changed_.notify_all();
    }

    // The next message, or false if none came within `timeout`.
    bool receive(Received &out, std::chrono::milliseconds timeout)
    {
        std::unique_lock<std::mutex> lock(mutex_);
        if (!changed_.wait_for(lock, timeout, [this] { return !messages_.empty() || finished_; }) ||
            messages_.empty())
            return false;
        out = std::move(messages_.front());
        messages_.pop_front();
        return true;
    }

    std::uint16_t close_code()
    {
        std::lock_guard<std::mutex> lock(mutex_);
        return close_code_;
    }

private:
    std::mutex mutex_;
    std::condition_variable changed_;
    std::deque<Received> messages_;
    bool finished_ = false;
    std::uint16_t close_code_ = 0;
};

}  // namespace

int main(int argc, char **argv)
{
    const std::string uri = argc > 1 ? argv[1] : "ws://127.0.0.1:8080/websockets/v4/service/echo";
    using namespace std::chrono_literals;
    const std::string text("hello from C++\0with a NUL", 25);
    int failures = 0;

    std::printf("wsc %s (header %s)\n", std::string(wsc::version()).c_str(), WSC_VERSION);
    Inbox inbox;
    try {
        wsc::Callbacks callbacks;
        callbacks.on_open = [](wsc::ConnectionRef c) { std::printf("open: connection %llu\n", (unsigned long long)c.id()); };
        callbacks.on_message = [&inbox](wsc::ConnectionRef, wsc::MessageView m) { inbox.push(m); };
        callbacks.on_error = [&inbox](wsc::ConnectionRef, std::string_view message) {
            std::printf("error: %.*s\n", static_cast<int>(message.size()), message.data());
            inbox.finish(0);
        };
        callbacks.on_close = [&inbox](wsc::ConnectionRef, std::uint16_t code, std::string_view) { inbox.finish(code); };

        wsc::Connection ws(uri, std::move(callbacks), wsc::Options().connect_timeout(10s).close_timeout(5s));
        ws.send(text);                                                   // queued until open
        ws.send_binary(std::vector<std::uint8_t>{0xde, 0xad, 0xbe, 0xef});
        for (int i = 0; i < 2; i++) {
            Received r;
            if (!inbox.receive(r, 10000ms)) {
                std::printf("no echo\n");
                failures++;
                break;
            }
            std::printf("%s echo, %zu bytes%s\n", r.binary ? "binary" : "text", r.data.size(),
                        r.binary ? "" : (r.data == text ? ", NUL kept" : ", MANGLED"));
        }
        ws.close();
        const bool closed = ws.wait(10s);
        std::printf("closed: %u\n", static_cast<unsigned>(inbox.close_code()));
        failures += !closed || inbox.close_code() != 1000;
        std::printf("state after wait: %s\n", ws.state() == wsc::State::finished ? "finished" : "still running");
        try {
            ws.send("too late");
            std::printf("send after close: accepted?!\n");
            failures++;
        } catch (const wsc::Error &e) {
            std::printf("send after close: %s\n", wsc_status_str(e.status()));
        }
    } catch (const wsc::Error &e) {
        std::printf("exception: %s\n", e.what());
        failures++;
    }
    const bool joined = wsc::shutdown(5s);
    std::printf("shutdown: %s\n", joined ? "WSC_OK" : "WSC_ERR_TIMEOUT");
    return failures == 0 && joined ? 0 : 1;
}

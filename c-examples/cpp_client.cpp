// cpp_client: wsc.h from C++17. A small RAII class owns one connection;
// its static member functions are the C callbacks and `this` is user_data.
//
//   cpp_client ws://127.0.0.1:PORT/websockets/v4/service/echo
//
// Callbacks run on the connection's worker thread, so the class hands events
// to the caller through a mutex-guarded queue and waits with deadlines.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "wsc.h"

namespace {

struct Received {
    std::string data;
    bool binary;
};

class WebSocket {
public:
    explicit WebSocket(const std::string &uri)
    {
        wsc_callbacks callbacks{};
        callbacks.on_message = &WebSocket::on_message;
        callbacks.on_error = &WebSocket::on_error;
        callbacks.on_close = &WebSocket::on_close;
        wsc_status status = wsc_connect(uri.c_str(), nullptr, &callbacks, this, &id_);
        if (status != WSC_OK)
            throw std::runtime_error(std::string("wsc_connect: ") + wsc_last_error());
    }

    // Closes if still open and waits for the terminal callback: after that
    // wsc never touches `this` again, so it is safe to destroy.
    ~WebSocket()
    {
        wsc_close(id_);
        std::unique_lock<std::mutex> lock(mutex_);
        changed_.wait_for(lock, std::chrono::seconds(10), [this] { return finished_; });
    }

    WebSocket(const WebSocket &) = delete;
    WebSocket &operator=(const WebSocket &) = delete;

    void send(const std::string &text) { check(wsc_send_text(id_, text.data(), text.size())); }

    void send(const std::vector<std::uint8_t> &bytes)
    {
        check(wsc_send_binary(id_, bytes.data(), bytes.size()));
    }

    void close() { check(wsc_close(id_)); }

    // The next message, or nothing if none came within `timeout`.
    bool receive(Received &out, std::chrono::milliseconds timeout)
    {
        std::unique_lock<std::mutex> lock(mutex_);
        if (!changed_.wait_for(lock, timeout, [this] { return !inbox_.empty() || finished_; }) ||
            inbox_.empty())
            return false;
        out = std::move(inbox_.front());
        inbox_.pop_front();
        return true;
    }

    // The close code (0 after an error), once the connection has ended.
    bool wait_closed(std::chrono::milliseconds timeout, std::uint16_t &code)
    {
        std::unique_lock<std::mutex> lock(mutex_);
        bool done = changed_.wait_for(lock, timeout, [this] { return finished_; });
        code = close_code_;
        return done;
    }

private:
    static void check(wsc_status status)
    {
        if (status != WSC_OK)
            throw std::runtime_error(std::string(wsc_status_str(status)) + ": " + wsc_last_error());
    }

    static void on_message(wsc_id, const std::uint8_t *data, std::size_t len, bool is_binary,
                           void *user_data)
    {
        auto *self = static_cast<WebSocket *>(user_data);
        std::lock_guard<std::mutex> lock(self->mutex_);
        // `data` is only valid during this call: copy it.
        self->inbox_.push_back({std::string(reinterpret_cast<const char *>(data), len), is_binary});
        self->changed_.notify_all();
    }

    static void on_error(wsc_id, const char *message, void *user_data)
    {
        std::printf("error: %s\n", message);
        static_cast<WebSocket *>(user_data)->finish(0);
    }

    static void on_close(wsc_id, std::uint16_t code, const char *, void *user_data)
    {
        static_cast<WebSocket *>(user_data)->finish(code);
    }

    void finish(std::uint16_t code)
    {
        std::lock_guard<std::mutex> lock(mutex_);
        finished_ = true;
        close_code_ = code;
        changed_.notify_all();
    }

    wsc_id id_ = 0;
    std::mutex mutex_;
    std::condition_variable changed_;
    std::deque<Received> inbox_;
    bool finished_ = false;
    std::uint16_t close_code_ = 0;
};

}  // namespace

int main(int argc, char **argv)
{
    const std::string uri = argc > 1 ? argv[1] : "ws://127.0.0.1:8080/websockets/v4/service/echo";
    using std::chrono::milliseconds;
    int failures = 0;
    try {
        WebSocket ws(uri);
        ws.send(std::string("hello from C++\0with a NUL", 25));
        ws.send(std::vector<std::uint8_t>{0xde, 0xad, 0xbe, 0xef});
        for (int i = 0; i < 2; i++) {
            Received r;
            if (!ws.receive(r, milliseconds(10000))) {
                std::printf("no echo\n");
                failures++;
                break;
            }
            std::printf("%s echo, %zu bytes%s\n", r.binary ? "binary" : "text", r.data.size(),
                        r.binary ? "" : (r.data == std::string("hello from C++\0with a NUL", 25)
                                             ? ", NUL kept"
                                             : ", MANGLED"));
        }
        ws.close();
        std::uint16_t code = 0;
        bool closed = ws.wait_closed(milliseconds(10000), code);
        std::printf("closed: %u\n", static_cast<unsigned>(code));
        failures += !closed || code != 1000;
    } catch (const std::exception &e) {
        std::printf("exception: %s\n", e.what());
        failures++;
    }
    wsc_status status = wsc_shutdown(5000);
    std::printf("shutdown: %s\n", wsc_status_str(status));
    return failures == 0 && status == WSC_OK ? 0 : 1;
}

/*
 * wsc.hpp: a header-only C++17 API over wsc's C ABI (wsc.h). Link libwsc as
 * for C (`target_link_libraries(app PRIVATE wsc::wsc)`, or pkg-config wsc);
 * nothing here is compiled into the library, so this header adds no ABI.
 *
 *   wsc::Callbacks cb;
 *   cb.on_message = [](wsc::ConnectionRef c, wsc::MessageView m) { c.send(m.text()); };
 *   wsc::Connection conn("ws://127.0.0.1:8080/", std::move(cb),
 *                        wsc::Options().connect_timeout(std::chrono::seconds(5)));
 *   conn.send("hello");
 *   conn.wait(std::chrono::seconds(10));   // or let the destructor close and wait
 *
 * Errors are exceptions (wsc::Error, with the wsc_status and
 * wsc_last_error()'s detail), thrown only on the thread that made the call.
 * Why exceptions rather than status returns: the constructor *is* the
 * connect, and a constructor has no other way to fail without leaving a
 * half-made object behind; every other refusal (a bad option, sending on a
 * closing connection, a full send queue) is a contract the caller can check
 * beforehand, so it is exceptional. The two outcomes a caller meets in normal
 * use are not exceptions: close() returns false when the connection was
 * already closing or finished, and wait() returns false on timeout.
 *
 * Threading (the rules of the C API, unchanged):
 *  - Every member of ConnectionRef may be called from any thread and from
 *    inside any callback, including close() on the connection's own
 *    callback. wait() called from a connection's own callback returns false
 *    at once (it would wait for itself).
 *  - The callbacks of one connection run on that connection's worker thread,
 *    one at a time, in order: on_open at most once and first, then
 *    on_message, then exactly one of on_error / on_close, last. Callbacks of
 *    different connections run on different threads at the same time: guard
 *    what they share.
 *  - A MessageView and the string_views passed to callbacks are valid only
 *    during the call: copy what you keep.
 *  - A callback must not let an exception escape into the C library: one that
 *    does is caught here, and the connection is closed (code 1000) with
 *    on_close following as usual.
 *  - A Connection object (the owner) is a plain value: do not use one
 *    Connection object from two threads while one of them moves or destroys
 *    it. Copies of its ConnectionRef are safe anywhere.
 *
 * Lifetime: ~Connection closes the connection and waits until its terminal
 * callback has returned, so nothing the callbacks capture is used after the
 * destructor (bounded by the close timeout, default 5 s). Destroyed from inside
 * its own callback it cannot wait: it closes, and the callbacks are kept alive
 * until the terminal one has returned (they are then destroyed on the worker
 * thread).
 */
#ifndef WSC_HPP
#define WSC_HPP

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <iterator>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "wsc.h"

namespace wsc {

/// A refused call: `status()` is the C status, `what()` says why.
class Error : public std::runtime_error {
public:
    Error(wsc_status status, const std::string &what) : std::runtime_error(what), status_(status) {}

    /// The wsc_status the C call returned.
    wsc_status status() const noexcept { return status_; }

private:
    wsc_status status_;
};

namespace detail {

/// Throws wsc::Error unless `status` is WSC_OK; reads wsc_last_error() at once,
/// on the calling thread, as the C API requires.
inline void check(wsc_status status, const char *call)
{
    if (status != WSC_OK)
        throw Error(status, std::string(call) + ": " + wsc_status_str(status) + " (" + wsc_last_error() + ")");
}

/// A std::chrono duration as the C API's uint32_t milliseconds (clamped).
template <class Rep, class Period>
std::uint32_t to_ms(std::chrono::duration<Rep, Period> d) noexcept
{
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
    if (ms <= 0)
        return 0;
    if (static_cast<unsigned long long>(ms) > 0xffffffffULL)
        return 0xffffffffU;
    return static_cast<std::uint32_t>(ms);
}

struct OptionsDeleter {
    void operator()(wsc_options *o) const noexcept { wsc_options_free(o); }
};
using OptionsHandle = std::unique_ptr<wsc_options, OptionsDeleter>;

}  // namespace detail

/// The library's version, e.g. "0.1.0" (compare with WSC_VERSION).
inline std::string_view version() noexcept { return wsc_version(); }

/// The library's version as (major << 16) | (minor << 8) | patch (compare
/// with WSC_VERSION_NUM).
inline std::uint32_t version_num() noexcept { return wsc_version_num(); }

/// wsc_shutdown: closes every connection and waits up to `timeout` for every
/// worker thread. True once all have exited; false if some are still running
/// (always false from inside a callback, which cannot wait for itself).
template <class Rep, class Period>
bool shutdown(std::chrono::duration<Rep, Period> timeout)
{
    const wsc_status status = wsc_shutdown(detail::to_ms(timeout));
    if (status == WSC_ERR_TIMEOUT)
        return false;
    detail::check(status, "wsc_shutdown");
    return true;
}

/// wsc_init: makes the library usable again after shutdown().
inline void init() { detail::check(wsc_init(), "wsc_init"); }

/// Settings for one connection, as a value: copy it, keep it, reuse it.
/// Nothing is checked until a Connection is made with it; an invalid value
/// then makes the Connection constructor throw wsc::Error
/// (WSC_ERR_INVALID_ARGUMENT) naming it. Unset values keep wsc's defaults.
class Options {
public:
    /// A request header (e.g. Authorization). Without a User-Agent header the
    /// request sends "User-Agent: wsc/<version>".
    Options &header(std::string name, std::string value)
    {
        headers_.emplace_back(std::move(name), std::move(value));
        return *this;
    }
    /// Offers a subprotocol; the server's choice: ConnectionRef::protocol().
    Options &subprotocol(std::string protocol)
    {
        subprotocols_.push_back(std::move(protocol));
        return *this;
    }
    template <class Rep, class Period>
    Options &connect_timeout(std::chrono::duration<Rep, Period> d)
    {
        connect_timeout_ms_ = detail::to_ms(d);
        return *this;
    }
    template <class Rep, class Period>
    Options &close_timeout(std::chrono::duration<Rep, Period> d)
    {
        close_timeout_ms_ = detail::to_ms(d);
        return *this;
    }
    /// Zero turns pings off (the default).
    template <class Rep, class Period>
    Options &ping_interval(std::chrono::duration<Rep, Period> d)
    {
        ping_interval_ms_ = detail::to_ms(d);
        return *this;
    }
    template <class Rep, class Period>
    Options &pong_timeout(std::chrono::duration<Rep, Period> d)
    {
        pong_timeout_ms_ = detail::to_ms(d);
        return *this;
    }
    Options &max_message_size(std::size_t bytes)
    {
        max_message_size_ = bytes;
        return *this;
    }
    Options &max_buffered_bytes(std::size_t bytes)
    {
        max_buffered_bytes_ = bytes;
        return *this;
    }
    /// Starts with flow control on: call message_complete() after each message.
    Options &flow_control(bool enabled)
    {
        flow_control_ = enabled;
        return *this;
    }
    /// Trusts the PEM certificates in this file besides the system roots.
    Options &ca_file(std::string pem_path)
    {
        ca_file_ = std::move(pem_path);
        return *this;
    }
    Options &client_certificate(std::string cert_pem_path, std::string key_pem_path)
    {
        client_certificate_ = std::make_pair(std::move(cert_pem_path), std::move(key_pem_path));
        return *this;
    }
    /// DANGER, for tests only: accept any server certificate and host name.
    Options &danger_accept_invalid_certs(bool accept)
    {
        danger_accept_invalid_certs_ = accept;
        return *this;
    }
    Options &stack_size(std::size_t bytes)
    {
        stack_size_ = bytes;
        return *this;
    }
    Options &read_buffer_size(std::size_t bytes)
    {
        read_buffer_size_ = bytes;
        return *this;
    }

    /// A wsc_options with these settings, for calling the C API directly.
    /// Throws wsc::Error for an invalid value.
    detail::OptionsHandle to_c() const
    {
        detail::OptionsHandle o(wsc_options_new());
        if (!o)
            throw Error(WSC_ERR_INTERNAL, "wsc_options_new: out of memory");
        for (const auto &h : headers_)
            detail::check(wsc_options_add_header(o.get(), h.first.c_str(), h.second.c_str()),
                          "wsc_options_add_header");
        for (const auto &p : subprotocols_)
            detail::check(wsc_options_add_subprotocol(o.get(), p.c_str()), "wsc_options_add_subprotocol");
        if (connect_timeout_ms_)
            detail::check(wsc_options_set_connect_timeout_ms(o.get(), *connect_timeout_ms_),
                          "wsc_options_set_connect_timeout_ms");
        if (close_timeout_ms_)
            detail::check(wsc_options_set_close_timeout_ms(o.get(), *close_timeout_ms_),
                          "wsc_options_set_close_timeout_ms");
        if (ping_interval_ms_)
            detail::check(wsc_options_set_ping_interval_ms(o.get(), *ping_interval_ms_),
                          "wsc_options_set_ping_interval_ms");
        if (pong_timeout_ms_)
            detail::check(wsc_options_set_pong_timeout_ms(o.get(), *pong_timeout_ms_),
                          "wsc_options_set_pong_timeout_ms");
        if (max_message_size_)
            detail::check(wsc_options_set_max_message_size(o.get(), *max_message_size_),
                          "wsc_options_set_max_message_size");
        if (max_buffered_bytes_)
            detail::check(wsc_options_set_max_buffered_bytes(o.get(), *max_buffered_bytes_),
                          "wsc_options_set_max_buffered_bytes");
        if (flow_control_)
            detail::check(wsc_options_set_flow_control(o.get(), *flow_control_), "wsc_options_set_flow_control");
        if (ca_file_)
            detail::check(wsc_options_set_ca_file(o.get(), ca_file_->c_str()), "wsc_options_set_ca_file");
        if (client_certificate_)
            detail::check(wsc_options_set_client_certificate(o.get(), client_certificate_->first.c_str(),
                                                             client_certificate_->second.c_str()),
                          "wsc_options_set_client_certificate");
        if (danger_accept_invalid_certs_)
            detail::check(wsc_options_set_danger_accept_invalid_certs(o.get(), *danger_accept_invalid_certs_),
                          "wsc_options_set_danger_accept_invalid_certs");
        if (stack_size_)
            detail::check(wsc_options_set_stack_size(o.get(), *stack_size_), "wsc_options_set_stack_size");
        if (read_buffer_size_)
            detail::check(wsc_options_set_read_buffer_size(o.get(), *read_buffer_size_),
                          "wsc_options_set_read_buffer_size");
        return o;
    }

private:
    std::vector<std::pair<std::string, std::string>> headers_;
    std::vector<std::string> subprotocols_;
    std::optional<std::uint32_t> connect_timeout_ms_, close_timeout_ms_, ping_interval_ms_, pong_timeout_ms_;
    std::optional<std::size_t> max_message_size_, max_buffered_bytes_, stack_size_, read_buffer_size_;
    std::optional<bool> flow_control_, danger_accept_invalid_certs_;
    std::optional<std::string> ca_file_;
    std::optional<std::pair<std::string, std::string>> client_certificate_;
};

/// A received message, valid only during the on_message call: a view of
/// bytes (begin/end/data/size, like a std::span) and of text (text()).
class MessageView {
public:
    MessageView(const std::uint8_t *data, std::size_t size, bool binary) noexcept
        : data_(data), size_(size), binary_(binary)
    {
    }
    const std::uint8_t *data() const noexcept { return data_; }
    std::size_t size() const noexcept { return size_; }
    bool empty() const noexcept { return size_ == 0; }
    const std::uint8_t *begin() const noexcept { return data_; }
    const std::uint8_t *end() const noexcept { return data_ + size_; }
    std::uint8_t operator[](std::size_t i) const noexcept { return data_[i]; }
    bool is_binary() const noexcept { return binary_; }
    bool is_text() const noexcept { return !binary_; }
    /// The payload as characters (UTF-8 for a text message; may contain NUL).
    std::string_view text() const noexcept
    {
        return size_ ? std::string_view(reinterpret_cast<const char *>(data_), size_) : std::string_view();
    }

private:
    const std::uint8_t *data_;
    std::size_t size_;
    bool binary_;
};

/// Where a connection is; `finished` once its terminal callback has returned.
enum class State { connecting, open, closing, finished };

/// A non-owning handle to a connection: an id with the C API's calls as
/// members. Cheap to copy; safe from any thread and from callbacks. Calls on
/// a finished connection throw wsc::Error (WSC_ERR_UNKNOWN_ID), except
/// close() (false), state() (State::finished) and wait() (true).
class ConnectionRef {
public:
    ConnectionRef() noexcept = default;
    explicit ConnectionRef(wsc_id id) noexcept : id_(id) {}

    wsc_id id() const noexcept { return id_; }
    explicit operator bool() const noexcept { return id_ != 0; }

    /// Queues a text message (UTF-8, copied; may contain NUL).
    void send(std::string_view text) const
    {
        detail::check(wsc_send_text(id_, text.data(), text.size()), "wsc_send_text");
    }
    /// Queues a binary message (copied).
    void send_binary(const void *data, std::size_t size) const
    {
        detail::check(wsc_send_binary(id_, static_cast<const std::uint8_t *>(data), size), "wsc_send_binary");
    }
    /// Queues a binary message from a contiguous container of bytes
    /// (std::vector<std::uint8_t>, std::array<std::byte, N>, std::string, ...).
    template <class Bytes>
    auto send_binary(const Bytes &bytes) const -> decltype(std::data(bytes), std::size(bytes), void())
    {
        static_assert(sizeof(*std::data(bytes)) == 1, "send_binary takes a container of bytes");
        send_binary(static_cast<const void *>(std::data(bytes)), std::size(bytes));
    }

    /// Closes with code 1000 (see wsc_close). True if this call started the
    /// close; false if the connection was already closing or has finished.
    bool close() const { return closed(wsc_close(id_), "wsc_close"); }
    /// Closes with `code` (1000 or 3000-4999) and `reason` (at most 123 bytes).
    bool close(std::uint16_t code, std::string_view reason) const
    {
        const std::string r(reason);
        return closed(wsc_close_with(id_, code, r.c_str()), "wsc_close_with");
    }

    void set_flow_control(bool enabled) const
    {
        detail::check(wsc_set_flow_control(id_, enabled), "wsc_set_flow_control");
    }
    /// With flow control on: the last message is done, deliver the next.
    void message_complete() const { detail::check(wsc_message_complete(id_), "wsc_message_complete"); }

    State state() const
    {
        wsc_state s = WSC_STATE_CONNECTING;
        const wsc_status status = wsc_get_state(id_, &s);
        if (status == WSC_ERR_UNKNOWN_ID)
            return State::finished;
        detail::check(status, "wsc_get_state");
        switch (s) {
        case WSC_STATE_CONNECTING:
            return State::connecting;
        case WSC_STATE_OPEN:
            return State::open;
        case WSC_STATE_CLOSING:
            return State::closing;
        }
        return State::closing;  // a state added in a later version: not open, not finished
    }

    /// Bytes accepted by send and not yet written.
    std::size_t buffered_amount() const
    {
        std::size_t bytes = 0;
        detail::check(wsc_buffered_amount(id_, &bytes), "wsc_buffered_amount");
        return bytes;
    }

    /// The negotiated subprotocol ("" if none or not yet open).
    std::string protocol() const
    {
        std::vector<char> buf(256);
        for (;;) {
            const wsc_status status = wsc_get_protocol(id_, buf.data(), buf.size());
            if (status == WSC_OK)
                return std::string(buf.data());
            if (status != WSC_ERR_INVALID_ARGUMENT || buf.size() >= (std::size_t{1} << 16))
                detail::check(status, "wsc_get_protocol");
            buf.resize(buf.size() * 4);  // too small: a longer token
        }
    }

    /// Blocks until the connection has finished (its terminal callback has
    /// returned) or `timeout` passes. False on timeout, and at once from the
    /// connection's own callbacks.
    template <class Rep, class Period>
    bool wait(std::chrono::duration<Rep, Period> timeout) const
    {
        const wsc_status status = wsc_wait(id_, detail::to_ms(timeout));
        if (status == WSC_ERR_TIMEOUT)
            return false;
        detail::check(status, "wsc_wait");
        return true;
    }

protected:
    static bool closed(wsc_status status, const char *call)
    {
        if (status == WSC_ERR_CLOSED || status == WSC_ERR_UNKNOWN_ID)
            return false;
        detail::check(status, call);
        return true;
    }

    wsc_id id_ = 0;
};

/// What a connection reports; any member may be empty. They run on the
/// connection's worker thread (see the threading rules at the top).
struct Callbacks {
    std::function<void(ConnectionRef)> on_open;
    std::function<void(ConnectionRef, MessageView)> on_message;
    /// Terminal: why the connection failed.
    std::function<void(ConnectionRef, std::string_view message)> on_error;
    /// Terminal: the close code and reason (1006 when closed while
    /// connecting or the closing handshake could not finish).
    std::function<void(ConnectionRef, std::uint16_t code, std::string_view reason)> on_close;
};

namespace detail {

/// What the C library's user_data points to: the callbacks, kept alive by the
/// owning Connection and, until the terminal callback has returned, by `self`.
struct Session {
    Callbacks callbacks;
    std::shared_ptr<Session> self;

    template <class F>
    static void guarded(wsc_id id, F &&f) noexcept
    {
        try {
            f();
        } catch (...) {
            wsc_close(id);  // an exception must not unwind into the C library
        }
    }

    static void on_open(wsc_id id, void *user_data) noexcept
    {
        auto *s = static_cast<Session *>(user_data);
        if (s->callbacks.on_open)
            guarded(id, [&] { s->callbacks.on_open(ConnectionRef(id)); });
    }
    static void on_message(wsc_id id, const std::uint8_t *data, std::size_t len, bool is_binary,
                           void *user_data) noexcept
    {
        auto *s = static_cast<Session *>(user_data);
        if (s->callbacks.on_message)
            guarded(id, [&] { s->callbacks.on_message(ConnectionRef(id), MessageView(data, len, is_binary)); });
    }
    static void on_error(wsc_id id, const char *message, void *user_data) noexcept
    {
        auto *s = static_cast<Session *>(user_data);
        const std::shared_ptr<Session> keep = std::move(s->self);  // released after the last callback
        if (s->callbacks.on_error)
            guarded(id, [&] { s->callbacks.on_error(ConnectionRef(id), std::string_view(message)); });
    }
    static void on_close(wsc_id id, std::uint16_t code, const char *reason, void *user_data) noexcept
    {
        auto *s = static_cast<Session *>(user_data);
        const std::shared_ptr<Session> keep = std::move(s->self);  // released after the last callback
        if (s->callbacks.on_close)
            guarded(id, [&] { s->callbacks.on_close(ConnectionRef(id), code, std::string_view(reason)); });
    }
};

}  // namespace detail

/// Owns one connection: move-only; the destructor closes it and waits for its
/// terminal callback. As a ConnectionRef it has every call of the C API.
class Connection : public ConnectionRef {
public:
    /// An empty Connection (no connection; `bool(conn)` is false).
    Connection() noexcept = default;

    /// Starts connecting to `uri` (ws:// or wss://) and returns at once; the
    /// outcome arrives through `callbacks`. Sends made before the connection
    /// is open are queued. Throws wsc::Error for a bad URI or option
    /// (WSC_ERR_INVALID_URI, WSC_ERR_INVALID_ARGUMENT) or after shutdown().
    Connection(const std::string &uri, Callbacks callbacks, const Options &options = Options())
    {
        const detail::OptionsHandle c_options = options.to_c();
        auto session = std::make_shared<detail::Session>();
        session->callbacks = std::move(callbacks);
        session->self = session;
        wsc_callbacks c{};
        c.on_open = &detail::Session::on_open;
        c.on_message = &detail::Session::on_message;
        c.on_error = &detail::Session::on_error;
        c.on_close = &detail::Session::on_close;
        const wsc_status status = wsc_connect(uri.c_str(), c_options.get(), &c, session.get(), &id_);
        if (status != WSC_OK) {
            session->self.reset();  // no callback will ever run
            id_ = 0;
            detail::check(status, "wsc_connect");
        }
        session_ = std::move(session);
    }

    Connection(const Connection &) = delete;
    Connection &operator=(const Connection &) = delete;

    Connection(Connection &&other) noexcept : ConnectionRef(other.id_), session_(std::move(other.session_))
    {
        other.id_ = 0;
    }
    Connection &operator=(Connection &&other) noexcept
    {
        if (this != &other) {
            reset();
            id_ = std::exchange(other.id_, 0);
            session_ = std::move(other.session_);
        }
        return *this;
    }

    ~Connection() { reset(); }

    /// Closes the connection (if still running) and waits until its terminal
    /// callback has returned; from its own callback, closes without waiting.
    /// Afterwards this Connection is empty.
    void reset() noexcept
    {
        if (id_ != 0) {
            wsc_close(id_);  // WSC_ERR_CLOSED / WSC_ERR_UNKNOWN_ID: already ending
            wsc_wait(id_, 0xffffffffU);
        }
        id_ = 0;
        session_.reset();
    }

private:
    std::shared_ptr<detail::Session> session_;
};

}  // namespace wsc

#endif /* WSC_HPP */

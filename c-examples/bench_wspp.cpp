// websocketpp (C++, standalone asio) doing the benchmark's work, so wsc is
// compared with the C++ library users actually weigh it against, on the same
// peer, in the same run (examples/bench/peers.rs runs it alternately with raw
// tungstenite).
//
//   bench_wspp MODE URL SIZE N [IDLE_MS]      prints one RESULT line
//
//   pingpong          N round trips of SIZE-byte binary messages; the next
//                     message is sent from the message handler
//   pingpong-thread   the same, but an application thread waits for each
//                     echo and sends the next (websocketpp's send is
//                     thread-safe: it queues and posts the write to asio)
//   stream            N messages pipelined, at most 4 MiB unanswered, sent
//                     from the handlers (websocketpp gathers queued messages
//                     into one write)
//   scale             N idle connections; then one SIZE-byte message each
//
// websocketpp's own shape throughout: one thread runs the asio io_context for
// every connection (asio's resolver adds one idle thread). Reads go through
// 8 KiB like the other clients (websocketpp's default is 16 KiB, a config
// constant), and sockets get TCP_NODELAY, as the tungstenite baseline does.
//
// Every echo is checked: binary, and SIZE bytes. websocketpp masks client
// frames (the peer, tungstenite, refuses unmasked ones).
//
// Build (scripts/bench.sh does this; Debian libwebsocketpp-dev, libasio-dev):
//   c++ -O2 -std=c++17 -DASIO_STANDALONE -D_WEBSOCKETPP_CPP11_STL_ -Iinclude
//       c-examples/bench_wspp.cpp -lpthread -o target/release/bench_wspp
#include "benchutil.h"

#include <websocketpp/client.hpp>
#include <websocketpp/config/asio_no_tls_client.hpp>

#include <string>
#include <thread>
#include <vector>

// asio_client with an 8 KiB read buffer: websocketpp's configs are types, so
// one constant means restating the typedefs that refer to the config itself.
struct bench_config : public websocketpp::config::asio_client {
    typedef bench_config type;
    typedef websocketpp::config::asio_client base;
    typedef base::concurrency_type concurrency_type;
    typedef base::request_type request_type;
    typedef base::response_type response_type;
    typedef base::message_type message_type;
    typedef base::con_msg_manager_type con_msg_manager_type;
    typedef base::endpoint_msg_manager_type endpoint_msg_manager_type;
    typedef base::alog_type alog_type;
    typedef base::elog_type elog_type;
    typedef base::rng_type rng_type;
    struct transport_config : public base::transport_config {
        typedef type::concurrency_type concurrency_type;
        typedef type::alog_type alog_type;
        typedef type::elog_type elog_type;
        typedef type::request_type request_type;
        typedef type::response_type response_type;
        typedef websocketpp::transport::asio::basic_socket::endpoint socket_type;
    };
    typedef websocketpp::transport::asio::endpoint<transport_config> transport_type;
    static const size_t connection_read_buffer_size = 8 << 10;
};

typedef websocketpp::client<bench_config> client;
typedef websocketpp::connection_hdl hdl_t;
using websocketpp::frame::opcode::binary;

enum mode { PINGPONG, PINGPONG_THREAD, STREAM, SCALE };

struct bench {
    client c;
    mode m = PINGPONG;
    std::string payload;
    bench_signal sig;
    // guarded by sig.lock; bumped from the asio thread
    int opened = 0, failed = 0, echoes = 0, closed = 0, done = 0, wrong = 0;
    std::vector<hdl_t> conns; // filled on open, read by main once all are open
    // asio thread only
    bench_rt rt;
    bench_window win;
    bool streaming = false;
};

static bench B;

static void send_one(hdl_t h)
{
    websocketpp::lib::error_code ec;
    B.c.send(h, B.payload.data(), B.payload.size(), binary, ec);
    if (ec)
        std::fprintf(stderr, "bench_wspp: send: %s\n", ec.message().c_str());
}

// As many as the window allows, queued at once.
static void pump(hdl_t h)
{
    while (bench_window_may_send(&B.win)) {
        send_one(h);
        B.win.sent++;
    }
}

static void on_open(hdl_t h)
{
    pthread_mutex_lock(&B.sig.lock);
    B.conns.push_back(h);
    pthread_mutex_unlock(&B.sig.lock);
    if (B.m == PINGPONG || B.m == STREAM)
        send_one(h); // the first, unmeasured message
    bench_bump(&B.sig, &B.opened);
}

static void on_message(hdl_t h, client::message_ptr msg)
{
    size_t len = msg->get_payload().size();
    if (msg->get_opcode() != binary || len != B.payload.size()) {
        std::fprintf(stderr, "bench_wspp: echo of %zu bytes, opcode %d: want %zu, binary\n", len,
                     (int)msg->get_opcode(), B.payload.size());
        bench_bump(&B.sig, &B.wrong);
        return;
    }
    switch (B.m) {
    case PINGPONG:
        if (bench_rt_echo(&B.rt))
            send_one(h);
        else
            bench_bump(&B.sig, &B.done);
        break;
    case PINGPONG_THREAD:
    case SCALE:
        bench_bump(&B.sig, &B.echoes);
        break;
    case STREAM:
        if (!B.streaming) { // the unmeasured first echo
            B.streaming = true;
            bench_window_start(&B.win);
            pump(h);
        } else {
            if (bench_window_received(&B.win))
                pump(h);
            if (B.win.received == B.win.total) {
                bench_window_print(&B.win, B.payload.size());
                bench_bump(&B.sig, &B.done);
            }
        }
        break;
    }
}

static void on_fail(hdl_t h)
{
    websocketpp::lib::error_code ec;
    client::connection_ptr con = B.c.get_con_from_hdl(h, ec);
    std::fprintf(stderr, "bench_wspp: connection failed: %s\n", con ? con->get_ec().message().c_str() : "?");
    bench_bump(&B.sig, &B.failed);
}

// Once TCP is connected (the socket exists from then on).
static void no_delay(hdl_t h)
{
    websocketpp::lib::error_code ec;
    client::connection_ptr con = B.c.get_con_from_hdl(h, ec);
    if (con)
        con->get_socket().set_option(asio::ip::tcp::no_delay(true), ec);
}

static void on_close(hdl_t) { bench_bump(&B.sig, &B.closed); }

static bool connect_one(const std::string &url)
{
    websocketpp::lib::error_code ec;
    client::connection_ptr con = B.c.get_connection(url, ec);
    if (ec) {
        std::fprintf(stderr, "bench_wspp: %s: %s\n", url.c_str(), ec.message().c_str());
        return false;
    }
    B.c.connect(con);
    return true;
}

// Closes every connection politely and waits until each has closed.
static void close_all()
{
    for (hdl_t h : B.conns) {
        websocketpp::lib::error_code ec;
        B.c.close(h, websocketpp::close::status::normal, "", ec);
    }
    bench_wait(&B.sig, &B.closed, (int)B.conns.size(), nullptr);
}

static int fail(const char *what)
{
    std::fprintf(stderr, "bench_wspp: %s\n", what);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 5 || argc > 6) {
        std::fprintf(stderr, "usage: %s pingpong|pingpong-thread|stream|scale URL SIZE N [IDLE_MS]\n", argv[0]);
        return 2;
    }
    std::string m = argv[1], url = argv[2];
    if (m == "pingpong")
        B.m = PINGPONG;
    else if (m == "pingpong-thread")
        B.m = PINGPONG_THREAD;
    else if (m == "stream")
        B.m = STREAM;
    else if (m == "scale")
        B.m = SCALE;
    else
        return fail("unknown mode");
    size_t size = std::strtoul(argv[3], nullptr, 10);
    int n = std::atoi(argv[4]);
    long idle_ms = argc > 5 ? std::atol(argv[5]) : 0;
    if (n <= 0)
        return 2;
    B.payload.assign(size, 'a');
    bench_signal_init(&B.sig);
    if ((B.m == PINGPONG || B.m == PINGPONG_THREAD) && !bench_rt_init(&B.rt, (size_t)n))
        return 2;
    if (B.m == STREAM)
        bench_window_init(&B.win, size, (uint64_t)n);
    bench_raise_nofile();

    bench_footprint base = bench_footprint_now(); // scale: the process before the library
    B.c.clear_access_channels(websocketpp::log::alevel::all);
    B.c.clear_error_channels(websocketpp::log::elevel::all);
    B.c.init_asio();
    B.c.start_perpetual();
    B.c.set_tcp_post_init_handler(no_delay);
    B.c.set_open_handler(on_open);
    B.c.set_message_handler(on_message);
    B.c.set_fail_handler(on_fail);
    B.c.set_close_handler(on_close);

    struct timespec t0 = bench_clock();
    int want = B.m == SCALE ? n : 1;
    for (int i = 0; i < want; i++)
        if (!connect_one(url))
            return 1;
    std::thread loop([] { B.c.run(); });
    bool opened = bench_wait(&B.sig, &B.opened, want, &B.failed) && !B.failed;
    double open_s = bench_secs(bench_clock()) - bench_secs(t0);
    int status = 0;
    if (!opened) {
        std::fprintf(stderr, "bench_wspp: %d of %d connections open, %d failed\n", B.opened, want, B.failed);
        status = 1;
    } else if (B.m == SCALE) {
        bench_scale s;
        std::memset(&s, 0, sizeof s);
        s.open_s = open_s;
        bench_settle(idle_ms);
        bench_scale_footprint(&s, base, n);
        bench_scale_idle(&s, idle_ms);
        t0 = bench_clock();
        for (hdl_t h : B.conns)
            send_one(h);
        if (!bench_wait(&B.sig, &B.echoes, n, &B.wrong) || B.wrong) {
            status = fail("not every echo arrived");
        } else {
            s.echo_ms = (bench_secs(bench_clock()) - bench_secs(t0)) * 1e3;
            bench_scale_print(&s);
        }
    } else {
        bool ok = true;
        if (B.m == PINGPONG_THREAD) {
            int k = 0;
            do { // this thread is the application: send, wait for the echo
                send_one(B.conns[0]);
                ok = bench_wait(&B.sig, &B.echoes, ++k, &B.wrong) && !B.wrong;
            } while (ok && bench_rt_echo(&B.rt));
        } else {
            ok = bench_wait(&B.sig, &B.done, 1, &B.wrong) && !B.wrong;
        }
        if (!ok)
            status = fail("the run did not complete");
        else if (B.m != STREAM)
            bench_rt_print(&B.rt);
    }
    close_all();
    B.c.stop_perpetual();
    if (status)
        B.c.stop();
    loop.join();
    return status;
}

// net::asyncReadSomeDrainAware: after a short read it waits for the next epoll edge instead of
// trying a recv() at once. These tests check that nothing is lost or stuck that way: bytes
// that arrive later, bytes left over after a full buffer, end of stream, and both ways of
// cancelling a pending read (socket.cancel() and a cancellation slot, as `a || b` uses).
#include <chrono>
#include <string>

#include <gtest/gtest.h>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include "net/drain_aware_read.h"

namespace archway::net {
namespace {

using asio::ip::tcp;
using namespace std::chrono_literals;
constexpr auto kTuple = asio::experimental::as_tuple(asio::use_awaitable);

struct Pair {
  asio::io_context io{1};
  tcp::socket reader{io};
  tcp::socket writer{io};
  ReactorHandle reactor = nullptr;
  Pair() {
    tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    writer.connect(acceptor.local_endpoint());
    reader = acceptor.accept();
    reactor = reactorOf(reader);
  }
  asio::awaitable<std::pair<std::error_code, size_t>> read(char* buf, size_t n) {
    auto [ec, got] = co_await asio::async_initiate<decltype(kTuple), void(std::error_code, size_t)>(
        [this, buf, n](auto handler) {
          asyncReadSomeDrainAware(reader, reactor, asio::buffer(buf, n), std::move(handler));
        },
        kTuple);
    co_return std::make_pair(ec, got);
  }
  // Runs the io_context until `done` or 5 s pass (a lost wake-up fails, never hangs).
  void runUntil(const bool& done) {
    auto deadline = std::chrono::steady_clock::now() + 5s;
    while (!done && std::chrono::steady_clock::now() < deadline) {
      io.run_for(10ms);
      io.restart();
    }
  }
};

TEST(DrainAwareRead, BytesArrivingAfterAShortReadAreRead) {
  Pair p;
  std::string got;
  bool done = false;
  asio::co_spawn(
      p.io,
      [&]() -> asio::awaitable<void> {
        char buf[64];
        asio::write(p.writer, asio::buffer("abc", 3));
        auto [ec1, n1] = co_await p.read(buf, sizeof buf);  // short: waits for an edge next
        EXPECT_FALSE(ec1);
        got.append(buf, n1);
        asio::steady_timer t(p.io, 20ms);
        t.async_wait([&](std::error_code) { asio::write(p.writer, asio::buffer("defg", 4)); });
        auto [ec2, n2] = co_await p.read(buf, sizeof buf);
        EXPECT_FALSE(ec2);
        got.append(buf, n2);
        done = true;
      },
      asio::detached);
  p.runUntil(done);
  EXPECT_TRUE(done);
  EXPECT_EQ(got, "abcdefg");
}

TEST(DrainAwareRead, AFullBufferLeavesTheRestReadableAtOnce) {
  Pair p;
  std::string got;
  bool done = false;
  asio::write(p.writer, asio::buffer(std::string(10, 'x')));
  asio::co_spawn(
      p.io,
      [&]() -> asio::awaitable<void> {
        char buf[4];
        while (got.size() < 10) {
          auto [ec, n] = co_await p.read(buf, sizeof buf);
          if (ec) break;
          got.append(buf, n);
        }
        done = true;
      },
      asio::detached);
  p.runUntil(done);
  EXPECT_EQ(got, std::string(10, 'x'));
}

TEST(DrainAwareRead, EndOfStreamAfterAShortRead) {
  Pair p;
  std::error_code last;
  bool done = false;
  asio::co_spawn(
      p.io,
      [&]() -> asio::awaitable<void> {
        char buf[16];
        asio::write(p.writer, asio::buffer("hi", 2));
        auto [ec1, n1] = co_await p.read(buf, sizeof buf);
        EXPECT_FALSE(ec1);
        EXPECT_EQ(n1, 2u);
        asio::steady_timer t(p.io, 20ms);
        t.async_wait([&](std::error_code) { p.writer.shutdown(tcp::socket::shutdown_send); });
        auto [ec2, n2] = co_await p.read(buf, sizeof buf);
        last = ec2;
        EXPECT_EQ(n2, 0u);
        done = true;
      },
      asio::detached);
  p.runUntil(done);
  EXPECT_TRUE(done);
  EXPECT_EQ(last, asio::error::eof);
}

// The peer's last bytes and its FIN are both there before the first read (one epoll edge
// for both): the read after the bytes must still see the end of stream, not wait for an
// edge that never comes (a client that half-closes after its request).
TEST(DrainAwareRead, EndOfStreamThatCameWithTheLastBytes) {
  for (size_t bufSize : {16, 3, 2}) {  // short read, exactly full, and the smallest buffer
    Pair p;
    std::string got;
    std::error_code last;
    bool done = false;
    asio::write(p.writer, asio::buffer("hi!", 3));
    p.writer.shutdown(tcp::socket::shutdown_send);
    asio::co_spawn(
        p.io,
        [&]() -> asio::awaitable<void> {
          char buf[16];
          for (;;) {
            auto [ec, n] = co_await p.read(buf, bufSize);
            got.append(buf, n);
            if (ec) {
              last = ec;
              break;
            }
          }
          done = true;
        },
        asio::detached);
    p.runUntil(done);
    EXPECT_TRUE(done) << "buffer " << bufSize;
    EXPECT_EQ(got, "hi!") << "buffer " << bufSize;
    EXPECT_EQ(last, asio::error::eof) << "buffer " << bufSize;
  }
}

// A peer that resets right behind its last bytes: the reset must end the read at once, not
// wait for an edge that never comes (a relay would hold the other side open until its idle
// timeout). Both orders: bytes and reset in one wake-up while a read waits (recvmmsg then
// reports the pending reset before the bytes), and a reset while the read after the bytes
// waits.
TEST(DrainAwareRead, ResetRightBehindTheLastBytesEndsTheRead) {
  for (bool readBytesFirst : {false, true}) {
    for (size_t bufSize : {16, 3, 2}) {
      Pair p;
      std::string got;
      std::error_code last;
      bool done = false;
      auto reset = [&] {
        p.writer.set_option(asio::socket_base::linger(true, 0));
        p.writer.close();  // RST
      };
      asio::co_spawn(
          p.io,
          [&]() -> asio::awaitable<void> {
            char buf[16];
            asio::steady_timer t(p.io, 20ms);
            if (readBytesFirst) {
              asio::write(p.writer, asio::buffer("hi!", 3));
              t.async_wait([&](std::error_code) { reset(); });
            } else {
              // Queued before anything is there: one wake-up reports both.
              t.async_wait([&](std::error_code) {
                asio::write(p.writer, asio::buffer("hi!", 3));
                reset();
              });
            }
            for (;;) {
              auto [ec, n] = co_await p.read(buf, bufSize);
              got.append(buf, n);
              if (ec) {
                last = ec;
                break;
              }
            }
            done = true;
          },
          asio::detached);
      p.runUntil(done);
      std::string what =
          "buffer " + std::to_string(bufSize) + (readBytesFirst ? " bytes first" : "");
      EXPECT_TRUE(done) << what;
      EXPECT_EQ(last, asio::error::connection_reset) << what;
      if (readBytesFirst) {
        EXPECT_EQ(got, "hi!") << what;
      }
      EXPECT_EQ(std::string("hi!").substr(0, got.size()), got) << what;
    }
  }
}

TEST(DrainAwareRead, SocketCancelEndsAPendingRead) {
  Pair p;
  std::error_code last;
  bool done = false;
  asio::co_spawn(
      p.io,
      [&]() -> asio::awaitable<void> {
        char buf[16];
        asio::steady_timer t(p.io, 20ms);
        t.async_wait([&](std::error_code) { p.reader.cancel(); });
        auto [ec, n] = co_await p.read(buf, sizeof buf);
        last = ec;
        done = true;
      },
      asio::detached);
  p.runUntil(done);
  EXPECT_TRUE(done);
  EXPECT_EQ(last, asio::error::operation_aborted);
}

TEST(DrainAwareRead, TheLosingReadOfAnOrIsCancelledAndTheSocketStaysUsable) {
  using namespace asio::experimental::awaitable_operators;
  Pair p;
  bool timerWon = false, done = false;
  std::string after;
  asio::co_spawn(
      p.io,
      [&]() -> asio::awaitable<void> {
        char buf[16];
        asio::steady_timer t(p.io, 20ms);
        auto winner = co_await (p.read(buf, sizeof buf) || t.async_wait(kTuple));
        timerWon = winner.index() == 1;
        asio::write(p.writer, asio::buffer("ok", 2));
        auto [ec, n] = co_await p.read(buf, sizeof buf);
        if (!ec) after.assign(buf, n);
        done = true;
      },
      asio::detached);
  p.runUntil(done);
  EXPECT_TRUE(done);
  EXPECT_TRUE(timerWon);
  EXPECT_EQ(after, "ok");
}

}  // namespace
}  // namespace archway::net

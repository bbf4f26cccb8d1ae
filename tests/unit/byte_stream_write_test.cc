// ByteStream::tryWriteNow (the direct write before an asynchronous one) and buffersAfter
// (what is left for the asynchronous write): a full socket takes part of a write and then
// nothing, and the bytes the peer reads are exactly the ones reported written.
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/read.hpp>

#include "net/byte_stream.h"

namespace archway::net {
namespace {

using asio::ip::tcp;

std::string joined(const std::vector<asio::const_buffer>& bufs) {
  std::string out;
  for (const auto& b : bufs) out.append(static_cast<const char*>(b.data()), b.size());
  return out;
}

// A connected loopback pair: (client, server).
std::pair<tcp::socket, tcp::socket> connectedPair(asio::io_context& io) {
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  tcp::socket client(io);
  client.connect(acceptor.local_endpoint());
  tcp::socket server = acceptor.accept();
  return {std::move(client), std::move(server)};
}

TEST(BuffersAfter, SkipsWholeBuffersThenPartOfOne) {
  std::string a = "head", b = "body-bytes", c = "tail";
  std::vector<asio::const_buffer> bufs{asio::buffer(a), asio::buffer(b), asio::buffer(c)};
  EXPECT_EQ(joined(buffersAfter(bufs, 0)), "headbody-bytestail");
  EXPECT_EQ(buffersAfter(bufs, 0).size(), 3u);
  EXPECT_EQ(joined(buffersAfter(bufs, 4)), "body-bytestail");
  EXPECT_EQ(buffersAfter(bufs, 4).size(), 2u);
  EXPECT_EQ(joined(buffersAfter(bufs, 9)), "bytestail");
  EXPECT_EQ(joined(buffersAfter(bufs, 18)), "");
  EXPECT_TRUE(buffersAfter(bufs, 18).empty());
}

TEST(TryWriteNow, TakesWhatFitsThenNothingAndThePeerReadsExactlyThat) {
  asio::io_context io{1};
  auto [client, server] = connectedPair(io);
  client.set_option(asio::socket_base::send_buffer_size(4096));
  ByteStream stream(std::move(client));

  std::string payload(8 << 20, '\0');
  for (size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>(i * 7 + i / 251);
  std::string head = "HEAD";
  std::vector<asio::const_buffer> bufs{asio::buffer(head), asio::buffer(payload)};

  size_t sent = stream.tryWriteNow(bufs);
  ASSERT_GT(sent, head.size());  // the head and part of the payload
  // Nobody reads: the socket fills up and then takes nothing, without blocking.
  size_t more = 1;
  for (int i = 0; i < 10000 && more > 0; ++i) {
    more = stream.tryWriteNow(buffersAfter(bufs, sent));
    sent += more;
  }
  EXPECT_EQ(more, 0u);
  ASSERT_LT(sent, head.size() + payload.size());

  std::string got(sent, '\0');
  asio::read(server, asio::buffer(got));
  EXPECT_EQ(got, (head + payload).substr(0, sent));

  std::error_code ec;
  server.close(ec);
  stream.close(ec);
  EXPECT_EQ(stream.tryWriteNow(bufs), 0u);  // a closed stream reports nothing written
}

TEST(TryWriteNow, SmallBuffersGoOutTogetherInOrder) {
  // Up to kWriteNowGatherBytes, several buffers (an empty one among them) are copied into one
  // send(); one byte more takes the sendmsg() path. The peer reads the same bytes either way.
  asio::io_context io{1};
  auto [client, server] = connectedPair(io);
  ByteStream stream(std::move(client));
  for (size_t total : {kWriteNowGatherBytes, kWriteNowGatherBytes + 1}) {
    std::string head = "HTTP/1.1 200 OK\r\n\r\n";
    std::string body(total - head.size(), 'b');
    for (size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>('a' + i % 26);
    std::vector<asio::const_buffer> bufs{asio::buffer(head), asio::const_buffer(),
                                         asio::buffer(body)};
    ASSERT_EQ(stream.tryWriteNow(bufs), total);
    std::string got(total, '\0');
    asio::read(server, asio::buffer(got));
    EXPECT_EQ(got, head + body);
  }
}

}  // namespace
}  // namespace archway::net

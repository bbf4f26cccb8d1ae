// ClientHello parser against real ClientHellos produced by OpenSSL's client, fed whole,
// byte by byte, and re-framed over many small records; plus garbage and limits.
#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/ssl.h>

#include <string>

#include "tls/client_hello.h"

namespace archway::tls {
namespace {

// The first flight of an OpenSSL client (one record holding the ClientHello).
std::string makeClientHello(const char* sni, const unsigned char* alpn, unsigned alpnLen) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL* ssl = SSL_new(ctx);
  BIO* rbio = BIO_new(BIO_s_mem());
  BIO* wbio = BIO_new(BIO_s_mem());
  SSL_set_bio(ssl, rbio, wbio);
  if (sni) SSL_set_tlsext_host_name(ssl, sni);
  if (alpn) SSL_set_alpn_protos(ssl, alpn, alpnLen);
  SSL_connect(ssl);  // wants to read the ServerHello: returns -1, the hello is in wbio
  char* data = nullptr;
  long n = BIO_get_mem_data(wbio, &data);
  std::string out(data, static_cast<size_t>(n));
  SSL_free(ssl);
  SSL_CTX_free(ctx);
  return out;
}

// Re-frames the handshake bytes of `hello` (one record) into records of `chunk` bytes.
std::string reframe(const std::string& hello, size_t chunk) {
  std::string hs = hello.substr(5);
  std::string out;
  for (size_t i = 0; i < hs.size(); i += chunk) {
    std::string part = hs.substr(i, chunk);
    out.push_back(22);
    out.push_back(3);
    out.push_back(1);
    out.push_back(static_cast<char>(part.size() >> 8));
    out.push_back(static_cast<char>(part.size() & 0xff));
    out += part;
  }
  return out;
}

const unsigned char kAlpn[] = "\x02h2\x08http/1.1";

TEST(ClientHello, ParsesSniAndAlpn) {
  std::string hello = makeClientHello("Foo.Example.com", kAlpn, sizeof(kAlpn) - 1);
  ClientHelloInfo info;
  ASSERT_EQ(parseClientHello(hello, &info), HelloStatus::kOk);
  EXPECT_EQ(info.serverName, "foo.example.com");
  ASSERT_EQ(info.alpn.size(), 2u);
  EXPECT_EQ(info.alpn[0], "h2");
  EXPECT_EQ(info.alpn[1], "http/1.1");
  EXPECT_EQ(info.bytes, hello.size());
}

TEST(ClientHello, NoSni) {
  std::string hello = makeClientHello(nullptr, nullptr, 0);
  ClientHelloInfo info;
  ASSERT_EQ(parseClientHello(hello, &info), HelloStatus::kOk);
  EXPECT_TRUE(info.serverName.empty());
  EXPECT_TRUE(info.alpn.empty());
}

TEST(ClientHello, EveryPrefixNeedsMore) {
  std::string hello = makeClientHello("a.example.com", kAlpn, sizeof(kAlpn) - 1);
  ClientHelloInfo info;
  for (size_t n = 0; n < hello.size(); ++n)
    ASSERT_EQ(parseClientHello(std::string_view(hello).substr(0, n), &info), HelloStatus::kNeedMore)
        << "prefix " << n;
  // Bytes after the hello (early data, a next record) do not matter.
  ASSERT_EQ(parseClientHello(hello + "\x17\x03\x03", &info), HelloStatus::kOk);
  EXPECT_EQ(info.serverName, "a.example.com");
}

TEST(ClientHello, SpansSeveralRecords) {
  std::string hello = makeClientHello("multi.example.com", kAlpn, sizeof(kAlpn) - 1);
  for (size_t chunk : {1u, 7u, 100u, 300u}) {
    std::string framed = reframe(hello, chunk);
    ClientHelloInfo info;
    for (size_t n = 0; n < framed.size(); n += 13)
      ASSERT_EQ(parseClientHello(std::string_view(framed).substr(0, n), &info),
                HelloStatus::kNeedMore);
    ASSERT_EQ(parseClientHello(framed, &info), HelloStatus::kOk) << "chunk " << chunk;
    EXPECT_EQ(info.serverName, "multi.example.com");
    EXPECT_EQ(info.bytes, framed.size());
  }
}

TEST(ClientHello, RejectsGarbageEarly) {
  ClientHelloInfo info;
  EXPECT_EQ(parseClientHello("GET / HTTP/1.1\r\n", &info), HelloStatus::kNotTls);
  EXPECT_EQ(parseClientHello("G", &info), HelloStatus::kNotTls);
  EXPECT_EQ(parseClientHello(std::string("\x16\x09", 2), &info), HelloStatus::kNotTls);
  // A handshake record that is not a ClientHello (ServerHello type 2).
  EXPECT_EQ(parseClientHello(std::string("\x16\x03\x01\x00\x10\x02", 6), &info),
            HelloStatus::kNotTls);
  // Zero-length and over-long records.
  EXPECT_EQ(parseClientHello(std::string("\x16\x03\x01\x00\x00", 5), &info), HelloStatus::kNotTls);
  EXPECT_EQ(parseClientHello(std::string("\x16\x03\x01\x48\x01", 5), &info), HelloStatus::kNotTls);
}

TEST(ClientHello, RejectsOversizedHandshake) {
  // A handshake header announcing more than kMaxClientHelloBytes.
  std::string rec("\x16\x03\x01\x00\x04\x01\x7f\xff\xff", 9);
  ClientHelloInfo info;
  EXPECT_EQ(parseClientHello(rec, &info), HelloStatus::kNotTls);
  // Records that never finish a plausible hello stop at the byte limit.
  std::string hs("\x01\x00\xff\xff", 4);  // 65535-byte ClientHello: over the limit
  std::string framed;
  framed += std::string("\x16\x03\x01\x00\x04", 5) + hs;
  EXPECT_EQ(parseClientHello(framed, &info), HelloStatus::kNotTls);
  // The oversized announcement is visible before the (large) record is complete: reject
  // at once instead of waiting for bytes the client may never send.
  std::string partial("\x16\x03\x01\x40\x00\x01\xff\xff\xff", 9);
  EXPECT_EQ(parseClientHello(partial, &info), HelloStatus::kNotTls);
}

TEST(ClientHello, RejectsCorruptLengths) {
  std::string hello = makeClientHello("x.example.com", kAlpn, sizeof(kAlpn) - 1);
  ClientHelloInfo info;
  // Flip every byte of the body in turn: never crash, never claim a different SNI length.
  for (size_t i = 5; i < hello.size(); ++i) {
    std::string h = hello;
    h[i] = static_cast<char>(h[i] ^ 0xff);
    HelloStatus s = parseClientHello(h, &info);
    if (s == HelloStatus::kOk) {
      EXPECT_LE(info.serverName.size(), 255u);
    }
  }
}

}  // namespace
}  // namespace archway::tls

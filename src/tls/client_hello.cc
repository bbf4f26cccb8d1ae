#include "tls/client_hello.h"

#include <algorithm>

namespace archway::tls {

namespace {

constexpr uint8_t kHandshakeRecord = 22;
constexpr uint8_t kClientHelloType = 1;
constexpr size_t kRecordHeader = 5;
// TLSPlaintext.length must not exceed 2^14 (RFC 8446 §5.1).
constexpr size_t kMaxRecordPayload = 16384;
constexpr uint16_t kExtServerName = 0;
constexpr uint16_t kExtAlpn = 16;
constexpr uint8_t kHostName = 0;
constexpr size_t kMaxHostNameLength = 255;

// Bounds-checked reader over a byte span.
class Reader {
 public:
  explicit Reader(std::string_view d) : d_(d) {}
  bool u8(uint8_t* v) {
    if (d_.size() < 1) return false;
    *v = static_cast<uint8_t>(d_[0]);
    d_.remove_prefix(1);
    return true;
  }
  bool u16(uint16_t* v) {
    if (d_.size() < 2) return false;
    *v = static_cast<uint16_t>((static_cast<uint8_t>(d_[0]) << 8) | static_cast<uint8_t>(d_[1]));
    d_.remove_prefix(2);
    return true;
  }
  bool u24(uint32_t* v) {
    if (d_.size() < 3) return false;
    *v = (static_cast<uint32_t>(static_cast<uint8_t>(d_[0])) << 16) |
         (static_cast<uint32_t>(static_cast<uint8_t>(d_[1])) << 8) | static_cast<uint8_t>(d_[2]);
    d_.remove_prefix(3);
    return true;
  }
  bool bytes(size_t n, std::string_view* out) {
    if (d_.size() < n) return false;
    *out = d_.substr(0, n);
    d_.remove_prefix(n);
    return true;
  }
  // A vector with an 8- or 16-bit length prefix.
  bool vec8(std::string_view* out) {
    uint8_t n;
    return u8(&n) && bytes(n, out);
  }
  bool vec16(std::string_view* out) {
    uint16_t n;
    return u16(&n) && bytes(n, out);
  }
  bool empty() const { return d_.empty(); }

 private:
  std::string_view d_;
};

bool validHostName(std::string_view h) {
  if (h.empty() || h.size() > kMaxHostNameLength) return false;
  for (char c : h) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.' || c == '_';
    if (!ok) return false;
  }
  return true;
}

HelloStatus parseExtensions(std::string_view exts, ClientHelloInfo* info) {
  Reader r(exts);
  bool seenSni = false, seenAlpn = false;
  while (!r.empty()) {
    uint16_t type;
    std::string_view body;
    if (!r.u16(&type) || !r.vec16(&body)) return HelloStatus::kNotTls;
    if (type == kExtServerName) {
      if (seenSni) return HelloStatus::kNotTls;  // duplicate extensions are illegal
      seenSni = true;
      Reader s(body);
      std::string_view list;
      if (!s.vec16(&list) || !s.empty()) return HelloStatus::kNotTls;
      Reader l(list);
      while (!l.empty()) {
        uint8_t nameType;
        std::string_view name;
        if (!l.u8(&nameType) || !l.vec16(&name)) return HelloStatus::kNotTls;
        if (nameType != kHostName) continue;
        if (!info->serverName.empty()) return HelloStatus::kNotTls;  // one host_name only
        if (!validHostName(name)) return HelloStatus::kNotTls;
        info->serverName.assign(name);
        for (auto& c : info->serverName)
          if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
        // A trailing dot names the same host.
        if (info->serverName.back() == '.') info->serverName.pop_back();
        if (info->serverName.empty()) return HelloStatus::kNotTls;
      }
    } else if (type == kExtAlpn) {
      if (seenAlpn) return HelloStatus::kNotTls;
      seenAlpn = true;
      Reader s(body);
      std::string_view list;
      if (!s.vec16(&list) || !s.empty()) return HelloStatus::kNotTls;
      Reader l(list);
      while (!l.empty()) {
        std::string_view proto;
        if (!l.vec8(&proto) || proto.empty()) return HelloStatus::kNotTls;
        info->alpn.emplace_back(proto);
      }
    }
  }
  return HelloStatus::kOk;
}

HelloStatus parseBody(std::string_view body, ClientHelloInfo* info) {
  Reader r(body);
  std::string_view random, sessionId, ciphers, compression, exts;
  if (!r.u16(&info->legacyVersion)) return HelloStatus::kNotTls;
  if (!r.bytes(32, &random)) return HelloStatus::kNotTls;
  if (!r.vec8(&sessionId) || sessionId.size() > 32) return HelloStatus::kNotTls;
  if (!r.vec16(&ciphers) || ciphers.empty() || ciphers.size() % 2 != 0) return HelloStatus::kNotTls;
  if (!r.vec8(&compression) || compression.empty()) return HelloStatus::kNotTls;
  if (r.empty()) return HelloStatus::kOk;  // no extensions (pre-TLS 1.2 style)
  if (!r.vec16(&exts) || !r.empty()) return HelloStatus::kNotTls;
  return parseExtensions(exts, info);
}

}  // namespace

HelloStatus parseClientHello(std::string_view data, ClientHelloInfo* info) {
  *info = ClientHelloInfo{};
  // Reassemble the handshake layer from as many records as it takes.
  std::string handshake;
  size_t pos = 0;
  for (;;) {
    if (handshake.size() >= 4) {
      uint32_t len = (static_cast<uint32_t>(static_cast<uint8_t>(handshake[1])) << 16) |
                     (static_cast<uint32_t>(static_cast<uint8_t>(handshake[2])) << 8) |
                     static_cast<uint8_t>(handshake[3]);
      if (len + 4 > kMaxClientHelloBytes) return HelloStatus::kNotTls;
      if (handshake.size() >= len + 4) {
        // Records after the ClientHello are not ours to check; bytes after it in the same
        // record would be a second handshake message, which a client cannot send yet.
        if (handshake.size() != len + 4) return HelloStatus::kNotTls;
        info->bytes = pos;
        HelloStatus s = parseBody(std::string_view(handshake).substr(4, len), info);
        if (s != HelloStatus::kOk) {
          *info = ClientHelloInfo{};
          return s;
        }
        info->bytes = pos;
        return s;
      }
    }
    if (pos >= kMaxClientHelloBytes) return HelloStatus::kNotTls;
    // Validate as much of the next record header as we have, so garbage fails fast.
    std::string_view rest = data.substr(pos);
    if (rest.empty()) return HelloStatus::kNeedMore;
    if (static_cast<uint8_t>(rest[0]) != kHandshakeRecord) return HelloStatus::kNotTls;
    if (rest.size() >= 2 && static_cast<uint8_t>(rest[1]) != 3) return HelloStatus::kNotTls;
    if (rest.size() < kRecordHeader) return HelloStatus::kNeedMore;
    size_t len =
        (static_cast<size_t>(static_cast<uint8_t>(rest[3])) << 8) | static_cast<uint8_t>(rest[4]);
    if (len == 0 || len > kMaxRecordPayload) return HelloStatus::kNotTls;
    if (pos + kRecordHeader + len > kMaxClientHelloBytes) return HelloStatus::kNotTls;
    if (rest.size() < kRecordHeader + len) {
      // Check the handshake type as soon as it is visible.
      if (handshake.empty() && rest.size() > kRecordHeader &&
          static_cast<uint8_t>(rest[kRecordHeader]) != kClientHelloType)
        return HelloStatus::kNotTls;
      // And the announced ClientHello length, so an oversized one fails without waiting
      // for bytes the client may never send.
      std::string header = handshake;
      header.append(rest.substr(kRecordHeader, std::min<size_t>(4, rest.size() - kRecordHeader)));
      if (header.size() >= 4) {
        uint32_t announced = (static_cast<uint32_t>(static_cast<uint8_t>(header[1])) << 16) |
                             (static_cast<uint32_t>(static_cast<uint8_t>(header[2])) << 8) |
                             static_cast<uint8_t>(header[3]);
        if (announced + 4 > kMaxClientHelloBytes) return HelloStatus::kNotTls;
      }
      return HelloStatus::kNeedMore;
    }
    handshake.append(rest.substr(kRecordHeader, len));
    pos += kRecordHeader + len;
    if (static_cast<uint8_t>(handshake[0]) != kClientHelloType) return HelloStatus::kNotTls;
  }
}

}  // namespace archway::tls

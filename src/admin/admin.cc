#include "admin/admin.h"

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/steady_timer.hpp>
#include <asio/write.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "http/stream.h"
#include "net/limits.h"

namespace archway::admin {

using http::kNoThrow;

bool splitHostPort(const std::string& s, std::string* host, uint16_t* port) {
  size_t colon;
  if (!s.empty() && s[0] == '[') {
    size_t close = s.find(']');
    if (close == std::string::npos || close + 1 >= s.size() || s[close + 1] != ':') return false;
    *host = s.substr(1, close - 1);
    colon = close + 1;
  } else {
    colon = s.rfind(':');
    if (colon == std::string::npos) return false;
    *host = s.substr(0, colon);
  }
  std::string p = s.substr(colon + 1);
  if (p.empty() || p.size() > 5) return false;
  uint32_t v = 0;
  for (char c : p) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint32_t>(c - '0');
  }
  if (v > 65535) return false;
  *port = static_cast<uint16_t>(v);
  if (host->empty()) *host = "127.0.0.1";
  return true;
}

AdminServer::AdminServer(asio::io_context& io, AdminHandlers handlers)
    : io_(io), handlers_(std::move(handlers)), acceptor_(io) {}

bool AdminServer::listen(const std::string& address, std::string* error) {
  std::string host;
  uint16_t port = 0;
  if (!splitHostPort(address, &host, &port)) {
    *error = fmt::format("--admin-address {}: expected host:port", address);
    return false;
  }
  std::error_code ec;
  auto ip = asio::ip::make_address(host, ec);
  if (ec) {
    *error = fmt::format("--admin-address {}: {} is not an IP address", address, host);
    return false;
  }
  asio::ip::tcp::endpoint ep(ip, port);
  acceptor_.open(ep.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(ep, ec);
  if (!ec) acceptor_.listen(64, ec);
  if (ec) {
    *error = fmt::format("admin listener {}: {}", address, ec.message());
    return false;
  }
  asio::co_spawn(io_, acceptLoop(), asio::detached);
  return true;
}

void AdminServer::close() {
  std::error_code ec;
  acceptor_.close(ec);
}

asio::awaitable<void> AdminServer::acceptLoop() {
  for (;;) {
    auto [ec, socket] = co_await acceptor_.async_accept(kNoThrow);
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) co_return;
    if (ec) continue;
    asio::co_spawn(io_, handle(std::move(socket)), asio::detached);
  }
}

asio::awaitable<void> AdminServer::handle(asio::ip::tcp::socket s) {
  auto shared = std::make_shared<asio::ip::tcp::socket>(std::move(s));
  asio::ip::tcp::socket& socket = *shared;
  asio::steady_timer timer(io_);
  timer.expires_after(net::kAdminReadTimeout);
  timer.async_wait([weak = std::weak_ptr<asio::ip::tcp::socket>(shared)](std::error_code ec) {
    auto sock = weak.lock();
    if (!ec && sock) {
      std::error_code ignored;
      sock->cancel(ignored);
    }
  });
  std::string req;
  char buf[4096];
  while (req.find("\r\n\r\n") == std::string::npos && req.find("\n\n") == std::string::npos) {
    auto [ec, n] = co_await socket.async_read_some(asio::buffer(buf), kNoThrow);
    if (ec) {
      timer.cancel();
      co_return;
    }
    req.append(buf, n);
    if (req.size() > net::kMaxAdminRequestBytes) break;
  }
  timer.cancel();
  std::string method, target;
  {
    size_t sp1 = req.find(' ');
    size_t sp2 = sp1 == std::string::npos ? std::string::npos : req.find(' ', sp1 + 1);
    if (sp2 != std::string::npos) {
      method = req.substr(0, sp1);
      target = req.substr(sp1 + 1, sp2 - sp1 - 1);
    }
  }
  std::string path = target.substr(0, target.find('?'));
  int status = 200;
  std::string type = "text/plain; charset=utf-8";
  std::string body;
  if (method != "GET" && method != "HEAD") {
    status = method.empty() ? 400 : 405;
    body = "only GET\n";
  } else if (path == "/ready") {
    bool ok = handlers_.ready();
    status = ok ? 200 : 503;
    body = ok ? "ready\n" : "not ready\n";
  } else if (path == "/healthz") {
    body = "ok\n";
  } else if (path == "/status") {
    type = "application/json";
    body = handlers_.status();
  } else if (path == "/metrics") {
    type = "text/plain; version=0.0.4; charset=utf-8";
    body = handlers_.metrics();
  } else if (path == "/config") {
    type = "application/json";
    body = handlers_.config();
  } else {
    status = 404;
    body = "endpoints: /ready /healthz /status /metrics /config\n";
  }
  std::string head = fmt::format(
      "HTTP/1.1 {} {}\r\ncontent-type: {}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
      status, http::reasonPhrase(status), type, body.size());
  std::array<asio::const_buffer, 2> bufs{asio::buffer(head), asio::buffer(body)};
  if (method == "HEAD") bufs[1] = asio::const_buffer();
  co_await asio::async_write(socket, bufs, kNoThrow);
  std::error_code ec;
  socket.shutdown(asio::ip::tcp::socket::shutdown_both, ec);
}

// ---------------------------------------------------------------------------------------

namespace {

using nlohmann::json;

const char* protocolName(snapshot::Protocol p) {
  switch (p) {
    case snapshot::Protocol::kHttp: return "HTTP";
    case snapshot::Protocol::kHttps: return "HTTPS";
    case snapshot::Protocol::kTls: return "TLS";
    case snapshot::Protocol::kTcp: return "TCP";
    case snapshot::Protocol::kUdp: return "UDP";
  }
  return "?";
}

const char* matchTypeName(snapshot::MatchType t) {
  switch (t) {
    case snapshot::MatchType::kExact: return "Exact";
    case snapshot::MatchType::kPathPrefix: return "PathPrefix";
    case snapshot::MatchType::kRegularExpression: return "RegularExpression";
  }
  return "?";
}

json pathModifier(const snapshot::PathModifier& m) {
  switch (m.type) {
    case snapshot::PathModifierType::kNone: return nullptr;
    case snapshot::PathModifierType::kReplaceFullPath: return {{"replaceFullPath", m.value}};
    case snapshot::PathModifierType::kReplacePrefixMatch: return {{"replacePrefixMatch", m.value}};
  }
  return nullptr;
}

json headerModifier(const snapshot::HeaderModifier& m) {
  json j = json::object();
  if (!m.set.empty()) j["set"] = m.set;
  if (!m.add.empty()) j["add"] = m.add;
  if (!m.remove.empty()) j["remove"] = m.remove;
  return j;
}

json filterJson(const snapshot::HttpFilter& f) {
  using T = snapshot::HttpFilter::Type;
  switch (f.type) {
    case T::kRequestHeaderModifier: return {{"requestHeaderModifier", headerModifier(f.headers)}};
    case T::kResponseHeaderModifier: return {{"responseHeaderModifier", headerModifier(f.headers)}};
    case T::kRequestRedirect: {
      json r = {{"statusCode", f.redirect.statusCode}};
      if (f.redirect.scheme) r["scheme"] = *f.redirect.scheme;
      if (f.redirect.hostname) r["hostname"] = *f.redirect.hostname;
      if (f.redirect.port) r["port"] = *f.redirect.port;
      if (auto p = pathModifier(f.redirect.path); !p.is_null()) r["path"] = p;
      return {{"requestRedirect", r}};
    }
    case T::kUrlRewrite: {
      json r = json::object();
      if (f.rewrite.hostname) r["hostname"] = *f.rewrite.hostname;
      if (auto p = pathModifier(f.rewrite.path); !p.is_null()) r["path"] = p;
      return {{"urlRewrite", r}};
    }
    case T::kRequestMirror:
      return {{"requestMirror",
               {{"backend", f.mirror.backend ? json(f.mirror.backend->id) : json(nullptr)},
                {"fraction", fmt::format("{}/{}", f.mirror.numerator, f.mirror.denominator)}}}};
    case T::kCors:
      return {{"cors",
               {{"allowOrigins", f.cors.allowOrigins},
                {"allowCredentials", f.cors.allowCredentials},
                {"allowMethods", f.cors.allowMethods},
                {"allowHeaders", f.cors.allowHeaders},
                {"exposeHeaders", f.cors.exposeHeaders},
                {"maxAge", f.cors.maxAgeSeconds}}}};
    case T::kExtensionRef:
      return {{"extensionRef",
               {{"group", f.extension.group},
                {"kind", f.extension.kind},
                {"name", f.extension.name},
                {"resolved", f.extension.resolved}}}};
  }
  return nullptr;
}

json backendsJson(const std::vector<snapshot::WeightedBackend>& bs) {
  json out = json::array();
  for (const auto& b : bs) {
    json j = {{"backend", b.backend ? json(b.backend->id) : json(nullptr)}, {"weight", b.weight}};
    if (!b.filters.empty()) {
      j["filters"] = json::array();
      for (const auto& f : b.filters) j["filters"].push_back(filterJson(f));
    }
    out.push_back(std::move(j));
  }
  return out;
}

}  // namespace

std::string snapshotToJson(const snapshot::Snapshot& s) {
  json root;
  root["version"] = s.version;
  root["ports"] = json::array();
  for (const auto& p : s.ports) {
    json pj = {{"address", p.address}, {"port", p.port}, {"udp", p.udp}, {"listeners", json::array()}};
    for (const auto& l : p.listeners) {
      json lj = {{"gateway", l->gatewayNs + "/" + l->gatewayName},
                 {"name", l->name},
                 {"protocol", protocolName(l->protocol)},
                 {"port", l->port},
                 {"hostname", l->hostname ? json(*l->hostname) : json(nullptr)},
                 {"certificates", l->certificates.size()}};
      json routes = json::array();
      for (const auto& e : l->httpRoutes) {
        json m = {{"path", {{"type", matchTypeName(e.match.path.type)}, {"value", e.match.path.value}}}};
        if (e.match.method) m["method"] = *e.match.method;
        for (const auto& h : e.match.headers)
          m["headers"].push_back({{"name", h.name}, {"type", matchTypeName(h.type)}, {"value", h.value}});
        for (const auto& q : e.match.queryParams)
          m["queryParams"].push_back({{"name", q.name}, {"type", matchTypeName(q.type)}, {"value", q.value}});
        json rj = {{"hostnames", e.hostnames}, {"match", m}};
        if (e.rule) {
          rj["route"] = e.rule->routeNs + "/" + e.rule->routeName;
          rj["rule"] = e.rule->ruleIndex;
          if (!e.rule->ruleName.empty()) rj["ruleName"] = e.rule->ruleName;
          rj["filters"] = json::array();
          for (const auto& f : e.rule->filters) rj["filters"].push_back(filterJson(f));
          rj["backends"] = backendsJson(e.rule->backends);
          if (e.rule->requestTimeout) rj["timeouts"]["request"] = fmt::format("{}ms", e.rule->requestTimeout->count());
          if (e.rule->backendRequestTimeout)
            rj["timeouts"]["backendRequest"] = fmt::format("{}ms", e.rule->backendRequestTimeout->count());
          if (e.rule->retry)
            rj["retry"] = {{"codes", e.rule->retry->codes}, {"attempts", e.rule->retry->attempts},
                           {"backoff", fmt::format("{}ms", e.rule->retry->backoff.count())}};
          if (e.rule->isGrpc) rj["grpc"] = true;
        }
        routes.push_back(std::move(rj));
      }
      lj["httpRoutes"] = std::move(routes);
      json l4 = json::array();
      for (const auto& r : l->l4Routes)
        l4.push_back({{"route", r.routeNs + "/" + r.routeName}, {"hostnames", r.hostnames},
                      {"backends", backendsJson(r.backends)}});
      if (!l4.empty()) lj["l4Routes"] = std::move(l4);
      pj["listeners"].push_back(std::move(lj));
    }
    root["ports"].push_back(std::move(pj));
  }
  json backends = json::object();
  for (const auto& [id, b] : s.backends) {
    json eps = json::array();
    for (const auto& e : b->endpoints) eps.push_back(fmt::format("{}:{}", e.address, e.port));
    const char* proto = "http";
    switch (b->protocol) {
      case snapshot::BackendProtocol::kHttp1: proto = "http"; break;
      case snapshot::BackendProtocol::kH2c: proto = "h2c"; break;
      case snapshot::BackendProtocol::kWebSocket: proto = "ws"; break;
      case snapshot::BackendProtocol::kTcp: proto = "tcp"; break;
      case snapshot::BackendProtocol::kUdp: proto = "udp"; break;
    }
    backends[id] = {{"protocol", proto}, {"endpoints", eps}, {"tls", b->tls != nullptr}};
  }
  root["backends"] = std::move(backends);
  return root.dump(2) + "\n";
}

}  // namespace archway::admin

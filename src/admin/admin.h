// The admin listener (default 127.0.0.1:9901): /ready, /healthz, /status, /metrics,
// /config. Runs on the control thread's io_context, never on a worker; one short
// request per connection.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <asio/awaitable.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>

#include "snapshot/snapshot.h"

namespace archway::admin {

struct AdminHandlers {
  std::function<bool()> ready;
  std::function<std::string()> status;   // {"items":[...]} JSON
  std::function<std::string()> metrics;  // Prometheus text
  std::function<std::string()> config;   // live snapshot as JSON
};

class AdminServer {
 public:
  AdminServer(asio::io_context& io, AdminHandlers handlers);
  // "host:port" or "[v6]:port". False with a message when it cannot listen.
  bool listen(const std::string& address, std::string* error);
  void close();

 private:
  asio::awaitable<void> acceptLoop();
  asio::awaitable<void> handle(asio::ip::tcp::socket socket);

  asio::io_context& io_;
  AdminHandlers handlers_;
  asio::ip::tcp::acceptor acceptor_;
};

// The snapshot as JSON, for humans (GET /config).
std::string snapshotToJson(const snapshot::Snapshot& snapshot);

// Splits "host:port" / "[v6]:port"; false when malformed.
bool splitHostPort(const std::string& s, std::string* host, uint16_t* port);

}  // namespace archway::admin

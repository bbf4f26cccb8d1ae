// Sub-commands of the `archway` binary (DESIGN §2). Each returns the process exit code.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace archway::cli {

struct CheckOptions {
  std::vector<std::string> paths;
  std::string output = "yaml";  // yaml | json
};
// Exit 0 when every Gateway and route is Accepted, 1 when one is not, 2 on unreadable input.
int runCheck(const CheckOptions& options);

struct RunOptions {
  std::vector<std::string> paths;
  bool kubernetes = false;
  std::string kubeconfig;
  int workers = 0;  // 0 = one per core
  std::optional<std::string> addressPool;
  std::string adminAddress = "127.0.0.1:9901";
  std::string accessLog;  // empty = off
  std::string logLevel = "info";
  uint64_t maxRequestBodyBytes = 0;  // 0 = net::kMaxRequestBodyBytes
  uint32_t maxConnections = 0;       // 0 = net::kMaxDownstreamConnections
  std::string idleTimeout;           // Gateway API duration; empty = net::kKeepAliveIdleTimeout
  std::string upstreamIdleTimeout;   // empty = net::kUpstreamIdleTimeout
  std::string tcpIdleTimeout;        // empty = net::kTcpIdleTimeout
  std::string udpIdleTimeout;        // empty = net::kUdpSessionIdleTimeout
};
int runServe(const RunOptions& options);

struct ConvertOptions {
  std::vector<std::string> paths;
  std::vector<std::string> providers;  // ingress-nginx, kong
  std::string ns;                      // -n; empty = all (-A) or default
  bool allNamespaces = false;
  std::string output = "yaml";
  std::string gatewayClass;  // --gateway-class; empty = the Ingress class name
};
int runConvert(const ConvertOptions& options);

}  // namespace archway::cli

#include "stats/stats.h"

#include <fmt/format.h>

namespace archway::stats {

void Histogram::observe(std::chrono::microseconds d) {
  double seconds = static_cast<double>(d.count()) / 1e6;
  size_t i = 0;
  while (i < kBounds.size() && seconds > kBounds[i]) ++i;
  inc(buckets[i]);
  inc(sumMicros, static_cast<uint64_t>(d.count() < 0 ? 0 : d.count()));
  inc(count);
}

ListenerStats* WorkerStats::listener(const std::string& key) {
  std::lock_guard lock(mu_);
  auto& slot = listeners_[key];
  if (!slot) slot = std::make_unique<ListenerStats>();
  return slot.get();
}

BackendStats* WorkerStats::backend(const std::string& key) {
  std::lock_guard lock(mu_);
  auto& slot = backends_[key];
  if (!slot) slot = std::make_unique<BackendStats>();
  return slot.get();
}

namespace {

constexpr const char* kClassLabels[6] = {"1xx", "2xx", "3xx", "4xx", "5xx", "other"};

std::string escapeLabel(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') {
      out.append("\\n");
      continue;
    }
    out.push_back(c);
  }
  return out;
}

std::string listenerLabels(const std::string& key) {
  // key = ns/gateway/listener
  auto a = key.find('/');
  auto b = a == std::string::npos ? std::string::npos : key.find('/', a + 1);
  if (b == std::string::npos) return fmt::format("listener=\"{}\"", escapeLabel(key));
  return fmt::format("gateway=\"{}\",listener=\"{}\"", escapeLabel(key.substr(0, b)),
                     escapeLabel(key.substr(b + 1)));
}

struct HistSum {
  std::array<uint64_t, Histogram::kBounds.size() + 1> buckets{};
  uint64_t sumMicros = 0, count = 0;
  void add(const Histogram& h) {
    for (size_t i = 0; i < buckets.size(); ++i) buckets[i] += get(h.buckets[i]);
    sumMicros += get(h.sumMicros);
    count += get(h.count);
  }
};

void writeHistogram(std::string& out, const char* name, const std::string& labels,
                    const HistSum& h) {
  uint64_t cumulative = 0;
  for (size_t i = 0; i < Histogram::kBounds.size(); ++i) {
    cumulative += h.buckets[i];
    out += fmt::format("{}_bucket{{{},le=\"{}\"}} {}\n", name, labels, Histogram::kBounds[i],
                       cumulative);
  }
  cumulative += h.buckets.back();
  out += fmt::format("{}_bucket{{{},le=\"+Inf\"}} {}\n", name, labels, cumulative);
  out += fmt::format("{}_sum{{{}}} {}\n", name, labels, static_cast<double>(h.sumMicros) / 1e6);
  out += fmt::format("{}_count{{{}}} {}\n", name, labels, h.count);
}

}  // namespace

std::string renderPrometheus(const std::vector<const WorkerStats*>& workers) {
  struct L {
    uint64_t connections = 0, active = 0, requests = 0;
    uint64_t bytesIn = 0, bytesOut = 0, handshakeFailures = 0, noRoute = 0;
    uint64_t mirrorsSkippedStreamed = 0;
    std::array<uint64_t, 6> responses{};
    HistSum latency;
  };
  struct B {
    uint64_t requests = 0, opened = 0, failures = 0, active = 0, retries = 0, timeouts = 0;
    std::array<uint64_t, 6> responses{};
    HistSum latency;
  };
  std::map<std::string, L> ls;
  std::map<std::string, B> bs;
  uint64_t conns = 0, active = 0, rejected = 0, bad = 0, noRoute = 0;
  for (const auto* w : workers) {
    w->forEachListener([&](const std::string& k, const ListenerStats& s) {
      auto& l = ls[k];
      l.connections += get(s.connections);
      l.active += get(s.activeConnections);
      l.requests += get(s.requests);
      l.bytesIn += get(s.bytesReceived);
      l.bytesOut += get(s.bytesSent);
      l.handshakeFailures += get(s.handshakeFailures);
      l.noRoute += get(s.noRoute);
      l.mirrorsSkippedStreamed += get(s.mirrorsSkippedStreamedBody);
      for (size_t i = 0; i < 6; ++i) l.responses[i] += get(s.responses[i]);
      l.latency.add(s.latency);
    });
    w->forEachBackend([&](const std::string& k, const BackendStats& s) {
      auto& b = bs[k];
      b.requests += get(s.requests);
      b.opened += get(s.connectionsOpened);
      b.failures += get(s.connectFailures);
      b.active += get(s.activeConnections);
      b.retries += get(s.retries);
      b.timeouts += get(s.timeouts);
      for (size_t i = 0; i < 6; ++i) b.responses[i] += get(s.responses[i]);
      b.latency.add(s.latency);
    });
    const auto& g = w->global();
    conns += get(g.downstreamConnections);
    active += get(g.activeDownstreamConnections);
    rejected += get(g.rejectedConnections);
    bad += get(g.badRequests);
    noRoute += get(g.noRoute);
  }
  std::string out;
  out += "# HELP archway_downstream_connections_total Accepted client connections.\n";
  out += "# TYPE archway_downstream_connections_total counter\n";
  out += fmt::format("archway_downstream_connections_total {}\n", conns);
  out += "# HELP archway_downstream_connections_active Open client connections.\n";
  out += "# TYPE archway_downstream_connections_active gauge\n";
  out += fmt::format("archway_downstream_connections_active {}\n", active);
  out +=
      "# HELP archway_downstream_connections_rejected_total Connections refused over the limit.\n";
  out += "# TYPE archway_downstream_connections_rejected_total counter\n";
  out += fmt::format("archway_downstream_connections_rejected_total {}\n", rejected);
  out += "# HELP archway_bad_requests_total Malformed or oversized requests (400/408/413/431).\n";
  out += "# TYPE archway_bad_requests_total counter\n";
  out += fmt::format("archway_bad_requests_total {}\n", bad);
  out += "# HELP archway_no_route_total Requests answered 404 because nothing matched.\n";
  out += "# TYPE archway_no_route_total counter\n";
  out += fmt::format("archway_no_route_total {}\n", noRoute);

  out += "# HELP archway_listener_connections_total Connections accepted per listener port.\n";
  out += "# TYPE archway_listener_connections_total counter\n";
  for (const auto& [k, l] : ls)
    if (l.connections)
      out += fmt::format("archway_listener_connections_total{{{}}} {}\n", listenerLabels(k),
                         l.connections);
  out +=
      "# HELP archway_listener_active_connections Open connections (UDP: sessions) per listener.\n";
  out += "# TYPE archway_listener_active_connections gauge\n";
  for (const auto& [k, l] : ls)
    if (l.connections)
      out += fmt::format("archway_listener_active_connections{{{}}} {}\n", listenerLabels(k),
                         l.active);
  out += "# HELP archway_listener_received_bytes_total L4 bytes received from clients.\n";
  out += "# TYPE archway_listener_received_bytes_total counter\n";
  for (const auto& [k, l] : ls)
    if (l.bytesIn || l.bytesOut)
      out += fmt::format("archway_listener_received_bytes_total{{{}}} {}\n", listenerLabels(k),
                         l.bytesIn);
  out += "# HELP archway_listener_sent_bytes_total L4 bytes sent to clients.\n";
  out += "# TYPE archway_listener_sent_bytes_total counter\n";
  for (const auto& [k, l] : ls)
    if (l.bytesIn || l.bytesOut)
      out += fmt::format("archway_listener_sent_bytes_total{{{}}} {}\n", listenerLabels(k),
                         l.bytesOut);
  out +=
      "# HELP archway_listener_tls_handshake_failures_total Bad ClientHellos and failed "
      "handshakes.\n";
  out += "# TYPE archway_listener_tls_handshake_failures_total counter\n";
  for (const auto& [k, l] : ls)
    if (l.handshakeFailures)
      out += fmt::format("archway_listener_tls_handshake_failures_total{{{}}} {}\n",
                         listenerLabels(k), l.handshakeFailures);
  out +=
      "# HELP archway_listener_l4_no_route_total L4 connections or datagrams without a route or "
      "backend.\n";
  out += "# TYPE archway_listener_l4_no_route_total counter\n";
  for (const auto& [k, l] : ls)
    if (l.noRoute)
      out += fmt::format("archway_listener_l4_no_route_total{{{}}} {}\n", listenerLabels(k),
                         l.noRoute);
  out += "# HELP archway_listener_requests_total Requests per Gateway listener.\n";
  out += "# TYPE archway_listener_requests_total counter\n";
  for (const auto& [k, l] : ls)
    out += fmt::format("archway_listener_requests_total{{{}}} {}\n", listenerLabels(k), l.requests);
  out +=
      "# HELP archway_listener_mirrors_skipped_total RequestMirror copies not sent, per "
      "listener and reason (streamed_body: the request body was too large to buffer).\n";
  out += "# TYPE archway_listener_mirrors_skipped_total counter\n";
  for (const auto& [k, l] : ls)
    out += fmt::format("archway_listener_mirrors_skipped_total{{{},reason=\"streamed_body\"}} {}\n",
                       listenerLabels(k), l.mirrorsSkippedStreamed);
  out += "# HELP archway_listener_responses_total Responses per listener and status class.\n";
  out += "# TYPE archway_listener_responses_total counter\n";
  for (const auto& [k, l] : ls)
    for (size_t i = 0; i < 6; ++i)
      if (l.responses[i])
        out += fmt::format("archway_listener_responses_total{{{},class=\"{}\"}} {}\n",
                           listenerLabels(k), kClassLabels[i], l.responses[i]);
  out += "# HELP archway_listener_request_duration_seconds Request latency per listener.\n";
  out += "# TYPE archway_listener_request_duration_seconds histogram\n";
  for (const auto& [k, l] : ls)
    writeHistogram(out, "archway_listener_request_duration_seconds", listenerLabels(k), l.latency);

  auto bl = [](const std::string& k) { return fmt::format("backend=\"{}\"", escapeLabel(k)); };
  out += "# HELP archway_backend_requests_total Upstream attempts per backend.\n";
  out += "# TYPE archway_backend_requests_total counter\n";
  for (const auto& [k, b] : bs)
    out += fmt::format("archway_backend_requests_total{{{}}} {}\n", bl(k), b.requests);
  out += "# HELP archway_backend_responses_total Upstream responses per status class.\n";
  out += "# TYPE archway_backend_responses_total counter\n";
  for (const auto& [k, b] : bs)
    for (size_t i = 0; i < 6; ++i)
      if (b.responses[i])
        out += fmt::format("archway_backend_responses_total{{{},class=\"{}\"}} {}\n", bl(k),
                           kClassLabels[i], b.responses[i]);
  out += "# HELP archway_backend_connections_opened_total Upstream connections opened.\n";
  out += "# TYPE archway_backend_connections_opened_total counter\n";
  for (const auto& [k, b] : bs)
    out += fmt::format("archway_backend_connections_opened_total{{{}}} {}\n", bl(k), b.opened);
  out += "# HELP archway_backend_connections_active Open upstream connections (pooled included).\n";
  out += "# TYPE archway_backend_connections_active gauge\n";
  for (const auto& [k, b] : bs)
    out += fmt::format("archway_backend_connections_active{{{}}} {}\n", bl(k), b.active);
  out += "# HELP archway_backend_connect_failures_total Failed upstream connects.\n";
  out += "# TYPE archway_backend_connect_failures_total counter\n";
  for (const auto& [k, b] : bs)
    out += fmt::format("archway_backend_connect_failures_total{{{}}} {}\n", bl(k), b.failures);
  out += "# HELP archway_backend_retries_total Retried upstream attempts.\n";
  out += "# TYPE archway_backend_retries_total counter\n";
  for (const auto& [k, b] : bs)
    out += fmt::format("archway_backend_retries_total{{{}}} {}\n", bl(k), b.retries);
  out += "# HELP archway_backend_timeouts_total Upstream attempts that timed out.\n";
  out += "# TYPE archway_backend_timeouts_total counter\n";
  for (const auto& [k, b] : bs)
    out += fmt::format("archway_backend_timeouts_total{{{}}} {}\n", bl(k), b.timeouts);
  out += "# HELP archway_backend_request_duration_seconds Upstream response time per backend.\n";
  out += "# TYPE archway_backend_request_duration_seconds histogram\n";
  for (const auto& [k, b] : bs)
    writeHistogram(out, "archway_backend_request_duration_seconds", bl(k), b.latency);
  return out;
}

}  // namespace archway::stats

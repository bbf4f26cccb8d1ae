// `archway run`: the data plane. The main thread is the control thread (file source,
// translation, publication, admin, signals); workers serve traffic (src/runtime).

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <thread>
#include <tuple>

#include <spdlog/spdlog.h>
#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>

#include "admin/admin.h"
#include "cli/commands.h"
#include "net/limits.h"
#include "net/local_address.h"
#include "runtime/reaper.h"
#include "runtime/server.h"
#include "sources/file_source.h"
#include "sources/kube_config.h"
#include "sources/kube_source.h"
#include "translate/translator.h"
#include "translate/util.h"

namespace archway::cli {

namespace {

// Same order and item shape as `archway check -o json`.
int kindRank(const std::string& kind) {
  static const char* const kOrder[] = {"GatewayClass",
                                       "Gateway",
                                       "ListenerSet",
                                       "HTTPRoute",
                                       "GRPCRoute",
                                       "TLSRoute",
                                       "TCPRoute",
                                       "UDPRoute",
                                       "ReferenceGrant",
                                       "BackendTLSPolicy",
                                       "XBackendTrafficPolicy"};
  for (size_t i = 0; i < std::size(kOrder); ++i)
    if (kind == kOrder[i]) return static_cast<int>(i);
  return 100;
}

std::string renderStatus(const api::Store& store, const translate::TranslateResult& result) {
  std::vector<const api::Object*> objects;
  for (const auto& [key, object] : store.all()) objects.push_back(&object);
  std::sort(objects.begin(), objects.end(), [](const api::Object* a, const api::Object* b) {
    int ra = kindRank(a->kind), rb = kindRank(b->kind);
    if (ra != rb) return ra < rb;
    return std::tie(a->kind, a->ns, a->name) < std::tie(b->kind, b->ns, b->name);
  });
  api::Json items = api::Json::array();
  for (const api::Object* o : objects) {
    api::Json item = api::Json::object();
    item["apiVersion"] = o->apiVersion;
    item["kind"] = o->kind;
    api::Json md = {{"name", o->name}, {"generation", o->generation}};
    if (!o->ns.empty()) md["namespace"] = o->ns;
    item["metadata"] = md;
    if (o->body.contains("spec")) item["spec"] = o->body["spec"];
    if (o->rejectedChange) {
      // The newer version that failed validation; spec and status are the served version's.
      api::Json rc = {{"errors", o->rejectedChange->errors}};
      if (!o->rejectedChange->location.file.empty())
        rc["location"] = o->rejectedChange->location.format();
      if (o->rejectedChange->generation > 0) rc["generation"] = o->rejectedChange->generation;
      item["rejectedChange"] = std::move(rc);
    }
    auto st = result.statuses.find(api::keyOf(*o));
    if (st != result.statuses.end()) {
      item["status"] = st->second;
    } else if (o->body.contains("status")) {
      item["status"] = o->body["status"];
    }
    items.push_back(std::move(item));
  }
  return api::Json{{"items", items}}.dump(2) + "\n";
}

}  // namespace

int runServe(const RunOptions& options) {
  spdlog::set_level(spdlog::level::from_str(options.logLevel));
  if (options.maxRequestBodyBytes > 0) net::requestBodyLimit = options.maxRequestBodyBytes;
  if (options.maxConnections > 0) net::maxDownstreamConnections = options.maxConnections;
  for (auto [flag, text, target] :
       {std::tuple{"--idle-timeout", &options.idleTimeout, &net::keepAliveIdleTimeout},
        std::tuple{"--upstream-idle-timeout", &options.upstreamIdleTimeout,
                   &net::upstreamIdleTimeout},
        std::tuple{"--tcp-idle-timeout", &options.tcpIdleTimeout, &net::tcpIdleTimeout},
        std::tuple{"--udp-idle-timeout", &options.udpIdleTimeout, &net::udpSessionIdleTimeout}}) {
    if (text->empty()) continue;
    auto d = translate::parseDuration(*text);
    if (!d || d->count() <= 0) {
      spdlog::error("archway run: {} {}: not a positive duration (e.g. 500ms, 30s, 1m)", flag,
                    *text);
      return 2;
    }
    *target = *d;
  }
  if (options.kubernetes && !options.paths.empty()) {
    spdlog::error("archway run: give either --kubernetes or -f PATH, not both");
    return 2;
  }
  if (!options.kubernetes && options.paths.empty()) {
    spdlog::error("archway run: give manifests with -f PATH (file or directory) or --kubernetes");
    return 2;
  }
  sources::ClusterAccess clusterAccess;
  if (options.kubernetes) {
    std::string error;
    if (!sources::resolveClusterAccess(options.kubeconfig, &clusterAccess, &error)) {
      spdlog::error("{}", error);
      return 2;
    }
  }
  uint32_t workers = options.workers > 0 ? static_cast<uint32_t>(options.workers)
                                         : std::max(1u, std::thread::hardware_concurrency());

  runtime::AccessLogFile accessLog;
  if (!options.accessLog.empty()) {
    std::string error;
    if (!accessLog.open(options.accessLog, &error)) {
      spdlog::error("{}", error);
      return 2;
    }
  }

  // Signals are handled by the control loop only.
  asio::io_context control(1);
  asio::signal_set signals(control, SIGINT, SIGTERM);
  std::signal(SIGPIPE, SIG_IGN);

  // Declared before the server: destroyed after it, when no worker holds a configuration.
  runtime::Reaper reaper;
  runtime::Server server(workers, &accessLog);
  std::string statusJson = "{\"items\": []}\n";
  translate::TranslateOptions topts;
  // With the file source, configurations are published without statuses and /status
  // translates the published store again when asked for (translate() is pure, so it gets
  // the statuses of what is served): at 10k routes building the statuses costs more than
  // the rest of a translation, and rendering them as much again. The store only changes
  // right before a publication, on this thread.
  const api::Store* statusStore = nullptr;
  bool statusStale = false;

  admin::AdminHandlers handlers;
  handlers.ready = [&] { return server.ready(); };
  handlers.status = [&] {
    if (statusStale) {
      statusJson = renderStatus(*statusStore, translate::translate(*statusStore, topts));
      statusStale = false;
    }
    return statusJson;
  };
  handlers.metrics = [&] { return server.metrics(); };
  handlers.config = [&] {
    auto s = server.current();
    return s ? admin::snapshotToJson(*s) : std::string("{}\n");
  };
  admin::AdminServer adminServer(control, handlers);
  std::string error;
  if (!adminServer.listen(options.adminAddress, &error)) {
    spdlog::error("{}", error);
    return 2;
  }

  server.start();
  topts.addressPool = options.addressPool;
  topts.addressUsable = net::isLocalAddress;
  // In a pod, report the pod's IP (downward API) rather than loopback in status.addresses.
  if (const char* podIp = std::getenv("POD_IP"); options.kubernetes && podIp && *podIp)
    topts.defaultAddress = podIp;
  uint64_t version = 0;
  // Successive stores of the one source: routes that did not change are not translated again.
  translate::Translator translator;
  auto translateAndPublish = [&](const api::Store& store,
                                 bool renderNow) -> std::optional<translate::TranslateResult> {
    auto start = std::chrono::steady_clock::now();
    translate::TranslateOptions translateOptions = topts;
    translateOptions.computeStatuses = renderNow;
    translate::TranslateResult result = translator.translate(store, translateOptions);
    for (const auto& d : result.diagnostics) spdlog::warn("{}", d.format());
    if (!result.snapshot) {
      spdlog::error("translation produced no snapshot; keeping the previous one");
      return std::nullopt;
    }
    auto snap = std::make_shared<snapshot::Snapshot>(*result.snapshot);
    snap->version = ++version;
    if (renderNow) {
      statusJson = renderStatus(store, result);
      statusStale = false;
    }
    auto translated = std::chrono::steady_clock::now();
    // The previous configuration is freed by the reaper's thread once the workers have moved
    // off it: neither this thread (the next change) nor a worker (requests) waits for it.
    reaper.retire(server.publish(std::move(snap)));
    auto ms = [](auto d) { return std::chrono::duration<double, std::milli>(d).count(); };
    const auto& c = translator.counters();
    spdlog::info(
        "published configuration version {} ({} objects; translated in {:.1f} ms, {} routes "
        "translated and {} reused so far; compiled and published in {:.1f} ms)",
        version, store.size(), ms(translated - start), c.routesTranslated, c.routesReused,
        ms(std::chrono::steady_clock::now() - translated));
    return result;
  };
  std::optional<sources::FileSource> fileSource;
  std::optional<sources::KubeSource> kubeSource;
  bool started = false;
  if (options.kubernetes) {
    kubeSource.emplace(
        control, clusterAccess,
        [&](const api::Store& store) { return translateAndPublish(store, true); },
        topts.controllerName);
    started = kubeSource->start(&error);
  } else {
    fileSource.emplace(control, options.paths, [&](const api::Store& store) {
      if (translateAndPublish(store, false)) {
        statusStore = &store;
        statusStale = true;
      }
    });
    started = fileSource->start(&error);
  }
  if (!started) {
    spdlog::error("{}", error);
    server.stop();
    return 2;
  }
  spdlog::info("archway serving with {} workers; admin on {}", workers, options.adminAddress);

  // Graceful stop: stop accepting, let in-flight requests finish, bounded.
  asio::steady_timer drainTimer(control);
  runtime::Clock::time_point drainDeadline;
  std::function<void()> pollDrain = [&] {
    if (server.activeConnections() == 0 || runtime::Clock::now() >= drainDeadline) {
      if (server.activeConnections() != 0)
        spdlog::warn("stopping with {} connections still open", server.activeConnections());
      adminServer.close();
      control.stop();
      return;
    }
    drainTimer.expires_after(std::chrono::milliseconds(50));
    drainTimer.async_wait([&](std::error_code ec) {
      if (!ec) pollDrain();
    });
  };
  signals.async_wait([&](std::error_code ec, int signo) {
    if (ec) return;
    spdlog::info(
        "signal {}: draining (up to {} s)", signo,
        std::chrono::duration_cast<std::chrono::seconds>(net::kGracefulStopTimeout).count());
    drainDeadline = runtime::Clock::now() + net::kGracefulStopTimeout;
    server.beginDrain();
    pollDrain();
  });
  control.run();
  if (kubeSource) kubeSource->stop();
  server.stop();
  spdlog::info("stopped");
  return 0;
}

}  // namespace archway::cli

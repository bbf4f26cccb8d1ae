#include "proxy/http_proxy.h"

#include <chrono>
#include <cstdint>

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/steady_timer.hpp>

#include "filters/filters.h"
#include "http/grpc/status.h"
#include "http/h2/event.h"
#include "net/limits.h"
#include "runtime/worker.h"
#include "upstream/connection.h"
#include "upstream/h2_pool.h"

namespace archway::proxy {

using runtime::Clock;
using Type = snapshot::HttpFilter::Type;

namespace {

// RFC 9110 §9.2.2 idempotent methods: the only ones replayed once the request was sent
// (after a timeout or a connection error); before it was sent any method moves on.
bool idempotent(std::string_view m) {
  return m == "GET" || m == "HEAD" || m == "OPTIONS" || m == "PUT" || m == "DELETE" || m == "TRACE";
}

bool retryable(const snapshot::RetryPolicy& p, int status) {
  for (int c : p.codes)
    if (c == status) return true;
  return false;
}

}  // namespace

// A one-shot timer that aborts the upstream connection it guards (route timeouts). The
// state is shared with the pending handler so the Alarm may die first. It is created on
// the first arm(): most routes have no timeout, and two allocations per request showed
// in profiles.
class HttpProxy::Alarm {
 public:
  explicit Alarm(asio::io_context& io) : io_(io) {}
  ~Alarm() { cancel(); }
  void arm(Clock::duration d) {
    if (!state_) {
      state_ = std::make_shared<State>(io_);
      state_->target = target_;
      state_->h2 = h2_;
      state_->body = body_;
    }
    state_->fired = false;
    state_->timer.expires_after(d);
    state_->timer.async_wait([s = state_](std::error_code ec) {
      if (ec) return;
      s->fired = true;
      if (s->target) s->target->abortTimeout();
      if (s->h2) s->h2->abortTimeout();
      if (s->body) s->body->abortBodyRead();
    });
  }
  void cancel() {
    target_ = nullptr;
    h2_ = nullptr;
    body_ = nullptr;
    if (!state_) return;
    state_->target = nullptr;
    state_->h2 = nullptr;
    state_->body = nullptr;
    state_->timer.cancel();
  }
  void guard(upstream::Connection* c) {
    target_ = c;
    if (state_) state_->target = c;
  }
  void guard(upstream::H2Exchange* e) {
    h2_ = e;
    if (state_) state_->h2 = e;
  }
  // A streamed request body being read from the client: the deadline stops that too.
  void guardBody(http::ServerStream* s) {
    body_ = s;
    if (state_) state_->body = s;
  }
  bool fired() const { return state_ && state_->fired; }

 private:
  struct State {
    explicit State(asio::io_context& io) : timer(io) {}
    asio::steady_timer timer;
    upstream::Connection* target = nullptr;
    upstream::H2Exchange* h2 = nullptr;
    http::ServerStream* body = nullptr;
    bool fired = false;
  };
  asio::io_context& io_;
  upstream::Connection* target_ = nullptr;  // kept for a later arm()
  upstream::H2Exchange* h2_ = nullptr;
  http::ServerStream* body_ = nullptr;
  std::shared_ptr<State> state_;
};

// The coroutine that streams a request body to an HTTP/2 upstream while the response is
// relayed (pumpBody). `done` wakes stopPump once it returned.
struct HttpProxy::BodyPump {
  explicit BodyPump(asio::io_context& io) : done(io) {}
  bool running = false;
  bool stop = false;
  http::BodyResult result = http::BodyResult::kOk;
  http::h2::Event done;
};

struct HttpProxy::Exchange {
  http::ServerStream& stream;
  std::shared_ptr<const runtime::RuntimeConfig> config;
  runtime::WorkerState& state;
  const runtime::CompiledPort* port;
  const runtime::CompiledListener* listener = nullptr;
  const snapshot::HttpRouteEntry* entry = nullptr;
  const runtime::CompiledRule* rule = nullptr;
  int64_t* swrr = nullptr;  // the rule's round-robin weights in this worker's state
  stats::ListenerStats* listenerStats = nullptr;
  Clock::time_point start;
  std::string host;  // lower-case, no port (for routing and logs)
  std::string originalPath;
  std::string originalAuthority;
  // Request body: what prefetchBody read. Complete (the whole body, replayable for
  // retries and mirrors) or the first bytes of a body that streams.
  std::string body;
  bool bodyRead = false;
  bool bodyComplete = true;
  bool bodyConsumed = false;  // streaming went past `body`: the request cannot be replayed
  // Response-phase work collected during the request phase, in filter order.
  std::vector<const snapshot::HeaderModifier*> responseModifiers;
  std::vector<const filters::FilterPlugin*> responsePlugins;
  http::HeaderMap corsHeaders;
  int status = 0;
  uint64_t bytesOut = 0;
  const snapshot::Endpoint* endpoint = nullptr;
  const snapshot::Backend* backend = nullptr;
  bool grpc = false;  // content-type application/grpc: failures answered as gRPC status
};

http::Awaitable<void> HttpProxy::serve(http::ServerStream& stream,
                                       std::shared_ptr<const runtime::RuntimeConfig> config,
                                       const runtime::CompiledPort* port) {
  runtime::WorkerState& state = config->worker(worker_.id());
  Exchange x{stream, std::move(config), state, port};
  x.start = Clock::now();
  http::RequestHead& req = stream.request();
  x.host.assign(req.host());
  x.grpc = http::grpc::isGrpcRequest(req);
  if (!port) {
    co_await reply(x, 404, "no listener on this port\n");
    finish(x);
    co_return;
  }
  int li = port->selector.select(x.host);
  if (li < 0) {
    stats::inc(worker_.stats().global().noRoute);
    co_await reply(x, 404, "no listener matches this host\n");
    finish(x);
    co_return;
  }
  // HTTPS listener isolation: the Host must belong to the listener the TLS server name
  // chose (its certificate and client validation applied), else 421 Misdirected Request.
  if (const std::string& sni = stream.connection().sni;
      !sni.empty() && port->listeners.size() > 1) {
    if (port->selector.select(sni) != li) {
      co_await reply(x, 421, "misdirected request: host does not belong to the TLS server name\n");
      finish(x);
      co_return;
    }
  }
  x.listener = &port->listeners[static_cast<size_t>(li)];
  x.listenerStats = state.listeners[x.listener->statsIndex];
  stats::inc(x.listenerStats->requests);
  int ei = x.listener->routes.match(x.host, req);
  if (ei < 0) {
    stats::inc(worker_.stats().global().noRoute);
    co_await reply(x, 404, "no route matches this request\n");
    finish(x);
    co_return;
  }
  x.entry = &x.listener->listener->httpRoutes[static_cast<size_t>(ei)];
  const uint32_t ruleIndex = x.listener->entryRule[static_cast<size_t>(ei)];
  x.rule = x.config->rules[ruleIndex].get();
  x.swrr = x.state.swrrOf(ruleIndex, *x.config);
  // The Host the client asked for, replacing any claim it made (an edge proxy does not
  // trust it), set before filters so a URLRewrite hostname does not hide it and a
  // RequestHeaderModifier can still change it.
  req.headers.set("x-forwarded-host", req.authority);
  if (worker_.accessLog().enabled()) {
    x.originalPath = req.path;
    x.originalAuthority = req.authority;
  }
  co_await runRule(x);
  finish(x);
}

http::Awaitable<void> HttpProxy::replyUpstreamFailure(Exchange& x, upstream::UpstreamError err) {
  switch (err) {
    case upstream::UpstreamError::kTimeout:
      co_await reply(x, 504, "upstream request timeout\n");
      break;
    case upstream::UpstreamError::kProtocol:
      // RFC 9110 §15.6.3: an invalid response from the upstream is 502.
      co_await reply(x, 502, "invalid response from upstream\n");
      break;
    default:
      // A reset or close before the response head: 503, as Envoy answers it and as the
      // conformance retry tests expect once retries on connection errors run out.
      co_await reply(x, 503, "upstream connection error\n");
  }
}

http::Awaitable<void> HttpProxy::reply(Exchange& x, int status, std::string_view body,
                                       const http::HeaderMap* extra) {
  x.status = status;
  if (x.stream.headSent()) co_return;  // mid-stream failure: nothing more to say
  if (x.grpc && status >= 400) {
    // gRPC clients understand a status, not an HTML/text page: trailers-only response.
    http::ResponseHead head;
    if (extra)
      for (const auto& h : *extra) head.headers.add(h.name, h.value);
    http::grpc::makeTrailersOnly(head, http::grpc::statusForHttp(status), body);
    applyResponseFilters(x, head);
    co_await x.stream.sendHead(head, true);
    co_return;
  }
  http::ResponseHead head;
  head.status = status;
  if (extra)
    for (const auto& h : *extra) head.headers.add(h.name, h.value);
  if (!body.empty()) head.headers.add("content-type", "text/plain; charset=utf-8");
  head.contentLength = body.size();
  applyResponseFilters(x, head);
  x.bytesOut = body.size();
  if (body.empty() || x.stream.request().method == "HEAD") {
    co_await x.stream.sendHead(head, true);
    co_return;
  }
  if (!co_await x.stream.sendHead(head, false)) co_return;
  asio::const_buffer b(body.data(), body.size());
  co_await x.stream.sendBody(std::span<const asio::const_buffer>(&b, 1), true);
}

void HttpProxy::applyResponseFilters(Exchange& x, http::ResponseHead& head) {
  for (const auto* m : x.responseModifiers) filters::applyHeaderModifier(*m, head.headers);
  for (const auto& h : x.corsHeaders) head.headers.set(h.name, h.value);
  for (const auto* p : x.responsePlugins) p->onResponse(head);
}

http::Awaitable<bool> HttpProxy::applyFilter(Exchange& x, const runtime::CompiledFilter& cf) {
  const snapshot::HttpFilter& f = *cf.filter;
  http::RequestHead& req = x.stream.request();
  switch (f.type) {
    case Type::kRequestHeaderModifier:
      filters::applyRequestHeaderModifier(f.headers, req);
      co_return false;
    case Type::kResponseHeaderModifier:
      x.responseModifiers.push_back(&f.headers);
      co_return false;
    case Type::kUrlRewrite:
      filters::applyUrlRewrite(f.rewrite, req, x.entry->match.path);
      co_return false;
    case Type::kRequestRedirect: {
      http::HeaderMap h;
      h.add("location", filters::redirectLocation(f.redirect, req, x.stream.connection().scheme,
                                                  x.listener->listener->port, x.entry->match.path));
      co_await reply(x, f.redirect.statusCode, "", &h);
      co_return true;
    }
    case Type::kRequestMirror:
      startMirror(x, cf);
      co_return false;
    case Type::kCors:
      if (filters::isCorsPreflight(req)) {
        http::HeaderMap h = filters::corsPreflightHeaders(f.cors, req);
        co_await reply(x, 200, "", &h);
        co_return true;
      }
      x.corsHeaders = filters::corsResponseHeaders(f.cors, req);
      co_return false;
    case Type::kExtensionRef: {
      if (!cf.plugin) {
        co_await reply(x, 500, "filter unavailable\n");
        co_return true;
      }
      if (auto local = cf.plugin->onRequest(req)) {
        co_await reply(x, local->status, local->body, &local->headers);
        co_return true;
      }
      x.responsePlugins.push_back(cf.plugin.get());
      co_return false;
    }
  }
  co_return false;
}

void HttpProxy::startMirror(Exchange& x, const runtime::CompiledFilter& cf) {
  const auto& m = cf.filter->mirror;
  if (cf.mirrorBackend < 0 || m.denominator == 0 || m.numerator == 0) return;
  if (m.numerator < m.denominator && worker_.random() % m.denominator >= m.numerator) return;
  // A streamed body (larger than kRequestBodyBufferBytes, or gRPC not complete at once)
  // cannot be copied without buffering it whole: such requests are not mirrored.
  if (!x.bodyComplete) {
    if (x.listenerStats) stats::inc(x.listenerStats->mirrorsSkippedStreamedBody);
    return;
  }
  asio::co_spawn(worker_.io(), mirror(x.config, cf.mirrorBackend, x.stream.request(), x.body),
                 asio::detached);
}

http::Awaitable<void> HttpProxy::mirror(std::shared_ptr<const runtime::RuntimeConfig> config,
                                        int32_t backendIndex, http::RequestHead request,
                                        std::string body) {
  const auto& backend = config->backends[static_cast<size_t>(backendIndex)];
  if (backend->endpoints.empty()) co_return;
  auto& bs = config->worker(worker_.id()).backends[static_cast<size_t>(backendIndex)];
  size_t ep = bs.next++ % backend->endpoints.size();
  if (backend->protocol == snapshot::BackendProtocol::kH2c || http::grpc::isGrpcRequest(request)) {
    upstream::H2Pool* h2 = worker_.h2Pool(backend->endpoints[ep], backend->tls);
    if (!h2) co_return;
    std::error_code h2ec;
    request.hasBody = !body.empty();
    auto ex = co_await h2->start(request, std::move(body), true, std::nullopt, bs.stats, &h2ec);
    if (!ex) co_return;
    stats::inc(bs.stats->requests);
    Alarm alarm(worker_.io());
    alarm.guard(ex.get());
    alarm.arm(net::kUpstreamReadTimeout);
    http::ResponseHead head;
    if (co_await ex->readHead(head) != upstream::UpstreamError::kNone) co_return;
    co_await ex->readBody(nullptr);
    co_return;
  }
  upstream::Pool* pool = bs.pools[ep];
  if (!pool) pool = bs.pools[ep] = worker_.pool(backend->endpoints[ep], backend->tls);
  if (!pool) co_return;
  std::error_code ec;
  auto conn = co_await pool->acquire(bs.stats, &ec);
  if (!conn) co_return;
  stats::inc(bs.stats->requests);
  request.upgrade.clear();
  if (co_await conn->writeRequest(request, body, "") != upstream::UpstreamError::kNone) co_return;
  http::ResponseHead head;
  if (co_await conn->readHead(head, request.method == "HEAD") != upstream::UpstreamError::kNone)
    co_return;
  if (co_await conn->readBody(nullptr) != upstream::UpstreamError::kNone) co_return;
  pool->release(std::move(conn));
}

http::Awaitable<void> HttpProxy::runRule(Exchange& x) {
  const runtime::CompiledRule& rule = *x.rule;
  for (const auto& f : rule.filters) {
    // Mirrors need the body: read (the first buffer of) it before they start.
    if (f.filter->type == Type::kRequestMirror) {
      bool ok = co_await prefetchBody(x, true);
      if (!ok) co_return;
    }
    if (co_await applyFilter(x, f)) co_return;
  }
  if (rule.backends.empty()) {
    co_await reply(x, 500, "no backend for this route\n");
    co_return;
  }
  int pick = runtime::pickWeighted(rule, x.swrr);
  if (pick < 0) {
    co_await reply(x, 500, "no backend with a non-zero weight\n");
    co_return;
  }
  const runtime::CompiledBackendRef& ref = rule.backends[static_cast<size_t>(pick)];
  if (ref.backend < 0) {
    co_await reply(x, 500, "invalid backend reference\n");
    co_return;
  }
  for (const auto& f : ref.filters)
    if (co_await applyFilter(x, f)) co_return;
  co_await forward(x, ref);
}

http::Awaitable<void> HttpProxy::forward(Exchange& x, const runtime::CompiledBackendRef& ref) {
  const auto& backend = *x.config->backends[static_cast<size_t>(ref.backend)];
  x.backend = &backend;
  if (backend.tls && backend.tls->invalid) {
    // A BackendTLSPolicy that cannot be satisfied: never fall back to plaintext.
    co_await reply(x, 500, "invalid BackendTLSPolicy for this backend\n");
    co_return;
  }
  if (backend.endpoints.empty()) {
    co_await reply(x, 503, "no healthy upstream\n");
    co_return;
  }
  http::RequestHead& req = x.stream.request();
  if (req.hasBody && !x.bodyRead) {  // no coroutine frame for the common bodiless request
    bool ok = co_await prefetchBody(x);
    if (!ok) co_return;
  }
  // X-Forwarded-*: append the client to XFF; proto describes the client's connection
  // (X-Forwarded-Host is set in serve(), before filters can rewrite the authority).
  const auto& conn = x.stream.connection();
  bool xff = false;
  for (auto& h : req.headers.items()) {
    if (h.name == "x-forwarded-for") {
      h.value.append(", ");
      h.value.append(conn.remoteAddress);
      xff = true;
      break;
    }
  }
  if (!xff) req.headers.add("x-forwarded-for", conn.remoteAddress);
  req.headers.set("x-forwarded-proto", conn.scheme);
  if (backend.protocol == snapshot::BackendProtocol::kH2c || x.rule->rule->isGrpc || x.grpc) {
    co_await forwardH2(x, ref);
    co_return;
  }

  auto& bs = x.state.backends[static_cast<size_t>(ref.backend)];
  const snapshot::HttpRule& rule = *x.rule->rule;
  const snapshot::RetryPolicy* retry = rule.retry ? &*rule.retry : nullptr;
  int maxTries = 1 + (retry ? std::max(0, retry->attempts) : 0);
  bool headRequest = req.method == "HEAD";
  std::string upgrade = x.stream.upgradeRequested() ? req.upgrade : std::string();

  Alarm requestAlarm(worker_.io());
  if (rule.requestTimeout && rule.requestTimeout->count() > 0)
    requestAlarm.arm(*rule.requestTimeout);
  Alarm tryAlarm(worker_.io());

  size_t failedEndpoint = SIZE_MAX;
  bool staleRetryUsed = false;
  bool connectRetryUsed = false;
  int tries = 0;
  int lastStatus = 502;
  for (;;) {
    if (requestAlarm.fired()) {
      stats::inc(bs.stats->timeouts);
      co_await reply(x, 504, "upstream request timeout\n");
      co_return;
    }
    size_t epIndex = bs.next++ % backend.endpoints.size();
    // A retry goes to another endpoint than the one that just failed, even when other
    // requests advanced the shared round-robin cursor meanwhile.
    if (epIndex == failedEndpoint && backend.endpoints.size() > 1)
      epIndex = (epIndex + 1) % backend.endpoints.size();
    upstream::Pool* pool = bs.pools[epIndex];
    if (!pool) pool = bs.pools[epIndex] = worker_.pool(backend.endpoints[epIndex], backend.tls);
    if (!pool) {
      co_await reply(x, 502, "invalid endpoint address\n");
      co_return;
    }
    x.endpoint = &backend.endpoints[epIndex];
    std::error_code ec;
    auto tryStart = Clock::now();
    // A request that gets the free retry below when a pooled connection turns out dead
    // may skip the per-reuse liveness probe on a connection that was busy a moment ago.
    bool freeStaleRetry = !staleRetryUsed && maxTries <= 1 && x.bodyComplete;
    std::unique_ptr<upstream::Connection> conn = pool->takeIdle(freeStaleRetry);
    if (!conn) conn = co_await pool->acquire(bs.stats, &ec);
    stats::inc(bs.stats->requests);
    if (!conn) {
      ++tries;
      failedEndpoint = epIndex;
      // Nothing was sent: another endpoint can take it whatever the method.
      bool more = tries < maxTries || (!connectRetryUsed && backend.endpoints.size() > 1);
      if (tries >= maxTries) connectRetryUsed = true;
      if (more && !requestAlarm.fired()) {
        stats::inc(bs.stats->retries);
        continue;
      }
      co_await reply(x, requestAlarm.fired() ? 504 : 502, "upstream connect error\n");
      co_return;
    }
    requestAlarm.guard(conn.get());
    tryAlarm.guard(conn.get());
    if (rule.backendRequestTimeout && rule.backendRequestTimeout->count() > 0)
      tryAlarm.arm(*rule.backendRequestTimeout);
    http::ResponseHead head;
    upstream::UpstreamError err;
    http::BodyResult bodyResult = http::BodyResult::kOk;
    if (x.bodyComplete) {
      err = co_await conn->writeRequest(req, x.body, upgrade);
    } else {
      requestAlarm.guardBody(&x.stream);
      err = co_await streamBodyH1(x, *conn, bodyResult);
      requestAlarm.guardBody(nullptr);
      // A backend may answer (413, 401, ...) and close before taking the whole body:
      // its response still goes to the client.
      if (err == upstream::UpstreamError::kReset && x.bodyConsumed)
        err = upstream::UpstreamError::kNone;
    }
    if (bodyResult != http::BodyResult::kOk) {
      // The client failed mid-body: this request is over (its connection too).
      requestAlarm.guard(static_cast<upstream::Connection*>(nullptr));
      tryAlarm.cancel();
      conn.reset();
      co_await bodyFailed(x, bodyResult, requestAlarm.fired());
      co_return;
    }
    if (err == upstream::UpstreamError::kNone) err = co_await conn->readHead(head, headRequest);
    bool replayable = x.bodyComplete || !x.bodyConsumed;
    if (err != upstream::UpstreamError::kNone) {
      bool timedOut = err == upstream::UpstreamError::kTimeout;
      requestAlarm.guard(static_cast<upstream::Connection*>(nullptr));
      tryAlarm.cancel();
      bool stale = conn->reused && !conn->receivedAny() && !timedOut;
      conn.reset();
      // A pooled socket that died under us gets one free retry, but only when the route has
      // no retry budget of its own: with a retry policy every failed send is an attempt
      // (the backend may have reset on purpose, and "attempts" bounds what it sees).
      if (stale) pool->pruneClosed();  // its idle siblings may be dead too
      if (stale && !staleRetryUsed && maxTries <= 1 && replayable) {
        staleRetryUsed = true;  // a pooled socket the upstream had closed: not an attempt
        continue;
      }
      ++tries;
      failedEndpoint = epIndex;
      if (timedOut) stats::inc(bs.stats->timeouts);
      if (requestAlarm.fired()) {
        co_await reply(x, 504, "upstream request timeout\n");
        co_return;
      }
      // The request went out: only an idempotent method may be replayed (a POST that timed
      // out may have been processed; sending it again could apply it twice).
      bool canRetry = retry && tries < maxTries && replayable && idempotent(req.method) &&
                      (timedOut || retry->retryConnectionErrors);
      if (canRetry) {
        stats::inc(bs.stats->retries);
        if (retry->backoff.count() > 0) {
          asio::steady_timer t(worker_.io());
          t.expires_after(retry->backoff);
          co_await t.async_wait(http::kNoThrow);
        }
        continue;
      }
      co_await replyUpstreamFailure(x, err);
      co_return;
    }
    lastStatus = head.status;
    ++tries;
    if (retry && tries < maxTries && replayable && retryable(*retry, head.status)) {
      requestAlarm.guard(static_cast<upstream::Connection*>(nullptr));
      tryAlarm.cancel();
      conn.reset();  // drop rather than drain the unwanted body
      stats::inc(bs.stats->retries);
      if (retry->backoff.count() > 0) {
        asio::steady_timer t(worker_.io());
        t.expires_after(retry->backoff);
        co_await t.async_wait(http::kNoThrow);
      }
      continue;
    }
    (void)lastStatus;
    bs.stats->latency.observe(
        std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - tryStart));
    x.status = head.status;
    applyResponseFilters(x, head);
    if (head.status == 101) {
      tryAlarm.cancel();
      requestAlarm.cancel();
      if (upgrade.empty()) {
        co_await reply(x, 502, "unexpected upgrade from upstream\n");
        co_return;
      }
      if (conn->secure()) {
        co_await reply(x, 502, "upgrade over backend TLS is not supported\n");
        co_return;
      }
      if (!co_await x.stream.sendHead(head, false)) co_return;
      co_await x.stream.tunnel(conn->socket(), conn->leftover());
      co_return;
    }
    if (!upgrade.empty()) x.stream.closeAfterResponse();  // upgrade refused: framing unclear
    bool noBody = headRequest || head.status == 204 || head.status == 304 ||
                  (head.status >= 100 && head.status < 200) ||
                  (head.contentLength && *head.contentLength == 0);
    if (head.contentLength) x.bytesOut = *head.contentLength;
    if (!co_await x.stream.sendHead(head, noBody)) co_return;
    if (noBody) {
      // Consume the (empty) remainder so the connection can be reused.
      err = co_await conn->readBody(nullptr);
    } else {
      err = co_await conn->readBody(&x.stream);
    }
    requestAlarm.guard(static_cast<upstream::Connection*>(nullptr));
    tryAlarm.cancel();
    if (err != upstream::UpstreamError::kNone) {
      // Mid-body failure: the client connection cannot be trusted to be framed right.
      x.stream.closeAfterResponse();
      if (err == upstream::UpstreamError::kTimeout) stats::inc(bs.stats->timeouts);
      co_return;
    }
    pool->release(std::move(conn));
    co_return;
  }
}

http::Awaitable<bool> HttpProxy::prefetchBody(Exchange& x, bool forMirror) {
  if (x.bodyRead) co_return true;
  x.bodyRead = true;
  if (!x.stream.request().hasBody) co_return true;
  x.bodyComplete = false;
  if (auto declared = x.stream.declaredBodyLength();
      declared && *declared > net::requestBodyLimit) {
    x.stream.closeAfterResponse();
    co_await reply(x, 413, "request body too large\n");
    co_return false;
  }
  // gRPC takes what already arrived and streams the rest from the first message (a
  // client- or bidi-streaming call would deadlock waiting for more); everything else
  // waits for the body's end or a full first buffer. Before a mirror, gRPC waits for its
  // first whole message, then takes what else arrived: a unary call's END_STREAM comes
  // with its message, so the call is complete and can be copied.
  bool wait = !x.grpc || forMirror;
  for (;;) {
    bool end = false;
    http::BodyResult r = co_await x.stream.readBodySome(x.body, end, wait);
    if (r != http::BodyResult::kOk) {
      co_await bodyFailed(x, r, false);
      co_return false;
    }
    if (end) {
      x.bodyComplete = true;
      co_return true;
    }
    if (!wait || x.body.size() >= net::kRequestBodyBufferBytes) co_return true;
    if (x.grpc && http::grpc::hasWholeMessage(x.body)) wait = false;
  }
}

http::Awaitable<void> HttpProxy::bodyFailed(Exchange& x, http::BodyResult r, bool timedOut) {
  x.stream.closeAfterResponse();
  if (timedOut) {
    co_await reply(x, 504, "upstream request timeout\n");
  } else if (r == http::BodyResult::kTooLarge) {
    co_await reply(x, 413, "request body too large\n");
  } else {
    x.status = 400;  // the client went away or sent a bad body (the codec answered it)
  }
}

http::Awaitable<upstream::UpstreamError> HttpProxy::streamBodyH1(Exchange& x,
                                                                 upstream::Connection& conn,
                                                                 http::BodyResult& result) {
  upstream::UpstreamError err = co_await conn.writeStreamingHead(
      x.stream.request(), x.stream.declaredBodyLength(), x.body, false);
  if (err != upstream::UpstreamError::kNone) co_return err;
  // From here on the body is read past what is kept: no replay.
  x.bodyConsumed = true;
  std::string chunk;
  for (;;) {
    chunk.clear();
    bool end = false;
    result = co_await x.stream.readBodySome(chunk, end, true);
    if (result != http::BodyResult::kOk) co_return upstream::UpstreamError::kNone;
    err = co_await conn.writeBody(chunk, end);
    if (err != upstream::UpstreamError::kNone || end) co_return err;
  }
}

http::Awaitable<void> HttpProxy::pumpBody(Exchange& x, upstream::H2Exchange& ex, BodyPump& p) {
  std::string chunk;
  for (;;) {
    chunk.clear();
    bool end = false;
    http::BodyResult r = co_await x.stream.readBodySome(chunk, end, true);
    if (p.stop) break;
    if (r != http::BodyResult::kOk) {
      p.result = r;
      ex.abortRequest();
      break;
    }
    bool written = co_await ex.writeBody(chunk, end);
    if (!written || end) break;
  }
  p.running = false;
  p.done.notify();
}

http::Awaitable<void> HttpProxy::stopPump(Exchange& x, upstream::H2Exchange* ex, BodyPump& p) {
  if (!p.running) co_return;
  p.stop = true;
  x.stream.abortBodyRead();
  if (ex) ex->abortRequest();
  while (p.running) co_await p.done.wait();
}

void HttpProxy::finish(Exchange& x) {
  auto elapsed = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - x.start);
  if (x.listenerStats) {
    stats::inc(x.listenerStats->responses[stats::statusClass(x.status)]);
    x.listenerStats->latency.observe(elapsed);
  }
  auto& log = worker_.accessLog();
  if (!log.enabled()) return;
  const http::RequestHead& req = x.stream.request();
  std::string& out = log.line();
  auto now = std::chrono::system_clock::now();
  out += fmt::format("{{\"time\":\"{:%Y-%m-%dT%H:%M:%S}Z\",\"client\":",
                     std::chrono::floor<std::chrono::seconds>(now));
  runtime::appendJsonString(out, x.stream.connection().remoteAddress);
  out += ",\"method\":";
  runtime::appendJsonString(out, req.method);
  out += ",\"authority\":";
  runtime::appendJsonString(out, x.originalAuthority.empty() ? req.authority : x.originalAuthority);
  out += ",\"path\":";
  runtime::appendJsonString(out, x.originalPath.empty() ? req.path : x.originalPath);
  out += fmt::format(",\"status\":{},\"bytes_sent\":{},\"duration_ms\":{:.3f}", x.status,
                     x.bytesOut, static_cast<double>(elapsed.count()) / 1000.0);
  if (x.listener) {
    out += ",\"listener\":";
    runtime::appendJsonString(out, x.listener->statsKey);
  }
  if (x.rule) {
    out += ",\"route\":";
    runtime::appendJsonString(out, x.rule->rule->routeNs + "/" + x.rule->rule->routeName);
  }
  if (x.backend) {
    out += ",\"backend\":";
    runtime::appendJsonString(out, x.backend->id);
    if (x.endpoint) {
      out += ",\"upstream\":";
      runtime::appendJsonString(out, fmt::format("{}:{}", x.endpoint->address, x.endpoint->port));
    }
  }
  out += "}\n";
  log.maybeFlush();
}

}  // namespace archway::proxy

namespace archway::proxy {

http::Awaitable<void> HttpProxy::forwardH2(Exchange& x, const runtime::CompiledBackendRef& ref) {
  const auto& backend = *x.config->backends[static_cast<size_t>(ref.backend)];
  http::RequestHead& req = x.stream.request();
  auto& bs = x.state.backends[static_cast<size_t>(ref.backend)];
  const snapshot::HttpRule& rule = *x.rule->rule;
  const snapshot::RetryPolicy* retry = rule.retry ? &*rule.retry : nullptr;
  int maxTries = 1 + (retry ? std::max(0, retry->attempts) : 0);

  // The request deadline: the route's, shortened by the client's grpc-timeout.
  std::optional<Clock::duration> requestTimeout;
  if (rule.requestTimeout && rule.requestTimeout->count() > 0)
    requestTimeout = *rule.requestTimeout;
  if (x.grpc) {
    if (const std::string* t = req.headers.get("grpc-timeout")) {
      if (auto d = http::grpc::parseTimeout(*t)) {
        if (!requestTimeout || *d < *requestTimeout) requestTimeout = *d;
      }
    }
  }
  Alarm requestAlarm(worker_.io());
  if (requestTimeout) requestAlarm.arm(*requestTimeout);
  Alarm tryAlarm(worker_.io());

  int tries = 0;
  bool refusedRetryUsed = false;
  for (;;) {
    if (requestAlarm.fired()) {
      stats::inc(bs.stats->timeouts);
      co_await reply(x, 504, "upstream request timeout\n");
      co_return;
    }
    size_t epIndex = bs.next++ % backend.endpoints.size();
    upstream::H2Pool* pool = worker_.h2Pool(backend.endpoints[epIndex], backend.tls);
    if (!pool) {
      co_await reply(x, 502, "invalid endpoint address\n");
      co_return;
    }
    x.endpoint = &backend.endpoints[epIndex];
    std::error_code ec;
    auto tryStart = Clock::now();
    auto ex = co_await pool->start(req, x.body, x.bodyComplete, x.stream.declaredBodyLength(),
                                   bs.stats, &ec);
    stats::inc(bs.stats->requests);
    if (!ex) {
      ++tries;
      bool more = tries < maxTries || (tries == 1 && backend.endpoints.size() > 1);
      if (more && !requestAlarm.fired()) {
        stats::inc(bs.stats->retries);
        continue;
      }
      // As on the HTTP/1.1 path: no connection to the endpoint is 502 (nginx's answer);
      // 503 is kept for "no ready endpoints", which the spec names.
      co_await reply(x, requestAlarm.fired() ? 504 : 502, "upstream connect error\n");
      co_return;
    }
    requestAlarm.guard(ex.get());
    tryAlarm.guard(ex.get());
    if (rule.backendRequestTimeout && rule.backendRequestTimeout->count() > 0)
      tryAlarm.arm(*rule.backendRequestTimeout);
    // A streamed body flows in its own coroutine while this one relays the response:
    // gRPC bidi streams need both directions at once.
    BodyPump pump(worker_.io());
    if (!x.bodyComplete) {
      x.bodyConsumed = true;
      pump.running = true;
      requestAlarm.guardBody(&x.stream);
      asio::co_spawn(worker_.io(), pumpBody(x, *ex, pump), asio::detached);
    }
    bool again = co_await exchangeH2(x, *ex, bs, pump, requestAlarm, tryAlarm, tries,
                                     refusedRetryUsed, tryStart);
    requestAlarm.guard(static_cast<upstream::H2Exchange*>(nullptr));
    requestAlarm.guardBody(nullptr);
    tryAlarm.cancel();
    co_await stopPump(x, ex.get(), pump);
    ex.reset();
    if (!again) co_return;
  }
}

http::Awaitable<bool> HttpProxy::exchangeH2(Exchange& x, upstream::H2Exchange& ex,
                                            runtime::WorkerState::Backend& bs, BodyPump& pump,
                                            Alarm& requestAlarm, Alarm& tryAlarm, int& tries,
                                            bool& refusedRetryUsed, Clock::time_point tryStart) {
  http::RequestHead& req = x.stream.request();
  const snapshot::HttpRule& rule = *x.rule->rule;
  const snapshot::RetryPolicy* retry = rule.retry ? &*rule.retry : nullptr;
  int maxTries = 1 + (retry ? std::max(0, retry->attempts) : 0);
  bool replayable = x.bodyComplete;
  http::ResponseHead head;
  upstream::UpstreamError err = co_await ex.readHead(head);
  if (err != upstream::UpstreamError::kNone) {
    bool timedOut = err == upstream::UpstreamError::kTimeout;
    bool refused = ex.refused();
    if (err == upstream::UpstreamError::kDownstream || pump.result != http::BodyResult::kOk) {
      co_await stopPump(x, &ex, pump);
      co_await bodyFailed(x, pump.result, requestAlarm.fired());
      co_return false;
    }
    if (refused && !refusedRetryUsed && replayable) {
      refusedRetryUsed = true;  // the backend never processed it (GOAWAY/REFUSED_STREAM)
      co_return true;
    }
    ++tries;
    if (timedOut) stats::inc(bs.stats->timeouts);
    if (requestAlarm.fired()) {
      co_await reply(x, 504, "upstream request timeout\n");
      co_return false;
    }
    // The request went out: only an idempotent method may be replayed (a POST that timed
    // out may have been processed; sending it again could apply it twice).
    bool canRetry = retry && tries < maxTries && replayable && idempotent(req.method) &&
                    (timedOut || retry->retryConnectionErrors);
    if (canRetry) {
      stats::inc(bs.stats->retries);
      co_return true;
    }
    co_await replyUpstreamFailure(x, err);
    co_return false;
  }
  ++tries;
  if (retry && tries < maxTries && replayable && retryable(*retry, head.status)) {
    stats::inc(bs.stats->retries);
    co_return true;
  }
  bs.stats->latency.observe(
      std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - tryStart));
  x.status = head.status;
  applyResponseFilters(x, head);
  bool noBody =
      ex.endedWithHead() || req.method == "HEAD" || head.status == 204 || head.status == 304;
  if (head.contentLength) x.bytesOut = *head.contentLength;
  if (!co_await x.stream.sendHead(head, noBody)) co_return false;
  if (!noBody) err = co_await ex.readBody(&x.stream);
  if (err != upstream::UpstreamError::kNone) {
    x.stream.closeAfterResponse();
    if (err == upstream::UpstreamError::kTimeout) stats::inc(bs.stats->timeouts);
  }
  (void)tryAlarm;
  co_return false;
}

}  // namespace archway::proxy

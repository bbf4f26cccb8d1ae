// The HTTP request pipeline, protocol-independent: listener selection -> route lookup ->
// filters (spec order) -> weighted backend choice -> upstream exchange with retries and
// timeouts -> response filters -> streamed response. One HttpProxy per worker.
#pragma once

#include <memory>

#include "http/stream.h"
#include "runtime/config.h"
#include "runtime/timed.h"

namespace archway::runtime {
class Worker;
}
namespace archway::upstream {
class Connection;
class H2Exchange;
enum class UpstreamError;
}  // namespace archway::upstream

namespace archway::proxy {

class HttpProxy {
 public:
  explicit HttpProxy(runtime::Worker& worker) : worker_(worker) {}

  // Serves one request. `config` is the snapshot the request started with; `port` belongs
  // to it. Returns when the response is complete (or the stream failed).
  http::Awaitable<void> serve(http::ServerStream& stream,
                              std::shared_ptr<const runtime::RuntimeConfig> config,
                              const runtime::CompiledPort* port);

 private:
  struct Exchange;
  class Alarm;
  struct BodyPump;
  http::Awaitable<void> runRule(Exchange& x);
  http::Awaitable<void> forward(Exchange& x, const runtime::CompiledBackendRef& ref);
  // HTTP/2 upstream (h2c backends and every gRPC backend); request already prepared.
  http::Awaitable<void> forwardH2(Exchange& x, const runtime::CompiledBackendRef& ref);
  // One HTTP/2 upstream attempt once the stream started: response relay, retry decision.
  // True: try again.
  http::Awaitable<bool> exchangeH2(Exchange& x, upstream::H2Exchange& ex,
                                   runtime::WorkerState::Backend& bs, BodyPump& pump,
                                   Alarm& requestAlarm, Alarm& tryAlarm, int& tries,
                                   bool& refusedRetryUsed, runtime::Clock::time_point tryStart);
  // Reads the request body up to its end or net::kRequestBodyBufferBytes (gRPC: what
  // already arrived; for a mirror, at least its first whole message). False when the
  // request is over (413, client gone).
  http::Awaitable<bool> prefetchBody(Exchange& x, bool forMirror = false);
  // Answers a request whose body failed (413, route timeout) or records the client gone.
  http::Awaitable<void> bodyFailed(Exchange& x, http::BodyResult r, bool timedOut);
  // HTTP/1.1 upstream, streamed body: head + prefetched bytes, then the rest as it
  // arrives. `result` reports a downstream failure.
  http::Awaitable<upstream::UpstreamError> streamBodyH1(Exchange& x, upstream::Connection& conn,
                                                        http::BodyResult& result);
  // HTTP/2 upstream, streamed body: runs beside the response relay.
  http::Awaitable<void> pumpBody(Exchange& x, upstream::H2Exchange& ex, BodyPump& p);
  http::Awaitable<void> stopPump(Exchange& x, upstream::H2Exchange* ex, BodyPump& p);
  http::Awaitable<void> reply(Exchange& x, int status, std::string_view body,
                              const http::HeaderMap* extra = nullptr);
  // The answer to an upstream that failed after the request went out, the same for
  // HTTP/1.1 and h2c backends: timeout 504, invalid response 502, reset or close 503.
  http::Awaitable<void> replyUpstreamFailure(Exchange& x, upstream::UpstreamError err);
  // Applies one filter in the request phase; true when it produced the response.
  http::Awaitable<bool> applyFilter(Exchange& x, const runtime::CompiledFilter& f);
  void applyResponseFilters(Exchange& x, http::ResponseHead& head);
  void startMirror(Exchange& x, const runtime::CompiledFilter& f);
  http::Awaitable<void> mirror(std::shared_ptr<const runtime::RuntimeConfig> config,
                               int32_t backend, http::RequestHead request, std::string body);
  void finish(Exchange& x);

  runtime::Worker& worker_;
};

}  // namespace archway::proxy

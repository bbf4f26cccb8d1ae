// The HTTP request pipeline, protocol-independent: listener selection -> route lookup ->
// filters (spec order) -> weighted backend choice -> upstream exchange with retries and
// timeouts -> response filters -> streamed response. One HttpProxy per worker.
#pragma once

#include <memory>

#include "http/stream.h"
#include "runtime/config.h"

namespace archway::runtime {
class Worker;
}

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
  http::Awaitable<void> runRule(Exchange& x);
  http::Awaitable<void> forward(Exchange& x, const runtime::CompiledBackendRef& ref);
  // HTTP/2 upstream (h2c backends and every gRPC backend); request already prepared.
  http::Awaitable<void> forwardH2(Exchange& x, const runtime::CompiledBackendRef& ref);
  http::Awaitable<void> reply(Exchange& x, int status, std::string_view body,
                              const http::HeaderMap* extra = nullptr);
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

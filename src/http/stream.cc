#include "http/stream.h"

namespace archway::http {

Awaitable<bool> sendLocalReply(ServerStream& stream, int status, std::string_view body,
                               const HeaderMap* extraHeaders) {
  ResponseHead head;
  head.status = status;
  if (extraHeaders)
    for (const auto& h : *extraHeaders) head.headers.add(h.name, h.value);
  if (!body.empty() && !head.headers.get("content-type"))
    head.headers.add("content-type", "text/plain; charset=utf-8");
  head.contentLength = body.size();
  if (body.empty() || stream.request().method == "HEAD") co_return co_await stream.sendHead(head, true);
  if (!co_await stream.sendHead(head, false)) co_return false;
  asio::const_buffer b(body.data(), body.size());
  co_return co_await stream.sendBody(std::span<const asio::const_buffer>(&b, 1), true);
}

}  // namespace archway::http

// The Gateway API HTTP filters, as pure functions over protocol-independent messages.
// The proxy (src/proxy/http_proxy.cc) applies them in spec order; everything here is
// deterministic and unit-tested against the tables in the Gateway API docs.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "http/message.h"
#include "snapshot/snapshot.h"

namespace archway::filters {

// ReplacePrefixMatch: replaces the matched `prefix` (element-wise PathPrefix semantics) of
// `path` (no query) by `replacement`. "/foo/bar" + "/foo" -> "/xyz" gives "/xyz/bar".
std::string replacePrefixMatch(std::string_view path, std::string_view prefix,
                               std::string_view replacement);

// New path (query kept) for a path modifier; `matched` is the route match that selected
// the rule (ReplacePrefixMatch needs its prefix).
std::string modifiedPath(const snapshot::PathModifier& modifier, const http::RequestHead& request,
                         const snapshot::PathMatch& matched);

// RequestHeaderModifier / ResponseHeaderModifier: set, add (joined with ","), remove.
void applyHeaderModifier(const snapshot::HeaderModifier& modifier, http::HeaderMap& headers);
// Request variant: "host" edits go to the authority.
void applyRequestHeaderModifier(const snapshot::HeaderModifier& modifier,
                                http::RequestHead& request);

// URLRewrite: hostname replaces the authority; the path modifier rewrites the path.
void applyUrlRewrite(const snapshot::UrlRewrite& rewrite, http::RequestHead& request,
                     const snapshot::PathMatch& matched);

// RequestRedirect: the Location header value. `scheme` is the request's scheme and
// `listenerPort` the port of the Gateway listener that received it.
std::string redirectLocation(const snapshot::RequestRedirect& redirect,
                             const http::RequestHead& request, std::string_view scheme,
                             uint16_t listenerPort, const snapshot::PathMatch& matched);

// CORS (HTTPCORSFilter).
bool corsOriginAllowed(const snapshot::Cors& cors, std::string_view origin);
bool isCorsPreflight(const http::RequestHead& request);
// Headers for a successful preflight (status 200/204). Empty when the origin is not allowed.
http::HeaderMap corsPreflightHeaders(const snapshot::Cors& cors, const http::RequestHead& request);
// Headers added to an actual (non-preflight) response. Empty when not allowed/not CORS.
http::HeaderMap corsResponseHeaders(const snapshot::Cors& cors, const http::RequestHead& request);

}  // namespace archway::filters

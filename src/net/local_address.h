// Whether this host can bind an IP address: what `archway check` and `archway run` report
// for a Gateway's static `spec.addresses` (GatewayStaticAddresses: an unusable address makes
// the Gateway not Programmed with reason AddressNotUsable).
#pragma once

#include <string>

namespace archway::net {

// True for loopback and the unspecified address (0.0.0.0, ::) and for an address of a local
// interface; false for anything else, including text that is not an IP address.
bool isLocalAddress(const std::string& address);

}  // namespace archway::net

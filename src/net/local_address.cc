#include "net/local_address.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>

#include <cstring>

namespace archway::net {

bool isLocalAddress(const std::string& address) {
  in_addr v4{};
  in6_addr v6{};
  bool isV4 = inet_pton(AF_INET, address.c_str(), &v4) == 1;
  if (isV4) {
    uint32_t host = ntohl(v4.s_addr);
    if ((host >> 24) == 127 || host == 0) return true;
  } else if (inet_pton(AF_INET6, address.c_str(), &v6) == 1) {
    // Compared as bytes, so every spelling of ::1 and :: counts.
    if (IN6_IS_ADDR_LOOPBACK(&v6) || IN6_IS_ADDR_UNSPECIFIED(&v6)) return true;
  } else {
    return false;
  }
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return false;
  bool found = false;
  for (auto* i = list; i && !found; i = i->ifa_next) {
    if (!i->ifa_addr) continue;
    if (isV4 && i->ifa_addr->sa_family == AF_INET) {
      const auto& a = reinterpret_cast<const sockaddr_in*>(i->ifa_addr)->sin_addr;
      found = a.s_addr == v4.s_addr;
    } else if (!isV4 && i->ifa_addr->sa_family == AF_INET6) {
      const auto& a = reinterpret_cast<const sockaddr_in6*>(i->ifa_addr)->sin6_addr;
      found = std::memcmp(&a, &v6, sizeof(v6)) == 0;
    }
  }
  freeifaddrs(list);
  return found;
}

}  // namespace archway::net

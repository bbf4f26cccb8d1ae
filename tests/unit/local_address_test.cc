// net::isLocalAddress decides whether a Gateway's static address is usable (else the
// Gateway is not Programmed: AddressNotUsable).
#include "net/local_address.h"

#include <gtest/gtest.h>

namespace archway::net {
namespace {

TEST(LocalAddress, LoopbackAndUnspecifiedInEverySpelling) {
  EXPECT_TRUE(isLocalAddress("127.0.0.1"));
  EXPECT_TRUE(isLocalAddress("127.3.4.5"));
  EXPECT_TRUE(isLocalAddress("0.0.0.0"));
  EXPECT_TRUE(isLocalAddress("::1"));
  EXPECT_TRUE(isLocalAddress("0:0:0:0:0:0:0:1"));
  EXPECT_TRUE(isLocalAddress("::"));
  EXPECT_TRUE(isLocalAddress("0::0"));
}

TEST(LocalAddress, AddressesNoInterfaceHasAreNotLocal) {
  // Documentation ranges (RFC 5737, RFC 3849): never assigned to a real interface.
  EXPECT_FALSE(isLocalAddress("192.0.2.77"));
  EXPECT_FALSE(isLocalAddress("2001:db8::77"));
}

TEST(LocalAddress, TextThatIsNotAnAddressIsNotLocal) {
  EXPECT_FALSE(isLocalAddress(""));
  EXPECT_FALSE(isLocalAddress("localhost"));
  EXPECT_FALSE(isLocalAddress("127.0.0.1:80"));
  EXPECT_FALSE(isLocalAddress("256.0.0.1"));
  EXPECT_FALSE(isLocalAddress("::1%lo"));
}

}  // namespace
}  // namespace archway::net

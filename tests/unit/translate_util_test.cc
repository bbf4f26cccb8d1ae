#include <gtest/gtest.h>

#include "translate/util.h"

namespace archway::translate {
namespace {

using Hosts = std::vector<std::string>;

TEST(WildcardCovers, MatchesOneOrMoreLabelsButNotTheBareDomain) {
  EXPECT_TRUE(wildcardCovers("*.example.com", "foo.example.com"));
  EXPECT_TRUE(wildcardCovers("*.example.com", "foo.bar.example.com"));
  EXPECT_FALSE(wildcardCovers("*.example.com", "example.com"));
  EXPECT_FALSE(wildcardCovers("*.example.com", "fooexample.com"));
  EXPECT_TRUE(wildcardCovers("*.example.com", "*.foo.example.com"));
  EXPECT_TRUE(wildcardCovers("*.example.com", "*.example.com"));
  EXPECT_FALSE(wildcardCovers("*.foo.example.com", "*.example.com"));
  EXPECT_FALSE(wildcardCovers("example.com", "example.com"));  // not a wildcard
}

TEST(IntersectHostnames, FollowsTheSpecTable) {
  // Listener without hostname: the route's names as they are.
  EXPECT_EQ(intersectHostnames(std::nullopt, Hosts{"a.com"}), Hosts{"a.com"});
  // Route without hostnames: no restriction beyond the listener.
  EXPECT_EQ(intersectHostnames(std::string("a.com"), Hosts{}), Hosts{});
  // Exact listener: exact match, or a wildcard route that covers it (serves the listener's).
  EXPECT_EQ(intersectHostnames(std::string("test.example.com"), Hosts{"*.example.com"}),
            Hosts{"test.example.com"});
  EXPECT_EQ(intersectHostnames(std::string("test.example.com"), Hosts{"test.example.com"}),
            Hosts{"test.example.com"});
  EXPECT_EQ(intersectHostnames(std::string("very.specific.com"), Hosts{"*.wildcard.io"}),
            std::nullopt);
  // Wildcard listener: any name within it; non-matching names are dropped.
  EXPECT_EQ(intersectHostnames(std::string("*.example.com"),
                               Hosts{"foo.test.example.com", "example.com", "*.example.com"}),
            (Hosts{"foo.test.example.com", "*.example.com"}));
  EXPECT_EQ(intersectHostnames(std::string("*.example.com"), Hosts{"example.com"}), std::nullopt);
}

TEST(LabelSelector, MatchLabelsAndExpressions) {
  std::map<std::string, std::string> labels{{"env", "prod"}, {"team", "a"}};
  EXPECT_TRUE(labelSelectorMatches(nlohmann::json::object(), labels));
  EXPECT_TRUE(labelSelectorMatches({{"matchLabels", {{"env", "prod"}}}}, labels));
  EXPECT_FALSE(labelSelectorMatches({{"matchLabels", {{"env", "dev"}}}}, labels));
  auto expr = [](const char* key, const char* op, std::vector<std::string> values) {
    return nlohmann::json{
        {"matchExpressions", {{{"key", key}, {"operator", op}, {"values", values}}}}};
  };
  EXPECT_TRUE(labelSelectorMatches(expr("env", "In", {"prod", "staging"}), labels));
  EXPECT_FALSE(labelSelectorMatches(expr("env", "In", {"dev"}), labels));
  EXPECT_TRUE(labelSelectorMatches(expr("env", "NotIn", {"dev"}), labels));
  EXPECT_FALSE(labelSelectorMatches(expr("env", "NotIn", {"prod"}), labels));
  EXPECT_TRUE(labelSelectorMatches(expr("missing", "NotIn", {"x"}), labels));
  EXPECT_TRUE(labelSelectorMatches(expr("team", "Exists", {}), labels));
  EXPECT_FALSE(labelSelectorMatches(expr("team", "DoesNotExist", {}), labels));
  EXPECT_FALSE(labelSelectorMatches(expr("team", "Bogus", {}), labels));  // malformed: no match
  // Both parts are ANDed.
  nlohmann::json both = expr("team", "Exists", {});
  both["matchLabels"] = {{"env", "dev"}};
  EXPECT_FALSE(labelSelectorMatches(both, labels));
}

TEST(ParseDuration, GatewayApiFormat) {
  using std::chrono::milliseconds;
  EXPECT_EQ(parseDuration("1h2m3s500ms"), milliseconds(3723500));
  EXPECT_EQ(parseDuration("0s"), milliseconds(0));
  EXPECT_EQ(parseDuration("10ms"), milliseconds(10));
  EXPECT_EQ(parseDuration("2m"), milliseconds(120000));
  EXPECT_EQ(parseDuration(""), std::nullopt);
  EXPECT_EQ(parseDuration("1.5s"), std::nullopt);
  EXPECT_EQ(parseDuration("1d"), std::nullopt);
  EXPECT_EQ(parseDuration("s"), std::nullopt);
  EXPECT_EQ(parseDuration("123456s"), std::nullopt);  // at most 5 digits
  EXPECT_EQ(parseDuration("1s1s"), std::nullopt);
}

TEST(Base64, DecodesStandardAlphabetWithPadding) {
  EXPECT_EQ(base64Decode("aGVsbG8="), std::string("hello"));
  EXPECT_EQ(base64Decode("aGVs\nbG8="), std::string("hello"));
  EXPECT_EQ(base64Decode("a$b"), std::nullopt);
}

TEST(AddressPool, StableAndInsideThePool) {
  auto a = addressFromPool("10.1.0.0/16", "ns/gw");
  ASSERT_TRUE(a);
  EXPECT_EQ(a, addressFromPool("10.1.0.0/16", "ns/gw"));
  EXPECT_EQ(a->rfind("10.1.", 0), 0u);
  EXPECT_NE(*a, "10.1.0.0");
  EXPECT_NE(a, addressFromPool("10.1.0.0/16", "ns/other"));
  EXPECT_EQ(addressFromPool("10.0.0.7/32", "x"), std::string("10.0.0.7"));
  EXPECT_TRUE(addressFromPool("fd00::/64", "ns/gw"));
  EXPECT_EQ(addressFromPool("bogus", "x"), std::nullopt);
  EXPECT_EQ(addressFromPool("10.0.0.0/33", "x"), std::nullopt);
}

TEST(Certificates, RejectsGarbage) {
  std::string error;
  EXPECT_FALSE(validCertificateAndKey("not a cert", "not a key", &error));
  EXPECT_FALSE(error.empty());
  EXPECT_FALSE(validCaBundle("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"));
  EXPECT_TRUE(isIpAddress("::1"));
  EXPECT_FALSE(isIpAddress("1.2.3"));
}

}  // namespace
}  // namespace archway::translate

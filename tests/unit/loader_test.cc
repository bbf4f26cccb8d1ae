#include "api/loader.h"

#include <gtest/gtest.h>

namespace archway::api {
namespace {

TEST(Loader, DecodesMultiDocumentYamlWithLines) {
  const char* text = R"(apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: gw
  namespace: infra
spec:
  gatewayClassName: archway
  listeners:
  - name: http
    port: 80
    protocol: HTTP
---
apiVersion: v1
kind: Namespace
metadata:
  name: infra
  labels:
    team: "42"
)";
  LoadResult r = decodeText(text, "x.yaml");
  ASSERT_FALSE(r.inputError);
  ASSERT_EQ(r.objects.size(), 2u);
  const Object& gw = r.objects[0];
  EXPECT_EQ(gw.kind, "Gateway");
  EXPECT_EQ(gw.ns, "infra");
  EXPECT_EQ(gw.group(), "gateway.networking.k8s.io");
  EXPECT_EQ(gw.spec()["listeners"][0]["port"], 80);
  EXPECT_EQ(gw.locationOf("spec.listeners[0].port").line, 10);
  EXPECT_EQ(gw.locationOf("spec.listeners[0].nonexistent").line, 9);
  EXPECT_EQ(r.objects[1].location.line, 13);
  // Quoted scalars stay strings.
  EXPECT_TRUE(r.objects[1].metadata()["labels"]["team"].is_string());
}

TEST(Loader, DecodesJsonAndLists) {
  LoadResult r = decodeText(
      R"({"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"Service","metadata":{"name":"a"}}]})",
      "x.json");
  ASSERT_EQ(r.objects.size(), 1u);
  EXPECT_EQ(r.objects[0].kind, "Service");
}

TEST(Loader, MalformedYamlIsAnInputErrorWithLine) {
  LoadResult r = decodeText("a: b\nc: [d\n", "bad.yaml");
  EXPECT_TRUE(r.inputError);
  ASSERT_FALSE(r.diagnostics.empty());
  EXPECT_NE(r.diagnostics[0].format().find("bad.yaml:"), std::string::npos);
}

TEST(Loader, DeepNestingIsRejectedNotRecursed) {
  std::string deep(10000, '[');
  LoadResult r = decodeText(deep, "deep.yaml");
  EXPECT_TRUE(r.inputError);
  std::string deepMaps;
  for (int i = 0; i < 200; ++i) deepMaps += std::string(static_cast<size_t>(i) * 2, ' ') + "a:\n";
  r = decodeText(deepMaps, "deep2.yaml");
  EXPECT_TRUE(r.inputError);
}

TEST(Loader, ObjectWithoutKindIsSkippedOthersKept) {
  LoadResult r = decodeText("metadata: {name: x}\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: s}\n",
                            "m.yaml");
  EXPECT_FALSE(r.inputError);
  ASSERT_EQ(r.objects.size(), 1u);
  ASSERT_EQ(r.diagnostics.size(), 1u);
  EXPECT_EQ(r.diagnostics[0].location.line, 1);
}

}  // namespace
}  // namespace archway::api

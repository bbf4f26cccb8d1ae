#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "sources/kube_config.h"
#include "sources/kube_source.h"
#include "translate/translator.h"

namespace archway::sources {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "kubecfg-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string write(const std::string& name, const std::string& text) const {
    std::string p = (fs::path(path_) / name).string();
    std::ofstream(p) << text;
    return p;
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

const char* kPem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

TEST(KubeConfig, Base64) {
  bool ok = false;
  EXPECT_EQ(base64DecodeStrict("aGVsbG8=", &ok), "hello");
  EXPECT_TRUE(ok);
  EXPECT_EQ(base64DecodeStrict("aGVs\nbG8h", &ok), "hello!");
  EXPECT_TRUE(ok);
  base64DecodeStrict("a*b=", &ok);
  EXPECT_FALSE(ok);
  base64DecodeStrict("aGVsbG8=x", &ok);
  EXPECT_FALSE(ok);
}

TEST(KubeConfig, CurrentContextWithFilesRelativeToConfig) {
  TempDir dir;
  dir.write("ca.crt", kPem);
  dir.write("client.crt", "CERT");
  dir.write("client.key", "KEY");
  std::string cfg = dir.write("config", R"(apiVersion: v1
kind: Config
current-context: prod
clusters:
- name: dev
  cluster: {server: "https://dev:6443"}
- name: prod
  cluster:
    server: https://10.0.0.1:6443/
    certificate-authority: ca.crt
contexts:
- name: dev
  context: {cluster: dev, user: dev}
- name: prod
  context: {cluster: prod, user: admin, namespace: gateways}
users:
- name: admin
  user:
    client-certificate: client.crt
    client-key: client.key
)");
  ClusterAccess a;
  std::string error;
  ASSERT_TRUE(loadKubeconfig(cfg, &a, &error)) << error;
  EXPECT_EQ(a.server, "https://10.0.0.1:6443");
  EXPECT_EQ(a.caPem, kPem);
  EXPECT_EQ(a.clientCertPem, "CERT");
  EXPECT_EQ(a.clientKeyPem, "KEY");
  EXPECT_EQ(a.ns, "gateways");
  EXPECT_FALSE(a.insecureSkipTlsVerify);
  EXPECT_EQ(a.origin, "kubeconfig " + cfg);
}

TEST(KubeConfig, InlineDataTokenAndInsecure) {
  ClusterAccess a;
  std::string error;
  ASSERT_TRUE(parseKubeconfig(R"(current-context: c
clusters:
- name: k
  cluster:
    server: https://k:443
    certificate-authority-data: aGVsbG8=
    insecure-skip-tls-verify: true
contexts:
- {name: c, context: {cluster: k, user: u}}
users:
- name: u
  user:
    client-certificate-data: Y2VydA==
    client-key-data: a2V5
    token: abc
)",
                              "/x/config", &a, &error))
      << error;
  EXPECT_EQ(a.caPem, "hello");
  EXPECT_EQ(a.clientCertPem, "cert");
  EXPECT_EQ(a.clientKeyPem, "key");
  EXPECT_TRUE(a.insecureSkipTlsVerify);
  std::string token;
  ASSERT_TRUE(a.currentToken(&token, &error));
  EXPECT_EQ(token, "abc");
}

TEST(KubeConfig, TokenFileIsReadEachTime) {
  TempDir dir;
  dir.write("tok", "first\n");
  std::string cfg = dir.write("config", R"(current-context: c
clusters: [{name: k, cluster: {server: "https://k"}}]
contexts: [{name: c, context: {cluster: k, user: u}}]
users: [{name: u, user: {tokenFile: tok}}]
)");
  ClusterAccess a;
  std::string error, token;
  ASSERT_TRUE(loadKubeconfig(cfg, &a, &error)) << error;
  ASSERT_TRUE(a.currentToken(&token, &error));
  EXPECT_EQ(token, "first");
  dir.write("tok", "second");
  ASSERT_TRUE(a.currentToken(&token, &error));
  EXPECT_EQ(token, "second");
}

struct BadCase {
  const char* text;
  const char* message;
};

TEST(KubeConfig, ClearErrors) {
  const BadCase cases[] = {
      {"a: [", "cannot parse YAML"},
      {"- 1\n", "not a mapping"},
      {"clusters: []\n", "current-context is not set"},
      {"current-context: c\n", "context \"c\" is not defined in contexts"},
      {"current-context: c\ncontexts: [{name: c, context: {cluster: k}}]\n",
       "cluster \"k\" is not defined in clusters"},
      {"current-context: c\ncontexts: [{name: c, context: {cluster: k}}]\n"
       "clusters: [{name: k, cluster: {}}]\n",
       "cluster \"k\" has no server"},
      {"current-context: c\ncontexts: [{name: c, context: {cluster: k}}]\n"
       "clusters: [{name: k, cluster: {server: \"ftp://x\"}}]\n",
       "is not an http(s) URL"},
      {"current-context: c\ncontexts: [{name: c, context: {cluster: k}}]\n"
       "clusters: [{name: k, cluster: {server: \"https://x\", certificate-authority: nope.crt}}]\n",
       "cluster k.certificate-authority: /d/nope.crt: No such file or directory"},
      {"current-context: c\ncontexts: [{name: c, context: {cluster: k}}]\n"
       "clusters: [{name: k, cluster: {server: \"https://x\", certificate-authority-data: "
       "\"!!\"}}]\n",
       "certificate-authority-data: not valid base64"},
      {"current-context: c\ncontexts: [{name: c, context: {cluster: k, user: u}}]\n"
       "clusters: [{name: k, cluster: {server: \"https://x\"}}]\n"
       "users: [{name: u, user: {exec: {command: aws}}}]\n",
       "exec and auth-provider credentials are not supported"},
      {"current-context: c\ncontexts: [{name: c, context: {cluster: k, user: u}}]\n"
       "clusters: [{name: k, cluster: {server: \"https://x\"}}]\n"
       "users: [{name: u, user: {client-certificate-data: Y2VydA==}}]\n",
       "a client certificate needs its key"},
      {"current-context: c\ncontexts: [{name: c, context: {cluster: [1]}}]\n",
       "context c.cluster: must be a string"},
  };
  for (const auto& c : cases) {
    ClusterAccess a;
    std::string error;
    EXPECT_FALSE(parseKubeconfig(c.text, "/d/config", &a, &error)) << c.text;
    EXPECT_NE(error.find("kubeconfig /d/config: "), std::string::npos) << error;
    EXPECT_NE(error.find(c.message), std::string::npos) << "got: " << error;
  }
  ClusterAccess a;
  std::string error;
  EXPECT_FALSE(loadKubeconfig("/nonexistent/kubeconfig", &a, &error));
  EXPECT_EQ(error, "kubeconfig /nonexistent/kubeconfig: No such file or directory");
}

TEST(KubeConfig, InCluster) {
  TempDir dir;
  InClusterPaths paths{dir.path()};
  ClusterAccess a;
  std::string error;
  ::unsetenv("KUBERNETES_SERVICE_HOST");
  EXPECT_FALSE(loadInCluster(&a, &error, paths));
  EXPECT_NE(error.find("KUBERNETES_SERVICE_HOST is not set"), std::string::npos);
  ::setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
  ::setenv("KUBERNETES_SERVICE_PORT", "443", 1);
  EXPECT_FALSE(loadInCluster(&a, &error, paths));
  EXPECT_NE(error.find("in-cluster service account token"), std::string::npos) << error;
  dir.write("token", "sa-token\n");
  EXPECT_FALSE(loadInCluster(&a, &error, paths));
  EXPECT_NE(error.find("in-cluster CA"), std::string::npos) << error;
  dir.write("ca.crt", kPem);
  dir.write("namespace", "archway-system");
  ASSERT_TRUE(loadInCluster(&a, &error, paths)) << error;
  EXPECT_EQ(a.server, "https://10.96.0.1:443");
  EXPECT_EQ(a.caPem, kPem);
  EXPECT_EQ(a.ns, "archway-system");
  std::string token;
  ASSERT_TRUE(a.currentToken(&token, &error));
  EXPECT_EQ(token, "sa-token");
  ::setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
  ASSERT_TRUE(loadInCluster(&a, &error, paths));
  EXPECT_EQ(a.server, "https://[fd00::1]:443");
  ::unsetenv("KUBERNETES_SERVICE_HOST");
  ::unsetenv("KUBERNETES_SERVICE_PORT");
}

TEST(KubeKinds, PathsAndVersions) {
  const KubeKind* route = findKubeKind("HTTPRoute");
  ASSERT_NE(route, nullptr);
  EXPECT_EQ(route->collectionPath(), "/apis/gateway.networking.k8s.io/v1/httproutes");
  EXPECT_EQ(route->statusPath("ns", "r"),
            "/apis/gateway.networking.k8s.io/v1/namespaces/ns/httproutes/r/status");
  const KubeKind* gc = findKubeKind("GatewayClass");
  ASSERT_NE(gc, nullptr);
  EXPECT_EQ(gc->statusPath("", "c"), "/apis/gateway.networking.k8s.io/v1/gatewayclasses/c/status");
  EXPECT_EQ(findKubeKind("Service")->collectionPath(), "/api/v1/services");
  EXPECT_EQ(findKubeKind("EndpointSlice")->apiVersion(), "discovery.k8s.io/v1");
  EXPECT_EQ(findKubeKind("XBackendTrafficPolicy")->collectionPath(),
            "/apis/gateway.networking.x-k8s.io/v1alpha1/xbackendtrafficpolicies");
  EXPECT_EQ(kubeKinds().size(), 16u);
}

api::Object object(const std::string& kind, const std::string& ns, const std::string& name,
                   api::Json body) {
  api::Object o;
  o.apiVersion = "gateway.networking.k8s.io/v1";
  o.kind = kind;
  o.ns = ns;
  o.name = name;
  o.body = std::move(body);
  return o;
}

api::Json cond(const char* type, bool status) {
  return {{"type", type},
          {"status", status ? "True" : "False"},
          {"reason", type},
          {"message", ""},
          {"observedGeneration", 1},
          {"lastTransitionTime", "1970-01-01T00:00:00Z"}};
}

TEST(StatusPlanner, WritesOursOnceAndKeepsTransitionTimes) {
  api::Store store;
  store.put(object("GatewayClass", "", "ours",
                   {{"spec", {{"controllerName", translate::kControllerName}}}}));
  store.put(object("GatewayClass", "", "theirs", {{"spec", {{"controllerName", "x.io/y"}}}}));
  store.put(object("Gateway", "default", "gw", {{"spec", {{"gatewayClassName", "ours"}}}}));
  store.put(object("Gateway", "default", "other", {{"spec", {{"gatewayClassName", "theirs"}}}}));
  translate::TranslateResult result;
  api::Json accepted = {{"conditions", {cond("Accepted", true)}}};
  result.statuses[{"GatewayClass", "", "ours"}] = accepted;
  result.statuses[{"GatewayClass", "", "theirs"}] = accepted;
  result.statuses[{"Gateway", "default", "gw"}] = accepted;
  result.statuses[{"Gateway", "default", "other"}] = accepted;

  StatusPlanner planner(translate::kControllerName);
  auto writes = planner.plan(store, result, "2026-01-01T00:00:00Z");
  ASSERT_EQ(writes.size(), 2u);
  EXPECT_EQ(writes[0].key.name, "gw");
  EXPECT_EQ(writes[0].path,
            "/apis/gateway.networking.k8s.io/v1/namespaces/default/gateways/gw/status");
  auto body = api::Json::parse(writes[1].body);
  EXPECT_EQ(writes[1].key.name, "ours");
  EXPECT_EQ(body["status"]["conditions"][0]["lastTransitionTime"], "2026-01-01T00:00:00Z");
  // Same result again: nothing new to write while the first write is in flight.
  EXPECT_TRUE(planner.plan(store, result, "2026-01-01T00:00:05Z").empty());

  // The server now holds what we wrote (watch echo): still nothing to write.
  api::Object gw = *store.find("Gateway", "default", "gw");
  api::Json written = api::Json::parse(writes[0].body)["status"];
  planner.observed({"Gateway", "default", "gw"}, nullptr, &written);
  gw.body["status"] = written;
  store.put(gw);
  EXPECT_TRUE(planner.plan(store, result, "2026-01-01T00:00:10Z").empty());

  // A condition flips: it gets a new time; an unchanged one keeps its time.
  result.statuses[{"Gateway", "default", "gw"}] = {
      {"conditions", {cond("Accepted", true), cond("Programmed", false)}}};
  writes = planner.plan(store, result, "2026-01-01T00:00:20Z");
  ASSERT_EQ(writes.size(), 1u);
  auto status = api::Json::parse(writes[0].body)["status"];
  EXPECT_EQ(status["conditions"][0]["lastTransitionTime"], "2026-01-01T00:00:00Z");
  EXPECT_EQ(status["conditions"][1]["lastTransitionTime"], "2026-01-01T00:00:20Z");

  // Someone else overwrites the status: ours is written again.
  api::Json foreign = {{"conditions", api::Json::array()}, {"addresses", api::Json::array()}};
  planner.observed({"Gateway", "default", "gw"}, &written, &foreign);
  gw.body["status"] = foreign;
  store.put(gw);
  writes = planner.plan(store, result, "2026-01-01T00:00:30Z");
  ASSERT_EQ(writes.size(), 1u);
  status = api::Json::parse(writes[0].body)["status"];
  // A field we do not report is removed explicitly (merge patch semantics).
  EXPECT_TRUE(status.contains("addresses"));
  EXPECT_TRUE(status["addresses"].is_null());
}

TEST(StatusPlanner, RoutesOnlyWhenTheyMentionUs) {
  api::Store store;
  store.put(object("HTTPRoute", "default", "r", {{"spec", api::Json::object()}}));
  translate::TranslateResult result;
  api::Json foreignOnly = {
      {"parents", {{{"controllerName", "x.io/y"}, {"parentRef", {{"name", "g"}}}}}}};
  result.statuses[{"HTTPRoute", "default", "r"}] = foreignOnly;
  StatusPlanner planner(translate::kControllerName);
  EXPECT_TRUE(planner.plan(store, result, "t").empty());
  api::Json ours = foreignOnly;
  ours["parents"].push_back({{"controllerName", translate::kControllerName},
                             {"parentRef", {{"name", "gw"}}},
                             {"conditions", {cond("Accepted", true)}}});
  result.statuses[{"HTTPRoute", "default", "r"}] = ours;
  auto writes = planner.plan(store, result, "t");
  ASSERT_EQ(writes.size(), 1u);
  EXPECT_EQ(api::Json::parse(writes[0].body)["status"]["parents"].size(), 2u);
}

}  // namespace
}  // namespace archway::sources

// How to reach a Kubernetes API server: from a kubeconfig file (its current context) or from
// the in-cluster service account. Only what a controller needs: server URL, CA, client
// certificate/key or bearer token. Credentials given as files are read at load time (and
// their absence is a clear error), except a token file, which is re-read per request
// because projected service account tokens rotate.
#pragma once

#include <string>

namespace archway::sources {

struct ClusterAccess {
  std::string server;  // "https://host:port", no trailing slash
  std::string caPem;   // PEM bundle to verify the server; empty = system roots
  bool insecureSkipTlsVerify = false;
  std::string clientCertPem;
  std::string clientKeyPem;
  std::string token;      // static bearer token
  std::string tokenFile;  // bearer token re-read from this file (wins over `token`)
  std::string ns;         // the context's (or service account's) namespace, "" if none
  std::string origin;     // where this came from, for messages ("kubeconfig F, context C")

  // The bearer token to send now ("" for none); an unreadable token file is an error.
  bool currentToken(std::string* token, std::string* error) const;
};

// Parses a kubeconfig file and resolves its current context. Relative file references are
// resolved against the kubeconfig's directory, as kubectl does.
bool loadKubeconfig(const std::string& path, ClusterAccess* out, std::string* error);
// Same, from text already read (`path` names it in messages and anchors relative paths).
bool parseKubeconfig(const std::string& text, const std::string& path, ClusterAccess* out,
                     std::string* error);

// Where in-cluster configuration lives; the defaults are the kubelet's conventions.
struct InClusterPaths {
  std::string dir = "/var/run/secrets/kubernetes.io/serviceaccount";
};
// In-cluster: KUBERNETES_SERVICE_HOST/PORT and the service account's token, ca.crt and
// namespace. False with a reason when not running in a cluster.
bool loadInCluster(ClusterAccess* out, std::string* error, const InClusterPaths& paths = {});

// `--kubeconfig FILE` when given; else in-cluster when KUBERNETES_SERVICE_HOST is set; else
// $KUBECONFIG (first entry) or ~/.kube/config.
bool resolveClusterAccess(const std::string& kubeconfigFlag, ClusterAccess* out,
                          std::string* error);

// Largest kubeconfig / credential file read (real ones are a few KiB).
inline constexpr size_t kMaxKubeconfigBytes = 4u << 20;

std::string base64DecodeStrict(const std::string& in, bool* ok);

}  // namespace archway::sources

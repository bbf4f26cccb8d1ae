#include "sources/kube_config.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

namespace archway::sources {

namespace fs = std::filesystem;

namespace {

bool readSmallFile(const std::string& path, std::string* out, std::string* error) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) {
    *error = fmt::format("{}: {}", path, ec ? ec.message() : "not a regular file");
    return false;
  }
  auto size = fs::file_size(path, ec);
  if (ec) {
    *error = fmt::format("{}: {}", path, ec.message());
    return false;
  }
  if (size > kMaxKubeconfigBytes) {
    *error = fmt::format("{}: larger than {} bytes", path, kMaxKubeconfigBytes);
    return false;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *error = fmt::format("{}: cannot open", path);
    return false;
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  *out = ss.str();
  return true;
}

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  size_t i = 0;
  while (i < s.size() && (s[i] == ' ' || s[i] == '\n')) ++i;
  return s.substr(i);
}

// A scalar field of a mapping, "" when absent; error when present but not a scalar.
bool scalar(const YAML::Node& map, const char* key, const std::string& where, std::string* out,
            std::string* error) {
  YAML::Node n = map[key];
  if (!n || n.IsNull()) return true;
  if (!n.IsScalar()) {
    *error = fmt::format("{}.{}: must be a string", where, key);
    return false;
  }
  *out = n.Scalar();
  return true;
}

// Finds the entry named `name` in a list of {name, <field>: {...}} and returns <field>.
bool namedEntry(const YAML::Node& root, const char* list, const char* field,
                const std::string& name, YAML::Node* out, std::string* error) {
  YAML::Node items = root[list];
  if (items && !items.IsNull() && !items.IsSequence()) {
    *error = fmt::format("{}: must be a list", list);
    return false;
  }
  if (items) {
    for (size_t i = 0; i < items.size(); ++i) {
      YAML::Node item = items[i];
      if (!item.IsMap()) continue;
      YAML::Node n = item["name"];
      if (n && n.IsScalar() && n.Scalar() == name) {
        YAML::Node body = item[field];
        if (!body || !body.IsMap()) {
          *error = fmt::format("{}[{}] ({}): has no {} mapping", list, i, name, field);
          return false;
        }
        *out = body;
        return true;
      }
    }
  }
  *error = fmt::format("{} \"{}\" is not defined in {}", field, name, list);
  return false;
}

// PEM from either "<key>-data" (base64) or "<key>" (a file, relative to `base`).
bool credential(const YAML::Node& map, const std::string& key, const std::string& where,
                const fs::path& base, std::string* pem, std::string* error) {
  std::string data, file;
  if (!scalar(map, (key + "-data").c_str(), where, &data, error)) return false;
  if (!scalar(map, key.c_str(), where, &file, error)) return false;
  if (!data.empty()) {
    bool ok = false;
    *pem = base64DecodeStrict(data, &ok);
    if (!ok) {
      *error = fmt::format("{}.{}-data: not valid base64", where, key);
      return false;
    }
    return true;
  }
  if (!file.empty()) {
    fs::path p(file);
    if (p.is_relative()) p = base / p;
    std::string err;
    if (!readSmallFile(p.string(), pem, &err)) {
      *error = fmt::format("{}.{}: {}", where, key, err);
      return false;
    }
  }
  return true;
}

}  // namespace

std::string base64DecodeStrict(const std::string& in, bool* ok) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  size_t padding = 0;
  *ok = false;
  for (char c : in) {
    if (c == '\n' || c == '\r' || c == ' ' || c == '\t') continue;
    if (c == '=') {
      ++padding;
      continue;
    }
    if (padding) return {};  // data after padding
    int v = value(c);
    if (v < 0) return {};
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  if (padding > 2 || bits >= 6) return {};
  *ok = true;
  return out;
}

bool ClusterAccess::currentToken(std::string* out, std::string* error) const {
  if (!tokenFile.empty()) {
    std::string text;
    if (!readSmallFile(tokenFile, &text, error)) return false;
    *out = trimmed(text);
    return true;
  }
  *out = token;
  return true;
}

bool parseKubeconfig(const std::string& text, const std::string& path, ClusterAccess* out,
                     std::string* error) {
  std::string err;
  auto fail = [&](const std::string& what) {
    *error = fmt::format("kubeconfig {}: {}", path, what);
    return false;
  };
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return fail(fmt::format("cannot parse YAML (line {}): {}", e.mark.line + 1, e.msg));
  }
  if (!root.IsMap()) return fail("not a mapping (is this a kubeconfig file?)");
  try {
    std::string current;
    if (!scalar(root, "current-context", "", &current, &err)) return fail(err);
    if (current.empty()) return fail("current-context is not set");
    YAML::Node context, cluster, user;
    if (!namedEntry(root, "contexts", "context", current, &context, &err)) return fail(err);
    std::string clusterName, userName;
    std::string where = "context " + current;
    if (!scalar(context, "cluster", where, &clusterName, &err)) return fail(err);
    if (!scalar(context, "user", where, &userName, &err)) return fail(err);
    if (!scalar(context, "namespace", where, &out->ns, &err)) return fail(err);
    if (clusterName.empty()) return fail(fmt::format("context \"{}\" names no cluster", current));
    if (!namedEntry(root, "clusters", "cluster", clusterName, &cluster, &err)) return fail(err);

    fs::path base = fs::path(path).parent_path();
    where = "cluster " + clusterName;
    if (!scalar(cluster, "server", where, &out->server, &err)) return fail(err);
    if (out->server.empty()) return fail(fmt::format("cluster \"{}\" has no server", clusterName));
    if (!out->server.starts_with("https://") && !out->server.starts_with("http://"))
      return fail(fmt::format("cluster \"{}\": server \"{}\" is not an http(s) URL", clusterName,
                              out->server));
    while (out->server.ends_with("/")) out->server.pop_back();
    std::string insecure;
    if (!scalar(cluster, "insecure-skip-tls-verify", where, &insecure, &err)) return fail(err);
    out->insecureSkipTlsVerify = insecure == "true";
    if (!credential(cluster, "certificate-authority", where, base, &out->caPem, &err))
      return fail(err);

    if (!userName.empty()) {
      if (!namedEntry(root, "users", "user", userName, &user, &err)) return fail(err);
      where = "user " + userName;
      if (user["exec"] || user["auth-provider"])
        return fail(
            fmt::format("user \"{}\": exec and auth-provider credentials are not "
                        "supported; use a token, tokenFile or client certificate",
                        userName));
      if (!credential(user, "client-certificate", where, base, &out->clientCertPem, &err))
        return fail(err);
      if (!credential(user, "client-key", where, base, &out->clientKeyPem, &err)) return fail(err);
      if (out->clientCertPem.empty() != out->clientKeyPem.empty())
        return fail(fmt::format("user \"{}\": a client certificate needs its key and vice versa",
                                userName));
      if (!scalar(user, "token", where, &out->token, &err)) return fail(err);
      std::string tokenFile;
      if (!scalar(user, "tokenFile", where, &tokenFile, &err)) return fail(err);
      if (!tokenFile.empty()) {
        fs::path p(tokenFile);
        if (p.is_relative()) p = base / p;
        out->tokenFile = p.string();
        std::string probe;
        if (!out->currentToken(&probe, &err))
          return fail(fmt::format("{}.tokenFile: {}", where, err));
      }
    }
  } catch (const YAML::Exception& e) {
    return fail(fmt::format("unexpected structure: {}", e.msg));
  }
  out->origin = fmt::format("kubeconfig {}", path);
  return true;
}

bool loadKubeconfig(const std::string& path, ClusterAccess* out, std::string* error) {
  std::string text, err;
  if (!readSmallFile(path, &text, &err)) {
    *error = "kubeconfig " + err;
    return false;
  }
  return parseKubeconfig(text, path, out, error);
}

bool loadInCluster(ClusterAccess* out, std::string* error, const InClusterPaths& paths) {
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
  const char* port = std::getenv("KUBERNETES_SERVICE_PORT");
  if (!host || !*host) {
    *error = "not running in a cluster (KUBERNETES_SERVICE_HOST is not set)";
    return false;
  }
  std::string h = host;
  if (h.find(':') != std::string::npos) h = "[" + h + "]";  // IPv6
  out->server = fmt::format("https://{}:{}", h, port && *port ? port : "443");
  std::string err;
  fs::path dir(paths.dir);
  out->tokenFile = (dir / "token").string();
  std::string probe;
  if (!out->currentToken(&probe, &err)) {
    *error = "in-cluster service account token: " + err;
    return false;
  }
  if (!readSmallFile((dir / "ca.crt").string(), &out->caPem, &err)) {
    *error = "in-cluster CA: " + err;
    return false;
  }
  std::string ns;
  if (readSmallFile((dir / "namespace").string(), &ns, &err)) out->ns = trimmed(ns);
  out->origin = "in-cluster service account";
  return true;
}

bool resolveClusterAccess(const std::string& kubeconfigFlag, ClusterAccess* out,
                          std::string* error) {
  if (!kubeconfigFlag.empty()) return loadKubeconfig(kubeconfigFlag, out, error);
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
  if (host && *host) return loadInCluster(out, error);
  std::string path;
  if (const char* env = std::getenv("KUBECONFIG"); env && *env) {
    path = env;
    if (auto colon = path.find(':'); colon != std::string::npos) path = path.substr(0, colon);
  } else if (const char* home = std::getenv("HOME"); home && *home) {
    path = (fs::path(home) / ".kube" / "config").string();
  }
  if (path.empty()) {
    *error =
        "no cluster configuration: give --kubeconfig FILE, set KUBECONFIG, or run in a "
        "cluster";
    return false;
  }
  return loadKubeconfig(path, out, error);
}

}  // namespace archway::sources

// archway: the Gateway API controller, data plane and migration tool in one binary.
#include <CLI/CLI.hpp>

#include "cli/commands.h"

int main(int argc, char** argv) {
  using namespace archway::cli;
  CLI::App app{"Archway: a Kubernetes Gateway API implementation", "archway"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "archway 0.1.0");

  CheckOptions check;
  auto* checkCmd = app.add_subcommand("check", "Compute and print every object with its status");
  checkCmd->add_option("-f,--filename", check.paths, "Manifest file or directory (repeatable)")
      ->required();
  checkCmd->add_option("-o,--output", check.output, "Output format")
      ->check(CLI::IsMember({"yaml", "json"}));

  RunOptions run;
  auto* runCmd = app.add_subcommand("run", "Serve the Gateway API resources");
  runCmd->add_option("-f,--filename", run.paths, "Manifest file or directory (repeatable)");
  runCmd->add_flag("--kubernetes", run.kubernetes, "Read resources from a Kubernetes API server");
  runCmd->add_option("--kubeconfig", run.kubeconfig, "Kubeconfig file (with --kubernetes)");
  runCmd->add_option("--workers", run.workers, "Worker threads (default: one per core)")
      ->check(CLI::Range(0, 1024));
  runCmd->add_option("--address-pool", run.addressPool,
                     "CIDR from which Gateways without spec.addresses get an address");
  runCmd->add_option("--admin-address", run.adminAddress, "Admin listener host:port");
  runCmd->add_option("--access-log", run.accessLog, "Write JSON access log lines to this file");
  runCmd->add_option("--max-request-body-bytes", run.maxRequestBodyBytes,
                     "Largest request body accepted (streamed; default 1 GiB)");
  runCmd->add_option("--max-connections", run.maxConnections,
                     "Client connections across all workers (default 50000); more are closed");
  runCmd->add_option("--idle-timeout", run.idleTimeout,
                     "Close an idle client keep-alive connection after this (default 60s)");
  runCmd->add_option("--upstream-idle-timeout", run.upstreamIdleTimeout,
                     "Close an idle pooled backend connection after this (default 30s)");
  runCmd->add_option("--tcp-idle-timeout", run.tcpIdleTimeout,
                     "Close a relayed TCP/TLS stream with no bytes either way after this "
                     "(default 10m)");
  runCmd->add_option("--udp-idle-timeout", run.udpIdleTimeout,
                     "End a UDP session with no datagrams either way after this (default 60s)");
  runCmd->add_option("--log-level", run.logLevel, "trace|debug|info|warn|error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}));

  ConvertOptions convert;
  auto* convertCmd =
      app.add_subcommand("convert", "Convert Ingress and vendor resources to Gateway API");
  convertCmd->add_option("-f,--filename", convert.paths, "Input file or directory (repeatable)")
      ->required();
  convertCmd->add_option("--providers", convert.providers, "ingress-nginx,kong")->delimiter(',');
  convertCmd->add_option("-n,--namespace", convert.ns, "Only this namespace");
  convertCmd->add_flag("-A,--all-namespaces", convert.allNamespaces, "All namespaces");
  convertCmd->add_option("-o,--output", convert.output, "Output format")
      ->check(CLI::IsMember({"yaml", "json"}));
  convertCmd->add_option("--gateway-class", convert.gatewayClass,
                         "GatewayClass for the generated Gateways");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  if (checkCmd->parsed()) return runCheck(check);
  if (runCmd->parsed()) return runServe(run);
  if (convertCmd->parsed()) return runConvert(convert);
  return 2;
}

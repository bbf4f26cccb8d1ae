#!/usr/bin/python3
"""Archway vs nginx vs haproxy on one machine, in one run (see docs/benchmarks.md).

Started by bench/run.sh, which builds the C tools and cleans up after us. Fairness rules:
  * every proxy under test (DUT) runs one worker pinned to CPU0 (taskset + its own affinity
    setting); the shared backend and the load generator share CPU1;
  * one backend for all (bench/tools/backend.c), upstream keep-alive on in every DUT;
  * the same route table in every DUT (N distinct path prefixes /svc-0 ... /svc-N-1);
  * no access logs anywhere;
  * measurements are interleaved (rep 1: all DUTs, rep 2: all DUTs, ...) and reported as
    median with min-max, because one run's absolute numbers mean little on a shared VM.
"""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
DUT_CPU = "0"
LOAD_CPU = "1"
PEERS = ["nginx", "haproxy"]
DUTS = ["archway", "nginx", "haproxy"]


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def cpu_ticks():
    """{cpu: (steal, total)} jiffies per CPU from /proc/stat. Steal is time the hypervisor ran
    something else while this vCPU wanted to run: on a shared VM it, not the proxy, decides
    the latency tail, so every run reports it."""
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            parts = line.split()
            if not parts or not re.fullmatch(r"cpu\d+", parts[0]):
                continue
            vals = [int(v) for v in parts[1:]]
            total = sum(vals[:8])
            # (steal, total, busy): busy is everything but idle and iowait.
            out[parts[0][3:]] = (vals[7] if len(vals) > 7 else 0, total,
                                 total - vals[3] - vals[4])
    return out


def steal_pct(t0, t1):
    """Highest steal share (%) over the DUT and load CPUs between two cpu_ticks() readings."""
    worst = None
    for cpu in (DUT_CPU, LOAD_CPU):
        if cpu in t0 and cpu in t1:
            total = t1[cpu][1] - t0[cpu][1]
            if total > 0:
                pct = 100.0 * (t1[cpu][0] - t0[cpu][0]) / total
                worst = pct if worst is None else max(worst, pct)
    return worst


def busy_pct(t0, t1, cpu):
    """Share (%) of the time `cpu` was busy between two cpu_ticks() readings."""
    if cpu not in t0 or cpu not in t1 or t1[cpu][1] <= t0[cpu][1]:
        return None
    return 100.0 * (t1[cpu][2] - t0[cpu][2]) / (t1[cpu][1] - t0[cpu][1])


def tcp_snmp():
    """The Tcp counters of /proc/net/snmp (this network namespace: every TCP socket in it)."""
    try:
        with open("/proc/net/snmp") as f:
            rows = [ln.split() for ln in f if ln.startswith("Tcp:")]
        return {k: int(v) for k, v in zip(rows[0][1:], rows[1][1:])}
    except (OSError, IndexError, ValueError):
        return {}


class Bench:
    def __init__(self, args):
        self.args = args
        self.work = args.workdir
        self.tools = args.tools
        self.dur = args.duration
        self.reps = args.reps
        self.procs = {}  # name -> Popen
        self.pidfile = os.path.join(self.work, "pids")
        base = args.port_base
        self.port = {
            "backend": base, "backend_direct": base + 1, "grpc_backend": base + 2,
            "sink": base + 3, "udpecho": base + 4, "relay": base + 5,
            "archway": base + 10, "archway_admin": base + 11, "archway_h2": base + 10,
            "nginx": base + 20, "nginx_h2": base + 21,
            "haproxy": base + 30, "haproxy_h2": base + 31,
            # L4 and gRPC listeners
            "archway_tcp": base + 12, "archway_udp": base + 13, "archway_grpc": base + 14,
            "nginx_tcp": base + 22, "nginx_udp": base + 23, "nginx_grpc": base + 24,
            "haproxy_tcp": base + 32, "haproxy_grpc": base + 34,
            "archway_tcpsink": base + 15, "nginx_tcpsink": base + 25, "haproxy_tcpsink": base + 35,
        }
        self.available = {}  # dut -> None (ok) or reason string
        self.results = {}  # section -> data
        self.archway = args.archway
        self.h1_info = {}

    # ---------------------------------------------------------------- processes

    def start(self, name, argv, cpu, env=None):
        logf = open(os.path.join(self.work, name + ".log"), "ab")
        p = subprocess.Popen(["taskset", "-c", cpu] + argv, stdout=logf, stderr=logf,
                             stdin=subprocess.DEVNULL, start_new_session=True, env=env)
        with open(self.pidfile, "a") as f:
            f.write("%d\n" % p.pid)
        self.procs[name] = p
        return p

    def stop(self, name):
        p = self.procs.pop(name, None)
        if p is None:
            return
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=10)

    def stop_all(self):
        for name in list(self.procs):
            self.stop(name)

    def cpu_seconds(self, name):
        """utime+stime of every process in the DUT's process group (master + workers)."""
        split = self.cpu_split(name)
        return None if split is None else split[0] + split[1]

    def cpu_split(self, name):
        """(utime, stime) in seconds of every process in the DUT's process group."""
        p = self.procs.get(name)
        if p is None:
            return None
        tick = os.sysconf("SC_CLK_TCK")
        user = system = 0
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % pid) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            # fields[0] is state (field 3); pgrp is field 5, utime 14, stime 15.
            if int(fields[2]) == p.pid:
                user += int(fields[11])
                system += int(fields[12])
        return user / tick, system / tick

    def rss_mb(self, name):
        p = self.procs.get(name)
        if p is None:
            return None
        total = 0
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % pid) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if int(fields[2]) != p.pid:
                    continue
                with open("/proc/%s/status" % pid) as f:
                    for line in f:
                        if line.startswith("VmRSS:"):
                            total += int(line.split()[1])
            except (OSError, ValueError):
                continue
        return total / 1024.0

    def port_free(self, port):
        for typ in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
            s = socket.socket(socket.AF_INET, typ)
            # Like the servers themselves: TIME_WAIT leftovers of a previous run are fine.
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return False
            finally:
                s.close()
        return True

    def wait_port(self, port, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    return True
            except OSError:
                time.sleep(0.05)
        return False

    def http_get(self, port, path, timeout=2.0):
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path),
                                        timeout=timeout) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, b""
        except Exception as e:  # noqa: BLE001 - any failure means "not serving"
            return None, str(e).encode()

    # ---------------------------------------------------------------- backends

    def start_backends(self):
        self.start("backend", [os.path.join(self.tools, "backend"), "http",
                               str(self.port["backend"])], LOAD_CPU)
        # Direct baseline: the same backend on the DUT core, client on CPU1.
        self.start("direct", [os.path.join(self.tools, "backend"), "http",
                              str(self.port["backend_direct"])], DUT_CPU)
        # Null-proxy reference: a 1:1 TCP relay on the DUT core, no HTTP parsing.
        self.start("relay", [os.path.join(self.tools, "relay"), str(self.port["relay"]),
                             str(self.port["backend"])], DUT_CPU)
        for port in (self.port["backend"], self.port["backend_direct"], self.port["relay"]):
            if not self.wait_port(port, 5):
                raise SystemExit("backend did not start on port %d" % port)

    # ---------------------------------------------------------------- configs

    def route_path(self, i):
        return "/svc-%d" % i

    def nginx_conf(self, nroutes, d, extra_http="", extra_main=""):
        locs = "\n".join("    location %s/ { proxy_pass http://app; }" % self.route_path(i)
                         for i in range(nroutes))
        return f"""# generated by bench/bench.py
{extra_main}
worker_processes 1;
worker_cpu_affinity 01;
worker_rlimit_nofile 20000;
pid {d}/nginx.pid;
error_log {d}/nginx-error.log warn;
events {{ worker_connections 16000; }}
http {{
  access_log off;
  client_body_temp_path {d}/ngx-body;
  proxy_temp_path {d}/ngx-proxy;
  fastcgi_temp_path {d}/ngx-fastcgi;
  uwsgi_temp_path {d}/ngx-uwsgi;
  scgi_temp_path {d}/ngx-scgi;
  keepalive_requests 1000000;
  keepalive_timeout 120s;
  http2_max_requests 1000000;
  upstream app {{
    server 127.0.0.1:{self.port['backend']};
    keepalive 1024;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
  }}
  server {{
    listen 127.0.0.1:{self.port['nginx']} backlog=4096;
    listen 127.0.0.1:{self.port['nginx_h2']} http2 backlog=4096;
    server_name _;
    proxy_http_version 1.1;
    proxy_set_header Connection "";
{locs}
    location / {{ return 404; }}
  }}
{extra_http}
}}
"""

    def haproxy_conf(self, nroutes, d, extra=""):
        if self.args.haproxy_routing == "acl":
            # One ACL + use_backend per route: evaluated in order, a linear scan.
            routing = "\n".join("  use_backend be_app if { path_beg %s/ }" % self.route_path(i)
                                 for i in range(nroutes))
        else:
            with open(os.path.join(d, "routes.map"), "w") as f:
                for i in range(nroutes):
                    f.write("%s/ be_app\n" % self.route_path(i))
            routing = "  use_backend %%[path,map_beg(%s/routes.map)]" % d
        return f"""# generated by bench/bench.py
global
  nbthread 1
  cpu-map 1/1 0
  maxconn 9000
  pidfile {d}/haproxy.pid
defaults
  mode http
  timeout connect 5s
  timeout client 120s
  timeout server 120s
  timeout http-keep-alive 120s
  option http-keep-alive
  http-reuse safe
frontend fe
  bind 127.0.0.1:{self.port['haproxy']} backlog 4096
  bind 127.0.0.1:{self.port['haproxy_h2']} proto h2 backlog 4096
{routing}
  default_backend be_404
backend be_app
  server s1 127.0.0.1:{self.port['backend']}
backend be_404
  http-request return status 404
{extra}
"""

    def archway_manifests(self, nroutes, d, extra=""):
        docs = [f"""apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata:
  name: archway
spec:
  controllerName: archway.dev/gateway-controller
---
apiVersion: v1
kind: Namespace
metadata:
  name: bench
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: bench
  namespace: bench
spec:
  gatewayClassName: archway
  listeners:
  - name: http
    protocol: HTTP
    port: {self.port['archway']}
    allowedRoutes:
      namespaces: {{from: Same}}
---
apiVersion: v1
kind: Service
metadata:
  name: app
  namespace: bench
spec:
  ports:
  - {{name: http, port: 80, targetPort: {self.port['backend']}, protocol: TCP}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: app-1
  namespace: bench
  labels:
    kubernetes.io/service-name: app
addressType: IPv4
ports:
- {{name: http, port: {self.port['backend']}, protocol: TCP}}
endpoints:
- addresses: ["127.0.0.1"]
  conditions: {{ready: true}}
"""]
        for i in range(nroutes):
            docs.append(f"""apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: r{i}
  namespace: bench
spec:
  parentRefs:
  - {{name: bench, sectionName: http}}
  rules:
  - matches:
    - path: {{type: PathPrefix, value: {self.route_path(i)}}}
    backendRefs:
    - {{name: app, port: 80}}
""")
        if extra:
            docs.append(extra)
        os.makedirs(os.path.join(d, "manifests"), exist_ok=True)
        with open(os.path.join(d, "manifests", "bench.yaml"), "w") as f:
            f.write("---\n".join(docs))

    # ---------------------------------------------------------------- DUT lifecycle

    def start_duts(self, nroutes, tag, l4=False, grpc=False):
        """Starts every DUT with an N-route table; records availability and start-up data."""
        info = {}
        for dut in DUTS:
            d = os.path.join(self.work, "%s-%s" % (dut, tag))
            os.makedirs(d, exist_ok=True)
            t0 = time.time()
            reason = None
            if dut == "nginx":
                extra_http, extra_main = self.nginx_extra(l4, grpc)
                conf = os.path.join(d, "nginx.conf")
                with open(conf, "w") as f:
                    f.write(self.nginx_conf(nroutes, d, extra_http, extra_main))
                self.start(dut, ["nginx", "-e", d + "/nginx-error.log", "-p", d, "-c", conf,
                                 "-g", "daemon off;"], DUT_CPU)
            elif dut == "haproxy":
                conf = os.path.join(d, "haproxy.cfg")
                with open(conf, "w") as f:
                    f.write(self.haproxy_conf(nroutes, d, self.haproxy_extra(l4, grpc)))
                self.start(dut, ["haproxy", "-db", "-f", conf], DUT_CPU)
            else:
                if not self.archway or not os.access(self.archway, os.X_OK):
                    self.available[dut] = "binary not found (%s)" % self.archway
                    log("  %s: NOT AVAILABLE: %s" % (dut, self.available[dut]))
                    info[dut] = {}
                    continue
                self.archway_manifests(nroutes, d, self.archway_extra(l4, grpc))
                self.start(dut, [self.archway, "run", "-f", os.path.join(d, "manifests"),
                                 "--workers", "1", "--admin-address",
                                 "127.0.0.1:%d" % self.port["archway_admin"],
                                 "--log-level", "warn"], DUT_CPU)
            reason = self.wait_serving(dut, nroutes, timeout=120 if nroutes > 1000 else 30)
            ready_s = time.time() - t0
            self.available[dut] = reason
            info[dut] = {"ready_s": ready_s, "rss_mb": self.rss_mb(dut) if not reason else None}
            if reason:
                log("  %s: NOT AVAILABLE: %s" % (dut, reason))
                self.stop(dut)
            else:
                log("  %s: serving %d routes after %.2fs, RSS %.1f MB"
                    % (dut, nroutes, ready_s, info[dut]["rss_mb"]))
        return info

    def log_tail(self, name):
        try:
            with open(os.path.join(self.work, name + ".log"), "rb") as f:
                lines = [ln.strip() for ln in f.read().decode(errors="replace").splitlines()
                         if ln.strip()]
            return (": " + lines[-1][:160]) if lines else ""
        except OSError:
            return ""

    def wait_serving(self, dut, nroutes, timeout):
        p = self.procs[dut]
        deadline = time.time() + timeout
        if dut == "archway":
            while time.time() < deadline:
                if p.poll() is not None:
                    return "exited with code %d%s" % (p.returncode, self.log_tail(dut))
                st, _ = self.http_get(self.port["archway_admin"], "/ready", 1.0)
                if st == 200:
                    break
                time.sleep(0.1)
            else:
                return "GET /ready never returned 200 within %ds" % timeout
        port = self.port[dut]
        last = self.route_path(nroutes - 1) + "/x"
        while time.time() < deadline:
            if p.poll() is not None:
                return "exited with code %d%s" % (p.returncode, self.log_tail(dut))
            st0, body0 = self.http_get(port, self.route_path(0) + "/x", 1.0)
            st1, body1 = self.http_get(port, last, 1.0)
            if st0 == 200 and st1 == 200 and body0 == b"ok" and body1 == b"ok":
                st404, _ = self.http_get(port, "/nope", 1.0)
                if st404 != 404:
                    return "unmatched path returned %s, expected 404" % st404
                return None
            time.sleep(0.1)
        return "route %s did not return 200 'ok' within %ds" % (last, timeout)

    def stop_duts(self):
        for dut in DUTS:
            self.stop(dut)

    # L4 and gRPC additions to each config (filled in by the sections that use them).
    def nginx_extra(self, l4, grpc):
        extra_http, extra_main = "", ""
        if grpc:
            extra_http = f"""  server {{
    listen 127.0.0.1:{self.port['nginx_grpc']} http2;
    location / {{ grpc_pass grpc://grpcapp; }}
  }}
  upstream grpcapp {{ server 127.0.0.1:{self.port['grpc_backend']}; keepalive 64; }}
"""
        if l4:
            mod = "/usr/lib/nginx/modules/ngx_stream_module.so"
            extra_main = f"""load_module {mod};
stream {{
  server {{ listen 127.0.0.1:{self.port['nginx_tcp']}; proxy_pass 127.0.0.1:{self.port['backend']}; }}
  server {{ listen 127.0.0.1:{self.port['nginx_tcpsink']}; proxy_pass 127.0.0.1:{self.port['sink']}; }}
  server {{ listen 127.0.0.1:{self.port['nginx_udp']} udp; proxy_pass 127.0.0.1:{self.port['udpecho']};
           proxy_responses 1; proxy_timeout 10s; }}
}}
"""
        return extra_http, extra_main

    def haproxy_extra(self, l4, grpc):
        extra = ""
        if l4:
            extra += f"""listen tcp_fe
  mode tcp
  bind 127.0.0.1:{self.port['haproxy_tcp']}
  server s1 127.0.0.1:{self.port['backend']}
listen tcpsink_fe
  mode tcp
  bind 127.0.0.1:{self.port['haproxy_tcpsink']}
  server s1 127.0.0.1:{self.port['sink']}
"""
        if grpc:
            extra += f"""frontend grpc_fe
  bind 127.0.0.1:{self.port['haproxy_grpc']} proto h2
  default_backend be_grpc
backend be_grpc
  server g1 127.0.0.1:{self.port['grpc_backend']} proto h2
"""
        return extra

    def archway_extra(self, l4, grpc):
        docs = []
        if l4:
            docs.append(f"""apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: bench-l4
  namespace: bench
spec:
  gatewayClassName: archway
  listeners:
  - {{name: tcp, protocol: TCP, port: {self.port['archway_tcp']}}}
  - {{name: udp, protocol: UDP, port: {self.port['archway_udp']}}}
  - {{name: tcpsink, protocol: TCP, port: {self.port['archway_tcpsink']}}}
---
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TCPRoute
metadata:
  name: tcpsink
  namespace: bench
spec:
  parentRefs: [{{name: bench-l4, sectionName: tcpsink}}]
  rules:
  - backendRefs: [{{name: sink, port: 9}}]
---
apiVersion: v1
kind: Service
metadata:
  name: sink
  namespace: bench
spec:
  ports:
  - {{name: sink, port: 9, targetPort: {self.port['sink']}, protocol: TCP}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: sink-1
  namespace: bench
  labels:
    kubernetes.io/service-name: sink
addressType: IPv4
ports:
- {{name: sink, port: {self.port['sink']}, protocol: TCP}}
endpoints:
- addresses: ["127.0.0.1"]
  conditions: {{ready: true}}
---
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TCPRoute
metadata:
  name: tcp
  namespace: bench
spec:
  parentRefs: [{{name: bench-l4, sectionName: tcp}}]
  rules:
  - backendRefs: [{{name: app, port: 80}}]
---
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: UDPRoute
metadata:
  name: udp
  namespace: bench
spec:
  parentRefs: [{{name: bench-l4, sectionName: udp}}]
  rules:
  - backendRefs: [{{name: udpecho, port: 53}}]
---
apiVersion: v1
kind: Service
metadata:
  name: udpecho
  namespace: bench
spec:
  ports:
  - {{name: dns, port: 53, targetPort: {self.port['udpecho']}, protocol: UDP}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: udpecho-1
  namespace: bench
  labels:
    kubernetes.io/service-name: udpecho
addressType: IPv4
ports:
- {{name: dns, port: {self.port['udpecho']}, protocol: UDP}}
endpoints:
- addresses: ["127.0.0.1"]
  conditions: {{ready: true}}
""")
        if grpc:
            docs.append(f"""apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: bench-grpc
  namespace: bench
spec:
  gatewayClassName: archway
  listeners:
  - {{name: grpc, protocol: HTTP, port: {self.port['archway_grpc']}}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata:
  name: grpc
  namespace: bench
spec:
  parentRefs: [{{name: bench-grpc, sectionName: grpc}}]
  rules:
  - backendRefs: [{{name: grpcapp, port: 80}}]
---
apiVersion: v1
kind: Service
metadata:
  name: grpcapp
  namespace: bench
spec:
  ports:
  - {{name: grpc, port: 80, targetPort: {self.port['grpc_backend']}, protocol: TCP,
      appProtocol: kubernetes.io/h2c}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: grpcapp-1
  namespace: bench
  labels:
    kubernetes.io/service-name: grpcapp
addressType: IPv4
ports:
- {{name: grpc, port: {self.port['grpc_backend']}, protocol: TCP, appProtocol: kubernetes.io/h2c}}
endpoints:
- addresses: ["127.0.0.1"]
  conditions: {{ready: true}}
""")
        return "---\n".join(docs)

    # ---------------------------------------------------------------- load tools

    def targets(self):
        """(name, port) of everything measured: the direct baseline, then each DUT."""
        out = [("direct", self.port["backend_direct"]), ("relay", self.port["relay"])]
        for dut in DUTS:
            out.append((dut, self.port[dut]))
        return out

    def measure(self, name, fn):
        """Runs fn() while accounting the DUT's CPU time; returns (result, cpu_seconds).

        A DUT that died during the run is marked unavailable (with its exit code) so the
        remaining runs skip it and the table says why."""
        c0, t0 = self.cpu_seconds(name), cpu_ticks()
        r = fn()
        c1, t1 = self.cpu_seconds(name), cpu_ticks()
        if isinstance(r, dict):
            r["steal_pct"] = steal_pct(t0, t1)
            r["load_busy_pct"] = busy_pct(t0, t1, LOAD_CPU)
        p = self.procs.get(name)
        if name in DUTS and p is not None and p.poll() is not None:
            self.available[name] = "exited with code %d during a run%s" % (
                p.returncode, self.log_tail(name))
            log("  %s: %s" % (name, self.available[name]))
            self.procs.pop(name, None)
        return r, (c1 - c0 if c0 is not None and c1 is not None else None)

    def wrk(self, port, conns, path):
        cmd = ["taskset", "-c", LOAD_CPU, "wrk", "-t1", "-c%d" % conns, "-d%ds" % self.dur,
               "--timeout", "5s", "http://127.0.0.1:%d%s" % (port, path)]
        out = subprocess.run(cmd, capture_output=True, text=True,
                             timeout=self.dur + 60).stdout
        m = re.search(r"Requests/sec:\s+([\d.]+)", out)
        rps = float(m.group(1)) if m else 0.0
        errs = 0
        m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
        if m:
            errs += int(m.group(1))
        m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
        if m:
            errs += sum(int(x) for x in m.groups())
        m = re.search(r"(\d+) requests in", out)
        reqs = int(m.group(1)) if m else 0
        return {"rps": rps, "errors": errs, "requests": reqs}

    def warm(self, port, path):
        subprocess.run(["taskset", "-c", LOAD_CPU, "wrk", "-t1", "-c16", "-d1s",
                        "http://127.0.0.1:%d%s" % (port, path)], capture_output=True,
                       timeout=60)

    def loadgen(self, *args, timeout=None):
        cmd = ["taskset", "-c", LOAD_CPU, os.path.join(self.tools, "loadgen")] + [
            str(a) for a in args]
        r = subprocess.run(cmd, capture_output=True, text=True,
                           timeout=timeout or self.dur + 60)
        kv = dict(x.split("=", 1) for x in r.stdout.split() if "=" in x)
        if r.returncode != 0 or not kv:
            return {"failed": (r.stderr or r.stdout).strip()[:200]}
        return {k: float(v) for k, v in kv.items()}

    def h2load(self, port, path, clients, streams, extra=()):
        cmd = ["taskset", "-c", LOAD_CPU, "h2load", "-t1", "-c%d" % clients, "-m%d" % streams,
               "-D%d" % self.dur, "--warm-up-time=1"] + list(extra) + [
                   "http://127.0.0.1:%d%s" % (port, path)]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=self.dur + 60)
        out = r.stdout
        m = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out)
        rps = float(m.group(1)) if m else 0.0
        m = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, "
                      r"(\d+) failed, (\d+) errored", out)
        errs = int(m.group(3)) + int(m.group(4)) if m else 0
        m2 = re.search(r"status codes: (\d+) 2xx", out)
        done = int(m.group(1)) if m else 0
        ok2xx = int(m2.group(1)) if m2 else 0
        if done and ok2xx < done:
            errs += done - ok2xx
        if not m:
            errs = -1
        return {"rps": rps, "errors": errs}

    # ---------------------------------------------------------------- sections

    def live_targets(self, include_direct=True):
        out = []
        for name, port in self.targets():
            if name in ("direct", "relay"):
                if include_direct:
                    out.append((name, port))
            elif self.available.get(name) is None:
                out.append((name, port))
        return out

    def section_h1(self, path):
        log("== HTTP/1.1 keep-alive max RPS (wrk) ==")
        res = {}
        for name, port in self.live_targets():
            self.warm(port, path)
        for rep in range(self.reps):
            for conns in self.args.conns:
                for name, port in self.live_targets():
                    r, cpu = self.measure(name, lambda: self.wrk(port, conns, path))
                    r["cpu_us"] = cpu * 1e6 / r["requests"] if cpu and r["requests"] else None
                    res.setdefault((name, conns), []).append(r)
                    log("  rep%d c=%d %-8s %8.0f req/s  errors=%d  cpu/req=%s"
                        % (rep + 1, conns, name, r["rps"], r["errors"],
                           "%.1fus" % r["cpu_us"] if r["cpu_us"] else "-"))
        self.results["h1"] = res

    def slowest_peer_max(self):
        best = {}
        for (name, conns), runs in self.results.get("h1", {}).items():
            if name in PEERS:
                med = statistics.median(r["rps"] for r in runs)
                best[name] = max(best.get(name, 0), med)
        return min(best.values()) if best else None

    def section_latency(self, path):
        peak = self.slowest_peer_max()
        if not peak:
            log("== fixed-rate latency: skipped (no peer maximum) ==")
            return
        rate = int(peak * self.args.rate_fraction)
        conns = self.args.latency_conns
        log("== HTTP/1.1 latency at a fixed %d req/s (%.0f%% of the slowest peer's max), "
            "%d connections ==" % (rate, self.args.rate_fraction * 100, conns))
        res = {}
        for rep in range(self.reps):
            for name, port in self.live_targets():
                r, _ = self.measure(name, lambda: self.loadgen(
                    "rate", "127.0.0.1", port, conns, rate, self.dur, path))
                res.setdefault(name, []).append(r)
                log("  rep%d %-8s %s" % (rep + 1, name, r))
        self.results["latency"] = {"rate": rate, "conns": conns, "runs": res}

    def section_h2(self, path):
        c, m = self.args.h2_clients, self.args.h2_streams
        log("== HTTP/2 cleartext (prior knowledge) max RPS, h2load -c%d -m%d ==" % (c, m))
        res = {}
        ports = [(dut, self.port[dut + "_h2"]) for dut, _ in self.live_targets(False)]
        usable = []
        for dut, port in ports:
            r = self.h2load_probe(port, path)
            if r:
                res[dut] = r
                log("  %s: h2c not available: %s" % (dut, r))
            else:
                usable.append((dut, port))
        for rep in range(self.reps):
            for dut, port in usable:
                if self.available.get(dut):
                    continue
                r, cpu = self.measure(dut, lambda: self.h2load(port, path, c, m))
                r["cpu_us"] = cpu * 1e6 / (r["rps"] * self.dur) if cpu and r["rps"] else None
                res.setdefault(dut, []).append(r)
                log("  rep%d %-8s %8.0f req/s errors=%d" % (rep + 1, dut, r["rps"], r["errors"]))
        self.results["h2"] = {"clients": c, "streams": m, "runs": res}

    def section_instructions(self, path):
        """User-space instructions per request under callgrind: a count that does not move
        with the machine's load (kernel work, cache misses and waiting are not in it)."""
        log("== user-space instructions per request (callgrind) ==")
        res = {}
        for dut in DUTS:
            d = os.path.join(self.work, "%s-instr" % dut)
            os.makedirs(d, exist_ok=True)
            out = os.path.join(d, "callgrind.out")
            vg = ["valgrind", "--tool=callgrind", "--instr-atstart=no",
                  "--callgrind-out-file=" + out]
            if dut == "nginx":
                extra_http, extra_main = self.nginx_extra(False, False)
                conf = os.path.join(d, "nginx.conf")
                with open(conf, "w") as f:
                    f.write(self.nginx_conf(1, d, extra_http, extra_main))
                argv = ["nginx", "-e", d + "/nginx-error.log", "-p", d, "-c", conf,
                        "-g", "daemon off; master_process off;"]
            elif dut == "haproxy":
                conf = os.path.join(d, "haproxy.cfg")
                with open(conf, "w") as f:
                    f.write(self.haproxy_conf(1, d, self.haproxy_extra(False, False)))
                argv = ["haproxy", "-db", "-f", conf]
            else:
                if not self.archway or not os.access(self.archway, os.X_OK):
                    res[dut] = {"failed": "binary not found"}
                    continue
                self.archway_manifests(1, d, self.archway_extra(False, False))
                argv = [self.archway, "run", "-f", os.path.join(d, "manifests"), "--workers",
                        "1", "--admin-address", "127.0.0.1:%d" % self.port["archway_admin"],
                        "--log-level", "warn"]
            p = self.start(dut, vg + argv, DUT_CPU)
            reason = self.wait_serving(dut, 1, timeout=120)
            if reason:
                res[dut] = {"failed": reason}
                log("  %s: NOT AVAILABLE under valgrind: %s" % (dut, reason))
                self.stop(dut)
                continue
            self.warm(self.port[dut], path)
            row = {}
            # HTTP/1.1 only: the h2 counts (h2load -n) were not stable between runs (archway
            # 24k then 10k per request, one nginx dump unreadable), so they are not shown.
            for proto in ("h1",):
                subprocess.run(["callgrind_control", "-i", "on", str(p.pid)],
                               capture_output=True, timeout=60)
                n = self.wrk(self.port[dut], 16, path)["requests"]
                subprocess.run(["callgrind_control", "-d", str(p.pid)], capture_output=True,
                               timeout=60)
                subprocess.run(["callgrind_control", "-i", "off", str(p.pid)],
                               capture_output=True, timeout=60)
                row[proto] = {"requests": n, "ir": self.callgrind_total(out, proto == "h1")}
                ir = row[proto]["ir"]
                log("  %-8s %s: %d requests, %s instructions/request" % (
                    dut, proto, n, "%.0f" % (ir / n) if ir and n else "n/a"))
            res[dut] = row
            self.stop(dut)
        self.results["instructions"] = res

    def callgrind_total(self, out, first):
        """Total instructions of the first (or second) dump callgrind wrote after `out`."""
        dumps = sorted((f for f in os.listdir(os.path.dirname(out))
                        if f.startswith(os.path.basename(out) + ".")),
                       key=lambda f: int(f.rsplit(".", 1)[1]))
        want = 0 if first else 1
        if len(dumps) <= want:
            return None
        with open(os.path.join(os.path.dirname(out), dumps[want])) as f:
            for line in f:
                m = re.match(r"(?:summary|totals):\s+(\d+)", line)
                if m:
                    return int(m.group(1))
        return None

    def h2load_probe(self, port, path, extra=()):
        r = subprocess.run(["h2load", "-n4", "-c1"] + list(extra) +
                           ["http://127.0.0.1:%d%s" % (port, path)],
                           capture_output=True, text=True, timeout=30)
        if "4 succeeded" in r.stdout and "status codes: 4 2xx" in r.stdout:
            return None
        # The lines that say why: the request/status counts and any error h2load printed.
        keep = [ln.strip() for ln in (r.stdout + r.stderr).splitlines()
                if ln.strip().startswith(("requests:", "status codes:")) or
                re.search(r"error|fail|refused|reset|not", ln, re.I) and
                not ln.strip().startswith(("time for", "req/s", "min "))]
        return ("; ".join(keep[:4]) or "h2load failed")[:240]

    def section_routes(self):
        log("== route tables: max RPS at %d connections, first vs last route ==" %
            self.args.route_conns)
        res = {}
        info = {}
        h1 = self.results.get("h1", {})
        for n in self.args.routes:
            if n == 1 and self.args.route_conns in self.args.conns and h1:
                # Same table, path and connection count as the HTTP/1.1 section: reuse it.
                for dut in DUTS:
                    if (dut, self.args.route_conns) in h1:
                        res[(1, "first", dut)] = h1[(dut, self.args.route_conns)]
                    elif self.available.get(dut) is not None:
                        res[(1, "unavailable", dut)] = self.available[dut]
                info[1] = self.h1_info
                log(" 1 route: the HTTP/1.1 section's c=%d runs" % self.args.route_conns)
                continue
            self.stop_duts()
            log(" %d route(s):" % n)
            info[n] = self.start_duts(n, "routes%d" % n)
            hits = [("first", 0)] + ([("last", n - 1)] if n > 1 else [])
            live = [(d, self.port[d]) for d in DUTS if self.available.get(d) is None]
            for _, port in live:
                self.warm(port, self.route_path(0) + "/x")
            for rep in range(self.reps):
                for which, idx in hits:
                    path = self.route_path(idx) + "/x"
                    for dut, port in live:
                        if self.available.get(dut):
                            continue
                        r, cpu = self.measure(
                            dut, lambda: self.wrk(port, self.args.route_conns, path))
                        r["cpu_us"] = cpu * 1e6 / r["requests"] if cpu and r["requests"] else None
                        res.setdefault((n, which, dut), []).append(r)
                        log("  rep%d n=%d %-5s %-8s %8.0f req/s errors=%d" %
                            (rep + 1, n, which, dut, r["rps"], r["errors"]))
            for dut in DUTS:
                if self.available.get(dut) is not None:
                    res[(n, "unavailable", dut)] = self.available[dut]
        self.results["routes"] = {"runs": res, "info": info}

    # ---------------------------------------------------------------- L4 and gRPC

    def start_aux(self, name, mode, port):
        argv = [os.path.join(self.tools, "grpc_backend"), str(port)] if mode == "grpc" else [
            os.path.join(self.tools, "backend"), mode, str(port)]
        if not os.access(argv[0], os.X_OK):
            return "%s not built" % argv[0]
        self.start(name, argv, LOAD_CPU)
        if mode != "udpecho" and not self.wait_port(port, 5):
            return "%s did not start" % name
        return None

    def section_l4(self):
        log("== L4 (--l4): TCP throughput, TCP connection rate, UDP datagrams/s ==")
        self.stop_duts()
        res = {"runs": {}}
        self.results["l4"] = res
        for name, mode in (("sink", "sink"), ("udpecho", "udpecho")):
            err = self.start_aux(name, mode, self.port[name])
            if err:
                res["skipped"] = err
                return
        if not os.path.exists("/usr/lib/nginx/modules/ngx_stream_module.so"):
            log("  nginx stream module missing (libnginx-mod-stream): nginx rows unavailable")
        info = self.start_duts(1, "l4", l4=True)
        res["info"] = info
        reason = self.available.get("archway") or self.probe_l4_archway()
        live = {d for d in DUTS if self.available.get(d) is None}
        if reason:
            live.discard("archway")
            res["archway_reason"] = reason
        tcp = [("direct", self.port["backend"], self.port["sink"])]
        udp = [("direct", self.port["udpecho"])]
        for d in DUTS:
            if d in live:
                tcp.append((d, self.port[d + "_tcp"], self.port[d + "_tcpsink"]))
                if d + "_udp" in self.port:
                    udp.append((d, self.port[d + "_udp"]))
        for rep in range(self.reps):
            for name, port, sinkport in tcp:
                if self.available.get(name):
                    continue
                r, cpu = self.measure(name, lambda: self.loadgen(
                    "tcpthru", "127.0.0.1", sinkport, 4, self.dur))
                if cpu and r.get("gbps"):
                    # The proxy's own cost per byte: on loopback the receiver shares the
                    # machine, so Gbit/s alone also measures what each DUT's way of sending
                    # costs the sink on CPU1 (see docs/benchmarks.md, splice).
                    r["cpu_ms_per_gb"] = cpu * 1e3 / (r["gbps"] * self.dur / 8)
                res["runs"].setdefault(("tcpthru", name), []).append(r)
                log("  rep%d tcp-throughput %-8s %s" % (rep + 1, name, r))
                r, cpu = self.measure(name, lambda: self.loadgen(
                    "connrate", "127.0.0.1", port, 64, self.dur, "/"))
                if cpu and r.get("cps"):
                    r["cpu_us"] = cpu * 1e6 / (r["cps"] * self.dur)
                res["runs"].setdefault(("connrate", name), []).append(r)
                log("  rep%d tcp-connrate %-8s %s" % (rep + 1, name, r))
            for name, port in udp:
                if self.available.get(name):
                    continue
                r, cpu = self.measure(name, lambda: self.loadgen(
                    "udp", "127.0.0.1", port, 64, self.dur, 64))
                res["runs"].setdefault(("udp", name), []).append(r)
                log("  rep%d udp %-8s %s" % (rep + 1, name, r))
        self.stop_duts()

    def group_tids(self, name):
        """Every thread of every process in the DUT's process group (strace -p each)."""
        p = self.procs.get(name)
        tids = []
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % pid) as f:
                    if int(f.read().rsplit(")", 1)[1].split()[2]) != p.pid:
                        continue
                tids += os.listdir("/proc/%s/task" % pid)
            except (OSError, ValueError):
                continue
        return tids

    def strace_connrate(self, name, port):
        """System calls per relayed connection: strace -c -f on the DUT over a connrate run.

        Connections are counted by the DUT's own successful accept calls, so the figure does
        not depend on the rate strace slows the DUT to."""
        if not shutil.which("strace"):
            return {"failed": "strace not installed"}
        out = os.path.join(self.work, "strace-%s.txt" % name)
        argv = ["strace", "-c", "-f", "-o", out]
        for t in self.group_tids(name):
            argv += ["-p", t]
        st = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
        with open(self.pidfile, "a") as f:
            f.write("%d\n" % st.pid)
        time.sleep(1.0)  # attached
        try:
            r = self.loadgen("connrate", "127.0.0.1", port, 64, self.dur, "/")
        finally:
            st.send_signal(signal.SIGINT)
            try:
                st.wait(timeout=30)
            except subprocess.TimeoutExpired:
                st.kill()
                st.wait(timeout=10)
        calls, errors = {}, {}
        try:
            with open(out) as f:
                for line in f:
                    parts = line.split()
                    # % time, seconds, usecs/call, calls, [errors,] syscall
                    if len(parts) >= 5 and parts[0][0].isdigit() and parts[-1] != "total":
                        calls[parts[-1]] = int(parts[3])
                        errors[parts[-1]] = int(parts[4]) if len(parts) == 6 else 0
        except OSError:
            pass
        conns = sum(calls.get(a, 0) - errors.get(a, 0) for a in ("accept4", "accept"))
        if conns <= 0:
            return {"failed": "no accepted connection under strace (%s)" % r}
        per = {k: v / conns for k, v in calls.items()}
        return {"conns": conns, "per_conn": sum(per.values()), "calls": per,
                "errors": {k: v / conns for k, v in errors.items() if v}}

    def section_l4_cost(self):
        log("== L4 cost (--l4-cost): DUT CPU and system calls per relayed TCP connection ==")
        self.stop_duts()
        res = {"runs": {}}
        self.results["l4cost"] = res
        info = self.start_duts(1, "l4cost", l4=True)
        res["info"] = info
        live = [d for d in DUTS if self.available.get(d) is None]
        for rep in range(self.reps):
            for name in live:
                port = self.port[name + "_tcp"]
                s0, t0 = self.cpu_split(name), tcp_snmp()
                r, cpu = self.measure(name, lambda: self.loadgen(
                    "connrate", "127.0.0.1", port, 64, self.dur, "/"))
                s1, t1 = self.cpu_split(name), tcp_snmp()
                opens = t1.get("PassiveOpens", 0) - t0.get("PassiveOpens", 0)
                if opens > 0:
                    # Every relayed connection is accepted twice (DUT and backend). Only
                    # meaningful when nothing else uses TCP in this network namespace.
                    r["segs"] = (t1["OutSegs"] - t0["OutSegs"]) / (opens / 2)
                if cpu and r.get("cps"):
                    r["cpu_us"] = cpu * 1e6 / (r["cps"] * self.dur)
                    if s0 and s1:
                        r["user_share"] = (s1[0] - s0[0]) / cpu
                res["runs"].setdefault(("cpu", name), []).append(r)
                log("  rep%d connrate %-8s %s" % (rep + 1, name, r))
        for name in live:
            r = self.strace_connrate(name, self.port[name + "_tcp"])
            res["runs"][("strace", name)] = r
            log("  strace %-8s %s" % (name, {k: v for k, v in r.items() if k != "calls"}))
        self.stop_duts()

    def probe_l4_archway(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port["archway_tcp"]),
                                          timeout=2) as s:
                s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                s.settimeout(2)
                if not s.recv(4096).startswith(b"HTTP/1.1 200"):
                    return "the TCP listener did not relay to the backend"
        except OSError as e:
            return "TCP listener: %s" % e
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.settimeout(2)
            u.sendto(b"probe", ("127.0.0.1", self.port["archway_udp"]))
            if u.recv(64) != b"probe":
                return "the UDP listener did not echo"
        except OSError as e:
            return "UDP listener: %s" % e
        finally:
            u.close()
        return None

    def grpc_args(self):
        body = os.path.join(self.work, "grpc-body")
        with open(body, "wb") as f:
            f.write(b"\x00\x00\x00\x00\x00")  # one empty message, gRPC framing
        return ["-d", body, "-H", "content-type: application/grpc", "-H", "te: trailers"]

    def section_grpc(self):
        c, m = self.args.h2_clients, self.args.h2_streams
        log("== gRPC unary (--grpc): h2load -c%d -m%d, gRPC-framed POST ==" % (c, m))
        self.stop_duts()
        res = {"runs": {}, "clients": c, "streams": m}
        self.results["grpc"] = res
        err = self.start_aux("grpc_backend", "grpc", self.port["grpc_backend"])
        if err:
            res["skipped"] = err
            log("  skipped: " + err)
            return
        self.start_duts(1, "grpc", grpc=True)
        path = "/bench.Bench/Call"
        extra = self.grpc_args()
        targets = [("direct", self.port["grpc_backend"])] + [
            (d, self.port[d + "_grpc"]) for d in DUTS if self.available.get(d) is None]
        usable = []
        for name, port in targets:
            why = self.h2load_probe(port, path, extra)
            if why:
                res["runs"][name] = why
                log("  %s: gRPC not available: %s" % (name, why))
            else:
                usable.append((name, port))
        for rep in range(self.reps):
            for name, port in usable:
                if self.available.get(name):
                    continue
                r, cpu = self.measure(name if name in DUTS else "-",
                                      lambda: self.h2load(port, path, c, m, extra))
                r["cpu_us"] = cpu * 1e6 / (r["rps"] * self.dur) if cpu and r["rps"] else None
                res["runs"].setdefault(name, []).append(r)
                log("  rep%d %-8s %8.0f req/s errors=%d" % (rep + 1, name, r["rps"], r["errors"]))
        self.stop_duts()

    # ---------------------------------------------------------------- report

    def report(self):
        out = []
        w = out.append

        def fmt(v):
            if v is None:
                return "-"
            if v >= 10000:
                return "%.1fk" % (v / 1000)
            if v >= 100:
                return "%.0f" % v
            return "%.1f" % v

        def cell(vals):
            vals = [v for v in vals if v is not None]
            if not vals:
                return "-", None
            med = statistics.median(vals)
            if len(vals) == 1:
                return fmt(med), med
            return "%s (%s–%s)" % (fmt(med), fmt(min(vals)), fmt(max(vals))), med

        def ratio(a, b):
            return "%.2f×" % (a / b) if a and b else "n/a"

        def verdict(a, b, factor, higher_better):
            if not a or not b:
                return "n/a (no measurement)"
            r = a / b
            ok = r >= factor if higher_better else r <= factor
            return "%s (%.2f×)" % ("MET" if ok else "NOT MET", r)

        def avail_note():
            for dut in DUTS:
                if self.available.get(dut):
                    w("  %s: not available — %s" % (dut, self.available[dut]))

        targets = []  # (target, verdict)
        w("")
        w("Archway benchmark — %s, %d-second runs × %d, medians (min–max)" %
          (time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), self.dur, self.reps))
        w("DUT on CPU%s (1 worker), backend + load generator on CPU%s; load average at start %s, "
          "at end %s; whole run %.1f min" % (
              DUT_CPU, LOAD_CPU, " ".join(self.loadavg_start),
              " ".join(open("/proc/loadavg").read().split()[0:3]),
              (time.time() - self.t_start) / 60))
        whole = steal_pct(self.ticks_start, cpu_ticks())
        if whole is not None:
            w("Hypervisor steal over the whole run: %.1f%% of the busier CPU" % whole)
        avail_note()

        h1 = self.results.get("h1")
        if h1:
            w("")
            w("HTTP/1.1 keep-alive, max req/s (wrk -t1), route /svc-0 of 1")
            hdr = "%-6s %-22s %-22s %-22s %-22s %-22s %-9s %-9s" % (
                "conns", "direct (no proxy)", "null relay", "archway", "nginx", "haproxy",
                "arch/ngx", "arch/hap")
            w(hdr)
            for conns in self.args.conns:
                cells, meds = [], {}
                for name in ["direct", "relay"] + DUTS:
                    c, m = cell([r["rps"] for r in h1.get((name, conns), [])])
                    cells.append(c if (name, conns) in h1 else "not available")
                    meds[name] = m
                w("%-6d %-22s %-22s %-22s %-22s %-22s %-9s %-9s" % (
                    conns, *cells, ratio(meds["archway"], meds["nginx"]),
                    ratio(meds["archway"], meds["haproxy"])))
                for peer in PEERS:
                    targets.append(("HTTP/1.1 RPS c=%d ≥ 1.2× %s" % (conns, peer),
                                    verdict(meds["archway"], meds[peer], 1.2, True)))
            w("  CPU µs per request (lower is better; direct = the bare backend, relay = a 1:1 "
              "TCP relay, the floor of any proxy):")
            for conns in self.args.conns:
                parts = []
                for name in ["direct", "relay"] + DUTS:
                    c, _ = cell([r.get("cpu_us") for r in h1.get((name, conns), [])])
                    parts.append("%s %s" % (name, c))
                w("    c=%-4d %s" % (conns, "; ".join(parts)))
            c, _ = cell([r.get("steal_pct") for runs in h1.values() for r in runs])
            w("  hypervisor steal during these runs, %% of the busier CPU: %s" % c)
            errs = {n: sum(r["errors"] for r in runs) for (n, _), runs in h1.items()}
            bad = {k: v for k, v in errs.items() if v}
            if bad:
                w("  errors (non-2xx/socket): %s" % bad)

        lat = self.results.get("latency")
        if lat:
            w("")
            w("HTTP/1.1 latency at a fixed %d req/s over %d connections (open loop, "
              "coordinated-omission corrected), µs" % (lat["rate"], lat["conns"]))
            w("%-10s %-24s %-24s %-24s %-10s %-8s %s" % ("target", "p50", "p99", "p99.9",
                                                        "achieved", "errors", "steal %"))
            meds = {}
            for name in ["direct", "relay"] + DUTS:
                runs = lat["runs"].get(name)
                if not runs:
                    w("%-10s not available" % name)
                    continue
                ok = [r for r in runs if "failed" not in r]
                if not ok:
                    w("%-10s failed: %s" % (name, runs[0]["failed"]))
                    continue
                p50, _ = cell([r["p50_us"] for r in ok])
                p99, m99 = cell([r["p99_us"] for r in ok])
                p999, _ = cell([r["p999_us"] for r in ok])
                ach, _ = cell([r["rps"] for r in ok])
                steal, _ = cell([r.get("steal_pct") for r in ok])
                meds[name] = m99
                w("%-10s %-24s %-24s %-24s %-10s %-8d %s" % (
                    name, p50, p99, p999, ach, sum(int(r["errors"]) for r in ok), steal))
            for peer in PEERS:
                targets.append(("p99 at the fixed rate ≤ %s's" % peer,
                                verdict(meds.get("archway"), meds.get(peer), 1.0, False)))
            if meds.get("archway"):
                w("  p99 archway/nginx %s, archway/haproxy %s (≤1.00× meets the target)" % (
                    ratio(meds.get("archway"), meds.get("nginx")),
                    ratio(meds.get("archway"), meds.get("haproxy"))))
                # Rounds are interleaved, so a round's DUTs ran minutes apart at most; a
                # per-round comparison is less exposed to slow drifts of the host than the
                # medians, though not to a burst of steal inside one run.
                mine = lat["runs"].get("archway", [])
                for peer in PEERS:
                    theirs = lat["runs"].get(peer, [])
                    pairs = [(a["p99_us"], b["p99_us"]) for a, b in zip(mine, theirs)
                             if "failed" not in a and "failed" not in b]
                    if pairs:
                        w("  per round, p99 archway/%s: %s; archway lower in %d of %d" % (
                            peer, " ".join("%.2f×" % (a / b) for a, b in pairs),
                            sum(a <= b for a, b in pairs), len(pairs)))
                direct = [r.get("p99_us") for r in lat["runs"].get("direct", [])
                          if "failed" not in r]
                if len(direct) > 1 and min(direct) > 0 and max(direct) / min(direct) > 3:
                    w("  the bare backend's own p99 spans %s–%s µs across rounds: the host, "
                      "not the proxy, sets this tail (see the steal column)" % (
                          fmt(min(direct)), fmt(max(direct))))

        h2 = self.results.get("h2")
        if h2:
            w("")
            w("HTTP/2 cleartext (prior knowledge), max req/s (h2load -t1 -c%d -m%d)" % (
                h2["clients"], h2["streams"]))
            meds = {}
            for dut in DUTS:
                runs = h2["runs"].get(dut)
                if runs is None:
                    w("  %-8s not available%s" % (dut, (": " + self.available[dut])
                                                  if self.available.get(dut) else ""))
                elif isinstance(runs, str):
                    w("  %-8s not available: %s" % (dut, runs))
                else:
                    c, meds[dut] = cell([r["rps"] for r in runs])
                    cu, _ = cell([r.get("cpu_us") for r in runs])
                    w("  %-8s %-26s CPU µs/req %-18s errors %d" % (
                        dut, c, cu, sum(max(r["errors"], 0) for r in runs)))
            w("  archway/nginx %s, archway/haproxy %s" % (
                ratio(meds.get("archway"), meds.get("nginx")),
                ratio(meds.get("archway"), meds.get("haproxy"))))

        ins = self.results.get("instructions")
        if ins:
            w("")
            w("User-space instructions per request under callgrind (lower is better; HTTP/1.1 "
              "wrk -c16):")
            per = {}
            for dut in DUTS:
                row = ins.get(dut, {})
                if "failed" in row:
                    w("  %-8s not available: %s" % (dut, row["failed"]))
                    continue
                cells = []
                for proto in ("h1",):
                    r = row.get(proto, {})
                    v = r["ir"] / r["requests"] if r.get("ir") and r.get("requests") else None
                    per[(dut, proto)] = v
                    cells.append("%s %s" % (proto, "%.0f" % v if v else "n/a"))
                w("  %-8s %s" % (dut, "   ".join(cells)))
            for proto in ("h1",):
                w("  %s archway/nginx %s, archway/haproxy %s" % (
                    proto, ratio(per.get(("archway", proto)), per.get(("nginx", proto))),
                    ratio(per.get(("archway", proto)), per.get(("haproxy", proto)))))

        rt = self.results.get("routes")
        if rt:
            runs = rt["runs"]
            w("")
            w("Route tables: max req/s at %d connections, N path-prefix routes, request to the "
              "first / last route" % self.args.route_conns)
            w("%-8s %-7s %-26s %-26s %-26s %-9s %-9s" % ("routes", "hit", "archway", "nginx",
                                                          "haproxy", "arch/ngx", "arch/hap"))
            base = {}
            for n in self.args.routes:
                for which in (["first"] + (["last"] if n > 1 else [])):
                    cells, meds = [], {}
                    for dut in DUTS:
                        rr = runs.get((n, which, dut))
                        if rr is None:
                            cells.append("not available")
                            meds[dut] = None
                            continue
                        c, meds[dut] = cell([r["rps"] for r in rr])
                        if n == self.args.routes[0]:
                            base[dut] = meds[dut]
                        elif base.get(dut):
                            c += " %+.1f%%" % ((meds[dut] / base[dut] - 1) * 100)
                            if dut == "archway":
                                chg = (meds[dut] / base[dut] - 1) * 100
                                targets.append((
                                    "RPS loss 1 → %d routes (%s) < 3%%" % (n, which),
                                    "%s (%+.1f%%)" % ("MET" if chg > -3 else "NOT MET", chg)))
                        cells.append(c)
                    w("%-8d %-7s %-26s %-26s %-26s %-9s %-9s" % (
                        n, which, *cells, ratio(meds["archway"], meds["nginx"]),
                        ratio(meds["archway"], meds["haproxy"])))
            w("  (+/-%% = change of the median against %d route; target for Archway: "
              "loss < 3%% at 10,000)" % self.args.routes[0])
            w("  DUT CPU µs per request (route lookup cost shows here even when RPS is noisy):")
            for n in self.args.routes:
                for which in (["first"] + (["last"] if n > 1 else [])):
                    parts = []
                    for dut in DUTS:
                        rr = runs.get((n, which, dut))
                        c, _ = cell([r.get("cpu_us") for r in rr]) if rr else ("-", None)
                        parts.append("%s %s" % (dut, c))
                    w("    %6d %-5s %s" % (n, which, "; ".join(parts)))
            w("  start-up (config load until serving) and RSS after start:")
            for n, inf in rt["info"].items():
                parts = []
                for dut in DUTS:
                    d = inf.get(dut) or {}
                    if d.get("rss_mb") is not None:
                        parts.append("%s %.1fs %.1f MB" % (dut, d["ready_s"], d["rss_mb"]))
                    else:
                        parts.append("%s n/a" % dut)
                w("    %6d routes: %s" % (n, "; ".join(parts)))

        l4 = self.results.get("l4")
        if l4 is not None:
            w("")
            w("L4 (--l4): haproxy mode tcp, nginx stream (TCP and UDP); direct = no proxy")
            if l4.get("skipped"):
                w("  skipped: %s" % l4["skipped"])
            else:
                if l4.get("archway_reason"):
                    w("  archway: not available — %s" % l4["archway_reason"])
                for kind, label, key in (
                        ("tcpthru", "TCP throughput, 4 connections, Gbit/s", "gbps"),
                        ("connrate", "TCP connections/s, 64 concurrent, 1 HTTP request each",
                         "cps"),
                        ("udp", "UDP round trips/s, 64-byte datagrams, 64 in flight", "dps")):
                    w("  " + label)
                    meds = {}
                    for name in ["direct"] + DUTS:
                        rr = l4["runs"].get((kind, name))
                        if rr is None:
                            if name == "haproxy" and kind == "udp":
                                w("    %-8s no UDP proxying in haproxy" % name)
                            continue
                        ok = [r for r in rr if key in r]
                        c, meds[name] = cell([r[key] for r in ok]) if ok else ("failed", None)
                        extra = ""
                        if kind == "udp" and ok:
                            extra = " lost %d" % sum(r.get("lost", 0) for r in ok)
                        if kind == "connrate" and ok:
                            extra = " errors %d" % sum(r.get("errors", 0) for r in ok)
                            cu, _ = cell([r.get("cpu_us") for r in ok])
                            if cu != "-":
                                extra += ", DUT CPU µs/conn %s" % cu
                        if kind == "tcpthru" and ok:
                            cg, _ = cell([r.get("cpu_ms_per_gb") for r in ok])
                            lb, _ = cell([r.get("load_busy_pct") for r in ok])
                            extra = "DUT CPU ms/GB %s, CPU1 (sender + sink) busy %s%%" % (
                                cg, lb) if name != "direct" else "CPU1 busy %s%%" % lb
                        if not ok:
                            extra = " " + str(rr[0].get("failed", ""))[:100]
                        w("    %-8s %-26s%s" % (name, c, extra))
                    w("    archway/nginx %s, archway/haproxy %s" % (
                        ratio(meds.get("archway"), meds.get("nginx")),
                        ratio(meds.get("archway"), meds.get("haproxy"))))
        lc = self.results.get("l4cost")
        if lc is not None:
            w("")
            w("L4 cost (--l4-cost): per relayed TCP connection, loadgen connrate 64 "
              "(1 HTTP request each)")
            for name in DUTS:
                rr = lc["runs"].get(("cpu", name))
                if rr is None:
                    continue
                ok = [r for r in rr if r.get("cpu_us")]
                cu, _ = cell([r["cpu_us"] for r in ok])
                cps, _ = cell([r["cps"] for r in ok])
                us = [r["user_share"] for r in ok if "user_share" in r]
                sg, _ = cell([r.get("segs") for r in ok])
                w("  %-8s DUT CPU µs/conn %-20s user %s%%  TCP segments/conn %s  (conn/s %s)" % (
                    name, cu, "%.0f" % (100 * statistics.median(us)) if us else "-", sg, cps))
            for name in DUTS:
                r = lc["runs"].get(("strace", name))
                if r is None:
                    continue
                if "failed" in r:
                    w("  %-8s syscalls: %s" % (name, r["failed"]))
                    continue
                top = sorted(r["calls"].items(), key=lambda kv: -kv[1])
                w("  %-8s syscalls/conn %.1f over %d connections: %s" % (
                    name, r["per_conn"], r["conns"],
                    ", ".join("%s %.2f" % kv for kv in top if kv[1] >= 0.01)))
                if r["errors"]:
                    w("  %-8s   of which failed: %s" % ("", ", ".join(
                        "%s %.2f" % kv for kv in sorted(r["errors"].items()) if kv[1] >= 0.01)))
        gr = self.results.get("grpc")
        if gr is not None:
            w("")
            w("gRPC unary (--grpc), h2c to the proxy and to the backend, h2load -t1 -c%d -m%d "
              "(nginx grpc_pass, haproxy proto h2)" % (gr.get("clients", 0),
                                                       gr.get("streams", 0)))
            if gr.get("skipped"):
                w("  skipped: %s" % gr["skipped"])
            else:
                meds = {}
                for name in ["direct"] + DUTS:
                    rr = gr["runs"].get(name)
                    if rr is None:
                        w("  %-8s not available%s" % (name, (": " + self.available[name])
                                                      if self.available.get(name) else ""))
                    elif isinstance(rr, str):
                        w("  %-8s not available: %s" % (name, rr))
                    else:
                        c, meds[name] = cell([r["rps"] for r in rr])
                        cu, _ = cell([r.get("cpu_us") for r in rr])
                        w("  %-8s %-26s CPU µs/req %-18s errors %d" % (
                            name, c, cu, sum(max(r["errors"], 0) for r in rr)))
                w("  archway/nginx %s, archway/haproxy %s" % (
                    ratio(meds.get("archway"), meds.get("nginx")),
                    ratio(meds.get("archway"), meds.get("haproxy"))))
        if targets:
            w("")
            w("Targets (Archway, on medians; a busy machine makes single verdicts unreliable)")
            for t, v in targets:
                w("  %-44s %s" % (t, v))
        print("\n".join(out), flush=True)
        with open(os.path.join(self.work, "results.json"), "w") as f:
            json.dump({str(k): (str(v) if not isinstance(v, (dict, list)) else repr(v))
                       for k, v in self.results.items()}, f)

    # ---------------------------------------------------------------- main

    def run(self):
        self.loadavg_start = open("/proc/loadavg").read().split()[0:3]
        self.t_start = time.time()
        self.ticks_start = cpu_ticks()
        for name, port in self.port.items():
            if name.endswith("_h2") and port == self.port.get(name[:-3]):
                continue
            if not self.port_free(port):
                raise SystemExit("port %d (%s) is busy; choose --port-base" % (port, name))
        self.start_backends()
        path = self.route_path(0) + "/x"
        if not self.args.skip_h1:
            log("starting DUTs with 1 route")
            self.h1_info = self.start_duts(1, "routes1")
            self.section_h1(path)
            self.section_latency(path)
            self.section_h2(path)
        if not self.args.skip_routes:
            self.section_routes()
        self.stop_duts()
        if self.args.l4:
            self.section_l4()
        if self.args.l4_cost:
            self.section_l4_cost()
        if self.args.grpc:
            self.section_grpc()
        if self.args.instructions:
            self.section_instructions(path)
        self.stop_all()
        self.report()


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="3-second runs, 1 repetition (development; checks every row works)")
    ap.add_argument("--l4", action="store_true", help="add the TCP/UDP section")
    ap.add_argument("--grpc", action="store_true", help="add the gRPC section")
    ap.add_argument("--l4-cost", action="store_true",
                    help="add DUT CPU µs and system calls (strace -c -f) per relayed TCP "
                         "connection (load-proof; the rates under strace are not reported)")
    ap.add_argument("--reps", type=int, default=0,
                    help="repetitions of every measurement (default 3, 1 with --quick)")
    ap.add_argument("--duration", type=int, default=0, help="seconds per run (default 5, "
                    "3 with --quick)")
    ap.add_argument("--conns", type=int, nargs="+", default=[16, 64, 256])
    ap.add_argument("--routes", type=int, nargs="+", default=[1, 100, 10000])
    ap.add_argument("--route-conns", type=int, default=64)
    ap.add_argument("--latency-conns", type=int, default=16)
    ap.add_argument("--rate-fraction", type=float, default=0.5)
    ap.add_argument("--h2-clients", type=int, default=16)
    ap.add_argument("--h2-streams", type=int, default=10)
    ap.add_argument("--haproxy-routing", choices=["map", "acl"], default="map",
                    help="haproxy route table as one map_beg map (default) or one ACL per route")
    ap.add_argument("--peers-anyway", action="store_true",
                    help="(kept for old command lines; peers are always measured now)")
    ap.add_argument("--skip-h1", action="store_true", help="skip HTTP/1.1, latency and h2")
    ap.add_argument("--skip-routes", action="store_true", help="skip the route-table section")
    ap.add_argument("--instructions", action="store_true",
                    help="add user-space instructions per request under callgrind (HTTP/1.1 "
                         "wrk -c16; needs valgrind; slow but load-proof)")
    # Above the default ephemeral range (32768-60999) so that no client socket holds them.
    ap.add_argument("--port-base", type=int, default=int(os.environ.get("BENCH_PORT_BASE",
                                                                         "61000")))
    ap.add_argument("--archway", default=os.environ.get("ARCHWAY_BIN",
                                                        os.path.join(REPO, "build", "archway")))
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--tools", required=True)
    args = ap.parse_args()
    if not args.duration:
        args.duration = 3 if args.quick else 5
    if not args.reps:
        args.reps = 1 if args.quick else 3
    if os.cpu_count() < 2:
        raise SystemExit("needs at least 2 CPUs (DUT on CPU0, load on CPU1)")
    for tool in ("wrk", "h2load", "nginx", "haproxy", "taskset"):
        if not shutil.which(tool):
            raise SystemExit("%s not found: run scripts/setup.sh" % tool)
    b = Bench(args)

    def on_signal(sig, _frame):
        b.stop_all()
        raise SystemExit(128 + sig)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        b.run()
    finally:
        b.stop_all()


if __name__ == "__main__":
    main()

"""Process helpers shared by the Python tests: free ports, child processes that are
always stopped (by their own pid), `archway run` started and waited for (Archway), waiting
for a ready line or an HTTP endpoint, and a small in-process HTTP backend that names
itself."""

import http.server
import json
import socketserver
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
ECHO = os.path.join(HERE, "echo.py")
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
# The binary under test: $ARCHWAY_BIN, else the ASan+UBSan build (as scripts/test.sh).
BIN = os.environ.get("ARCHWAY_BIN", os.path.join(REPO, "build-asan-ubsan", "archway"))


def free_port(host="127.0.0.1"):
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class Child:
    """A child process whose stdout/stderr go to a log file; stop() ends only it."""

    def __init__(self, args, log_path, env=None, stdin_pipe=False):
        self.args = args
        self.log_path = log_path
        self.log = open(log_path, "ab")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, env=env,
                                     stdin=subprocess.PIPE if stdin_pipe else subprocess.DEVNULL)

    def alive(self):
        return self.proc.poll() is None

    def stop(self, timeout=10):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=timeout)
        if self.proc.stdin:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
        self.log.close()
        return self.proc.returncode

    def output(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""


class EchoProcess:
    """tests/support/echo.py hosting the given pods; start() waits for READY."""

    def __init__(self, pods, workdir, name="echo"):
        self.config = os.path.join(workdir, name + ".json")
        with open(self.config, "w") as f:
            json.dump({"pods": pods}, f, indent=1)
        self.out_path = os.path.join(workdir, name + ".out")
        self.proc = None
        self.ready = None

    def start(self, timeout=30):
        out = open(self.out_path, "wb")
        # stdin stays open as a pipe: if this process dies, the echo server sees EOF and exits.
        self.proc = subprocess.Popen([PYTHON, ECHO, "--config", self.config, "--exit-on-stdin-eof"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=out)
        result = {}
        got_line = threading.Event()

        def read_ready():
            line = self.proc.stdout.readline().decode("utf-8", "replace")
            result["line"] = line
            got_line.set()
            # Keep draining so the child never blocks on a full pipe.
            try:
                for _ in self.proc.stdout:
                    pass
            except (OSError, ValueError):
                pass

        threading.Thread(target=read_ready, daemon=True).start()
        got_line.wait(timeout)
        out.close()
        line = result.get("line", "")
        if not line.startswith("READY "):
            self.stop()
            err = ""
            try:
                with open(self.out_path) as f:
                    err = f.read()[-2000:]
            except OSError:
                pass
            raise RuntimeError("echo server did not start: %r %s" % (line.strip(), err))
        self.ready = json.loads(line[len("READY "):])
        return self.ready

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except (OSError, ValueError):
                pass
        self.proc = None


def http_get(url, timeout=5):
    """(status, body) or (None, error text)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except (urllib.error.URLError, OSError) as e:
        return None, str(e)


def raw(port, data, timeout=10, read_until_close=True):
    """Sends raw bytes and returns everything read until the server closes (or timeout)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            out += chunk
            if not read_until_close:
                break
        return out
    finally:
        s.close()


def wait_until(pred, timeout, interval=0.05):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            return v
        time.sleep(interval)


class _NamedHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        data = json.dumps({"backend": self.server.name, "path": self.path}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class NamedBackend(socketserver.ThreadingMixIn, http.server.HTTPServer):
    """HTTP/1.1 keep-alive backend in a thread: every GET gets
    {"backend": name, "path": path} as JSON, so a test sees which backend served it."""

    daemon_threads = True

    def __init__(self, name):
        super().__init__(("127.0.0.1", 0), _NamedHandler)
        self.name = name
        threading.Thread(target=self.serve_forever, daemon=True).start()


def sanitizer_report(text):
    """True when `text` (a process log) holds a sanitizer report or a UBSan runtime error."""
    return "Sanitizer" in text or "runtime error" in text


class Archway:
    """`archway run` as a child process: started with `-f manifest_dir` (when given),
    `--workers` (when not None), an admin address on a free port and `args`; the
    constructor returns once /ready answers 200 on the admin port, else stops the process
    and raises with its log. stop() sends SIGTERM (SIGKILL after `timeout`), returns the
    exit code and keeps the log readable through output()."""

    def __init__(self, manifest_dir=None, args=(), workers=2, admin_port=None, log_path=None,
                 ready_timeout=60, binary=None):
        self.admin_port = admin_port or free_port()
        self.binary = binary or BIN
        cmd = [self.binary, "run"]
        if manifest_dir is not None:
            cmd += ["-f", manifest_dir]
        if workers is not None:
            cmd += ["--workers", str(workers)]
        cmd += ["--admin-address", "127.0.0.1:%d" % self.admin_port, *args]
        self._own_log = log_path is None
        if self._own_log:
            fd, log_path = tempfile.mkstemp(prefix="archway-", suffix=".log")
            os.close(fd)
        self._final_output = None
        self.child = Child(cmd, log_path)
        self.proc = self.child.proc
        deadline = time.monotonic() + ready_timeout
        while True:
            if not self.child.alive():
                rc = self.proc.returncode
                raise RuntimeError("archway exited with %s before ready:\n%s" % (rc, self.stop_output()))
            try:
                if self.admin("/ready", timeout=5)[0] == 200:
                    return
            except OSError:
                pass
            if time.monotonic() >= deadline:
                raise RuntimeError("archway not ready after %ss:\n%s" % (ready_timeout, self.stop_output()))
            time.sleep(0.1)

    def admin(self, path, timeout=10):
        """(status, body text) of a GET on the admin port; connection errors raise OSError."""
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open("http://127.0.0.1:%d%s" % (self.admin_port, path), timeout=timeout) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def metrics(self):
        return self.admin("/metrics")[1]

    def metric(self, name, **labels):
        """Sum of the samples of `name` whose labels include `labels` (0 when none)."""
        total = 0
        for line in self.metrics().splitlines():
            if not line.startswith(name + "{") and not line.startswith(name + " "):
                continue
            if all('%s="%s"' % (k, v) in line for k, v in labels.items()):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def alive(self):
        return self.child.alive()

    def output(self):
        if self._final_output is not None:
            return self._final_output
        return self.child.output()

    def stop(self, timeout=30):
        """Ends the process (SIGTERM, then SIGKILL); returns its exit code. Idempotent."""
        if self._final_output is not None:
            return self.proc.returncode
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=timeout)
        self.child.stop()
        self._final_output = self.child.output()
        if self._own_log:
            try:
                os.unlink(self.child.log_path)
            except OSError:
                pass
        return self.proc.returncode

    def unclean_stop(self):
        """Stops the process; None when it exited 0 without a sanitizer report, else a
        message with the exit code and the end of its log (for an AssertionError)."""
        rc = self.stop()
        out = self.output()
        if rc == 0 and not sanitizer_report(out):
            return None
        return "archway exited with %s:\n%s" % (rc, out[-4000:])

    def stop_output(self):
        self.stop()
        return self.output()

// Small load generators for bench/run.sh (one thread, epoll; pin it with taskset).
//
//   loadgen rate HOST PORT CONNS RATE SECS PATH
//       Open-loop HTTP/1.1 keep-alive load at a fixed total RATE (req/s) over CONNS connections.
//       Each connection has its own schedule (RATE/CONNS); a request's latency is measured from
//       the time it was *scheduled*, not from when it could be sent, so a stalled server is
//       charged for the requests it delayed (coordinated-omission correction, as in wrk2).
//       Prints: rps=.. p50_us=.. p90_us=.. p99_us=.. p999_us=.. max_us=.. errors=.. late=..
//   loadgen connrate HOST PORT CONNS SECS PATH
//       Closed loop, one request per TCP connection (connect, GET, read response, close).
//       Prints: cps=.. errors=..
//   loadgen tcpthru HOST PORT CONNS SECS
//       Bulk writes of 64 KiB over CONNS connections to a discarding backend. Prints: gbps=..
//   loadgen udp HOST PORT WINDOW SECS SIZE
//       UDP round trips through an echo backend, WINDOW datagrams in flight. Prints: dps=.. lost=..
//
// A 1-second warm-up precedes every measurement window and is not counted.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define WARMUP_NS 1000000000LL
#define BUFSZ 65536

static int64_t nowNs(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static struct sockaddr_in target;

static int connectTo(void) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (fd < 0) return -1;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(fd, (struct sockaddr*)&target, sizeof target) < 0 && errno != EINPROGRESS) {
    close(fd);
    return -1;
  }
  return fd;
}

// ---- HTTP/1.1 response parser (status, Content-Length or chunked) ----

// Returns bytes consumed by one complete response at the front of buf, 0 if incomplete,
// -1 if malformed. *status gets the status code; *closing is set on "Connection: close".
static long parseResponse(const char* buf, size_t len, int* status, int* closing) {
  const char* end = memmem(buf, len, "\r\n\r\n", 4);
  if (!end) return len > 65536 ? -1 : 0;
  size_t head = (size_t)(end - buf) + 4;
  if (len < 12 || memcmp(buf, "HTTP/1.", 7) != 0) return -1;
  *status = atoi(buf + 9);
  long clen = -1;
  int chunked = 0;
  *closing = 0;
  for (const char* p = buf; p < end;) {
    const char* eol = memmem(p, (size_t)(end - p) + 2, "\r\n", 2);
    if (!eol) break;
    size_t n = (size_t)(eol - p);
    if (n > 15 && !strncasecmp(p, "content-length:", 15)) clen = atol(p + 15);
    if (n > 18 && !strncasecmp(p, "transfer-encoding:", 18) && memmem(p, n, "chunked", 7))
      chunked = 1;
    if (n > 11 && !strncasecmp(p, "connection:", 11) && memmem(p, n, "close", 5)) *closing = 1;
    p = eol + 2;
  }
  if (*status == 204 || *status == 304 || (*status >= 100 && *status < 200)) return (long)head;
  if (chunked) {
    size_t pos = head;
    for (;;) {
      const char* eol = memmem(buf + pos, len - pos, "\r\n", 2);
      if (!eol) return 0;
      long sz = strtol(buf + pos, NULL, 16);
      if (sz < 0) return -1;
      pos = (size_t)(eol - buf) + 2;
      if (sz == 0) {
        // No trailers expected: final CRLF.
        if (len - pos < 2) return 0;
        return (long)(pos + 2);
      }
      if (len - pos < (size_t)sz + 2) return 0;
      pos += (size_t)sz + 2;
    }
  }
  if (clen < 0) return -1;  // read-until-close bodies are not used by any peer here
  if (len - head < (size_t)clen) return 0;
  return (long)(head + (size_t)clen);
}

// ---- rate mode ----

struct RConn {
  int fd;
  int connected;
  int busy;          // a request is in flight
  int64_t next;      // next scheduled send time
  int64_t intended;  // scheduled time of the request in flight
  size_t sent;       // bytes of the request written (partial writes)
  char* in;
  size_t inLen;
};

static int cmpU64(const void* a, const void* b) {
  uint64_t x = *(const uint64_t*)a, y = *(const uint64_t*)b;
  return x < y ? -1 : x > y;
}

static int runRate(int conns, double rate, double secs, const char* req) {
  size_t reqLen = strlen(req);
  int ep = epoll_create1(0);
  struct RConn* cs = calloc((size_t)conns, sizeof *cs);
  int64_t interval = (int64_t)(1e9 * conns / rate);
  int64_t t0 = nowNs() + 200000000LL;  // connect phase
  int64_t measureStart = t0 + WARMUP_NS;
  int64_t tEnd = measureStart + (int64_t)(secs * 1e9);
  size_t cap = (size_t)(rate * secs * 1.5) + 1024;
  uint64_t* lat = malloc(cap * sizeof *lat);
  size_t nlat = 0;
  long errors = 0, reconnects = 0, done = 0;
  for (int i = 0; i < conns; i++) {
    cs[i].fd = connectTo();
    if (cs[i].fd < 0) {
      fprintf(stderr, "connect failed: %s\n", strerror(errno));
      return 1;
    }
    cs[i].in = malloc(BUFSZ);
    cs[i].next = t0 + interval * i / conns;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.u32 = (uint32_t)i};
    epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev);
  }
#define RECORD(t_intended, t_now)                                          \
  do {                                                                     \
    if ((t_intended) >= measureStart && (t_intended) < tEnd && nlat < cap) \
      lat[nlat++] = (uint64_t)((t_now) - (t_intended));                    \
  } while (0)
  struct epoll_event evs[512];
  for (;;) {
    int64_t now = nowNs();
    if (now >= tEnd + 200000000LL) break;  // allow the last requests 200 ms to finish
    int64_t wake = tEnd + 200000000LL;
    for (int i = 0; i < conns; i++) {
      struct RConn* c = &cs[i];
      if (!c->connected || c->busy) continue;
      if (c->next < tEnd && c->next <= now) {
        c->intended = c->next;
        c->next += interval;
        c->busy = 1;
        c->sent = 0;
        ssize_t w = write(c->fd, req, reqLen);
        if (w > 0) c->sent = (size_t)w;
        if (w < 0 && errno != EAGAIN) {
          errors++;
          c->busy = 0;
        }
      }
      if (!c->busy && c->next < tEnd && c->next < wake) wake = c->next;
    }
    int64_t wait = wake - nowNs();
    if (wait < 0) wait = 0;
    struct timespec ts = {.tv_sec = wait / 1000000000LL, .tv_nsec = wait % 1000000000LL};
    int n = epoll_pwait2(ep, evs, 512, &ts, NULL);
    now = nowNs();
    for (int k = 0; k < n; k++) {
      struct RConn* c = &cs[evs[k].data.u32];
      if (evs[k].events & EPOLLOUT) {
        if (!c->connected) {
          int err = 0;
          socklen_t el = sizeof err;
          getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
          if (err) {
            fprintf(stderr, "connect: %s\n", strerror(err));
            return 1;
          }
          c->connected = 1;
          struct epoll_event ev = {.events = EPOLLIN, .data.u32 = evs[k].data.u32};
          epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
        }
      }
      if (c->busy && c->sent < reqLen) {
        ssize_t w = write(c->fd, req + c->sent, reqLen - c->sent);
        if (w > 0) c->sent += (size_t)w;
      }
      if (!(evs[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) continue;
      ssize_t r = read(c->fd, c->in + c->inLen, BUFSZ - c->inLen);
      int dead = r == 0 || (r < 0 && errno != EAGAIN);
      if (r > 0) c->inLen += (size_t)r;
      while (c->inLen > 0) {
        int status = 0, closing = 0;
        long used = parseResponse(c->in, c->inLen, &status, &closing);
        if (used == 0) break;
        if (used < 0) {
          dead = 1;
          errors++;
          c->inLen = 0;
          break;
        }
        if (c->busy) {
          RECORD(c->intended, now);
          if (c->intended >= measureStart && c->intended < tEnd) {
            done++;
            if (status < 200 || status >= 300) errors++;
          }
          c->busy = 0;
        }
        memmove(c->in, c->in + used, c->inLen - (size_t)used);
        c->inLen -= (size_t)used;
        if (closing) dead = 1;
      }
      if (dead) {
        // The server closed: reconnect; a request in flight is an error.
        if (c->busy && c->intended >= measureStart && c->intended < tEnd) errors++;
        epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        reconnects++;
        c->fd = connectTo();
        c->connected = 0;
        c->busy = 0;
        c->inLen = 0;
        if (c->fd < 0) return 1;
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.u32 = evs[k].data.u32};
        epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
      }
    }
  }
  // Requests still in flight or never sent although scheduled: charge them until now
  // (a lower bound of their latency) instead of silently dropping them.
  int64_t end = nowNs();
  long late = 0;
  for (int i = 0; i < conns; i++) {
    if (cs[i].busy) {
      RECORD(cs[i].intended, end);
      late++;
    }
    for (int64_t t = cs[i].next; t < tEnd; t += interval) {
      RECORD(t, end);
      late++;
    }
  }
  qsort(lat, nlat, sizeof *lat, cmpU64);
#define PCT(p) (nlat ? lat[(size_t)((p) * (double)(nlat - 1))] / 1000.0 : 0.0)
  printf(
      "rps=%.0f p50_us=%.1f p90_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f errors=%ld "
      "late=%ld reconnects=%ld samples=%zu\n",
      done / secs, PCT(0.5), PCT(0.9), PCT(0.99), PCT(0.999), PCT(1.0), errors, late, reconnects,
      nlat);
  return 0;
}

// ---- connrate mode ----

static int runConnRate(int conns, double secs, const char* req) {
  size_t reqLen = strlen(req);
  int ep = epoll_create1(0);
  struct RConn* cs = calloc((size_t)conns, sizeof *cs);
  int64_t start = nowNs();
  int64_t measureStart = start + WARMUP_NS;
  int64_t tEnd = measureStart + (int64_t)(secs * 1e9);
  long done = 0, errors = 0;
  for (int i = 0; i < conns; i++) {
    cs[i].in = malloc(BUFSZ);
    cs[i].fd = -1;
  }
  struct epoll_event evs[512];
  for (;;) {
    int64_t now = nowNs();
    if (now >= tEnd) break;
    for (int i = 0; i < conns; i++) {
      if (cs[i].fd >= 0) continue;
      cs[i].fd = connectTo();
      if (cs[i].fd < 0) {
        errors++;
        continue;
      }
      cs[i].connected = 0;
      cs[i].inLen = 0;
      struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.u32 = (uint32_t)i};
      epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev);
    }
    int n = epoll_wait(ep, evs, 512, 100);
    now = nowNs();
    for (int k = 0; k < n; k++) {
      struct RConn* c = &cs[evs[k].data.u32];
      if (c->fd < 0) continue;
      int finished = 0, failed = 0;
      if ((evs[k].events & EPOLLOUT) && !c->connected) {
        int err = 0;
        socklen_t el = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
        if (err) {
          failed = 1;
        } else {
          c->connected = 1;
          if (write(c->fd, req, reqLen) != (ssize_t)reqLen) failed = 1;
          struct epoll_event ev = {.events = EPOLLIN, .data.u32 = evs[k].data.u32};
          epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
        }
      }
      if (!failed && (evs[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && c->connected) {
        ssize_t r = read(c->fd, c->in + c->inLen, BUFSZ - c->inLen);
        if (r > 0) c->inLen += (size_t)r;
        int status = 0, closing = 0;
        long used = c->inLen ? parseResponse(c->in, c->inLen, &status, &closing) : 0;
        if (used > 0) {
          finished = 1;
          if (status < 200 || status >= 300) failed = 1;
        } else if (used < 0 || r == 0 || (r < 0 && errno != EAGAIN)) {
          failed = 1;
        }
      }
      if (finished || failed) {
        if (now >= measureStart) {
          if (failed)
            errors++;
          else
            done++;
        }
        epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        c->fd = -1;
      }
    }
  }
  printf("cps=%.0f errors=%ld\n", done / secs, errors);
  return 0;
}

// ---- tcpthru mode ----

static int runTcpThru(int conns, double secs) {
  static char buf[65536];
  memset(buf, 'x', sizeof buf);
  int ep = epoll_create1(0);
  for (int i = 0; i < conns; i++) {
    int fd = connectTo();
    if (fd < 0) return 1;
    struct epoll_event ev = {.events = EPOLLOUT, .data.fd = fd};
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  }
  int64_t start = nowNs();
  int64_t measureStart = start + WARMUP_NS;
  int64_t tEnd = measureStart + (int64_t)(secs * 1e9);
  uint64_t bytes = 0;
  long errors = 0;
  struct epoll_event evs[256];
  while (nowNs() < tEnd) {
    int n = epoll_wait(ep, evs, 256, 100);
    int64_t now = nowNs();
    for (int k = 0; k < n; k++) {
      ssize_t w = write(evs[k].data.fd, buf, sizeof buf);
      if (w > 0 && now >= measureStart) bytes += (uint64_t)w;
      if (w < 0 && errno != EAGAIN) {
        errors++;
        epoll_ctl(ep, EPOLL_CTL_DEL, evs[k].data.fd, NULL);
      }
    }
  }
  printf("gbps=%.3f errors=%ld\n", bytes * 8.0 / secs / 1e9, errors);
  return 0;
}

// ---- udp mode ----

static int runUdp(int window, double secs, int size) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  int big = 8 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
  if (connect(fd, (struct sockaddr*)&target, sizeof target) < 0) return 1;
  char buf[2048];
  memset(buf, 'u', sizeof buf);
  if (size < 8 || size > (int)sizeof buf) size = 64;
  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
  epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  int64_t start = nowNs();
  int64_t measureStart = start + WARMUP_NS;
  int64_t tEnd = measureStart + (int64_t)(secs * 1e9);
  int64_t lastRx = start;
  long inflight = 0, received = 0, lost = 0;
  while (nowNs() < tEnd) {
    while (inflight < window) {
      if (send(fd, buf, (size_t)size, 0) < 0) break;
      inflight++;
    }
    struct epoll_event e;
    epoll_wait(ep, &e, 1, 20);
    int64_t now = nowNs();
    for (;;) {
      ssize_t r = recv(fd, buf, sizeof buf, 0);
      if (r < 0) break;
      inflight--;
      lastRx = now;
      if (now >= measureStart) received++;
    }
    if (now - lastRx > 50000000LL && inflight > 0) {  // 50 ms silence: count the window lost
      lost += inflight;
      inflight = 0;
      lastRx = now;
    }
  }
  printf("dps=%.0f lost=%ld\n", received / secs, lost);
  return 0;
}

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  prctl(PR_SET_TIMERSLACK, 1UL);  // fixed-rate schedule needs µs-precise wake-ups
  if (argc < 4) {
    fprintf(stderr, "usage: see the header of loadgen.c\n");
    return 2;
  }
  target.sin_family = AF_INET;
  target.sin_port = htons((uint16_t)atoi(argv[3]));
  if (inet_pton(AF_INET, argv[2], &target.sin_addr) != 1) {
    fprintf(stderr, "bad host %s (IPv4 literal expected)\n", argv[2]);
    return 2;
  }
  char req[1024];
  const char* mode = argv[1];
  if (!strcmp(mode, "rate") && argc == 8) {
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: bench.local\r\n\r\n", argv[7]);
    int conns = atoi(argv[4]);
    double rate = atof(argv[5]), secs = atof(argv[6]);
    if (conns < 1 || rate <= 0 || secs <= 0) return 2;
    return runRate(conns, rate, secs, req);
  }
  if (!strcmp(mode, "connrate") && argc == 7) {
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: bench.local\r\nConnection: close\r\n\r\n",
             argv[6]);
    return runConnRate(atoi(argv[4]), atof(argv[5]), req);
  }
  if (!strcmp(mode, "tcpthru") && argc == 6) return runTcpThru(atoi(argv[4]), atof(argv[5]));
  if (!strcmp(mode, "udp") && argc == 7) return runUdp(atoi(argv[4]), atof(argv[5]), atoi(argv[6]));
  fprintf(stderr, "bad arguments; see the header of loadgen.c\n");
  return 2;
}

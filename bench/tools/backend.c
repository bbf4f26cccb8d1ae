// Benchmark backend shared by every proxy under test. One thread, epoll, no allocation per
// request, so the backend costs the same whatever sits in front of it.
//
//   backend http PORT      HTTP/1.1 keep-alive, fixed "200 ok" for every request (pipelining ok)
//   backend sink PORT      TCP: read and discard everything (throughput tests)
//   backend udpecho PORT   UDP: echo every datagram back to its sender
//
// Runs until SIGTERM/SIGINT. Listens on 127.0.0.1 only.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_FDS 65536
#define RBUF 16384

static const char kResponse[] =
    "HTTP/1.1 200 OK\r\nServer: bench\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok";
#define RESP_LEN (sizeof(kResponse) - 1)

// Per-connection state: position in the "\r\n\r\n" matcher, the request body still to skip
// (Content-Length of POSTs), and unsent response bytes when the socket buffer was full.
struct Conn {
  int match;      // bytes of "\r\n\r\n" matched so far
  long bodyLeft;  // request body bytes still to skip
  long clScan;    // Content-Length value being parsed in the current header block
  int hdrState;   // tiny header scanner, see scanHeaders()
  char* out;      // pending output
  size_t outLen, outCap;
};

static struct Conn* conns[MAX_FDS];
static volatile sig_atomic_t stopping = 0;
static void onSignal(int sig) {
  (void)sig;
  stopping = 1;
}

static int listenOn(int port, int type) {
  int fd = socket(AF_INET, type | SOCK_NONBLOCK, 0);
  if (fd < 0) return -1;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, (struct sockaddr*)&a, sizeof a) < 0) return -1;
  if (type == SOCK_STREAM && listen(fd, 4096) < 0) return -1;
  return fd;
}

static void closeConn(int ep, int fd) {
  epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
  close(fd);
  if (conns[fd]) {
    free(conns[fd]->out);
    free(conns[fd]);
    conns[fd] = NULL;
  }
}

static int queueOut(struct Conn* c, const char* p, size_t n) {
  if (c->outLen + n > c->outCap) {
    size_t cap = c->outCap ? c->outCap * 2 : 4096;
    while (cap < c->outLen + n) cap *= 2;
    if (cap > (64u << 20)) return -1;  // a client that never reads: drop it
    char* q = realloc(c->out, cap);
    if (!q) return -1;
    c->out = q;
    c->outCap = cap;
  }
  memcpy(c->out + c->outLen, p, n);
  c->outLen += n;
  return 0;
}

// Counts complete request heads in buf and skips bodies announced by Content-Length.
// Header scanning is deliberately minimal: the load generators and proxies send plain
// GETs (or POSTs with Content-Length); chunked request bodies are not supported.
static int countRequests(struct Conn* c, const char* buf, size_t n) {
  static const char kCl[] = "\ncontent-length:";
  int count = 0;
  for (size_t i = 0; i < n; i++) {
    if (c->bodyLeft > 0) {
      size_t take = n - i < (size_t)c->bodyLeft ? n - i : (size_t)c->bodyLeft;
      c->bodyLeft -= take;
      i += take - 1;
      continue;
    }
    char ch = buf[i];
    // Content-Length detection: hdrState counts matched chars of kCl, then -1 while digits.
    if (c->hdrState >= 0) {
      char lc = (ch >= 'A' && ch <= 'Z') ? (char)(ch + 32) : ch;
      if (lc == kCl[c->hdrState]) {
        c->hdrState++;
        if (kCl[c->hdrState] == 0) {
          c->hdrState = -1;
          c->clScan = 0;
        }
      } else {
        c->hdrState = (lc == '\n') ? 1 : 0;
      }
    } else if (ch >= '0' && ch <= '9') {
      c->clScan = c->clScan * 10 + (ch - '0');
    } else if (ch != ' ' && ch != '\t') {
      c->hdrState = (ch == '\n') ? 1 : 0;
    }
    if (ch == "\r\n\r\n"[c->match]) {
      c->match++;
      if (c->match == 4) {
        c->match = 0;
        count++;
        c->bodyLeft = c->clScan;
        c->clScan = 0;
        c->hdrState = 0;
      }
    } else {
      c->match = (ch == '\r') ? 1 : 0;
    }
  }
  return count;
}

static int flushOut(int fd, struct Conn* c) {
  size_t off = 0;
  while (off < c->outLen) {
    ssize_t w = write(fd, c->out + off, c->outLen - off);
    if (w < 0) {
      if (errno == EAGAIN) break;
      return -1;
    }
    off += (size_t)w;
  }
  memmove(c->out, c->out + off, c->outLen - off);
  c->outLen -= off;
  return 0;
}

static int serveTcp(int port, int sink) {
  int lfd = listenOn(port, SOCK_STREAM);
  if (lfd < 0) {
    perror("listen");
    return 1;
  }
  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd};
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
  static char buf[RBUF];
  static char resp[RESP_LEN * 64];
  for (int i = 0; i < 64; i++) memcpy(resp + i * RESP_LEN, kResponse, RESP_LEN);
  struct epoll_event evs[256];
  while (!stopping) {
    int n = epoll_wait(ep, evs, 256, 500);
    for (int i = 0; i < n; i++) {
      int fd = evs[i].data.fd;
      if (fd == lfd) {
        for (;;) {
          int cfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
          if (cfd < 0) break;
          if (cfd >= MAX_FDS) {
            close(cfd);
            continue;
          }
          int one = 1;
          setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          conns[cfd] = calloc(1, sizeof(struct Conn));
          struct epoll_event cev = {.events = EPOLLIN, .data.fd = cfd};
          epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &cev);
        }
        continue;
      }
      struct Conn* c = conns[fd];
      if (!c) continue;
      if (evs[i].events & EPOLLOUT) {
        if (flushOut(fd, c) < 0) {
          closeConn(ep, fd);
          continue;
        }
        if (c->outLen == 0) {
          struct epoll_event cev = {.events = EPOLLIN, .data.fd = fd};
          epoll_ctl(ep, EPOLL_CTL_MOD, fd, &cev);
        }
      }
      if (!(evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) continue;
      ssize_t r = read(fd, buf, sizeof buf);
      if (r <= 0) {
        if (r < 0 && errno == EAGAIN) continue;
        closeConn(ep, fd);
        continue;
      }
      if (sink) continue;
      int reqs = countRequests(c, buf, (size_t)r);
      int failed = 0;
      while (reqs > 0 && !failed) {
        int k = reqs > 64 ? 64 : reqs;
        failed = queueOut(c, resp, (size_t)k * RESP_LEN) < 0;
        reqs -= k;
      }
      if (failed || flushOut(fd, c) < 0) {
        closeConn(ep, fd);
        continue;
      }
      if (c->outLen > 0) {
        struct epoll_event cev = {.events = EPOLLIN | EPOLLOUT, .data.fd = fd};
        epoll_ctl(ep, EPOLL_CTL_MOD, fd, &cev);
      }
    }
  }
  return 0;
}

static int serveUdpEcho(int port) {
  int fd = listenOn(port, SOCK_DGRAM);
  if (fd < 0) {
    perror("bind");
    return 1;
  }
  int big = 8 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
  int flags = fcntl(fd, F_GETFL);
  fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  struct timeval tv = {.tv_sec = 0, .tv_usec = 500000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  enum { kBatch = 64 };
  static char bufs[kBatch][2048];
  struct mmsghdr msgs[kBatch];
  struct iovec iov[kBatch];
  struct sockaddr_in addrs[kBatch];
  while (!stopping) {
    for (int i = 0; i < kBatch; i++) {
      iov[i].iov_base = bufs[i];
      iov[i].iov_len = sizeof bufs[i];
      memset(&msgs[i], 0, sizeof msgs[i]);
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
      msgs[i].msg_hdr.msg_name = &addrs[i];
      msgs[i].msg_hdr.msg_namelen = sizeof addrs[i];
    }
    int n = recvmmsg(fd, msgs, kBatch, MSG_WAITFORONE, NULL);
    if (n <= 0) continue;
    for (int i = 0; i < n; i++) iov[i].iov_len = msgs[i].msg_len;
    sendmmsg(fd, msgs, (unsigned)n, 0);
  }
  return 0;
}

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: backend http|sink|udpecho PORT\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  struct sigaction sa = {.sa_handler = onSignal};
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  int port = atoi(argv[2]);
  if (port <= 0 || port > 65535) {
    fprintf(stderr, "bad port\n");
    return 2;
  }
  if (!strcmp(argv[1], "http")) return serveTcp(port, 0);
  if (!strcmp(argv[1], "sink")) return serveTcp(port, 1);
  if (!strcmp(argv[1], "udpecho")) return serveUdpEcho(port);
  fprintf(stderr, "unknown mode %s\n", argv[1]);
  return 2;
}

// "Null proxy" reference: a 1:1 TCP relay with no HTTP parsing, one thread, epoll. Each
// client connection gets its own backend connection. Its cost per request is the floor
// any L7 proxy pays on this machine (two reads, two writes, the extra wake-ups).
//
//   relay LISTEN_PORT BACKEND_PORT      (127.0.0.1 on both sides)
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
#define BUF 16384

// One direction of a pair: bytes read from this fd wait in buf until the peer takes them.
struct Side {
  int fd, peer;
  char buf[BUF];
  size_t len;
};

static struct Side* sides[MAX_FDS];
static volatile sig_atomic_t stopping = 0;
static void onSignal(int sig) {
  (void)sig;
  stopping = 1;
}

static void closePair(int ep, int fd) {
  struct Side* s = sides[fd];
  if (!s) return;
  int peer = s->peer;
  epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
  close(fd);
  free(s);
  sides[fd] = NULL;
  if (peer >= 0 && sides[peer]) {
    epoll_ctl(ep, EPOLL_CTL_DEL, peer, NULL);
    close(peer);
    free(sides[peer]);
    sides[peer] = NULL;
  }
}

// Interest of fd: read unless its buffer is full; write while the peer's data waits.
static void updateInterest(int ep, int fd) {
  struct Side* s = sides[fd];
  struct Side* p = sides[s->peer];
  uint32_t ev = 0;
  if (s->len == 0) ev |= EPOLLIN;
  if (p && p->len > 0) ev |= EPOLLOUT;
  struct epoll_event e = {.events = ev, .data.fd = fd};
  epoll_ctl(ep, EPOLL_CTL_MOD, fd, &e);
}

// Moves pending bytes of side s to its peer; returns -1 when the pair must close.
static int pump(int ep, struct Side* s) {
  while (s->len > 0) {
    ssize_t w = write(s->peer, s->buf, s->len);
    if (w < 0) {
      if (errno == EAGAIN) break;
      return -1;
    }
    memmove(s->buf, s->buf + w, s->len - (size_t)w);
    s->len -= (size_t)w;
  }
  updateInterest(ep, s->fd);
  updateInterest(ep, s->peer);
  return 0;
}

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: relay LISTEN_PORT BACKEND_PORT\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  struct sigaction sa = {.sa_handler = onSignal};
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  int one = 1;
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in la = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1]))};
  la.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  struct sockaddr_in ba = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[2]))};
  ba.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(lfd, (struct sockaddr*)&la, sizeof la) < 0 || listen(lfd, 4096) < 0) {
    perror("listen");
    return 1;
  }
  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd};
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
  struct epoll_event evs[256];
  while (!stopping) {
    int n = epoll_wait(ep, evs, 256, 500);
    for (int i = 0; i < n; i++) {
      int fd = evs[i].data.fd;
      if (fd == lfd) {
        for (;;) {
          int c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
          if (c < 0) break;
          // Blocking connect to the local backend keeps the relay trivial; loopback
          // connects complete immediately.
          int b = socket(AF_INET, SOCK_STREAM, 0);
          if (c >= MAX_FDS || b < 0 || b >= MAX_FDS ||
              connect(b, (struct sockaddr*)&ba, sizeof ba) < 0) {
            close(c);
            if (b >= 0) close(b);
            continue;
          }
          fcntl(b, F_SETFL, fcntl(b, F_GETFL) | O_NONBLOCK);
          setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          setsockopt(b, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          sides[c] = calloc(1, sizeof(struct Side));
          sides[b] = calloc(1, sizeof(struct Side));
          sides[c]->fd = c;
          sides[c]->peer = b;
          sides[b]->fd = b;
          sides[b]->peer = c;
          struct epoll_event e1 = {.events = EPOLLIN, .data.fd = c};
          struct epoll_event e2 = {.events = EPOLLIN, .data.fd = b};
          epoll_ctl(ep, EPOLL_CTL_ADD, c, &e1);
          epoll_ctl(ep, EPOLL_CTL_ADD, b, &e2);
        }
        continue;
      }
      struct Side* s = sides[fd];
      if (!s) continue;
      int dead = 0;
      if (evs[i].events & EPOLLOUT) {
        // fd is writable: flush what its peer has waiting.
        struct Side* p = sides[s->peer];
        if (p && pump(ep, p) < 0) dead = 1;
      }
      if (!dead && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && s->len == 0) {
        ssize_t r = read(fd, s->buf, BUF);
        if (r == 0 || (r < 0 && errno != EAGAIN)) {
          dead = 1;
        } else if (r > 0) {
          s->len = (size_t)r;
          if (pump(ep, s) < 0) dead = 1;
        }
      }
      if (dead) closePair(ep, fd);
    }
  }
  return 0;
}

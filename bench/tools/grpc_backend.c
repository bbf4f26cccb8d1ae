// gRPC backend for the --grpc section: HTTP/2 cleartext (prior knowledge), answers every
// request with one empty gRPC message and the trailer grpc-status: 0, i.e. a successful
// unary call whatever the method. One thread, epoll, libnghttp2.
//
//   grpc_backend PORT
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_FDS 65536

struct Conn {
  int fd;
  nghttp2_session* session;
  char* out;
  size_t outLen, outCap;
};

static struct Conn* conns[MAX_FDS];
static volatile sig_atomic_t stopping = 0;
static void onSignal(int sig) {
  (void)sig;
  stopping = 1;
}

// An empty protobuf message in gRPC framing: not compressed, length 0.
static const uint8_t kMessage[5] = {0, 0, 0, 0, 0};

#define NV(n, v) \
  { (uint8_t*)(n), (uint8_t*)(v), sizeof(n) - 1, sizeof(v) - 1, NGHTTP2_NV_FLAG_NONE }

static ssize_t readMessage(nghttp2_session* session, int32_t streamId, uint8_t* buf, size_t length,
                           uint32_t* flags, nghttp2_data_source* source, void* user) {
  (void)source;
  (void)user;
  if (length < sizeof kMessage) return NGHTTP2_ERR_CALLBACK_FAILURE;
  memcpy(buf, kMessage, sizeof kMessage);
  *flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
  nghttp2_nv trailers[] = {NV("grpc-status", "0")};
  if (nghttp2_submit_trailer(session, streamId, trailers, 1) != 0)
    return NGHTTP2_ERR_CALLBACK_FAILURE;
  return sizeof kMessage;
}

static int respond(nghttp2_session* session, int32_t streamId) {
  nghttp2_nv hdrs[] = {NV(":status", "200"), NV("content-type", "application/grpc")};
  nghttp2_data_provider prd = {.read_callback = readMessage};
  return nghttp2_submit_response(session, streamId, hdrs, 2, &prd);
}

// The request is complete when a HEADERS or DATA frame carries END_STREAM.
static int onFrameRecv(nghttp2_session* session, const nghttp2_frame* frame, void* user) {
  (void)user;
  if ((frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) &&
      (frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
    return respond(session, frame->hd.stream_id) == 0 ? 0 : NGHTTP2_ERR_CALLBACK_FAILURE;
  return 0;
}

static int appendOut(struct Conn* c, const uint8_t* p, size_t n) {
  if (c->outLen + n > c->outCap) {
    size_t cap = c->outCap ? c->outCap * 2 : 16384;
    while (cap < c->outLen + n) cap *= 2;
    if (cap > (64u << 20)) return -1;
    char* q = realloc(c->out, cap);
    if (!q) return -1;
    c->out = q;
    c->outCap = cap;
  }
  memcpy(c->out + c->outLen, p, n);
  c->outLen += n;
  return 0;
}

// Serializes pending frames and writes as much as the socket takes.
static int flush(struct Conn* c) {
  for (;;) {
    const uint8_t* data;
    ssize_t n = nghttp2_session_mem_send(c->session, &data);
    if (n < 0) return -1;
    if (n == 0) break;
    if (appendOut(c, data, (size_t)n) < 0) return -1;
  }
  size_t off = 0;
  while (off < c->outLen) {
    ssize_t w = write(c->fd, c->out + off, c->outLen - off);
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

static void closeConn(int ep, struct Conn* c) {
  epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
  nghttp2_session_del(c->session);
  conns[c->fd] = NULL;
  free(c->out);
  free(c);
}

int main(int argc, char** argv) {
  if (argc != 2 || atoi(argv[1]) <= 0 || atoi(argv[1]) > 65535) {
    fprintf(stderr, "usage: grpc_backend PORT\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  struct sigaction sa = {.sa_handler = onSignal};
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1]))};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(lfd, (struct sockaddr*)&a, sizeof a) < 0 || listen(lfd, 4096) < 0) {
    perror("listen");
    return 1;
  }
  nghttp2_session_callbacks* cbs;
  nghttp2_session_callbacks_new(&cbs);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, onFrameRecv);
  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd};
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
  static uint8_t buf[65536];
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
          setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          struct Conn* c = calloc(1, sizeof *c);
          c->fd = cfd;
          nghttp2_session_server_new(&c->session, cbs, c);
          nghttp2_settings_entry s[] = {{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 1000},
                                        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20}};
          nghttp2_submit_settings(c->session, NGHTTP2_FLAG_NONE, s, 2);
          conns[cfd] = c;
          struct epoll_event cev = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.fd = cfd};
          epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &cev);
          if (flush(c) < 0) closeConn(ep, c);
        }
        continue;
      }
      struct Conn* c = conns[fd];
      if (!c) continue;
      int dead = 0;
      if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        for (;;) {
          ssize_t r = read(fd, buf, sizeof buf);
          if (r < 0 && errno == EAGAIN) break;
          if (r <= 0 || nghttp2_session_mem_recv(c->session, buf, (size_t)r) < 0) {
            dead = 1;
            break;
          }
        }
      }
      if (!dead && flush(c) < 0) dead = 1;
      if (!dead && !nghttp2_session_want_read(c->session) &&
          !nghttp2_session_want_write(c->session) && c->outLen == 0)
        dead = 1;
      if (dead) closeConn(ep, c);
    }
  }
  nghttp2_session_callbacks_del(cbs);
  return 0;
}

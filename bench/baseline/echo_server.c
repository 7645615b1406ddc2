/*
 * flux-echo-baseline: the speed-of-light reference for Flux's benchmarks.
 *
 * The fastest simple thing that speaks the Flux protocol's handshake and
 * framing (docs/protocol.md): one thread, one level-triggered epoll loop, no
 * metrics, no sessions, no timeouts, no libevent. Every throughput figure of
 * the gateway is reported as a ratio to this server, measured in the same run.
 *
 *   flux-echo-baseline [--port N] [--bind A.B.C.D]
 *   prints "listening port=<p> metrics_port=0" once bound, like the gateway
 *
 * Per connection:
 *   HANDSHAKE: first frame FLUX_HELLO / FLUX_HELLO 1 -> FLUX_READY <32 hex> 0
 *              FLUX_RESUME ... -> FLUX_INVALID session-unknown (no sessions)
 *              anything else -> FLUX_ERROR handshake-expected, close
 *   READY:     data frames are echoed; FLUX_PING [t] -> FLUX_PONG [t];
 *              FLUX_BYE -> FLUX_BYE, close; other control -> FLUX_ERROR ...
 *   CLOSING:   queued output is flushed, then shutdown(SHUT_WR); input is
 *              discarded until the peer's EOF (closing with unread input
 *              would reset the connection and could destroy the last reply).
 *
 * Input path: reads go into one shared scratch buffer, after the partial
 * frame the connection kept from its previous read. An echo is the very
 * bytes of its frame, so a run of data frames is sent straight from the
 * scratch buffer with one send(); only what the kernel refuses is copied
 * into the connection's output buffer.
 *
 *   scratch: [ carry | bytes of this read ........ ]
 *              frames: [data][data][data][PING][data][partial]
 *              send():  \______run______/  PONG  \run/  -> carry
 *
 * Back-pressure: above 4 MiB of queued output the connection is not read
 * until the queue drains below half of that. Running out of descriptors
 * does not spin the loop: a reserve descriptor is given up to accept and
 * close the connection that cannot be served.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define SCRATCH_BYTES (256u * 1024u)
#define MAX_FRAME 65536u
#define MAX_PENDING (4u * 1024u * 1024u)
#define MAX_EVENTS 512
#define ACCEPTS_PER_WAKEUP 64

enum state { HANDSHAKE, READY, CLOSING };

struct conn {
  int fd;
  enum state state;
  int reading;          /* EPOLLIN registered */
  int writing;          /* EPOLLOUT registered */
  unsigned char* carry; /* a partial input frame */
  size_t carry_len, carry_cap;
  unsigned char* out; /* bytes the kernel has not taken yet */
  size_t out_off, out_len, out_cap;
};

static int g_epoll = -1;
static int g_listen = -1;
static int g_reserve_fd = -1;
static volatile sig_atomic_t g_stop = 0;
static unsigned char g_scratch[SCRATCH_BYTES + 4 + MAX_FRAME];
static struct conn g_listener_tag; /* epoll data for the listening socket */

static void die(const char* what) {
  perror(what);
  exit(1);
}

static void* grow(void* buf, size_t* cap, size_t need) {
  if (need <= *cap) return buf;
  size_t c = *cap ? *cap : 256;
  while (c < need) c *= 2;
  void* p = realloc(buf, c);
  if (!p) die("realloc");
  *cap = c;
  return p;
}

static uint32_t get_u32_be(const unsigned char* p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static void update_interest(struct conn* c) {
  int want_read = c->state != CLOSING ? c->out_len - c->out_off < MAX_PENDING : 1;
  int want_write = c->out_off < c->out_len;
  if (c->reading == want_read && c->writing == want_write) return;
  struct epoll_event ev = {.events = (want_read ? EPOLLIN : 0u) | (want_write ? EPOLLOUT : 0u),
                           .data.ptr = c};
  if (epoll_ctl(g_epoll, EPOLL_CTL_MOD, c->fd, &ev) != 0) die("epoll_ctl MOD");
  c->reading = want_read;
  c->writing = want_write;
}

static void close_conn(struct conn* c) {
  close(c->fd); /* also leaves the epoll set */
  free(c->carry);
  free(c->out);
  free(c);
}

/* Sends bytes, queueing what the kernel refuses; -1 if the peer is gone. */
static int send_or_queue(struct conn* c, const unsigned char* data, size_t len) {
  if (c->out_off == c->out_len) {
    c->out_off = c->out_len = 0;
    while (len > 0) {
      ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL);
      if (n > 0) {
        data += n;
        len -= (size_t)n;
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else if (n < 0 && errno == EAGAIN) {
        break;
      } else {
        return -1;
      }
    }
  }
  if (len > 0) {
    c->out = grow(c->out, &c->out_cap, c->out_len + len);
    memcpy(c->out + c->out_len, data, len);
    c->out_len += len;
  }
  return 0;
}

static int send_control(struct conn* c, const char* text) {
  unsigned char frame[4 + 128];
  size_t len = strlen(text);
  frame[0] = 0;
  frame[1] = 0;
  frame[2] = (unsigned char)(len >> 8);
  frame[3] = (unsigned char)len;
  memcpy(frame + 4, text, len);
  return send_or_queue(c, frame, 4 + len);
}

/* Queues the last words and half-closes once they are flushed. */
static int start_closing(struct conn* c, const char* text) {
  c->state = CLOSING;
  if (text && send_control(c, text) != 0) return -1;
  if (c->out_off == c->out_len) shutdown(c->fd, SHUT_WR);
  return 0;
}

static int starts_with(const unsigned char* p, size_t len, const char* prefix) {
  size_t n = strlen(prefix);
  return len >= n && memcmp(p, prefix, n) == 0;
}

static int equals(const unsigned char* p, size_t len, const char* text) {
  return len == strlen(text) && memcmp(p, text, len) == 0;
}

static int handshake(struct conn* c, const unsigned char* p, size_t len) {
  if (equals(p, len, "FLUX_HELLO") || equals(p, len, "FLUX_HELLO 1")) {
    unsigned char id[16];
    char reply[64];
    if (getrandom(id, sizeof id, 0) != (ssize_t)sizeof id) die("getrandom");
    int at = snprintf(reply, sizeof reply, "FLUX_READY ");
    for (size_t i = 0; i < sizeof id; ++i)
      at += snprintf(reply + at, sizeof reply - (size_t)at, "%02x", id[i]);
    snprintf(reply + at, sizeof reply - (size_t)at, " 0");
    c->state = READY;
    return send_control(c, reply);
  }
  if (starts_with(p, len, "FLUX_HELLO ")) return start_closing(c, "FLUX_ERROR unsupported-version");
  if (starts_with(p, len, "FLUX_RESUME ")) return send_control(c, "FLUX_INVALID session-unknown");
  return start_closing(c, "FLUX_ERROR handshake-expected");
}

static int control(struct conn* c, const unsigned char* p, size_t len) {
  if (equals(p, len, "FLUX_PING") || starts_with(p, len, "FLUX_PING ")) {
    char reply[4 + 128];
    if (len - 9 > 100) return send_control(c, "FLUX_PONG");
    memcpy(reply, "FLUX_PONG", 9);
    memcpy(reply + 9, p + 9, len - 9);
    reply[len] = '\0';
    return send_control(c, reply);
  }
  if (equals(p, len, "FLUX_BYE")) return start_closing(c, "FLUX_BYE");
  if (starts_with(p, len, "FLUX_HELLO") || starts_with(p, len, "FLUX_RESUME")) {
    return send_control(c, "FLUX_ERROR already-ready");
  }
  return send_control(c, "FLUX_ERROR unknown-command");
}

/* Handles every complete frame of buf[0, len); keeps the partial tail. */
static int process(struct conn* c, const unsigned char* buf, size_t len) {
  size_t pos = 0, run = 0; /* [run, pos): data frames not yet echoed */
  while (c->state != CLOSING && len - pos >= 4) {
    uint32_t n = get_u32_be(buf + pos);
    if (n > MAX_FRAME) {
      if (pos > run && send_or_queue(c, buf + run, pos - run) != 0) return -1;
      return start_closing(c, "FLUX_ERROR frame-too-large");
    }
    if (len - pos - 4 < n) break;
    const unsigned char* payload = buf + pos + 4;
    int is_control = c->state == HANDSHAKE || starts_with(payload, n, "FLUX_");
    if (is_control) {
      if (pos > run && send_or_queue(c, buf + run, pos - run) != 0) return -1;
      if ((c->state == HANDSHAKE ? handshake(c, payload, n) : control(c, payload, n)) != 0)
        return -1;
      run = pos + 4 + n;
    }
    pos += 4 + n;
  }
  if (pos > run && c->state != CLOSING && send_or_queue(c, buf + run, pos - run) != 0) return -1;
  c->carry_len = 0;
  if (c->state != CLOSING && pos < len) {
    c->carry = grow(c->carry, &c->carry_cap, len - pos);
    memcpy(c->carry, buf + pos, len - pos);
    c->carry_len = len - pos;
  }
  return 0;
}

static void on_readable(struct conn* c) {
  for (int i = 0; i < 4; ++i) {
    size_t carried = c->carry_len;
    if (carried) memcpy(g_scratch, c->carry, carried);
    size_t room = sizeof g_scratch - carried;
    ssize_t n = recv(c->fd, g_scratch + carried, room, 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
      close_conn(c);
      return;
    }
    if (n < 0) break;
    if (c->state == CLOSING) continue; /* discard until EOF */
    if (process(c, g_scratch, carried + (size_t)n) != 0) {
      close_conn(c);
      return;
    }
    if ((size_t)n < room || c->out_len - c->out_off >= MAX_PENDING) break;
  }
  update_interest(c);
}

/* Flushes queued output; -1 if the connection was closed (and freed). */
static int on_writable(struct conn* c) {
  while (c->out_off < c->out_len) {
    ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
    if (n > 0) {
      c->out_off += (size_t)n;
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && errno == EAGAIN) {
      break;
    } else {
      close_conn(c);
      return -1;
    }
  }
  if (c->out_off == c->out_len) {
    c->out_off = c->out_len = 0;
    if (c->state == CLOSING) shutdown(c->fd, SHUT_WR);
  }
  update_interest(c);
  return 0;
}

/* EMFILE/ENFILE: give the reserve descriptor up, accept and close. */
static void shed_one(void) {
  close(g_reserve_fd);
  int fd = accept4(g_listen, NULL, NULL, SOCK_CLOEXEC);
  if (fd >= 0) close(fd);
  g_reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

static void on_accept(void) {
  for (int i = 0; i < ACCEPTS_PER_WAKEUP; ++i) {
    int fd = accept4(g_listen, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE) shed_one();
      return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct conn* c = calloc(1, sizeof *c);
    if (!c) die("calloc");
    c->fd = fd;
    c->state = HANDSHAKE;
    c->reading = 1;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if (epoll_ctl(g_epoll, EPOLL_CTL_ADD, fd, &ev) != 0) die("epoll_ctl ADD");
  }
}

static void on_signal(int sig) {
  (void)sig;
  g_stop = 1;
}

static int parse_args(int argc, char** argv, struct sockaddr_in* addr) {
  addr->sin_family = AF_INET;
  addr->sin_port = 0;
  addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  for (int i = 1; i < argc; i += 2) { /* --flag value pairs */
    const char* value = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(argv[i], "--port") == 0 && value) {
      char* end;
      long port = strtol(value, &end, 10);
      if (*end || port < 0 || port > 65535) return -1;
      addr->sin_port = htons((uint16_t)port);
    } else if (strcmp(argv[i], "--bind") == 0 && value) {
      if (inet_pton(AF_INET, value, &addr->sin_addr) != 1) return -1;
    } else {
      return -1;
    }
  }
  return 0;
}

/* Like the gateway: every descriptor the hard limit allows. */
static void raise_fd_limit(void) {
  struct rlimit limit;
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
}

static void listen_on(const struct sockaddr_in* addr) {
  g_listen = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(g_listen, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(g_listen, (const struct sockaddr*)addr, sizeof *addr) != 0) die("bind");
  if (listen(g_listen, SOMAXCONN) != 0) die("listen");
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &g_listener_tag};
  if (epoll_ctl(g_epoll, EPOLL_CTL_ADD, g_listen, &ev) != 0) die("epoll_ctl listen");
  struct sockaddr_in bound;
  socklen_t len = sizeof bound;
  getsockname(g_listen, (struct sockaddr*)&bound, &len);
  printf("listening port=%u metrics_port=0\n", ntohs(bound.sin_port));
  fflush(stdout);
}

int main(int argc, char** argv) {
  struct sockaddr_in addr;
  if (parse_args(argc, argv, &addr) != 0) {
    fprintf(stderr, "usage: flux-echo-baseline [--port N] [--bind A.B.C.D]\n");
    return 2;
  }
  struct sigaction sa = {.sa_handler = on_signal}; /* no SA_RESTART: epoll_wait returns */
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  g_epoll = epoll_create1(EPOLL_CLOEXEC);
  if (g_epoll < 0) die("epoll_create1");
  raise_fd_limit();
  g_reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  listen_on(&addr);
  struct epoll_event events[MAX_EVENTS];
  while (!g_stop) {
    int n = epoll_wait(g_epoll, events, MAX_EVENTS, -1);
    for (int i = 0; i < n; ++i) {
      struct conn* c = events[i].data.ptr;
      if (c == &g_listener_tag) {
        on_accept();
        continue;
      }
      /* Flush first: fresh echoes go straight out only behind an empty queue. */
      if ((events[i].events & EPOLLOUT) && on_writable(c) != 0) continue;
      if (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) on_readable(c); /* may free c */
    }
  }
  return 0;
}

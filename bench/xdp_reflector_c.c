/*
 * C baseline for bench/xdp_reflector.ts: the same UDP reflector on the NSM end of the veth
 * lab, written against libxdp's xsk helpers (the usual way to use AF_XDP from C), in the
 * classic l2fwd style: the received frame is edited in place and sent from the same UMEM
 * frame; completions go back to the fill ring. Built by bench/xdp_reflector_c.ts with clang
 * (Debian: libxdp-dev, libbpf-dev, clang); never committed as a binary.
 *
 * usage: xdp_reflector_c IFNAME SECONDS BATCH RING skb|native
 * Prints one JSON line with the same keys as the TypeScript reflector.
 */
#include <errno.h>
#include <linux/if_link.h>
#include <linux/if_xdp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <xdp/xsk.h>

#define FRAME_SIZE 2048

static volatile sig_atomic_t stop = 0;
static void on_stop(int sig) {
  (void)sig;
  stop = 1;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* TX entries published but not yet consumed by the kernel: only then is a kick useful (copy
 * mode leaves need_wakeup set permanently, so testing the flag alone would kick every loop). */
static int tx_pending(struct xsk_ring_prod *tx) {
  return __atomic_load_n(tx->consumer, __ATOMIC_ACQUIRE) != *tx->producer;
}

static void reflect(uint8_t *f, uint32_t len) {
  uint8_t t[6];
  memcpy(t, f, 6);
  memcpy(f, f + 6, 6);
  memcpy(f + 6, t, 6);
  if (len >= 42 && f[12] == 0x08 && f[13] == 0x00) {
    uint8_t a[4];
    memcpy(a, f + 26, 4);
    memcpy(f + 26, f + 30, 4);
    memcpy(f + 30, a, 4);
    uint8_t p0 = f[34], p1 = f[35];
    f[34] = f[36];
    f[35] = f[37];
    f[36] = p0;
    f[37] = p1;
  }
}

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: %s IFNAME SECONDS BATCH RING skb|native\n", argv[0]);
    return 2;
  }
  const char *ifname = argv[1];
  double seconds = atof(argv[2]);
  unsigned batch = (unsigned)atoi(argv[3]);
  unsigned ring = (unsigned)atoi(argv[4]);
  int native = strcmp(argv[5], "native") == 0;
  unsigned nframes = ring * 2;
  size_t size = (size_t)nframes * FRAME_SIZE;
  void *buf = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
                   -1, 0);
  if (buf == MAP_FAILED) {
    perror("mmap");
    return 1;
  }
  struct xsk_ring_prod fq, tx;
  struct xsk_ring_cons cq, rx;
  struct xsk_umem *umem;
  struct xsk_umem_config ucfg = {
      .fill_size = ring * 2,
      .comp_size = ring,
      .frame_size = FRAME_SIZE,
      .frame_headroom = 0,
      .flags = 0,
  };
  int err = xsk_umem__create(&umem, buf, size, &fq, &cq, &ucfg);
  if (err) {
    fprintf(stderr, "xsk_umem__create: %s\n", strerror(-err));
    return 1;
  }
  struct xsk_socket_config cfg = {
      .rx_size = ring,
      .tx_size = ring,
      .libxdp_flags = 0,
      .xdp_flags = native ? XDP_FLAGS_DRV_MODE : XDP_FLAGS_SKB_MODE,
      .bind_flags = XDP_COPY | XDP_USE_NEED_WAKEUP,
  };
  struct xsk_socket *xsk;
  err = xsk_socket__create(&xsk, ifname, 0, umem, &rx, &tx, &cfg);
  if (err) {
    fprintf(stderr, "xsk_socket__create: %s\n", strerror(-err));
    return 1;
  }
  int fd = xsk_socket__fd(xsk);
  /* Same as the TypeScript driver: let one copy-mode kick send up to 256 frames (default 32;
   * XDP_MAX_TX_SKB_BUDGET = 9, Linux >= 6.13; ignored when unknown). */
  unsigned budget = 256;
  setsockopt(fd, SOL_XDP, 9, &budget, sizeof budget);
  /* Half the frames go to the fill ring; a reflected frame travels RX -> TX -> completion ->
   * fill, so the other half is slack for frames in flight. */
  uint32_t idx;
  unsigned got = xsk_ring_prod__reserve(&fq, ring, &idx);
  for (unsigned i = 0; i < got; i++) *xsk_ring_prod__fill_addr(&fq, idx + i) = (uint64_t)i * FRAME_SIZE;
  xsk_ring_prod__submit(&fq, got);
  /* Spare frames for when the fill ring has room but completions lag. */
  uint64_t *spare = malloc(sizeof(uint64_t) * nframes);
  unsigned nspare = 0;
  for (unsigned i = ring; i < nframes; i++) spare[nspare++] = (uint64_t)i * FRAME_SIZE;

  unsigned long reflected = 0, idle = 0, txfull = 0;
  double busy = 0;
  int measuring = 0;
  double t0 = now_s(), start_deadline = t0 + 10, end = 0, t = t0;
  for (;;) {
    uint32_t idx_rx;
    unsigned n = xsk_ring_cons__peek(&rx, batch, &idx_rx);
    if (n > 0) {
      uint32_t idx_tx;
      unsigned r = xsk_ring_prod__reserve(&tx, n, &idx_tx);
      for (unsigned i = 0; i < n; i++) {
        const struct xdp_desc *d = xsk_ring_cons__rx_desc(&rx, idx_rx + i);
        if (i < r) {
          uint8_t *pkt = xsk_umem__get_data(buf, d->addr);
          reflect(pkt, d->len);
          struct xdp_desc *o = xsk_ring_prod__tx_desc(&tx, idx_tx + i);
          o->addr = d->addr;
          o->len = d->len;
          o->options = 0;
        } else {
          txfull++;
          spare[nspare++] = d->addr & ~((uint64_t)FRAME_SIZE - 1);
        }
      }
      xsk_ring_cons__release(&rx, n);
      if (r > 0) {
        xsk_ring_prod__submit(&tx, r);
        if (measuring) reflected += r;
      }
    }
    if (tx_pending(&tx) && xsk_ring_prod__needs_wakeup(&tx)) {
      sendto(fd, NULL, 0, MSG_DONTWAIT, NULL, 0);
    }
    /* Completions back to the fill ring, plus any spare frames. */
    uint32_t idx_cq;
    unsigned c = xsk_ring_cons__peek(&cq, ring, &idx_cq);
    for (unsigned i = 0; i < c; i++) spare[nspare++] = *xsk_ring_cons__comp_addr(&cq, idx_cq + i);
    if (c > 0) xsk_ring_cons__release(&cq, c);
    if (nspare > 0) {
      uint32_t idx_fq;
      unsigned f = xsk_ring_prod__reserve(&fq, nspare, &idx_fq);
      for (unsigned i = 0; i < f; i++) *xsk_ring_prod__fill_addr(&fq, idx_fq + i) = spare[--nspare];
      if (f > 0) xsk_ring_prod__submit(&fq, f);
    }
    double after = now_s();
    if (!measuring) {
      if (n > 0) {
        measuring = 1;
        t0 = after;
        end = t0 + seconds - 0.5;
      } else if (after > start_deadline) {
        fprintf(stderr, "no traffic within 10 s\n");
        return 1;
      } else {
        if (xsk_ring_prod__needs_wakeup(&fq)) recvfrom(fd, NULL, 0, MSG_DONTWAIT, NULL, NULL);
        struct pollfd p = {.fd = fd, .events = POLLIN};
        poll(&p, 1, 10);
      }
      t = now_s();
      continue;
    }
    if (n == 0) {
      idle++;
      if (xsk_ring_prod__needs_wakeup(&fq)) recvfrom(fd, NULL, 0, MSG_DONTWAIT, NULL, NULL);
    } else {
      busy += after - t;
    }
    t = after;
    if (after >= end) break;
  }
  double secs = t - t0;
  printf("{\"role\":\"reflect-c\",\"reflectedPps\":%.0f,\"busyNsPerFrame\":%.0f,"
         "\"capacityPpsOneCore\":%.0f,\"seconds\":%.2f,\"batch\":%u,\"ring\":%u,"
         "\"attachMode\":\"%s\",\"txRingFull\":%lu,\"idlePolls\":%lu}\n",
         reflected / secs, reflected ? busy * 1e9 / reflected : 0.0,
         busy > 0 ? reflected / busy : 0.0, secs, batch, ring, native ? "native" : "skb", txfull,
         idle);
  fflush(stdout);
  /* Keep reflecting (same loop, not measured) until the orchestrator stops us: the generator
   * wants its tail back. Bounded by 15 s. */
  signal(SIGTERM, on_stop);
  signal(SIGINT, on_stop);
  double tail = now_s() + 15.0;
  while (!stop && now_s() < tail) {
    uint32_t idx_rx;
    unsigned n = xsk_ring_cons__peek(&rx, batch, &idx_rx);
    if (n > 0) {
      uint32_t idx_tx;
      unsigned r = xsk_ring_prod__reserve(&tx, n, &idx_tx);
      for (unsigned i = 0; i < n; i++) {
        const struct xdp_desc *d = xsk_ring_cons__rx_desc(&rx, idx_rx + i);
        if (i < r) {
          reflect(xsk_umem__get_data(buf, d->addr), d->len);
          struct xdp_desc *o = xsk_ring_prod__tx_desc(&tx, idx_tx + i);
          o->addr = d->addr;
          o->len = d->len;
          o->options = 0;
        } else {
          spare[nspare++] = d->addr & ~((uint64_t)FRAME_SIZE - 1);
        }
      }
      xsk_ring_cons__release(&rx, n);
      if (r > 0) xsk_ring_prod__submit(&tx, r);
    }
    if (tx_pending(&tx) && xsk_ring_prod__needs_wakeup(&tx)) {
      sendto(fd, NULL, 0, MSG_DONTWAIT, NULL, 0);
    }
    uint32_t idx_cq;
    unsigned c = xsk_ring_cons__peek(&cq, ring, &idx_cq);
    for (unsigned i = 0; i < c; i++) spare[nspare++] = *xsk_ring_cons__comp_addr(&cq, idx_cq + i);
    if (c > 0) xsk_ring_cons__release(&cq, c);
    if (nspare > 0) {
      uint32_t idx_fq;
      unsigned f = xsk_ring_prod__reserve(&fq, nspare, &idx_fq);
      for (unsigned i = 0; i < f; i++) *xsk_ring_prod__fill_addr(&fq, idx_fq + i) = spare[--nspare];
      if (f > 0) xsk_ring_prod__submit(&fq, f);
    }
    if (n == 0) {
      if (xsk_ring_prod__needs_wakeup(&fq)) recvfrom(fd, NULL, 0, MSG_DONTWAIT, NULL, NULL);
      struct pollfd p = {.fd = fd, .events = POLLIN};
      poll(&p, 1, 1);
    }
  }
  xsk_socket__delete(xsk);
  xsk_umem__delete(umem);
  return 0;
}

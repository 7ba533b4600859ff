/*
 * Baseline for the NQE queue set (bench/e2e/micro.ts): a single-producer/single-consumer ring
 * of 64-byte elements shared by two processes (fork + MAP_SHARED), the same shape as the NK
 * device's rings: 1024 slots, head/tail indices on their own cache lines, batches of up to 64;
 * the producer writes the running count into each slot (one u32, like nk_two_process phase A),
 * the consumer checks it. Both sides spin (no sleeping).
 *
 *   gcc -O2 -o spsc_ring spsc_ring.c && ./spsc_ring [N [PRODUCER_CPU CONSUMER_CPU]]
 *
 * With the two CPU numbers each process is pinned (sched_setaffinity) to its own core, as
 * nk_two_process.ts --pin does for the NQE ring: unpinned, a loaded scheduler sometimes runs both
 * spinning sides on one core, and the run then measures time slices instead of the ring.
 *
 * Prints: "c_spsc elements=N seconds=S mops=M ok=1".
 */
#define _GNU_SOURCE
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SLOTS 1024u
#define ELEM 64u
#define BATCH 64u

struct ring {
  _Alignas(64) _Atomic uint32_t head; /* written by the producer */
  _Alignas(64) _Atomic uint32_t tail; /* written by the consumer */
  _Alignas(64) _Atomic uint64_t t_ns; /* consumer's elapsed time, for the parent */
  _Atomic uint32_t ok;
  _Alignas(64) unsigned char slot[SLOTS][ELEM];
};

static void pin(const char *cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(atoi(cpu), &set);
  if (sched_setaffinity(0, sizeof set, &set) != 0) perror("sched_setaffinity");
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int main(int argc, char **argv) {
  uint32_t n = argc > 1 ? (uint32_t)strtoul(argv[1], NULL, 10) : 20000000u;
  struct ring *r = mmap(NULL, sizeof *r, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (r == MAP_FAILED) { perror("mmap"); return 1; }
  pid_t pid = fork();
  if (pid < 0) { perror("fork"); return 1; }
  if (pid == 0) { /* consumer */
    if (argc > 3) pin(argv[3]);
    uint32_t got = 0, bad = 0, tail = 0;
    uint64_t t0 = 0;
    while (got < n) {
      uint32_t head = atomic_load_explicit(&r->head, memory_order_acquire);
      uint32_t k = head - tail;
      if (k == 0) continue;
      if (k > BATCH) k = BATCH;
      if (got == 0) t0 = now_ns();
      for (uint32_t j = 0; j < k; j++) {
        uint32_t v;
        __builtin_memcpy(&v, r->slot[(tail + j) & (SLOTS - 1)], 4);
        bad += v != got + j;
      }
      tail += k;
      got += k;
      atomic_store_explicit(&r->tail, tail, memory_order_release);
    }
    atomic_store(&r->t_ns, now_ns() - t0);
    atomic_store(&r->ok, bad == 0);
    _exit(0);
  }
  if (argc > 3) pin(argv[2]);
  uint32_t sent = 0, head = 0;
  while (sent < n) {
    uint32_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
    uint32_t room = SLOTS - (head - tail);
    if (room == 0) continue;
    uint32_t k = room < BATCH ? room : BATCH;
    if (k > n - sent) k = n - sent;
    for (uint32_t j = 0; j < k; j++) {
      uint32_t v = sent + j;
      __builtin_memcpy(r->slot[(head + j) & (SLOTS - 1)], &v, 4);
    }
    head += k;
    sent += k;
    atomic_store_explicit(&r->head, head, memory_order_release);
  }
  int st;
  waitpid(pid, &st, 0);
  double s = (double)atomic_load(&r->t_ns) / 1e9;
  printf("c_spsc elements=%u seconds=%.3f mops=%.2f ok=%u\n", n, s, n / s / 1e6, atomic_load(&r->ok));
  return 0;
}

/* A deliberately tiny AIMD in C (one MSS per window, halve on loss/ECN, one MSS after RTO) to
 * show the CC ABI is language-neutral. No libc, no imports. */
#include "cc_abi.h"

static struct cc_event ev;
static struct cc_output out;
static const char name[] = "aimd-c";

struct flow {
  double cwnd, ssthresh, mss, acked;
};

CC_EXPORT(cc_abi_version) int cc_abi_version(void) { return CC_ABI_VERSION; }
CC_EXPORT(cc_name) int cc_name(void) { return (int)name; }
CC_EXPORT(cc_version) int cc_version(void) { return 1; }
CC_EXPORT(cc_state_size) int cc_state_size(void) { return sizeof(struct flow); }
CC_EXPORT(cc_flags) int cc_flags(void) { return CC_WANTS_ECN; }
CC_EXPORT(cc_event_ptr) int cc_event_ptr(void) { return (int)&ev; }
CC_EXPORT(cc_output_ptr) int cc_output_ptr(void) { return (int)&out; }
CC_EXPORT(cc_slot_base) int cc_slot_base(void) { return ((int)&__heap_base + 15) & ~15; }

static void emit(struct flow *f) {
  out.cwnd = f->cwnd;
  out.ssthresh = f->ssthresh;
  out.pacing_rate = 0;
}

CC_EXPORT(cc_init) void cc_init(struct flow *f) {
  f->mss = ev.mss;
  f->cwnd = 10 * ev.mss;
  f->ssthresh = __builtin_inf();
  f->acked = 0;
  emit(f);
}

CC_EXPORT(cc_init_from_state) void cc_init_from_state(struct flow *f) {
  f->mss = ev.mss;
  f->cwnd = ev.cwnd > ev.mss ? ev.cwnd : ev.mss;
  f->ssthresh = ev.ssthresh;
  f->acked = 0;
  emit(f);
}

CC_EXPORT(cc_set_mss) void cc_set_mss(struct flow *f) {
  f->mss = ev.mss;
  if (f->cwnd < 2 * f->mss) f->cwnd = 2 * f->mss;
  emit(f);
}

CC_EXPORT(cc_on_ack) void cc_on_ack(struct flow *f) {
  /* Grow only a window the sender used (CC_F_CWND_LIMITED; not receiver/app-limited). */
  if (!(ev.flags & CC_F_IN_RECOVERY) && (ev.flags & CC_F_CWND_LIMITED) && ev.acked_bytes > 0) {
    if (f->cwnd < f->ssthresh) {
      f->cwnd += ev.acked_bytes < f->mss ? ev.acked_bytes : f->mss;
    } else {
      f->acked += ev.acked_bytes;
      if (f->acked >= f->cwnd) {
        f->acked -= f->cwnd;
        f->cwnd += f->mss;
      }
    }
  }
  emit(f);
}

CC_EXPORT(cc_on_congestion) void cc_on_congestion(struct flow *f) {
  double half = f->cwnd / 2;
  f->ssthresh = half > 2 * f->mss ? half : 2 * f->mss;
  f->acked = 0;
  f->cwnd = ev.arg == CC_CONG_RTO ? f->mss : f->ssthresh;
  emit(f);
}

CC_EXPORT(cc_on_recovery_exit) void cc_on_recovery_exit(struct flow *f) { emit(f); }
CC_EXPORT(cc_on_undo) void cc_on_undo(struct flow *f) { emit(f); }
CC_EXPORT(cc_on_idle_restart) void cc_on_idle_restart(struct flow *f) {
  if (f->cwnd > 10 * f->mss) f->cwnd = 10 * f->mss;
  emit(f);
}
CC_EXPORT(cc_on_state_change) void cc_on_state_change(struct flow *f) { emit(f); }

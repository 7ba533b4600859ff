/* C mirror of the congestion-control module ABI v1 (normative text: cc/README.md).
 * Build: clang --target=wasm32 -O2 -nostdlib -Wl,--no-entry -Wl,--export-dynamic
 *        -Wl,--max-memory=131072 -o x.wasm x.c                                        */
#ifndef CC_ABI_H
#define CC_ABI_H

#define CC_ABI_VERSION 1
#define CC_EXPORT(name) __attribute__((export_name(#name))) 

/* Event record written by the host before each call (176 bytes, 8-aligned). */
struct cc_event {
  double now_us, mss, acked_bytes, acked_packets, delivered, delivered_ce, interval_us, rtt_us,
      min_rtt_us, srtt_us, in_flight, prior_in_flight, losses, total_delivered, prior_delivered,
      cwnd, ssthresh, pacing_rate, reserved0, reserved1;
  int kind, flags, arg, reserved2;
};

/* Output area read by the host after each call. */
struct cc_output {
  double cwnd, ssthresh, pacing_rate;
};

/* CC_F_CWND_LIMITED: ABI v1 addition, the sender was cwnd-limited; grow only when set. */
enum {
  CC_F_APP_LIMITED = 1,
  CC_F_ECE = 2,
  CC_F_IN_RECOVERY = 4,
  CC_F_ECN_OK = 8,
  CC_F_CWND_LIMITED = 16
};
enum { CC_CONG_LOSS = 1, CC_CONG_RTO = 2, CC_CONG_ECN = 3 };
enum { CC_WANTS_ECN = 1, CC_WANTS_ACCURATE_ECE = 2 };

extern unsigned char __heap_base;
#endif

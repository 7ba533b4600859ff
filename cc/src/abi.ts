// AssemblyScript side of the CC ABI v1 (see cc/README.md). Shared by every AS module.
// The host writes the event record at EV and reads cwnd/ssthresh/pacing rate from OUT after
// each call. Per-flow state lives in a host-chosen slot at or above cc_slot_base().

export const ABI_VERSION: i32 = 1;

/** Event record: 20 f64 fields then 4 i32 fields (176 bytes). */
export const EV: usize = memory.data(176, 16);
/** Output area: cwnd, ssthresh, pacing rate (f64 each). */
export const OUT: usize = memory.data(32, 16);

// f64 field byte offsets inside the event record.
export const E_NOW_US: usize = 0;
export const E_MSS: usize = 8;
export const E_ACKED_BYTES: usize = 16;
export const E_ACKED_PACKETS: usize = 24;
export const E_DELIVERED: usize = 32;
export const E_DELIVERED_CE: usize = 40;
export const E_INTERVAL_US: usize = 48;
export const E_RTT_US: usize = 56;
export const E_MIN_RTT_US: usize = 64;
export const E_SRTT_US: usize = 72;
export const E_IN_FLIGHT: usize = 80;
export const E_PRIOR_IN_FLIGHT: usize = 88;
export const E_LOSSES: usize = 96;
export const E_TOTAL_DELIVERED: usize = 104;
export const E_PRIOR_DELIVERED: usize = 112;
export const E_CWND: usize = 120;
export const E_SSTHRESH: usize = 128;
export const E_PACING_RATE: usize = 136;
// i32 fields.
export const E_KIND: usize = 160;
export const E_FLAGS: usize = 164;
export const E_ARG: usize = 168;

export const F_APP_LIMITED: i32 = 1;
export const F_ECE: i32 = 2;
export const F_IN_RECOVERY: i32 = 4;
export const F_ECN_OK: i32 = 8;
// ABI v1 addition: the sender was cwnd-limited (AckSample.isCwndLimited); grow only when set.
export const F_CWND_LIMITED: i32 = 16;

export const CONG_LOSS: i32 = 1;
export const CONG_RTO: i32 = 2;
export const CONG_ECN: i32 = 3;

export const ST_OPEN: i32 = 0;
export const ST_DISORDER: i32 = 1;
export const ST_RECOVERY: i32 = 2;
export const ST_LOSS: i32 = 3;

export const WANTS_ECN: i32 = 1;
export const WANTS_ACCURATE_ECE: i32 = 2;

@inline export function ev(off: usize): f64 {
  return load<f64>(EV + off);
}
@inline export function evI(off: usize): i32 {
  return load<i32>(EV + off);
}
@inline export function hasFlag(f: i32): bool {
  return (load<i32>(EV + E_FLAGS) & f) != 0;
}
@inline export function out(cwnd: f64, ssthresh: f64, pacing: f64): void {
  store<f64>(OUT, cwnd);
  store<f64>(OUT + 8, ssthresh);
  store<f64>(OUT + 16, pacing);
}
@inline export function sf(slot: usize, off: usize): f64 {
  return load<f64>(slot + off);
}
@inline export function setSf(slot: usize, off: usize, v: f64): void {
  store<f64>(slot + off, v);
}

/** RFC 6928 initial window in bytes. */
@inline export function initialWindow(mss: f64): f64 {
  return min(10 * mss, max(2 * mss, 14600));
}

export function cc_abi_version(): i32 {
  return ABI_VERSION;
}
export function cc_event_ptr(): usize {
  return EV;
}
export function cc_output_ptr(): usize {
  return OUT;
}
export function cc_slot_base(): usize {
  return (__heap_base + 15) & ~(<usize>15);
}

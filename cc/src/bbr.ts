// BBR v1 as a CC ABI v1 module, after the design of Linux tcp_bbr.c (BBR v1):
// STARTUP (gain 2/ln2 = 2.885) -> DRAIN (1/2.885) -> PROBE_BW (8-phase pacing gain cycle
// 5/4, 3/4, 1 x6, entered at a random phase other than 3/4) with PROBE_RTT (cwnd 4 packets for
// 200 ms and one round) whenever the 10 s min-RTT filter expires. Bandwidth: windowed max over 10
// round trips (Nichols' 3-sample running max); pacing at 99% of gain * bw; cwnd target =
// cwnd_gain * BDP + ACK-aggregation allowance (max over two 5-round windows of the data ACKed
// beyond bw * epoch, capped at cwnd and at 100 ms of bw, once the pipe is full) + quantization
// allowance (3 send quanta, rounded up to even, +2 in the 5/4 phase); cwnd >= 4; losses shrink
// cwnd; packet conservation during the first round of recovery and cwnd restored at recovery
// exit.
// Left out (documented in cc/README.md): long-term bandwidth (policer) sampling and the EDT
// in-flight adjustment. BBR v1 ignores ECN.
// Units: cwnd in packets, bw in packets per microsecond, times in microseconds.
import {
  CONG_ECN, E_ACKED_PACKETS, E_ARG, E_CWND, E_DELIVERED, E_IN_FLIGHT, E_INTERVAL_US, E_LOSSES,
  E_MIN_RTT_US, E_MSS, E_NOW_US, E_PACING_RATE, E_PRIOR_DELIVERED, E_PRIOR_IN_FLIGHT, E_RTT_US,
  E_SRTT_US, E_SSTHRESH, E_TOTAL_DELIVERED, ev, evI, F_APP_LIMITED, hasFlag, out, setSf, sf,
  CONG_RTO, ST_LOSS, ST_OPEN, ST_RECOVERY,
} from "./abi";
export { cc_abi_version, cc_event_ptr, cc_output_ptr, cc_slot_base } from "./abi";

const NAME = memory.data<u8>([0x62, 0x62, 0x72, 0]); // "bbr"

const STARTUP: f64 = 0;
const DRAIN: f64 = 1;
const PROBE_BW: f64 = 2;
const PROBE_RTT: f64 = 3;

const HIGH_GAIN: f64 = 2885.0 / 1000.0;
const DRAIN_GAIN: f64 = 1000.0 / 2885.0;
const CWND_GAIN: f64 = 2;
const CYCLE_LEN: i32 = 8;
const BW_WIN_ROUNDS: f64 = 10;
const MIN_RTT_WIN_US: f64 = 10e6;
const PROBE_RTT_US: f64 = 200e3;
const CWND_MIN: f64 = 4;
const INIT_CWND: f64 = 10;
const FULL_BW_THRESH: f64 = 1.25;
const FULL_BW_CNT: f64 = 3;
const PACING_MARGIN: f64 = 0.99;
const MIN_TSO_RATE: f64 = 1200000.0 / 8; // bytes/s below which the send quantum is 1 segment

// Slot words (byte offsets). Tests read them through WasmCc.stateView().
const CWND: usize = 0;
const SSTHRESH: usize = 8;
const MSS: usize = 16;
const PACING: usize = 24; // bytes/s
const MODE: usize = 32;
const RTT_CNT: usize = 40;
const NEXT_RTT_DELIVERED: usize = 48;
const ROUND_START: usize = 56;
const PACKET_CONSERVATION: usize = 64;
const PREV_CA_STATE: usize = 72;
const CA_STATE: usize = 80;
const PRIOR_CWND: usize = 88;
const MIN_RTT: usize = 96; // us, Infinity = none
const MIN_RTT_STAMP: usize = 104;
const PROBE_RTT_DONE: usize = 112; // -1 = unset
const PROBE_RTT_ROUND_DONE: usize = 120;
const IDLE_RESTART: usize = 128;
const FULL_BW: usize = 136;
const FULL_BW_COUNT: usize = 144;
const FULL_BW_REACHED: usize = 152;
const CYCLE_IDX: usize = 160;
const CYCLE_STAMP: usize = 168;
const PACING_GAIN: usize = 176;
const CWND_GAIN_W: usize = 184;
const HAS_SEEN_RTT: usize = 192;
const RNG: usize = 200;
const BW_T0: usize = 208; // max filter: (round, bw) x 3
const BW_V0: usize = 216;
const BW_T1: usize = 224;
const BW_V1: usize = 232;
const BW_T2: usize = 240;
const BW_V2: usize = 248;
const EXTRA_ACKED0: usize = 256; // packets, two windows
const EXTRA_ACKED1: usize = 264;
const EXTRA_IDX: usize = 272;
const EXTRA_WIN_RTTS: usize = 280;
const ACK_EPOCH_STAMP: usize = 288; // us
const ACK_EPOCH_ACKED: usize = 296; // packets
const STATE_SIZE: i32 = 304;

const EXTRA_ACKED_WIN_RTTS: f64 = 5;
const EXTRA_ACKED_MAX_US: f64 = 100e3;
const ACK_EPOCH_RESET: f64 = 1048576;

export function cc_name(): usize {
  return NAME;
}
export function cc_version(): i32 {
  return 1;
}
export function cc_state_size(): i32 {
  return STATE_SIZE;
}
export function cc_flags(): i32 {
  return 0;
}

function emit(s: usize): void {
  const mss = sf(s, MSS);
  out(sf(s, CWND) * mss, sf(s, SSTHRESH) * mss, sf(s, PACING));
}

// --- windowed max filter (3 samples: best, 2nd best, 3rd best in later sub-windows) ---

function bwReset(s: usize, t: f64, v: f64): void {
  setSf(s, BW_T0, t);
  setSf(s, BW_V0, v);
  setSf(s, BW_T1, t);
  setSf(s, BW_V1, v);
  setSf(s, BW_T2, t);
  setSf(s, BW_V2, v);
}

function bwUpdate(s: usize, t: f64, v: f64): void {
  const win = BW_WIN_ROUNDS;
  if (v >= sf(s, BW_V0) || t - sf(s, BW_T2) > win) {
    bwReset(s, t, v);
    return;
  }
  if (v >= sf(s, BW_V1)) {
    setSf(s, BW_T1, t);
    setSf(s, BW_V1, v);
    setSf(s, BW_T2, t);
    setSf(s, BW_V2, v);
  } else if (v >= sf(s, BW_V2)) {
    setSf(s, BW_T2, t);
    setSf(s, BW_V2, v);
  }
  // Age the samples: the best one expires after `win`, promoting the later ones.
  const dt = t - sf(s, BW_T0);
  if (dt > win) {
    shiftBw(s, t, v);
    if (t - sf(s, BW_T0) > win) shiftBw(s, t, v);
  } else if (sf(s, BW_T1) == sf(s, BW_T0) && dt > win / 4) {
    setSf(s, BW_T1, t);
    setSf(s, BW_V1, v);
    setSf(s, BW_T2, t);
    setSf(s, BW_V2, v);
  } else if (sf(s, BW_T2) == sf(s, BW_T1) && dt > win / 2) {
    setSf(s, BW_T2, t);
    setSf(s, BW_V2, v);
  }
}

function shiftBw(s: usize, t: f64, v: f64): void {
  setSf(s, BW_T0, sf(s, BW_T1));
  setSf(s, BW_V0, sf(s, BW_V1));
  setSf(s, BW_T1, sf(s, BW_T2));
  setSf(s, BW_V1, sf(s, BW_V2));
  setSf(s, BW_T2, t);
  setSf(s, BW_V2, v);
}

@inline function maxBw(s: usize): f64 {
  return sf(s, BW_V0);
}

// --- model helpers ---

function rand7(s: usize): f64 {
  let x = <u32>sf(s, RNG);
  if (x == 0) x = 0x9e3779b9;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  setSf(s, RNG, <f64>x);
  return <f64>(x % 7);
}

function pacingRateFor(s: usize, bw: f64, gain: f64): f64 {
  return bw * sf(s, MSS) * 1e6 * gain * PACING_MARGIN;
}

function tsoSegsGoal(s: usize): f64 {
  const rate = sf(s, PACING);
  const mss = sf(s, MSS);
  const minSegs: f64 = rate < MIN_TSO_RATE ? 1 : 2;
  const bytes = min(rate / 1024, 65536.0 - 1 - 320);
  return min(max(floor(bytes / mss), minSegs), 127);
}

function quantizationBudget(s: usize, cwnd: f64): f64 {
  cwnd += 3 * tsoSegsGoal(s);
  cwnd = floor((cwnd + 1) / 2) * 2;
  if (sf(s, MODE) == PROBE_BW && sf(s, CYCLE_IDX) == 0) cwnd += 2;
  return cwnd;
}

function bdp(s: usize, bw: f64, gain: f64): f64 {
  const minRtt = sf(s, MIN_RTT);
  if (minRtt == Infinity) return INIT_CWND;
  return ceil(bw * minRtt * gain - 1e-9);
}

function inflight(s: usize, bw: f64, gain: f64): f64 {
  return quantizationBudget(s, bdp(s, bw, gain));
}

function initPacingFromRtt(s: usize): void {
  const srtt = ev(E_SRTT_US);
  let rtt: f64 = 1000;
  if (srtt > 0) {
    rtt = srtt;
    setSf(s, HAS_SEEN_RTT, 1);
  }
  setSf(s, PACING, pacingRateFor(s, sf(s, CWND) / rtt, HIGH_GAIN));
}

function setPacingRate(s: usize, bw: f64, gain: f64): void {
  const rate = pacingRateFor(s, bw, gain);
  if (sf(s, HAS_SEEN_RTT) == 0 && ev(E_SRTT_US) > 0) initPacingFromRtt(s);
  if (sf(s, FULL_BW_REACHED) != 0 || rate > sf(s, PACING)) setSf(s, PACING, rate);
}

function saveCwnd(s: usize): void {
  const cwnd = sf(s, CWND);
  if (sf(s, PREV_CA_STATE) < <f64>ST_RECOVERY && sf(s, MODE) != PROBE_RTT) {
    setSf(s, PRIOR_CWND, cwnd);
  } else {
    setSf(s, PRIOR_CWND, max(sf(s, PRIOR_CWND), cwnd));
  }
}

function advanceCyclePhase(s: usize): void {
  setSf(s, CYCLE_IDX, <f64>((<i32>sf(s, CYCLE_IDX) + 1) % CYCLE_LEN));
  setSf(s, CYCLE_STAMP, ev(E_NOW_US));
}

function resetProbeBw(s: usize): void {
  setSf(s, MODE, PROBE_BW);
  setSf(s, CYCLE_IDX, <f64>(CYCLE_LEN - 1) - rand7(s));
  advanceCyclePhase(s);
}

function resetMode(s: usize): void {
  if (sf(s, FULL_BW_REACHED) == 0) setSf(s, MODE, STARTUP);
  else resetProbeBw(s);
}

function cycleGain(idx: i32): f64 {
  if (idx == 0) return 1.25;
  if (idx == 1) return 0.75;
  return 1;
}

function isNextCyclePhase(s: usize): bool {
  const now = ev(E_NOW_US);
  const fullLength = now - sf(s, CYCLE_STAMP) > sf(s, MIN_RTT);
  const gain = sf(s, PACING_GAIN);
  if (gain == 1) return fullLength;
  const infl = ev(E_PRIOR_IN_FLIGHT) / sf(s, MSS);
  if (gain > 1) {
    return fullLength && (ev(E_LOSSES) > 0 || infl >= inflight(s, maxBw(s), gain));
  }
  return fullLength || infl <= inflight(s, maxBw(s), 1);
}

function checkProbeRttDone(s: usize): void {
  const done = sf(s, PROBE_RTT_DONE);
  if (!(done >= 0 && ev(E_NOW_US) > done)) return;
  setSf(s, MIN_RTT_STAMP, ev(E_NOW_US));
  setSf(s, CWND, max(sf(s, CWND), sf(s, PRIOR_CWND)));
  resetMode(s);
}

function updateGains(s: usize): void {
  const mode = sf(s, MODE);
  if (mode == STARTUP) {
    setSf(s, PACING_GAIN, HIGH_GAIN);
    setSf(s, CWND_GAIN_W, HIGH_GAIN);
  } else if (mode == DRAIN) {
    setSf(s, PACING_GAIN, DRAIN_GAIN);
    setSf(s, CWND_GAIN_W, HIGH_GAIN);
  } else if (mode == PROBE_BW) {
    setSf(s, PACING_GAIN, cycleGain(<i32>sf(s, CYCLE_IDX)));
    setSf(s, CWND_GAIN_W, CWND_GAIN);
  } else {
    setSf(s, PACING_GAIN, 1);
    setSf(s, CWND_GAIN_W, 1);
  }
}

// --- events ---

function initCommon(s: usize): void {
  setSf(s, MSS, ev(E_MSS));
  setSf(s, SSTHRESH, Infinity);
  setSf(s, PRIOR_CWND, 0);
  setSf(s, RTT_CNT, 0);
  setSf(s, NEXT_RTT_DELIVERED, ev(E_TOTAL_DELIVERED));
  setSf(s, PREV_CA_STATE, <f64>ST_OPEN);
  setSf(s, CA_STATE, <f64>ST_OPEN);
  setSf(s, PACKET_CONSERVATION, 0);
  setSf(s, PROBE_RTT_DONE, -1);
  setSf(s, PROBE_RTT_ROUND_DONE, 0);
  setSf(s, MIN_RTT, Infinity);
  setSf(s, MIN_RTT_STAMP, ev(E_NOW_US));
  bwReset(s, 0, 0);
  setSf(s, HAS_SEEN_RTT, 0);
  setSf(s, ROUND_START, 0);
  setSf(s, IDLE_RESTART, 0);
  setSf(s, FULL_BW_REACHED, 0);
  setSf(s, FULL_BW, 0);
  setSf(s, FULL_BW_COUNT, 0);
  setSf(s, CYCLE_STAMP, 0);
  setSf(s, CYCLE_IDX, 0);
  setSf(s, RNG, <f64>((<u32>s * 2654435761) ^ <u32>ev(E_NOW_US)));
  setSf(s, MODE, STARTUP);
  setSf(s, EXTRA_ACKED0, 0);
  setSf(s, EXTRA_ACKED1, 0);
  setSf(s, EXTRA_IDX, 0);
  setSf(s, EXTRA_WIN_RTTS, 0);
  setSf(s, ACK_EPOCH_STAMP, ev(E_NOW_US));
  setSf(s, ACK_EPOCH_ACKED, 0);
  updateGains(s);
}

/** Tracks how much more was ACKed than the bandwidth model explains (ACK aggregation). */
function updateAckAggregation(s: usize, bw: f64): void {
  const acked = ev(E_ACKED_PACKETS);
  if (acked <= 0 || ev(E_DELIVERED) <= 0 || ev(E_INTERVAL_US) <= 0) return;
  if (sf(s, ROUND_START) != 0) {
    const w = min(31, sf(s, EXTRA_WIN_RTTS) + 1);
    if (w >= EXTRA_ACKED_WIN_RTTS) {
      setSf(s, EXTRA_WIN_RTTS, 0);
      const idx = sf(s, EXTRA_IDX) == 0 ? 1 : 0;
      setSf(s, EXTRA_IDX, idx);
      setSf(s, idx == 0 ? EXTRA_ACKED0 : EXTRA_ACKED1, 0);
    } else {
      setSf(s, EXTRA_WIN_RTTS, w);
    }
  }
  const now = ev(E_NOW_US);
  let expected = bw * (now - sf(s, ACK_EPOCH_STAMP));
  let epochAcked = sf(s, ACK_EPOCH_ACKED);
  if (epochAcked <= expected || epochAcked + acked >= ACK_EPOCH_RESET) {
    epochAcked = 0;
    setSf(s, ACK_EPOCH_STAMP, now);
    expected = 0;
  }
  epochAcked = min(ACK_EPOCH_RESET - 1, epochAcked + acked);
  setSf(s, ACK_EPOCH_ACKED, epochAcked);
  const extra = min(epochAcked - expected, sf(s, CWND));
  const slot = sf(s, EXTRA_IDX) == 0 ? EXTRA_ACKED0 : EXTRA_ACKED1;
  if (extra > sf(s, slot)) setSf(s, slot, extra);
}

function ackAggregationCwnd(s: usize, bw: f64): f64 {
  if (sf(s, FULL_BW_REACHED) == 0) return 0;
  const aggr = max(sf(s, EXTRA_ACKED0), sf(s, EXTRA_ACKED1));
  return floor(min(aggr, bw * EXTRA_ACKED_MAX_US));
}

export function cc_init(s: usize): void {
  initCommon(s);
  setSf(s, CWND, INIT_CWND);
  initPacingFromRtt(s);
  emit(s);
}

export function cc_init_from_state(s: usize): void {
  initCommon(s);
  const mss = sf(s, MSS);
  const cwnd = max(1, floor(ev(E_CWND) / mss));
  setSf(s, CWND, cwnd);
  const ssb = ev(E_SSTHRESH);
  setSf(s, SSTHRESH, ssb == Infinity ? Infinity : max(2, floor(ssb / mss)));
  const minRtt = ev(E_MIN_RTT_US);
  if (minRtt > 0) setSf(s, MIN_RTT, minRtt);
  const srtt = ev(E_SRTT_US);
  // Seed the bandwidth model from what the flow achieves now so the first ACKs neither stall
  // (bw 0) nor burst (startup gain on a full pipe).
  let bw: f64 = 0;
  const rate = ev(E_PACING_RATE);
  if (rate > 0) bw = rate / (mss * 1e6);
  else if (srtt > 0) bw = cwnd / srtt;
  if (bw > 0) bwReset(s, 0, bw);
  if (srtt > 0) setSf(s, HAS_SEEN_RTT, 1);
  if (ssb != Infinity && bw > 0) {
    setSf(s, FULL_BW_REACHED, 1);
    setSf(s, FULL_BW, bw);
    resetProbeBw(s);
  }
  updateGains(s);
  if (bw > 0) setSf(s, PACING, pacingRateFor(s, bw, sf(s, PACING_GAIN)));
  else initPacingFromRtt(s);
  emit(s);
}

export function cc_set_mss(s: usize): void {
  setSf(s, MSS, ev(E_MSS));
  emit(s);
}

export function cc_on_ack(s: usize): void {
  const mss = sf(s, MSS);
  const now = ev(E_NOW_US);
  const total = ev(E_TOTAL_DELIVERED);
  const appLimited = hasFlag(F_APP_LIMITED);
  const delivered = ev(E_DELIVERED);
  const interval = ev(E_INTERVAL_US);

  // Bandwidth sample and round counting (only valid samples).
  setSf(s, ROUND_START, 0);
  if (delivered > 0 && interval > 0) {
    if (ev(E_PRIOR_DELIVERED) >= sf(s, NEXT_RTT_DELIVERED)) {
      setSf(s, NEXT_RTT_DELIVERED, total);
      setSf(s, RTT_CNT, sf(s, RTT_CNT) + 1);
      setSf(s, ROUND_START, 1);
      setSf(s, PACKET_CONSERVATION, 0);
    }
    const bw = delivered / mss / interval;
    if (!appLimited || bw >= maxBw(s)) bwUpdate(s, sf(s, RTT_CNT), bw);
  }
  updateAckAggregation(s, maxBw(s));

  // Gain cycle.
  if (sf(s, MODE) == PROBE_BW && isNextCyclePhase(s)) advanceCyclePhase(s);

  // Full pipe: three rounds without 25% growth.
  if (sf(s, FULL_BW_REACHED) == 0 && sf(s, ROUND_START) != 0 && !appLimited) {
    if (maxBw(s) >= sf(s, FULL_BW) * FULL_BW_THRESH) {
      setSf(s, FULL_BW, maxBw(s));
      setSf(s, FULL_BW_COUNT, 0);
    } else {
      const c = sf(s, FULL_BW_COUNT) + 1;
      setSf(s, FULL_BW_COUNT, c);
      if (c >= FULL_BW_CNT) setSf(s, FULL_BW_REACHED, 1);
    }
  }

  // Drain.
  const inFlightPkts = ev(E_IN_FLIGHT) / mss;
  if (sf(s, MODE) == STARTUP && sf(s, FULL_BW_REACHED) != 0) {
    setSf(s, MODE, DRAIN);
    setSf(s, SSTHRESH, inflight(s, maxBw(s), 1));
  }
  if (sf(s, MODE) == DRAIN && inFlightPkts <= inflight(s, maxBw(s), 1)) resetProbeBw(s);

  // Min RTT filter and PROBE_RTT.
  const rtt = ev(E_RTT_US);
  const expired = now > sf(s, MIN_RTT_STAMP) + MIN_RTT_WIN_US;
  if (rtt >= 0 && (rtt < sf(s, MIN_RTT) || expired)) {
    setSf(s, MIN_RTT, rtt);
    setSf(s, MIN_RTT_STAMP, now);
  }
  if (expired && sf(s, IDLE_RESTART) == 0 && sf(s, MODE) != PROBE_RTT) {
    setSf(s, MODE, PROBE_RTT);
    saveCwnd(s);
    setSf(s, PROBE_RTT_DONE, -1);
  }
  if (sf(s, MODE) == PROBE_RTT) {
    if (sf(s, PROBE_RTT_DONE) < 0 && inFlightPkts <= CWND_MIN) {
      setSf(s, PROBE_RTT_DONE, now + PROBE_RTT_US);
      setSf(s, PROBE_RTT_ROUND_DONE, 0);
      setSf(s, NEXT_RTT_DELIVERED, total);
    } else if (sf(s, PROBE_RTT_DONE) >= 0) {
      if (sf(s, ROUND_START) != 0) setSf(s, PROBE_RTT_ROUND_DONE, 1);
      if (sf(s, PROBE_RTT_ROUND_DONE) != 0) checkProbeRttDone(s);
    }
  }
  if (delivered > 0) setSf(s, IDLE_RESTART, 0);

  updateGains(s);
  const bw = maxBw(s);
  setPacingRate(s, bw, sf(s, PACING_GAIN));
  setCwnd(s, bw);
  emit(s);
}

function setCwnd(s: usize, bw: f64): void {
  const mss = sf(s, MSS);
  const acked = ev(E_ACKED_PACKETS);
  let cwnd = sf(s, CWND);
  if (acked > 0) {
    // Losses shrink the window; recovery starts with packet conservation and ends restoring.
    if (ev(E_LOSSES) > 0) cwnd = max(cwnd - ceil(ev(E_LOSSES) / mss), 1);
    const state = sf(s, CA_STATE);
    const prev = sf(s, PREV_CA_STATE);
    const inFlightPkts = ev(E_IN_FLIGHT) / mss;
    let conserving = false;
    if (state == <f64>ST_RECOVERY && prev != <f64>ST_RECOVERY) {
      setSf(s, PACKET_CONSERVATION, 1);
      setSf(s, NEXT_RTT_DELIVERED, ev(E_TOTAL_DELIVERED));
      cwnd = ceil(inFlightPkts) + acked;
    } else if (prev >= <f64>ST_RECOVERY && state < <f64>ST_RECOVERY) {
      cwnd = max(cwnd, sf(s, PRIOR_CWND));
      setSf(s, PACKET_CONSERVATION, 0);
    }
    setSf(s, PREV_CA_STATE, state);
    if (sf(s, PACKET_CONSERVATION) != 0) {
      cwnd = max(cwnd, ceil(inFlightPkts) + acked);
      conserving = true;
    }
    if (!conserving) {
      const target = quantizationBudget(
        s,
        bdp(s, bw, sf(s, CWND_GAIN_W)) + ackAggregationCwnd(s, bw),
      );
      if (sf(s, FULL_BW_REACHED) != 0) cwnd = min(cwnd + acked, target);
      else if (cwnd < target || ev(E_TOTAL_DELIVERED) < INIT_CWND * mss) cwnd += acked;
      cwnd = max(cwnd, CWND_MIN);
    }
  }
  if (sf(s, MODE) == PROBE_RTT) cwnd = min(cwnd, CWND_MIN);
  setSf(s, CWND, cwnd);
}

export function cc_on_congestion(s: usize): void {
  // BBR keeps ssthresh; it remembers cwnd for the restore at recovery exit.
  saveCwnd(s);
  const kind = evI(E_ARG);
  if (kind == CONG_RTO) setSf(s, CWND, 1);
  else if (kind == CONG_ECN) {
    // BBR v1 does not react to ECN.
  }
  emit(s);
}

export function cc_on_recovery_exit(s: usize): void {
  emit(s);
}

export function cc_on_undo(s: usize): void {
  setSf(s, FULL_BW, 0);
  setSf(s, FULL_BW_COUNT, 0);
  emit(s);
}

export function cc_on_idle_restart(s: usize): void {
  setSf(s, IDLE_RESTART, 1);
  setSf(s, ACK_EPOCH_STAMP, ev(E_NOW_US));
  setSf(s, ACK_EPOCH_ACKED, 0);
  const mode = sf(s, MODE);
  if (mode == PROBE_BW) setPacingRate(s, maxBw(s), 1);
  else if (mode == PROBE_RTT) checkProbeRttDone(s);
  emit(s);
}

export function cc_on_state_change(s: usize): void {
  const state = evI(E_ARG);
  if (state == ST_LOSS) {
    setSf(s, PREV_CA_STATE, <f64>ST_LOSS);
    setSf(s, FULL_BW, 0);
    setSf(s, ROUND_START, 1);
  }
  setSf(s, CA_STATE, <f64>state);
  emit(s);
}

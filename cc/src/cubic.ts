// CUBIC (RFC 9438) with HyStart++ (RFC 9406) as a CC ABI v1 module.
//
// Follows Linux tcp_cubic.c where the RFC leaves room, with these documented choices:
// - Window in packets (segments) with integer arithmetic: beta = 717/1024 (~0.7), C = 410/1024
//   (~0.4), time in 2^-10 s units, K = cbrt(2^40/410 * (W_max - cwnd)), target =
//   origin +/- 410*|t-K|^3 >> 40, cnt = cwnd / (target - cwnd) (100*cwnd when at/above target),
//   cnt <= 20 before the first loss, cnt >= 2, and additive increase through snd_cwnd_cnt.
// - Reno-friendly region as Linux: tcp_cwnd += 1 per (cwnd*15/8) acked packets (alpha ~ 8/15 =
//   0.533; RFC 9438 uses 3(1-beta)/(1+beta) = 0.529), capping cnt so cwnd grows at least as fast.
// - Fast convergence: W_max = cwnd*(1+beta)/2 when a loss comes below the previous W_max.
// - Time from now_us (microseconds) instead of jiffies; t includes delay_min (min RTT) as Linux.
// - Integer cube root: exact floor(cbrt(a)) by the digit-by-digit method (Linux uses a table
//   plus one Newton step, within ~0.2% of it). |t-K| is capped at 2^18 units (256 s) so
//   410*offs^3 stays within 64 bits.
// - Slow start: RFC 9406 HyStart++ on the initial slow start (rounds from delivered counts,
//   N_RTT_SAMPLE 8, RTT threshold clamp(lastMin/8, 4 ms, 16 ms), CSS growth /4, 5 CSS rounds,
//   L = 8 segments per ACK) instead of Linux's HyStart (ACK train + delay).
// - After an RTO (state change to loss) the CUBIC state is reset, as Linux does.
import {
  CONG_ECN, CONG_RTO, E_ACKED_PACKETS, E_ARG, E_CWND, E_MIN_RTT_US, E_MSS, E_NOW_US,
  E_PRIOR_DELIVERED, E_PRIOR_IN_FLIGHT, E_RTT_US, E_SSTHRESH, E_TOTAL_DELIVERED, ev, evI,
  F_APP_LIMITED, F_CWND_LIMITED, F_IN_RECOVERY, hasFlag, initialWindow, out, setSf, sf, ST_LOSS,
  WANTS_ECN,
} from "./abi";
export { cc_abi_version, cc_event_ptr, cc_output_ptr, cc_slot_base } from "./abi";

const NAME = memory.data<u8>([0x63, 0x75, 0x62, 0x69, 0x63, 0]); // "cubic"

const BETA: u64 = 717;
const BETA_SCALE: u64 = 1024;
const CUBE_RTT_SCALE: u64 = 410; // C * 1024
const CUBE_FACTOR: u64 = (<u64>1 << 40) / 410;
const FRIENDLY_SCALE: u64 = (8 * (BETA_SCALE + BETA)) / 3 / (BETA_SCALE - BETA); // 15
const MAX_OFFS: u64 = 1 << 18;

// HyStart++ constants (RFC 9406 section 4.3).
const MIN_RTT_THRESH: f64 = 4000;
const MAX_RTT_THRESH: f64 = 16000;
const N_RTT_SAMPLE: f64 = 8;
const CSS_GROWTH_DIVISOR: f64 = 4;
const CSS_ROUNDS: f64 = 5;
const HS_L: f64 = 8;

// Slot layout, f64 each (byte offsets). Tests read these through WasmCc.stateView().
const CWND: usize = 0; // packets
const SSTHRESH: usize = 8; // packets (Infinity = unset)
const MSS: usize = 16;
const CWND_CNT: usize = 24;
const CNT: usize = 32;
const LAST_MAX: usize = 40;
const LAST_CWND: usize = 48;
const LAST_TIME: usize = 56;
const ORIGIN: usize = 64;
const K: usize = 72;
const DELAY_MIN: usize = 80;
const EPOCH: usize = 88; // -1 = no epoch
const ACK_CNT: usize = 96;
const TCP_CWND: usize = 104;
const PRIOR_CWND: usize = 112;
const PRIOR_SSTHRESH: usize = 120;
const ROUND_END: usize = 128;
const LAST_ROUND_MIN: usize = 136;
const CUR_ROUND_MIN: usize = 144;
const SAMPLES: usize = 152;
const CSS_BASELINE: usize = 160;
const CSS_ROUNDS_DONE: usize = 168;
const HS_STATE: usize = 176; // 0 slow start (HyStart++ active), 1 CSS, 2 done
const CSS_ACC: usize = 184;
const LAST_ACK_US: usize = 192;
const STATE_SIZE: i32 = 200;

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
  return WANTS_ECN;
}

/** Exact floor(cbrt(a)), digit by digit (3 bits of a per result bit). */
export function icbrt(a: u64): u64 {
  let y: u64 = 0;
  for (let s: i32 = 63; s >= 0; s -= 3) {
    y <<= 1;
    const b: u64 = 3 * y * (y + 1) + 1;
    if ((a >> <u64>s) >= b) {
      a -= b << <u64>s;
      y++;
    }
  }
  return y;
}

/** Test hook: icbrt for integers representable in f64. */
export function cc_test_cbrt(a: f64): f64 {
  return <f64>icbrt(<u64>a);
}

function emit(s: usize): void {
  const mss = sf(s, MSS);
  out(sf(s, CWND) * mss, sf(s, SSTHRESH) * mss, 0);
}

function resetCubic(s: usize): void {
  setSf(s, CNT, 0);
  setSf(s, LAST_MAX, 0);
  setSf(s, LAST_CWND, 0);
  setSf(s, LAST_TIME, -1);
  setSf(s, ORIGIN, 0);
  setSf(s, K, 0);
  setSf(s, DELAY_MIN, 0);
  setSf(s, EPOCH, -1);
  setSf(s, ACK_CNT, 0);
  setSf(s, TCP_CWND, 0);
}

function resetHystart(s: usize, active: bool): void {
  setSf(s, ROUND_END, ev(E_TOTAL_DELIVERED));
  setSf(s, LAST_ROUND_MIN, Infinity);
  setSf(s, CUR_ROUND_MIN, Infinity);
  setSf(s, SAMPLES, 0);
  setSf(s, CSS_BASELINE, Infinity);
  setSf(s, CSS_ROUNDS_DONE, 0);
  setSf(s, HS_STATE, active ? 0 : 2);
  setSf(s, CSS_ACC, 0);
}

function bytesToPkts(b: f64, mss: f64): f64 {
  return max(1, floor(b / mss));
}

export function cc_init(s: usize): void {
  const mss = ev(E_MSS);
  setSf(s, MSS, mss);
  setSf(s, CWND, floor(initialWindow(mss) / mss));
  setSf(s, SSTHRESH, Infinity);
  setSf(s, CWND_CNT, 0);
  setSf(s, PRIOR_CWND, 0);
  setSf(s, PRIOR_SSTHRESH, Infinity);
  setSf(s, LAST_ACK_US, ev(E_NOW_US));
  resetCubic(s);
  resetHystart(s, true);
  emit(s);
}

export function cc_init_from_state(s: usize): void {
  const mss = ev(E_MSS);
  setSf(s, MSS, mss);
  const cwnd = bytesToPkts(ev(E_CWND), mss);
  const ssb = ev(E_SSTHRESH);
  const ssthresh = ssb == Infinity ? Infinity : max(2, floor(ssb / mss));
  setSf(s, CWND, cwnd);
  setSf(s, SSTHRESH, ssthresh);
  setSf(s, CWND_CNT, 0);
  setSf(s, PRIOR_CWND, 0);
  setSf(s, PRIOR_SSTHRESH, Infinity);
  setSf(s, LAST_ACK_US, ev(E_NOW_US));
  resetCubic(s);
  // Continue on the plateau of the current window rather than probing from scratch.
  if (cwnd >= ssthresh) setSf(s, LAST_MAX, cwnd);
  const minRtt = ev(E_MIN_RTT_US);
  if (minRtt > 0) setSf(s, DELAY_MIN, minRtt);
  resetHystart(s, ssthresh == Infinity);
  emit(s);
}

export function cc_set_mss(s: usize): void {
  const mss = ev(E_MSS);
  const old = sf(s, MSS);
  // Keep the window in bytes comparable: rescale packets.
  setSf(s, CWND, max(2, floor((sf(s, CWND) * old) / mss)));
  const ss = sf(s, SSTHRESH);
  if (ss != Infinity) setSf(s, SSTHRESH, max(2, floor((ss * old) / mss)));
  setSf(s, MSS, mss);
  emit(s);
}

/** Linux bictcp_update with microsecond time. */
function cubicUpdate(s: usize, cwnd: f64, acked: f64, nowUs: f64): void {
  setSf(s, ACK_CNT, sf(s, ACK_CNT) + acked);
  let skipCurve = false;
  if (sf(s, LAST_CWND) == cwnd && nowUs - sf(s, LAST_TIME) <= 1e6 / 32) return;
  if (sf(s, EPOCH) >= 0 && nowUs == sf(s, LAST_TIME)) skipCurve = true;
  if (!skipCurve) {
    setSf(s, LAST_CWND, cwnd);
    setSf(s, LAST_TIME, nowUs);
    if (sf(s, EPOCH) < 0) {
      setSf(s, EPOCH, nowUs);
      setSf(s, ACK_CNT, acked);
      setSf(s, TCP_CWND, cwnd);
      const lastMax = sf(s, LAST_MAX);
      if (lastMax <= cwnd) {
        setSf(s, K, 0);
        setSf(s, ORIGIN, cwnd);
      } else {
        setSf(s, K, <f64>icbrt(CUBE_FACTOR * <u64>(lastMax - cwnd)));
        setSf(s, ORIGIN, lastMax);
      }
    }
    const tUs = nowUs - sf(s, EPOCH) + sf(s, DELAY_MIN);
    const t: u64 = (<u64>max(tUs, 0) << 10) / 1000000;
    const k = <u64>sf(s, K);
    let offs: u64 = t < k ? k - t : t - k;
    if (offs > MAX_OFFS) offs = MAX_OFFS;
    const delta: u64 = (CUBE_RTT_SCALE * offs * offs * offs) >> 40;
    const origin = sf(s, ORIGIN);
    const target = t < k ? origin - <f64>delta : origin + <f64>delta;
    let cnt: f64 = target > cwnd ? floor(cwnd / (target - cwnd)) : 100 * cwnd;
    if (sf(s, LAST_MAX) == 0 && cnt > 20) cnt = 20;
    setSf(s, CNT, cnt);
  }
  // Reno-friendly region.
  const d = <f64>((<u64>cwnd * FRIENDLY_SCALE) >> 3);
  let ackCnt = sf(s, ACK_CNT);
  let tcpCwnd = sf(s, TCP_CWND);
  if (d > 0) {
    while (ackCnt > d) {
      ackCnt -= d;
      tcpCwnd++;
    }
  }
  setSf(s, ACK_CNT, ackCnt);
  setSf(s, TCP_CWND, tcpCwnd);
  let cnt = sf(s, CNT);
  if (tcpCwnd > cwnd) {
    const maxCnt = floor(cwnd / (tcpCwnd - cwnd));
    if (cnt > maxCnt) cnt = maxCnt;
  }
  setSf(s, CNT, max(cnt, 2));
}

/** tcp_cong_avoid_ai: one packet per `w` acked packets. */
function congAvoidAi(s: usize, w: f64, acked: f64): void {
  let c = sf(s, CWND_CNT);
  let cwnd = sf(s, CWND);
  if (c >= w) {
    c = 0;
    cwnd++;
  }
  c += acked;
  if (c >= w) {
    const delta = floor(c / w);
    c -= delta * w;
    cwnd += delta;
  }
  setSf(s, CWND_CNT, c);
  setSf(s, CWND, cwnd);
}

/** HyStart++ bookkeeping for one ACK in slow start; returns the packets slow start may add. */
function hystart(s: usize, acked: f64): f64 {
  const st = sf(s, HS_STATE);
  if (st == 2) return acked;
  if (ev(E_PRIOR_DELIVERED) >= sf(s, ROUND_END)) {
    // A new round: the acked packet was sent after the previous round started.
    setSf(s, ROUND_END, ev(E_TOTAL_DELIVERED));
    setSf(s, LAST_ROUND_MIN, sf(s, CUR_ROUND_MIN));
    setSf(s, CUR_ROUND_MIN, Infinity);
    setSf(s, SAMPLES, 0);
    if (st == 1) {
      const done = sf(s, CSS_ROUNDS_DONE) + 1;
      setSf(s, CSS_ROUNDS_DONE, done);
      if (done >= CSS_ROUNDS) {
        // Leave slow start for congestion avoidance at the current window.
        setSf(s, SSTHRESH, sf(s, CWND));
        setSf(s, HS_STATE, 2);
        return 0;
      }
    }
  }
  const rtt = ev(E_RTT_US);
  if (rtt >= 0) {
    setSf(s, CUR_ROUND_MIN, min(sf(s, CUR_ROUND_MIN), rtt));
    setSf(s, SAMPLES, sf(s, SAMPLES) + 1);
  }
  const cur = sf(s, CUR_ROUND_MIN);
  const last = sf(s, LAST_ROUND_MIN);
  const enough = sf(s, SAMPLES) >= N_RTT_SAMPLE && cur != Infinity;
  if (st == 0 && enough && last != Infinity) {
    const thresh = max(MIN_RTT_THRESH, min(last / 8, MAX_RTT_THRESH));
    if (cur >= last + thresh) {
      setSf(s, CSS_BASELINE, cur);
      setSf(s, CSS_ROUNDS_DONE, 0);
      setSf(s, HS_STATE, 1);
    }
  } else if (st == 1 && enough && cur < sf(s, CSS_BASELINE)) {
    // The RTT increase was spurious: resume slow start.
    setSf(s, CSS_BASELINE, Infinity);
    setSf(s, HS_STATE, 0);
  }
  const n = min(acked, HS_L);
  if (sf(s, HS_STATE) == 1) {
    const acc = sf(s, CSS_ACC) + n;
    const add = floor(acc / CSS_GROWTH_DIVISOR);
    setSf(s, CSS_ACC, acc - add * CSS_GROWTH_DIVISOR);
    return add;
  }
  return n;
}

export function cc_on_ack(s: usize): void {
  const nowUs = ev(E_NOW_US);
  setSf(s, LAST_ACK_US, nowUs);
  const rtt = ev(E_RTT_US);
  if (rtt > 0) {
    const dm = sf(s, DELAY_MIN);
    if (dm == 0 || dm > rtt) setSf(s, DELAY_MIN, rtt);
  }
  let acked = ev(E_ACKED_PACKETS);
  let cwnd = sf(s, CWND);
  const mss = sf(s, MSS);
  const appLimited = hasFlag(F_APP_LIMITED) && ev(E_PRIOR_IN_FLIGHT) < (cwnd * mss) / 2;
  if (hasFlag(F_IN_RECOVERY) || acked <= 0 || appLimited) {
    emit(s);
    return;
  }
  // Linux cubictcp_cong_avoid: no growth unless tcp_is_cwnd_limited (RFC 7661 in spirit).
  const cwndLimited = hasFlag(F_CWND_LIMITED);
  const ssthresh = sf(s, SSTHRESH);
  if (cwnd < ssthresh) {
    // HyStart++'s rounds and RTT samples are kept on every ACK (Linux: bictcp_acked), e.g. the
    // SYN's ACK, which is never cwnd-limited, still starts the first round.
    const add = hystart(s, acked);
    if (!cwndLimited) {
      emit(s);
      return;
    }
    const ss2 = sf(s, SSTHRESH); // HyStart++ may have ended slow start
    if (cwnd < ss2) {
      const grown = min(cwnd + add, ss2);
      // Packets left over after reaching ssthresh continue in congestion avoidance.
      acked = grown == ss2 ? max(0, add - (grown - cwnd)) : 0;
      cwnd = grown;
      setSf(s, CWND, cwnd);
      if (acked <= 0) {
        emit(s);
        return;
      }
    }
  }
  if (!cwndLimited) {
    emit(s);
    return;
  }
  cubicUpdate(s, cwnd, acked, nowUs);
  congAvoidAi(s, sf(s, CNT), acked);
  emit(s);
}

export function cc_on_congestion(s: usize): void {
  const kind = evI(E_ARG);
  const cwnd = sf(s, CWND);
  setSf(s, PRIOR_CWND, cwnd);
  setSf(s, PRIOR_SSTHRESH, sf(s, SSTHRESH));
  setSf(s, EPOCH, -1);
  if (cwnd < sf(s, LAST_MAX)) {
    setSf(s, LAST_MAX, floor((cwnd * <f64>(BETA_SCALE + BETA)) / <f64>(BETA_SCALE * 2)));
  } else {
    setSf(s, LAST_MAX, cwnd);
  }
  const ssthresh = max(floor((cwnd * <f64>BETA) / <f64>BETA_SCALE), 2);
  setSf(s, SSTHRESH, ssthresh);
  setSf(s, CWND_CNT, 0);
  setSf(s, HS_STATE, 2); // HyStart++ only for the initial slow start
  if (kind == CONG_RTO) setSf(s, CWND, 1);
  else if (kind == CONG_ECN) setSf(s, CWND, ssthresh);
  emit(s);
}

export function cc_on_recovery_exit(s: usize): void {
  const ss = sf(s, SSTHRESH);
  if (ss != Infinity) setSf(s, CWND, ss);
  emit(s);
}

export function cc_on_undo(s: usize): void {
  if (sf(s, PRIOR_CWND) != 0) {
    setSf(s, CWND, max(sf(s, CWND), sf(s, PRIOR_CWND)));
    setSf(s, SSTHRESH, max(sf(s, SSTHRESH), sf(s, PRIOR_SSTHRESH)));
    setSf(s, PRIOR_CWND, 0);
  }
  emit(s);
}

export function cc_on_idle_restart(s: usize): void {
  // Linux CA_EVENT_TX_START: shift the epoch by the idle time so the curve does not jump.
  const nowUs = ev(E_NOW_US);
  const idle = nowUs - sf(s, LAST_ACK_US);
  if (sf(s, EPOCH) >= 0 && idle > 0) setSf(s, EPOCH, min(sf(s, EPOCH) + idle, nowUs));
  const mss = sf(s, MSS);
  setSf(s, CWND, min(sf(s, CWND), floor(initialWindow(mss) / mss)));
  emit(s);
}

export function cc_on_state_change(s: usize): void {
  if (evI(E_ARG) == ST_LOSS) {
    resetCubic(s);
    resetHystart(s, false);
  }
  emit(s);
}


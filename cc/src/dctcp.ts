// DCTCP (RFC 8257) as a CC ABI v1 module.
// - alpha in 1/1024 units, starts at 1024 (alpha = 1), g = 1/16: at the end of each observation
//   window alpha -= alpha >> 4 (all of alpha once alpha >> 4 is 0, so alpha can reach 0, as
//   Linux does) and alpha += (marked << 6) / acked, capped at 1024.
// - Observation window: from the delivered count at its start until the data in flight then
//   has been delivered (total_delivered >= start total + in flight), i.e. one RTT. A window
//   starts only with data in flight (not on the SYN's ACK), so alpha is still 1 on the first
//   data window, as in Linux (which starts the first window at init on an established socket).
// - Bytes marked: acked bytes of ACKs carrying ECE (RFC 8257 3.3 with the accurate ECE receiver
//   of section 3.2, which the module requests through cc_flags).
// - An ECN echo reduces once per window: cwnd = ssthresh = max(cwnd - cwnd*alpha/2048, 2 MSS),
//   so the first echo with alpha = 1 halves cwnd.
// - Loss, RTO, recovery exit, undo, idle restart and growth exactly as Reno (RFC 8257 3.5).
// - Without ECN negotiated (flag ECN_OK clear) it is plain Reno.
import {
  CONG_ECN, E_ACKED_BYTES, E_ARG, E_IN_FLIGHT, E_TOTAL_DELIVERED, ev, evI, F_ECE, F_ECN_OK,
  hasFlag, out, setSf, sf, WANTS_ACCURATE_ECE, WANTS_ECN,
} from "./abi";
import {
  R_CWND, R_MSS, R_SSTHRESH, R_WORDS_END, renoHalf, renoIdleRestart, renoInit, renoInitFromState,
  renoOnAck, renoRecoveryExit, renoReduce, renoSetMss, renoUndo,
} from "./reno_core";
export { cc_abi_version, cc_event_ptr, cc_output_ptr, cc_slot_base } from "./abi";

const NAME = memory.data<u8>([0x64, 0x63, 0x74, 0x63, 0x70, 0]); // "dctcp"

const MAX_ALPHA: f64 = 1024;
const SHIFT_G: i32 = 4;

// Slot words after the Reno part (byte offsets).
const ALPHA: usize = R_WORDS_END; // 48
const WIN_ACKED: usize = R_WORDS_END + 8; // 56
const WIN_MARKED: usize = R_WORDS_END + 16; // 64
const WIN_END: usize = R_WORDS_END + 24; // 72: total_delivered that ends the window
const REDUCE_END: usize = R_WORDS_END + 32; // 80: no further ECN reduction before this
const LAST_TOTAL: usize = R_WORDS_END + 40; // 88
const LAST_IN_FLIGHT: usize = R_WORDS_END + 48; // 96
const STATE_SIZE: i32 = <i32>R_WORDS_END + 56;

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
  return WANTS_ECN | WANTS_ACCURATE_ECE;
}

function emit(s: usize): void {
  out(sf(s, R_CWND), sf(s, R_SSTHRESH), 0);
}

function dctcpReset(s: usize): void {
  setSf(s, ALPHA, MAX_ALPHA);
  setSf(s, WIN_ACKED, 0);
  setSf(s, WIN_MARKED, 0);
  setSf(s, WIN_END, -1);
  setSf(s, REDUCE_END, -1);
  setSf(s, LAST_TOTAL, 0);
  setSf(s, LAST_IN_FLIGHT, 0);
}

export function cc_init(s: usize): void {
  renoInit(s);
  dctcpReset(s);
  emit(s);
}
export function cc_init_from_state(s: usize): void {
  renoInitFromState(s);
  dctcpReset(s);
  setSf(s, LAST_TOTAL, ev(E_TOTAL_DELIVERED));
  setSf(s, LAST_IN_FLIGHT, ev(E_IN_FLIGHT));
  emit(s);
}
export function cc_set_mss(s: usize): void {
  renoSetMss(s);
  emit(s);
}

export function cc_on_ack(s: usize): void {
  const total = ev(E_TOTAL_DELIVERED);
  const inFlight = ev(E_IN_FLIGHT);
  setSf(s, LAST_TOTAL, total);
  setSf(s, LAST_IN_FLIGHT, inFlight);
  if (hasFlag(F_ECN_OK)) {
    const acked = ev(E_ACKED_BYTES);
    setSf(s, WIN_ACKED, sf(s, WIN_ACKED) + acked);
    if (hasFlag(F_ECE)) setSf(s, WIN_MARKED, sf(s, WIN_MARKED) + acked);
    const end = sf(s, WIN_END);
    if (end < 0) {
      // A window is the data in flight when it starts; with nothing in flight (the SYN's ACK,
      // or an idle connection) there is nothing to observe yet, so alpha is not decayed for it.
      if (inFlight > 0) {
        setSf(s, WIN_END, total + inFlight);
      } else {
        setSf(s, WIN_ACKED, 0);
        setSf(s, WIN_MARKED, 0);
      }
    } else if (total >= end) {
      updateAlpha(s);
      setSf(s, WIN_END, inFlight > 0 ? total + inFlight : -1);
    }
  }
  renoOnAck(s);
  emit(s);
}

function updateAlpha(s: usize): void {
  let alpha = <u32>sf(s, ALPHA);
  let dec = alpha >> SHIFT_G;
  if (dec == 0) dec = alpha;
  alpha -= dec;
  const acked = max(sf(s, WIN_ACKED), 1);
  const add = <u32>floor((sf(s, WIN_MARKED) * <f64>(1 << (10 - SHIFT_G))) / acked);
  setSf(s, ALPHA, min(<f64>(alpha + add), MAX_ALPHA));
  setSf(s, WIN_ACKED, 0);
  setSf(s, WIN_MARKED, 0);
}

export function cc_on_congestion(s: usize): void {
  const kind = evI(E_ARG);
  if (kind == CONG_ECN && hasFlag(F_ECN_OK)) {
    const total = sf(s, LAST_TOTAL);
    if (total < sf(s, REDUCE_END)) {
      emit(s); // already reduced in this window
      return;
    }
    const cwnd = sf(s, R_CWND);
    const ssthresh = max(cwnd - floor((cwnd * sf(s, ALPHA)) / 2048), 2 * sf(s, R_MSS));
    renoReduce(s, kind, ssthresh);
    setSf(s, REDUCE_END, total + sf(s, LAST_IN_FLIGHT));
  } else {
    renoReduce(s, kind, renoHalf(s));
  }
  emit(s);
}
export function cc_on_recovery_exit(s: usize): void {
  renoRecoveryExit(s);
  emit(s);
}
export function cc_on_undo(s: usize): void {
  renoUndo(s);
  emit(s);
}
export function cc_on_idle_restart(s: usize): void {
  renoIdleRestart(s);
  emit(s);
}
export function cc_on_state_change(s: usize): void {
  emit(s);
}

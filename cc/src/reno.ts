// NewReno as a CC ABI v1 module: the same rules as the built-in RenoCc (RFC 5681 + RFC 3465
// ABC with L = 2, cwnd-based halving, RFC 6582 deflation at recovery exit, undo), so the two can
// be compared event by event.
import {
  CONG_ECN, CONG_RTO, E_ACKED_BYTES, E_CWND, E_MSS, E_PRIOR_IN_FLIGHT, E_SSTHRESH, ev,
  F_APP_LIMITED, F_IN_RECOVERY, hasFlag, initialWindow, evI, E_ARG, out, setSf, sf,
  WANTS_ECN,
} from "./abi";
export { cc_abi_version, cc_event_ptr, cc_output_ptr, cc_slot_base } from "./abi";

const NAME = memory.data<u8>([0x72, 0x65, 0x6e, 0x6f, 0]); // "reno"

// Slot layout (f64 each).
const CWND: usize = 0;
const SSTHRESH: usize = 8;
const MSS: usize = 16;
const ACKED_CA: usize = 24;
const PRIOR_CWND: usize = 32;
const PRIOR_SSTHRESH: usize = 40;

export function cc_name(): usize {
  return NAME;
}
export function cc_version(): i32 {
  return 1;
}
export function cc_state_size(): i32 {
  return 48;
}
export function cc_flags(): i32 {
  return WANTS_ECN;
}

function emit(s: usize): void {
  out(sf(s, CWND), sf(s, SSTHRESH), 0);
}

export function cc_init(s: usize): void {
  const mss = ev(E_MSS);
  setSf(s, MSS, mss);
  setSf(s, CWND, initialWindow(mss));
  setSf(s, SSTHRESH, Infinity);
  setSf(s, ACKED_CA, 0);
  setSf(s, PRIOR_CWND, 0);
  setSf(s, PRIOR_SSTHRESH, Infinity);
  emit(s);
}

export function cc_init_from_state(s: usize): void {
  const mss = ev(E_MSS);
  setSf(s, MSS, mss);
  setSf(s, CWND, max(ev(E_CWND), mss));
  setSf(s, SSTHRESH, ev(E_SSTHRESH));
  setSf(s, ACKED_CA, 0);
  setSf(s, PRIOR_CWND, 0);
  setSf(s, PRIOR_SSTHRESH, Infinity);
  emit(s);
}

export function cc_set_mss(s: usize): void {
  const mss = ev(E_MSS);
  setSf(s, MSS, mss);
  if (sf(s, CWND) < 2 * mss) setSf(s, CWND, 2 * mss);
  emit(s);
}

export function cc_on_ack(s: usize): void {
  const acked = ev(E_ACKED_BYTES);
  let cwnd = sf(s, CWND);
  const ssthresh = sf(s, SSTHRESH);
  const mss = sf(s, MSS);
  if (!hasFlag(F_IN_RECOVERY) && acked > 0 &&
    !(hasFlag(F_APP_LIMITED) && ev(E_PRIOR_IN_FLIGHT) < cwnd / 2)) {
    if (cwnd < ssthresh) {
      cwnd += min(acked, 2 * mss);
      if (cwnd > ssthresh && ssthresh != Infinity) {
        setSf(s, ACKED_CA, cwnd - ssthresh);
        cwnd = ssthresh;
      }
    } else {
      let a = sf(s, ACKED_CA) + acked;
      if (a >= cwnd) {
        a -= cwnd;
        cwnd += mss;
      }
      setSf(s, ACKED_CA, a);
    }
    setSf(s, CWND, cwnd);
  }
  emit(s);
}

export function cc_on_congestion(s: usize): void {
  const kind = evI(E_ARG);
  const cwnd = sf(s, CWND);
  const mss = sf(s, MSS);
  setSf(s, PRIOR_CWND, cwnd);
  setSf(s, PRIOR_SSTHRESH, sf(s, SSTHRESH));
  const ssthresh = max(floor(cwnd / 2), 2 * mss);
  setSf(s, SSTHRESH, ssthresh);
  setSf(s, ACKED_CA, 0);
  if (kind == CONG_RTO) setSf(s, CWND, mss);
  else if (kind == CONG_ECN) setSf(s, CWND, ssthresh);
  emit(s);
}

export function cc_on_recovery_exit(s: usize): void {
  const ssthresh = sf(s, SSTHRESH);
  if (ssthresh != Infinity) setSf(s, CWND, ssthresh);
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
  setSf(s, CWND, min(sf(s, CWND), initialWindow(sf(s, MSS))));
  emit(s);
}

export function cc_on_state_change(s: usize): void {
  emit(s);
}

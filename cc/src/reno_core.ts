// Reno window rules on slot words 0..5, shared by reno.ts and dctcp.ts (identical to the
// built-in RenoCc: RFC 5681 + RFC 3465 ABC L = 2, cwnd-based halving, RFC 6582 deflation).
import {
  CONG_ECN, CONG_RTO, E_ACKED_BYTES, E_CWND, E_MSS, E_PRIOR_IN_FLIGHT, E_SSTHRESH, ev,
  F_APP_LIMITED, F_CWND_LIMITED, F_IN_RECOVERY, hasFlag, initialWindow, setSf, sf,
} from "./abi";

export const R_CWND: usize = 0;
export const R_SSTHRESH: usize = 8;
export const R_MSS: usize = 16;
export const R_ACKED_CA: usize = 24;
export const R_PRIOR_CWND: usize = 32;
export const R_PRIOR_SSTHRESH: usize = 40;
export const R_WORDS_END: usize = 48;

export function renoInit(s: usize): void {
  const mss = ev(E_MSS);
  setSf(s, R_MSS, mss);
  setSf(s, R_CWND, initialWindow(mss));
  setSf(s, R_SSTHRESH, Infinity);
  setSf(s, R_ACKED_CA, 0);
  setSf(s, R_PRIOR_CWND, 0);
  setSf(s, R_PRIOR_SSTHRESH, Infinity);
}

export function renoInitFromState(s: usize): void {
  const mss = ev(E_MSS);
  setSf(s, R_MSS, mss);
  setSf(s, R_CWND, max(ev(E_CWND), mss));
  setSf(s, R_SSTHRESH, ev(E_SSTHRESH));
  setSf(s, R_ACKED_CA, 0);
  setSf(s, R_PRIOR_CWND, 0);
  setSf(s, R_PRIOR_SSTHRESH, Infinity);
}

export function renoSetMss(s: usize): void {
  const mss = ev(E_MSS);
  setSf(s, R_MSS, mss);
  if (sf(s, R_CWND) < 2 * mss) setSf(s, R_CWND, 2 * mss);
}

export function renoOnAck(s: usize): void {
  const acked = ev(E_ACKED_BYTES);
  let cwnd = sf(s, R_CWND);
  const ssthresh = sf(s, R_SSTHRESH);
  const mss = sf(s, R_MSS);
  if (hasFlag(F_IN_RECOVERY) || acked <= 0) return;
  // RFC 7661: do not grow a window the sender is not using (receiver- or app-limited).
  if (!hasFlag(F_CWND_LIMITED)) return;
  if (hasFlag(F_APP_LIMITED) && ev(E_PRIOR_IN_FLIGHT) < cwnd / 2) return;
  if (cwnd < ssthresh) {
    cwnd += min(acked, 2 * mss);
    if (cwnd > ssthresh && ssthresh != Infinity) {
      setSf(s, R_ACKED_CA, cwnd - ssthresh);
      cwnd = ssthresh;
    }
  } else {
    let a = sf(s, R_ACKED_CA) + acked;
    if (a >= cwnd) {
      a -= cwnd;
      cwnd += mss;
    }
    setSf(s, R_ACKED_CA, a);
  }
  setSf(s, R_CWND, cwnd);
}

/** Sets ssthresh to `ssthresh` (remembering the old values for undo) and applies `kind`. */
export function renoReduce(s: usize, kind: i32, ssthresh: f64): void {
  setSf(s, R_PRIOR_CWND, sf(s, R_CWND));
  setSf(s, R_PRIOR_SSTHRESH, sf(s, R_SSTHRESH));
  setSf(s, R_SSTHRESH, ssthresh);
  setSf(s, R_ACKED_CA, 0);
  if (kind == CONG_RTO) setSf(s, R_CWND, sf(s, R_MSS));
  else if (kind == CONG_ECN) setSf(s, R_CWND, ssthresh);
}

export function renoHalf(s: usize): f64 {
  return max(floor(sf(s, R_CWND) / 2), 2 * sf(s, R_MSS));
}

export function renoRecoveryExit(s: usize): void {
  const ssthresh = sf(s, R_SSTHRESH);
  if (ssthresh != Infinity) setSf(s, R_CWND, ssthresh);
}

export function renoUndo(s: usize): void {
  if (sf(s, R_PRIOR_CWND) == 0) return;
  setSf(s, R_CWND, max(sf(s, R_CWND), sf(s, R_PRIOR_CWND)));
  setSf(s, R_SSTHRESH, max(sf(s, R_SSTHRESH), sf(s, R_PRIOR_SSTHRESH)));
  setSf(s, R_PRIOR_CWND, 0);
}

export function renoIdleRestart(s: usize): void {
  setSf(s, R_CWND, min(sf(s, R_CWND), initialWindow(sf(s, R_MSS))));
}

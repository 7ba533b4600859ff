// NewReno as a CC ABI v1 module: the same rules as the built-in RenoCc (see reno_core.ts), so
// the two can be compared event by event.
import { E_ARG, evI, out, sf, WANTS_ECN } from "./abi";
import {
  R_CWND, R_SSTHRESH, renoHalf, renoIdleRestart, renoInit, renoInitFromState, renoOnAck,
  renoRecoveryExit, renoReduce, renoSetMss, renoUndo, R_WORDS_END,
} from "./reno_core";
export { cc_abi_version, cc_event_ptr, cc_output_ptr, cc_slot_base } from "./abi";

const NAME = memory.data<u8>([0x72, 0x65, 0x6e, 0x6f, 0]); // "reno"

export function cc_name(): usize {
  return NAME;
}
export function cc_version(): i32 {
  return 1;
}
export function cc_state_size(): i32 {
  return <i32>R_WORDS_END;
}
export function cc_flags(): i32 {
  return WANTS_ECN;
}

function emit(s: usize): void {
  out(sf(s, R_CWND), sf(s, R_SSTHRESH), 0);
}

export function cc_init(s: usize): void {
  renoInit(s);
  emit(s);
}
export function cc_init_from_state(s: usize): void {
  renoInitFromState(s);
  emit(s);
}
export function cc_set_mss(s: usize): void {
  renoSetMss(s);
  emit(s);
}
export function cc_on_ack(s: usize): void {
  renoOnAck(s);
  emit(s);
}
export function cc_on_congestion(s: usize): void {
  renoReduce(s, evI(E_ARG), renoHalf(s));
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

/**
 * Host-side constants of the congestion-control module ABI, version 1 (cc/README.md is the
 * normative description; cc/src/abi.ts is the AssemblyScript mirror and cc/c/cc_abi.h the C one).
 *
 * @module
 */

/** ABI version this host implements. */
export const CC_ABI_VERSION = 1;

/** Size in bytes of the event record the host writes at `cc_event_ptr()`. */
export const EVENT_RECORD_SIZE = 176;
/** Size in bytes of the output area at `cc_output_ptr()` (cwnd, ssthresh, pacing rate). */
export const OUTPUT_AREA_SIZE = 24;

/** f64 field indexes in the event record (byte offset = index * 8). */
export const EvF = {
  nowUs: 0,
  mss: 1,
  ackedBytes: 2,
  ackedPackets: 3,
  delivered: 4,
  deliveredCe: 5,
  intervalUs: 6,
  rttUs: 7,
  minRttUs: 8,
  srttUs: 9,
  inFlight: 10,
  priorInFlight: 11,
  losses: 12,
  totalDelivered: 13,
  priorDelivered: 14,
  cwnd: 15,
  ssthresh: 16,
  pacingRate: 17,
} as const;

/** i32 field indexes in the event record (byte offset = index * 4). */
export const EvI = { kind: 40, flags: 41, arg: 42 } as const;

/** Event kinds written to `EvI.kind`, one per export. */
export const EventKind = {
  init: 1,
  initFromState: 2,
  setMss: 3,
  ack: 4,
  congestion: 5,
  recoveryExit: 6,
  undo: 7,
  idleRestart: 8,
  stateChange: 9,
} as const;

/**
 * Bits of `EvI.flags`. `cwndLimited` (16) is an ABI v1 addition (`AckSample.isCwndLimited`):
 * hosts set it on ACK events; modules grow cwnd only when it is set.
 */
export const EvFlag = { appLimited: 1, ece: 2, inRecovery: 4, ecnOk: 8, cwndLimited: 16 } as const;

/** `EvI.arg` of a congestion event. */
export const CongestionArg = { loss: 1, rto: 2, ecn: 3 } as const;

/** `EvI.arg` of a state-change event. */
export const StateArg = { open: 0, disorder: 1, recovery: 2, loss: 3 } as const;

/** Bits returned by `cc_flags()`. */
export const ModuleFlag = { wantsEcn: 1, wantsAccurateEce: 2 } as const;

/** The metadata exports every module must have, all `() -> i32`. */
export const META_EXPORTS: readonly string[] = [
  "cc_abi_version",
  "cc_name",
  "cc_state_size",
  "cc_flags",
  "cc_event_ptr",
  "cc_output_ptr",
  "cc_slot_base",
];

/** The event exports every module must have, all `(i32 slot) -> ()`. */
export const EVENT_EXPORTS: readonly string[] = [
  "cc_init",
  "cc_init_from_state",
  "cc_set_mss",
  "cc_on_ack",
  "cc_on_congestion",
  "cc_on_recovery_exit",
  "cc_on_undo",
  "cc_on_idle_restart",
  "cc_on_state_change",
];

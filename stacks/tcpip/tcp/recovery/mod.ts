/**
 * Sender loss recovery and congestion control: `RecoveryEngine` (RFC 6298 RTO, RFC 2018/2883
 * SACK/D-SACK scoreboard, RFC 8985 RACK-TLP, RFC 6675/6937 recovery with PRR, delivery-rate
 * samples, pacing) and the pluggable `CongestionControl` interface with `RenoCc`.
 *
 * @module
 */

export type { Duration, Instant } from "../../../time.ts";
export type { Seq } from "../seq.ts";
export * from "./api.ts";
export * from "./cc.ts";
export { RecoveryEngine } from "./engine.ts";

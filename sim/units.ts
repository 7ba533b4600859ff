/**
 * Parsing of the human units the simulator's command line takes: rates (`100mbit`), durations
 * (`20ms`), fractions (`0.5%`). Errors name the flag and show an accepted spelling.
 *
 * @module
 */

import { MICROSECOND, MILLISECOND, SECOND } from "../stacks/time.ts";
import type { Duration } from "../stacks/time.ts";

/** A command-line value that does not parse; the message shows what would. */
export class UnitParseError extends Error {
  constructor(flag: string, value: string, example: string) {
    super(`--${flag} ${JSON.stringify(value)} is not understood; write it like ${example}`);
    this.name = "UnitParseError";
  }
}

const RATE_SCALE: Record<string, number> = { "": 1, k: 1e3, m: 1e6, g: 1e9, t: 1e12 };

/** Parses a bit rate: `100mbit`, `1gbit`, `2.5Gbps`, `800kbit`, `1e9` (bit/s). */
export function parseRate(flag: string, value: string): number {
  const m = /^([0-9]+(?:\.[0-9]+)?(?:e[0-9]+)?)\s*([kmgt]?)(bit|bps|b\/s)?$/i.exec(value.trim());
  if (m === null) throw new UnitParseError(flag, value, "100mbit or 1gbit");
  const rate = Number(m[1]) * RATE_SCALE[m[2]!.toLowerCase()]!;
  if (!(rate > 0) || !Number.isFinite(rate)) throw new UnitParseError(flag, value, "100mbit");
  return rate;
}

const DURATION_SCALE: Record<string, number> = {
  ns: 1,
  us: MICROSECOND,
  "µs": MICROSECOND,
  ms: MILLISECOND,
  s: SECOND,
  m: 60 * SECOND,
};

/** Parses a duration into nanoseconds: `20ms`, `1.5s`, `250us`, `2m`. A bare number is seconds. */
export function parseDuration(flag: string, value: string): Duration {
  const m = /^([0-9]+(?:\.[0-9]+)?)\s*(ns|us|µs|ms|s|m)?$/.exec(value.trim());
  if (m === null) throw new UnitParseError(flag, value, "20ms or 30s");
  return Math.round(Number(m[1]) * DURATION_SCALE[m[2] ?? "s"]!);
}

/** Parses a probability: `0.5%` or `0.005`; must lie in [0, 1]. */
export function parseFraction(flag: string, value: string): number {
  const m = /^([0-9]+(?:\.[0-9]+)?)\s*(%)?$/.exec(value.trim());
  if (m === null) throw new UnitParseError(flag, value, "0.5% or 0.005");
  const p = Number(m[1]) / (m[2] === "%" ? 100 : 1);
  if (p > 1) throw new UnitParseError(flag, value, "a value between 0% and 100%");
  return p;
}

/** Parses a non-negative whole number (packets, seeds). */
export function parseCount(flag: string, value: string): number {
  if (!/^[0-9]+$/.test(value.trim())) throw new UnitParseError(flag, value, "100");
  return Number(value);
}

/** Formats bit/s for people: `94.2 Mbit/s`. */
export function formatRate(bps: number): string {
  const units: [number, string][] = [[1e9, "Gbit/s"], [1e6, "Mbit/s"], [1e3, "kbit/s"]];
  for (const [scale, unit] of units) if (bps >= scale) return `${(bps / scale).toFixed(1)} ${unit}`;
  return `${bps.toFixed(0)} bit/s`;
}

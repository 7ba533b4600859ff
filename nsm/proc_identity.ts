/**
 * Process identity from /proc: a pid alone is not an identity (pids are reused), a pid plus the
 * process start time (field 22 of /proc/<pid>/stat, clock ticks since boot) is. The NSM records
 * its own in every device header so a later NSM can tell a dead creator from a live one.
 *
 * @module
 */

/** What /proc says about a pid now. */
export interface ProcessState {
  /** Start time in clock ticks since boot (field 22 of /proc/<pid>/stat). */
  readonly startTime: number;
  /** True for a zombie or dead task (exited, not yet reaped): it holds no mappings any more. */
  readonly exited: boolean;
}

/**
 * Reads /proc/<pid>/stat: null when there is no such process, undefined when it cannot tell (no
 * read permission for /proc, not Linux, unparsable): a caller deciding "dead" must treat undefined
 * as alive. Never throws.
 */
export function processState(pid: number | "self"): ProcessState | null | undefined {
  let text: string;
  try {
    text = Deno.readTextFileSync(`/proc/${pid}/stat`);
  } catch (e) {
    // Only ENOENT means "no such process"; a permission error says nothing about liveness.
    return e instanceof Deno.errors.NotFound ? null : undefined;
  }
  // comm (field 2) is in parentheses and may contain spaces and ')': fields resume after the last.
  const close = text.lastIndexOf(")");
  if (close < 0) return undefined;
  const f = text.slice(close + 2).split(" ");
  // f[0] is field 3 (state), so field 22 (starttime) is f[19].
  const startTime = Number(f[19]);
  if (!Number.isSafeInteger(startTime)) return undefined;
  const state = f[0] ?? "";
  return { startTime, exited: state === "Z" || state === "X" || state === "x" };
}

let selfStart: number | undefined;

/** This process's start time in clock ticks since boot; 0 when /proc is unavailable. */
export function selfStartTime(): number {
  selfStart ??= processState("self")?.startTime ?? 0;
  return selfStart;
}

/** Boot time in seconds since the epoch (`btime` of /proc/stat), or null when unreadable. */
export function bootTimeSeconds(): number | null {
  try {
    const m = /^btime (\d+)$/m.exec(Deno.readTextFileSync("/proc/stat"));
    return m?.[1] !== undefined ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/** USER_HZ: the unit of /proc start times. Fixed at 100 by the Linux ABI on every architecture. */
export const CLOCK_TICKS_PER_SECOND = 100;

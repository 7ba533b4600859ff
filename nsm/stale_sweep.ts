/**
 * Stale-device sweep: an NSM that dies without its cleanup (SIGKILL, a crash, a benchmark killing
 * its child) leaves its NK device files (`nk-*`, ~17 MB each) and doorbell sockets (`nk-*.bell`)
 * in the device directory, and tmpfs keeps that memory until someone unlinks them. A starting
 * NSM calls `sweepStaleDevices()` to remove the ones whose creator is gone.
 *
 * Owner of a device: the NSM pid (header offset 60) and start time (offset 200, minor >= 1) of a
 * readable NK header; else the pid in the name (`nk-<pid>-...`, every ServiceLib name). A
 * `.bell` belongs to the device of the same stem (its header, or the name when the device is gone).
 *
 * Stale = every recorded owner is gone: no /proc/<pid>, a zombie, or a live pid that is another
 * process (start time differs from the header's; without a recorded start time: the process
 * started after the file was last modified, so it cannot have created it). Anything else is kept:
 * a live NSM's devices (also a parallel NSM in the same process), files of other users, files we
 * cannot attribute to a pid. The header is guest-writable memory, so a pid in the name is checked
 * too: a guest that rewrites its header cannot get a live NSM's device removed.
 *
 * @module
 */

import {
  H_NSM_PID,
  H_NSM_START_TIME,
  H_VERSION_MINOR,
  NK_HEADER_SIZE,
  NK_MAGIC,
} from "./device.ts";
import { bootTimeSeconds, CLOCK_TICKS_PER_SECOND, processState } from "./proc_identity.ts";

/** Why an owner was judged gone. */
export type StaleReason = "no-process" | "exited" | "pid-reused";

/** One removed file. */
export interface SweptFile {
  /** Full path that was unlinked. */
  readonly path: string;
  /** Owner pid that was checked. */
  readonly pid: number;
  /** Why the owner counts as gone. */
  readonly reason: StaleReason;
  /** "device" or "bell". */
  readonly kind: "device" | "bell";
}

/** What a sweep did. */
export interface SweepResult {
  /** Files removed. */
  readonly removed: SweptFile[];
  /** Bytes of device files removed. */
  readonly bytesFreed: number;
  /** `nk-*` files kept (live owner, other user, unknown owner). */
  readonly kept: number;
  /** Removals that failed (path and error message); the sweep goes on. */
  readonly failed: { path: string; error: string }[];
}

/** Options of `sweepStaleDevices`. */
export interface SweepOptions {
  /** Directory of device files and doorbells (ServiceLib's `deviceDir`). */
  readonly dir: string;
  /** One line per removed file (and per failure). */
  readonly log?: (line: string) => void;
}

interface Owner {
  readonly pid: number;
  /** Clock ticks since boot; 0 = not recorded. */
  readonly startTime: number;
}

const NAME_PID = /^nk-(\d+)-/;

/** Pid encoded in a ServiceLib device or bell name, or 0. */
function pidFromName(name: string): number {
  const m = NAME_PID.exec(name);
  const pid = m?.[1] !== undefined ? Number(m[1]) : 0;
  return Number.isSafeInteger(pid) && pid > 0 && pid <= 0x7fff_ffff ? pid : 0;
}

/** Owner recorded in the header of the device file at `path`, or null (unreadable, not NK). */
function ownerFromHeader(path: string): Owner | null {
  let f: Deno.FsFile;
  try {
    f = Deno.openSync(path, { read: true });
  } catch {
    return null;
  }
  try {
    // Read, not map: the header is enough and mapping 17 MB of a dead NSM's pages is pointless.
    const buf = new Uint8Array(NK_HEADER_SIZE);
    let got = 0;
    while (got < 256) {
      const n = f.readSync(buf.subarray(got));
      if (n === null || n === 0) break;
      got += n;
    }
    if (got < 256) return null;
    const h = new DataView(buf.buffer);
    if (h.getUint32(0, true) !== NK_MAGIC) return null;
    const pid = h.getUint32(H_NSM_PID, true);
    if (pid === 0) return null;
    const startTime = h.getUint16(H_VERSION_MINOR, true) >= 1
      ? h.getUint32(H_NSM_START_TIME, true) + h.getUint32(H_NSM_START_TIME + 4, true) * 2 ** 32
      : 0;
    return { pid, startTime };
  } finally {
    f.close();
  }
}

/**
 * Why `owner` no longer exists, or null while it may be alive. `fileTimeMs`: the file's last
 * modification, used only when no start time was recorded.
 */
function goneReason(owner: Owner, fileTimeMs: number | null): StaleReason | null {
  const st = processState(owner.pid);
  if (st === undefined) return null; // cannot tell: keep
  if (st === null) return "no-process";
  if (st.exited) return "exited";
  if (owner.startTime !== 0) return st.startTime === owner.startTime ? null : "pid-reused";
  // No start time (older header, name only): a process that started after the file was last
  // written cannot have created it. btime has 1 s resolution, hence the 2 s margin.
  const boot = bootTimeSeconds();
  if (boot === null || fileTimeMs === null) return null;
  const startedMs = (boot + st.startTime / CLOCK_TICKS_PER_SECOND) * 1000;
  return fileTimeMs < startedMs - 2000 ? "pid-reused" : null;
}

function myUid(): number | null {
  try {
    return Deno.uid();
  } catch {
    return null;
  }
}

/**
 * Removes `nk-*` device files and `nk-*.bell` sockets in `dir` whose creating NSM is gone (see the
 * module comment); logs one line per removed file. Never throws: a missing directory is an empty
 * sweep, a failed unlink is reported in `failed`.
 */
export function sweepStaleDevices(o: SweepOptions): SweepResult {
  const log = o.log ?? (() => {});
  const result: {
    removed: SweptFile[];
    bytesFreed: number;
    kept: number;
    failed: { path: string; error: string }[];
  } = { removed: [], bytesFreed: 0, kept: 0, failed: [] };
  // Without a readable /proc every owner would look dead: do nothing rather than delete live
  // devices (e.g. --allow-read limited to the device directory, or not Linux).
  if (!processState("self")) {
    log(`stale-device sweep of ${o.dir} skipped: /proc/self/stat is not readable`);
    return result;
  }
  const uid = myUid();
  const devices = new Map<string, Deno.FileInfo>();
  const bells = new Map<string, Deno.FileInfo>();
  try {
    for (const e of Deno.readDirSync(o.dir)) {
      if (!e.name.startsWith("nk-")) continue;
      let info: Deno.FileInfo;
      try {
        info = Deno.lstatSync(`${o.dir}/${e.name}`);
      } catch {
        continue; // removed meanwhile
      }
      if (info.isSocket && e.name.endsWith(".bell")) bells.set(e.name.slice(0, -5), info);
      else if (info.isFile) devices.set(e.name, info);
    }
  } catch {
    return result; // no directory: nothing to sweep
  }
  const remove = (
    name: string,
    info: Deno.FileInfo,
    kind: "device" | "bell",
    owner: Owner,
    reason: StaleReason,
  ): void => {
    const path = `${o.dir}/${name}`;
    try {
      Deno.removeSync(path);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return; // another sweep was first
      const error = e instanceof Error ? e.message : String(e);
      result.failed.push({ path, error });
      log(`stale ${kind} ${path} (owner pid ${owner.pid}: ${reason}) not removed: ${error}`);
      return;
    }
    result.removed.push({ path, pid: owner.pid, reason, kind });
    if (kind === "device") result.bytesFreed += info.size;
    log(
      `removed stale ${kind} ${path}` +
        (kind === "device" ? ` (${info.size} bytes)` : "") +
        `: owner NSM pid ${owner.pid} ${reason === "pid-reused" ? "gone (pid reused)" : reason}`,
    );
  };
  // The verdict per stem is shared by a device and its bell, so a pair goes (or stays) together.
  const verdicts = new Map<string, { owner: Owner; reason: StaleReason } | null>();
  const judge = (
    stem: string,
    info: Deno.FileInfo,
  ): { owner: Owner; reason: StaleReason } | null => {
    if (verdicts.has(stem)) return verdicts.get(stem)!;
    let verdict: { owner: Owner; reason: StaleReason } | null = null;
    if (uid === null || info.uid === uid) {
      const owners: Owner[] = [];
      const dev = devices.get(stem);
      const fromHeader = dev !== undefined ? ownerFromHeader(`${o.dir}/${stem}`) : null;
      if (fromHeader !== null) owners.push(fromHeader);
      const namePid = pidFromName(stem);
      if (namePid !== 0 && namePid !== fromHeader?.pid) owners.push({ pid: namePid, startTime: 0 });
      const timeMs = (dev ?? info).mtime?.getTime() ?? null;
      for (const w of owners) {
        const reason = goneReason(w, timeMs);
        if (reason === null) {
          verdict = null;
          break;
        }
        verdict ??= { owner: w, reason };
      }
    }
    verdicts.set(stem, verdict);
    return verdict;
  };
  for (const [name, info] of devices) {
    const v = judge(name, info);
    if (v === null) result.kept++;
    else remove(name, info, "device", v.owner, v.reason);
  }
  for (const [stem, info] of bells) {
    const v = judge(stem, info);
    if (v === null) result.kept++;
    else remove(`${stem}.bell`, info, "bell", v.owner, v.reason);
  }
  return result;
}

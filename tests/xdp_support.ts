/**
 * Helpers shared by the XDP integration tests: a hand-built Ethernet/IPv4/UDP frame (so the
 * driver tests do not depend on the stack), a bounded receive loop, and tcpdump in the lab's
 * peer namespace.
 *
 * @module
 */

import type { Link } from "../stacks/link/link.ts";
import { PcapReader, type PcapRecord } from "../stacks/link/pcap.ts";
import type { Lab } from "../xdp/lab.ts";

/** "aa:bb:cc:dd:ee:ff" → 6 bytes. */
export function macBytes(mac: string): Uint8Array {
  return Uint8Array.from(mac.split(":").map((h) => parseInt(h, 16)));
}

/** "198.18.0.1" → 4 bytes. */
export function ipv4Bytes(ip: string): Uint8Array {
  return Uint8Array.from(ip.split(".").map((d) => parseInt(d, 10)));
}

/** Internet checksum of `b` (RFC 1071). */
export function inetChecksum(b: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i + 1 < b.length; i += 2) sum += (b[i]! << 8) | b[i + 1]!;
  if (b.length % 2 === 1) sum += b[b.length - 1]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** Fields of `udpFrame`. */
export interface UdpFrameSpec {
  readonly srcMac: string;
  readonly dstMac: string;
  readonly srcIp: string;
  readonly dstIp: string;
  readonly srcPort: number;
  readonly dstPort: number;
  readonly payload: Uint8Array;
}

/** Writes an Ethernet/IPv4/UDP frame (IP checksum set, UDP checksum 0 = none) into `out`. */
export function writeUdpFrame(out: Uint8Array, s: UdpFrameSpec): number {
  const len = 14 + 20 + 8 + s.payload.length;
  const v = new DataView(out.buffer, out.byteOffset, len);
  out.set(macBytes(s.dstMac), 0);
  out.set(macBytes(s.srcMac), 6);
  v.setUint16(12, 0x0800);
  v.setUint8(14, 0x45);
  v.setUint8(15, 0);
  v.setUint16(16, 20 + 8 + s.payload.length);
  v.setUint32(18, 0x4000); // id 0, DF
  v.setUint8(22, 64);
  v.setUint8(23, 17);
  v.setUint16(24, 0);
  out.set(ipv4Bytes(s.srcIp), 26);
  out.set(ipv4Bytes(s.dstIp), 30);
  v.setUint16(24, inetChecksum(out.subarray(14, 34)));
  v.setUint16(34, s.srcPort);
  v.setUint16(36, s.dstPort);
  v.setUint16(38, 8 + s.payload.length);
  v.setUint16(40, 0);
  out.set(s.payload, 42);
  return len;
}

/** Builds a UDP frame in a new buffer. */
export function udpFrame(s: UdpFrameSpec): Uint8Array {
  const out = new Uint8Array(42 + s.payload.length);
  writeUdpFrame(out, s);
  return out;
}

/**
 * Receives from `link` (copying each frame) until `done(frames)` or `timeoutMs`; also flushes
 * so pending transmits drain. Bounded by the timeout.
 */
export async function collect(
  link: Link & { wait(ms: number): Promise<boolean> },
  done: (frames: Uint8Array[]) => boolean,
  timeoutMs: number,
): Promise<Uint8Array[]> {
  const frames: Uint8Array[] = [];
  const deadline = Date.now() + timeoutMs;
  const push = (f: Uint8Array): void => {
    frames.push(f.slice());
  };
  while (!done(frames) && Date.now() < deadline) {
    const n = link.receive(push, 64);
    link.flush();
    if (n === 0) await link.wait(20);
  }
  return frames;
}

/** UDP payload of an Ethernet/IPv4/UDP frame to `port`, or null. */
export function udpPayloadTo(frame: Uint8Array, port: number): Uint8Array | null {
  if (frame.length < 42 || frame[12] !== 0x08 || frame[13] !== 0x00 || frame[23] !== 17) {
    return null;
  }
  const ihl = (frame[14]! & 0xf) * 4;
  const u = 14 + ihl;
  if (((frame[u + 2]! << 8) | frame[u + 3]!) !== port) return null;
  const len = (frame[u + 4]! << 8) | frame[u + 5]!;
  return frame.subarray(u + 8, u + len);
}

/** A tcpdump capture running in the lab's peer namespace. */
export class PeerCapture implements AsyncDisposable {
  readonly #proc: Deno.ChildProcess;
  readonly #file: string;
  #stderr = "";

  private constructor(proc: Deno.ChildProcess, file: string) {
    this.#proc = proc;
    this.#file = file;
  }

  /**
   * Starts `tcpdump -c count filter` on the peer interface; resolves once it listens. A 16 MiB
   * kernel buffer (`-B`) holds a test's whole burst even when tcpdump gets no CPU on a loaded
   * machine; the snaplen (2048) keeps whole every frame these tests send (they compare bytes).
   */
  static async start(lab: Lab, filter: string, count: number): Promise<PeerCapture> {
    const file = await Deno.makeTempFile({ suffix: ".pcap" });
    const proc = lab.spawnPeer([
      ...["tcpdump", "-i", lab.peerIf, "-n", "-U", "-Q", "in", "-B", "16384", "-s", "2048"],
      ...["-c", String(count), "-w", file, filter],
    ]);
    const cap = new PeerCapture(proc, file);
    const reader = proc.stderr.getReader();
    const dec = new TextDecoder();
    // Generous: starting a process on a loaded 2-core machine can take seconds. (A read that
    // never returns is bounded by the test itself; tcpdump prints or exits promptly.)
    const deadline = Date.now() + 30_000;
    while (!cap.#stderr.includes("listening on") && Date.now() < deadline) {
      const r = await reader.read();
      if (r.done) break;
      cap.#stderr += dec.decode(r.value);
    }
    // Keep draining stderr so tcpdump never blocks on it.
    (async () => {
      for (;;) {
        const r = await reader.read().catch(() => ({ done: true, value: undefined }));
        if (r.done) break;
        cap.#stderr += dec.decode(r.value);
      }
    })();
    if (!cap.#stderr.includes("listening on")) {
      await cap.stop();
      throw new Error(`tcpdump did not start: ${cap.#stderr}`);
    }
    return cap;
  }

  /** tcpdump's stderr so far (its packet and kernel-drop counts once it has exited). */
  get log(): string {
    return this.#stderr;
  }

  /** Waits up to `timeoutMs` for tcpdump to exit (after `count` packets), then stops it. */
  async records(timeoutMs: number): Promise<PcapRecord[]> {
    const timer = setTimeout(() => {
      try {
        this.#proc.kill("SIGINT");
      } catch { /* already gone */ }
    }, timeoutMs);
    await this.#proc.status;
    clearTimeout(timer);
    await this.#proc.stdout.cancel().catch(() => {});
    const bytes = await Deno.readFile(this.#file);
    if (bytes.length === 0) return [];
    return new PcapReader(bytes).records();
  }

  /** Kills tcpdump (if running) and removes the file. */
  async stop(): Promise<void> {
    try {
      this.#proc.kill("SIGKILL");
    } catch { /* already exited */ }
    await this.#proc.status;
    await this.#proc.stdout.cancel().catch(() => {});
    await Deno.remove(this.#file).catch(() => {});
  }

  /** Same as `stop()`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }
}

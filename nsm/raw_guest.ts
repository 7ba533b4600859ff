/**
 * A raw NQE guest for tests, benchmarks and the hostile-guest program: attaches through the
 * control socket like GuestLib but writes NQEs by hand (any op, any field, any ring index),
 * so tests can send exactly the bad input a broken or malicious guest would.
 *
 * @module
 */

import { GuestDevice, type GuestQueueSet } from "./device.ts";
import { decodeNqe, encodeNqe, Nqe, NQE_RESERVED } from "./nqe.ts";
import type { RingConsumer } from "./ring.ts";

/** One attached raw guest. */
export class RawGuest {
  /** Guest id the NSM assigned. */
  readonly id: number;
  /** The device. */
  readonly dev: GuestDevice;
  /** The control connection. */
  readonly ctl: Deno.Conn;
  /** Queue set 0. */
  readonly qs: GuestQueueSet;
  #req = 1;

  private constructor(id: number, dev: GuestDevice, ctl: Deno.Conn) {
    this.id = id;
    this.dev = dev;
    this.ctl = ctl;
    this.qs = dev.queueSets[0]!;
  }

  /** Attaches to the NSM at `ctlPath`. */
  static async attach(ctlPath: string): Promise<RawGuest> {
    const ctl = await Deno.connect({ transport: "unix", path: ctlPath });
    await ctl.write(
      new TextEncoder().encode(JSON.stringify({ v: 1, type: "attach", pid: Deno.pid }) + "\n"),
    );
    const buf = new Uint8Array(1024);
    let len = 0;
    for (;;) {
      const n = await ctl.read(buf.subarray(len));
      if (n === null) throw new Error("the NSM closed the control socket");
      len += n;
      if (buf.subarray(0, len).includes(10)) break;
    }
    const msg = JSON.parse(new TextDecoder().decode(buf.subarray(0, len)).trim());
    if (msg.error) throw new Error(msg.error);
    const dev = await GuestDevice.attach(msg.device);
    return new RawGuest(msg.guest, dev, ctl);
  }

  /**
   * Writes one request on the job ring (or the send ring with `send`); returns its request
   * id, or -1 when the ring is full. `reserved` writes the reserved byte (hostile tests).
   */
  submit(fill: (n: Nqe) => void, send = false, reserved = 0): number {
    const ring = send ? this.qs.send : this.qs.job;
    if (ring.claim(1) === 0) return -1;
    const n = new Nqe();
    n.requestId = this.#req++;
    fill(n);
    const slot = ring.slot(0);
    encodeNqe(ring.view, slot, n);
    if (reserved !== 0) ring.view.setUint8(slot + NQE_RESERVED, reserved);
    ring.publish(1);
    this.dev.bell.notify();
    return n.requestId;
  }

  /** Takes every completion available now. */
  completions(): Nqe[] {
    return this.#drain(this.qs.completion);
  }

  /** Takes every receive-ring entry available now. */
  receives(): Nqe[] {
    return this.#drain(this.qs.receive);
  }

  /** Decodes every entry `r` holds now, frees the slots and rings the NSM's bell if any. */
  #drain(r: RingConsumer): Nqe[] {
    const out: Nqe[] = [];
    const n = r.available(1 << 20);
    for (let i = 0; i < n; i++) out.push(decodeNqe(r.view, r.slot(i), new Nqe()));
    if (n > 0) {
      r.release(n);
      this.dev.bell.notify();
    }
    return out;
  }

  /** Writes a raw producer index into a ring this guest produces (hostile: index jumps). */
  corruptIndex(ring: "job" | "send", value: number): void {
    const r = this.qs[ring];
    new Uint32Array(r.view.buffer, r.view.byteOffset, 1)[0] = value >>> 0;
    this.dev.bell.notify();
  }

  /** Detaches (the NSM sees EOF and resets this guest's sockets). */
  close(): void {
    this.dev.close();
    try {
      this.ctl.close();
    } catch {
      // closed
    }
  }
}

/**
 * A simple store-and-forward Ethernet switch node: a static MAC -> port table (filled by the
 * topology), flooding of broadcast, multicast and unknown unicast to every other port, and no
 * forwarding delay of its own (queueing happens in the egress ports' channels).
 *
 * Static rather than learning so a topology's forwarding never depends on which host spoke
 * first; `learning: true` adds source-address learning for ad-hoc tests.
 *
 * @module
 */

import type { Instant } from "../stacks/time.ts";
import { NEVER } from "../stacks/time.ts";
import { SimPort } from "./port.ts";
import type { SimNode, Simulator } from "./simulator.ts";

/** Options for `EthernetSwitch`. */
export interface SwitchOptions {
  /** Name; ports are called `<name>.p<i>`. */
  name: string;
  /** Number of ports. */
  ports: number;
  /** Layer-3 MTU of every port. Default 9000 so the switch never limits the hosts' MTU. */
  mtu?: number;
  /** Learn source MACs as frames arrive. Default false. */
  learning?: boolean;
  /** Receive queue of each port, frames. Default 4096. */
  rxQueueFrames?: number;
}

/** Counters of a switch. */
export class SwitchStats {
  /** Frames forwarded to one port by the table. */
  forwarded = 0;
  /** Frames flooded (broadcast, multicast, unknown unicast). */
  flooded = 0;
  /** Frames whose table entry is the ingress port (filtered, not sent back). */
  filtered = 0;
  /** Frames shorter than an Ethernet header. */
  runts = 0;
  /** Copies the egress port refused (its transmit queue full). */
  egressBlocked = 0;
}

/** Packs a 6-byte MAC at `off` into a number key. */
function macKey(b: Uint8Array, off: number): number {
  return (
    (b[off]! * 0x10000000000) +
    (((b[off + 1]! << 24) >>> 0) + (b[off + 2]! << 16) + (b[off + 3]! << 8) + b[off + 4]!) *
      0x100 +
    b[off + 5]!
  );
}

/** A static-table Ethernet switch. */
export class EthernetSwitch implements SimNode {
  /** Name. */
  readonly name: string;
  /** Ports in index order. */
  readonly ports: readonly SimPort[];
  /** Counters. */
  readonly stats: SwitchStats = new SwitchStats();
  readonly #table = new Map<number, number>();
  readonly #learning: boolean;
  readonly #dirty: boolean[];
  #ingress = 0;
  readonly #onFrame: (frame: Uint8Array) => void;

  /** Creates the switch and its ports and adds it to `sim` as a node. */
  constructor(sim: Simulator, options: SwitchOptions) {
    this.name = options.name;
    const ports: SimPort[] = [];
    for (let i = 0; i < options.ports; i++) {
      const opts = {
        name: `${options.name}.p${i}`,
        mtu: options.mtu ?? 9000,
        rxQueueFrames: options.rxQueueFrames ?? 4096,
      };
      ports.push(new SimPort(sim, opts));
    }
    this.ports = ports;
    this.#learning = options.learning ?? false;
    this.#dirty = new Array<boolean>(ports.length).fill(false);
    // One closure for the switch's life, not one per frame.
    this.#onFrame = (frame) => this.#forward(frame);
    sim.addNode(this, ports);
  }

  /** Adds a static entry: frames to `mac` leave through port `port`. */
  addEntry(mac: Uint8Array, port: number): void {
    this.#table.set(macKey(mac, 0), port);
  }

  /** The port a frame to `mac` leaves by, or undefined (flooded). */
  lookup(mac: Uint8Array): number | undefined {
    return this.#table.get(macKey(mac, 0));
  }

  /** Forwards everything queued at every port. */
  poll(_now: Instant): void {
    const ports = this.ports;
    for (let i = 0; i < ports.length; i++) {
      this.#ingress = i;
      ports[i]!.receive(this.#onFrame, Number.POSITIVE_INFINITY);
    }
    const dirty = this.#dirty;
    for (let i = 0; i < ports.length; i++) {
      if (dirty[i]) {
        dirty[i] = false;
        ports[i]!.flush();
      }
    }
  }

  /** A switch acts only when frames arrive. */
  pollAt(): Instant {
    return NEVER;
  }

  #forward(frame: Uint8Array): void {
    const stats = this.stats;
    if (frame.length < 14) {
      stats.runts++;
      return;
    }
    const ingress = this.#ingress;
    if (this.#learning && (frame[6]! & 1) === 0) this.#table.set(macKey(frame, 6), ingress);
    if ((frame[0]! & 1) === 0) {
      const out = this.#table.get(macKey(frame, 0));
      if (out !== undefined) {
        if (out === ingress) stats.filtered++;
        else {
          stats.forwarded++;
          this.#send(out, frame);
        }
        return;
      }
    }
    stats.flooded++;
    const ports = this.ports;
    for (let i = 0; i < ports.length; i++) if (i !== ingress) this.#send(i, frame);
  }

  #send(i: number, frame: Uint8Array): void {
    const port = this.ports[i]!;
    const buf = port.transmitBuffer(frame.length);
    if (buf === null) {
      this.stats.egressBlocked++;
      return;
    }
    buf.set(frame);
    port.commit(frame.length);
    this.#dirty[i] = true;
    // Keep the port's transmit queue from filling within one big poll.
    if (port.txPending >= 256) port.flush();
  }
}

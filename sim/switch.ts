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
  /** Frames or copies the egress port refused (its transmit queue full). */
  egressBlocked = 0;
}

/** `#route()` answer: send to every port but the ingress. */
const FLOOD = -1;
/** `#route()` answer: drop (runt, or destination behind the ingress port). */
const DISCARD = -2;

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
  /** Bumped on every table change; invalidates the per-ingress caches. */
  #version = 1;
  readonly #cacheMac: Uint8Array;
  readonly #cacheOut: Int32Array;
  readonly #cacheVersion: Uint32Array;

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
    this.#cacheMac = new Uint8Array(ports.length * 6);
    this.#cacheOut = new Int32Array(ports.length);
    this.#cacheVersion = new Uint32Array(ports.length);
    sim.addNode(this, ports);
  }

  /** Adds a static entry: frames to `mac` leave through port `port`. */
  addEntry(mac: Uint8Array, port: number): void {
    this.#learn(macKey(mac, 0), port);
  }

  /** The port a frame to `mac` leaves by, or undefined (flooded). */
  lookup(mac: Uint8Array): number | undefined {
    return this.#table.get(macKey(mac, 0));
  }

  /** Forwards everything queued at every port. */
  poll(_now: Instant): void {
    const ports = this.ports;
    const dirty = this.#dirty;
    const stats = this.stats;
    for (let i = 0; i < ports.length; i++) {
      const port = ports[i]!;
      for (let f = port.takeFrame(); f !== null; f = port.takeFrame()) {
        const out = this.#route(f.view, i);
        if (out >= 0) {
          // Known unicast: the frame itself moves to the egress port, no copy.
          stats.forwarded++;
          const egress = ports[out]!;
          if (!egress.sendFrame(f)) stats.egressBlocked++;
          else if (egress.txPending >= 256) egress.flush();
          else dirty[out] = true;
          continue;
        }
        if (out === FLOOD) {
          stats.flooded++;
          for (let k = 0; k < ports.length; k++) if (k !== i) this.#send(k, f.view);
        }
        f.pool.release(f);
      }
    }
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

  /** Egress port index for a frame from `ingress`, or FLOOD, or DISCARD (counted). */
  #route(frame: Uint8Array, ingress: number): number {
    const stats = this.stats;
    if (frame.length < 14) {
      stats.runts++;
      return DISCARD;
    }
    if (this.#learning && (frame[6]! & 1) === 0) this.#learn(macKey(frame, 6), ingress);
    if ((frame[0]! & 1) !== 0) return FLOOD;
    // One-entry cache per ingress port: bulk flows repeat the same destination, and the
    // 48-bit key is a heap number whose Map lookup is comparatively slow.
    const cache = this.#cacheMac;
    const c = ingress * 6;
    if (
      this.#cacheVersion[ingress] === this.#version && cache[c] === frame[0] &&
      cache[c + 1] === frame[1] && cache[c + 2] === frame[2] && cache[c + 3] === frame[3] &&
      cache[c + 4] === frame[4] && cache[c + 5] === frame[5]
    ) {
      return this.#cacheOut[ingress]!;
    }
    const found = this.#table.get(macKey(frame, 0));
    if (found === undefined) return FLOOD;
    let out = found;
    if (out === ingress) {
      stats.filtered++;
      out = DISCARD;
    }
    cache.set(frame.subarray(0, 6), c);
    this.#cacheOut[ingress] = out;
    this.#cacheVersion[ingress] = this.#version;
    return out;
  }

  #learn(key: number, port: number): void {
    if (this.#table.get(key) === port) return;
    this.#table.set(key, port);
    this.#version++;
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

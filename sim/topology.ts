/**
 * Ready-made topologies: a point-to-point link and a dumbbell (n senders and n receivers
 * behind two switches joined by one bottleneck link). They create ports and channels and fill
 * the switches' MAC tables; the caller builds hosts on the returned ports and adds them as
 * nodes (`sim.addNode(host, [port])`).
 *
 * Channel names (and hence their random streams) are derived from `prefix` and the position in
 * the topology, so adding a flow never changes the loss pattern of an existing link.
 *
 * @module
 */

import { Channel } from "./channel.ts";
import type { ChannelParams } from "./channel.ts";
import { SimPort } from "./port.ts";
import type { Simulator } from "./simulator.ts";
import { EthernetSwitch } from "./switch.ts";

export type { ChannelParams } from "./channel.ts";

/** Options shared by the topology helpers. */
export interface HostPortOptions {
  /** Host MTU. Default 1500. */
  mtu?: number;
  /** Host ports push back on the stack when their access queue is full. Default false. */
  backpressure?: boolean;
  /** Receive queue of host ports, frames. Default 1024. */
  rxQueueFrames?: number;
}

/** Parameters of `pointToPoint`. */
export interface PointToPointParams extends ChannelParams, HostPortOptions {
  /** Names of the two ports and prefix of the channels. Default "a" and "b". */
  names?: readonly [string, string];
  /** Overrides for the b->a direction (default: same as a->b). */
  reverse?: Partial<ChannelParams>;
}

/** Result of `pointToPoint`. */
export interface PointToPoint {
  /** Port of host a. */
  a: SimPort;
  /** Port of host b. */
  b: SimPort;
  /** Channel a -> b. */
  ab: Channel;
  /** Channel b -> a. */
  ba: Channel;
}

/** Connects `x` and `y` with a channel each way; returns [x->y, y->x]. */
export function connect(
  sim: Simulator,
  x: SimPort,
  y: SimPort,
  xy: ChannelParams,
  yx: ChannelParams,
): [Channel, Channel] {
  const c1 = new Channel(sim, `${x.name}->${y.name}`, xy);
  const c2 = new Channel(sim, `${y.name}->${x.name}`, yx);
  c1.attach(x, y);
  c2.attach(y, x);
  return [c1, c2];
}

function hostPort(sim: Simulator, name: string, o: HostPortOptions): SimPort {
  const opts: ConstructorParameters<typeof SimPort>[1] = { name };
  if (o.mtu !== undefined) opts.mtu = o.mtu;
  if (o.backpressure !== undefined) opts.backpressure = o.backpressure;
  if (o.rxQueueFrames !== undefined) opts.rxQueueFrames = o.rxQueueFrames;
  return new SimPort(sim, opts);
}

/** Two hosts joined by a link with `params` each way (`reverse` overrides b->a). */
export function pointToPoint(sim: Simulator, params: PointToPointParams): PointToPoint {
  const [na, nb] = params.names ?? ["a", "b"];
  const a = hostPort(sim, na, params);
  const b = hostPort(sim, nb, params);
  const reverse: ChannelParams = { ...params, ...(params.reverse ?? {}) };
  const [ab, ba] = connect(sim, a, b, params, reverse);
  return { a, b, ab, ba };
}

/** Parameters of `dumbbell`. */
export interface DumbbellParams extends HostPortOptions {
  /** Number of sender/receiver pairs. */
  n: number;
  /** The bottleneck, left switch -> right switch (the data direction). */
  bottleneck: ChannelParams;
  /** The bottleneck's reverse direction (ACKs). Default: same rate/delay/queue, no impairments. */
  bottleneckReverse?: ChannelParams;
  /**
   * Access links (both directions), or a function giving those of sender/receiver `i`, e.g. to
   * vary RTTs per flow.
   */
  access: ChannelParams | ((i: number, side: "sender" | "receiver") => ChannelParams);
  /** Name prefix of ports and channels. Default "db". */
  prefix?: string;
}

/** Result of `dumbbell`. */
export interface Dumbbell {
  /** Sender host ports, s0..s(n-1). */
  senders: SimPort[];
  /** Receiver host ports, r0..r(n-1). */
  receivers: SimPort[];
  /** Bottleneck channel, left -> right (senders to receivers). */
  bottleneck: Channel;
  /** Bottleneck channel, right -> left. */
  bottleneckReverse: Channel;
  /** Switch on the senders' side. */
  left: EthernetSwitch;
  /** Switch on the receivers' side. */
  right: EthernetSwitch;
  /** Access channels of sender i: up (host -> switch) and down (switch -> host). */
  senderAccess: { up: Channel; down: Channel }[];
  /** Access channels of receiver i. */
  receiverAccess: { up: Channel; down: Channel }[];
}

/**
 * n senders on a left switch, n receivers on a right switch, switches joined by the
 * bottleneck. Switch port i (< n) is host i; port n is the bottleneck.
 */
export function dumbbell(sim: Simulator, params: DumbbellParams): Dumbbell {
  const n = params.n;
  const prefix = params.prefix ?? "db";
  const access = params.access;
  const accessOf = typeof access === "function" ? access : (): ChannelParams => access;
  const left = new EthernetSwitch(sim, { name: `${prefix}.L`, ports: n + 1 });
  const right = new EthernetSwitch(sim, { name: `${prefix}.R`, ports: n + 1 });
  const senders: SimPort[] = [];
  const receivers: SimPort[] = [];
  const senderAccess: { up: Channel; down: Channel }[] = [];
  const receiverAccess: { up: Channel; down: Channel }[] = [];
  for (let i = 0; i < n; i++) {
    const s = hostPort(sim, `${prefix}.s${i}`, params);
    const sp = accessOf(i, "sender");
    const [sUp, sDown] = connect(sim, s, left.ports[i]!, sp, sp);
    senders.push(s);
    senderAccess.push({ up: sUp, down: sDown });
    const r = hostPort(sim, `${prefix}.r${i}`, params);
    const rp = accessOf(i, "receiver");
    const [rUp, rDown] = connect(sim, r, right.ports[i]!, rp, rp);
    receivers.push(r);
    receiverAccess.push({ up: rUp, down: rDown });
  }
  const b = params.bottleneck;
  const rev: ChannelParams = params.bottleneckReverse ?? { rateBps: b.rateBps, delay: b.delay };
  if (params.bottleneckReverse === undefined) {
    if (b.queuePackets !== undefined) rev.queuePackets = b.queuePackets;
    if (b.queueBytes !== undefined) rev.queueBytes = b.queueBytes;
  }
  const [bottleneck, bottleneckReverse] = connect(sim, left.ports[n]!, right.ports[n]!, b, rev);
  for (let i = 0; i < n; i++) {
    left.addEntry(senders[i]!.mac, i);
    left.addEntry(receivers[i]!.mac, n);
    right.addEntry(receivers[i]!.mac, i);
    right.addEntry(senders[i]!.mac, n);
  }
  return {
    senders,
    receivers,
    bottleneck,
    bottleneckReverse,
    left,
    right,
    senderAccess,
    receiverAccess,
  };
}

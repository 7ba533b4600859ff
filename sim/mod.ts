/**
 * The deterministic discrete-event network simulator: virtual time, seeded randomness,
 * simulated ports (`Link`s), impaired channels, a switch, and ready-made topologies.
 *
 * ```ts
 * import { dumbbell, QueueMonitor, Simulator } from "./mod.ts";
 * const sim = new Simulator({ seed: 42 });
 * const db = dumbbell(sim, {
 *   n: 2,
 *   bottleneck: { rateBps: 100e6, delay: 10e6, queuePackets: 100, ecnK: 20 },
 *   access: { rateBps: 1e9, delay: 10e3 },
 * });
 * // Build a host (a SimNode running the stack) on each port and bind it:
 * //   sim.addNode(host, [db.senders[0]]);
 * const q = new QueueMonitor(sim, db.bottleneck, 1e6); // 1 ms samples
 * sim.runUntil(10e9); // 10 virtual seconds
 * console.log(db.bottleneck.stats.snapshot(), q.queuePackets);
 * ```
 *
 * Nodes are polled at their `pollAt()` and whenever a frame reaches a bound port; code that
 * changes a node from outside its `poll()` calls `sim.wake(node)`. Same seed, same inputs =>
 * bit-identical runs. Test helpers (Sink, buildFrame, sendAt) live in `./testing.ts`.
 *
 * @module
 */

export { Prng } from "./prng.ts";
export { EventQueue, SimEvent } from "./event_queue.ts";
export type { EventHandler } from "./event_queue.ts";
export { FRAME_OVERHEAD, FramePool, SimFrame } from "./frame.ts";
export {
  NodeSlot,
  SimLivelockError,
  SimTimeError,
  Simulator,
  UnknownNodeError,
} from "./simulator.ts";
export type { DeliverHook, SimNode, SimulatorOptions } from "./simulator.ts";
export { FrameTooLargeError, SimPort, SimPortStats } from "./port.ts";
export type { SimPortOptions } from "./port.ts";
export { Channel, ChannelParamsError, ChannelStats } from "./channel.ts";
export type { ChannelParams } from "./channel.ts";
export { markCongestionExperienced } from "./ecn.ts";
export type { EcnMark } from "./ecn.ts";
export { EthernetSwitch, SwitchStats } from "./switch.ts";
export type { SwitchOptions } from "./switch.ts";
export { MonitorIntervalError, QueueMonitor } from "./monitor.ts";
export { connect, dumbbell, pointToPoint } from "./topology.ts";
export type {
  Dumbbell,
  DumbbellParams,
  HostPortOptions,
  PointToPoint,
  PointToPointParams,
} from "./topology.ts";
export type { Duration, Instant } from "../stacks/time.ts";
export type { Link, LinkCapabilities } from "../stacks/link/link.ts";

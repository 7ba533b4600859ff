/**
 * The deterministic discrete-event network simulator: virtual time, seeded randomness,
 * simulated ports (`Link`s), impaired channels, a switch, and ready-made topologies.
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

/**
 * `deno task nsm`: our TCP/IP stack on a real interface (AF_XDP) or a TAP device, serving
 * echo/discard over TCP and UDP, until SIGINT/SIGTERM.
 *
 * ```sh
 * deno task nsm --link xdp:veth0 --ip 198.18.0.1/24 --ip6 fd00::1/64 --echo 7 --discard 9
 * deno task nsm --link tap:nsmtap0 --ip 198.18.0.1/24 --mtu 9000 --echo 7
 * ```
 *
 * Prints one line starting with `ready` (addresses, link mode, MTU, services) once serving,
 * and one line starting with `stopped` (counters) after a clean shutdown; exit status 0.
 * Misconfigurations exit with status 2 and a message naming the flag to fix.
 *
 * @module
 */

import type { Link } from "../stacks/link/link.ts";
import { collectStartupGarbage, heapSizingHint, youngGenerationBytes } from "./heap.ts";
import { Interface } from "../stacks/tcpip/iface/interface.ts";
import { IpAddress } from "../stacks/tcpip/wire/address.ts";
import { defaultSocketOptions, type TcpConfig } from "../stacks/tcpip/tcp/config.ts";
import { registeredCcNames } from "../stacks/tcpip/tcp/recovery/cc.ts";
import { TcpStack } from "../stacks/tcpip/tcp/stack.ts";
import { MICROSECOND, monotonicNow } from "../stacks/time.ts";
import { kernelMain, splitStackFlag } from "./kernel_nsm.ts";
import type { AttachMode } from "../xdp/bpf.ts";
import type { BindMode } from "../xdp/socket.ts";
import { netdevInfo } from "../xdp/netdev.ts";
import { TapLink } from "../xdp/tap.ts";
import { XdpLink } from "../xdp/xdp_link.ts";
import { libc } from "../stacks/sys/libc.ts";
import { NsmRuntime, type WaitableLink } from "./runtime.ts";
import { type ServiceKind, Services } from "./services.ts";
import { TcpipBackend } from "./backend_tcpip.ts";
import { defaultCtlPath } from "./ctl_path.ts";
import { ServiceLib, ServiceLibError } from "./service_lib.ts";
import { CcHost } from "../cc/host.ts";
import { loadBundledCc } from "./cc_modules.ts";
import { NsmOps, OPS_FLAGS_USAGE, OpsFlagError, type OpsFlags, parseOpsFlags } from "./ops.ts";
import { NSM_GUEST } from "./ops_view.ts";

/** A command-line mistake; the message says which flag and what to give. */
export class NsmUsageError extends Error {
  /** Builds the error. */
  constructor(message: string) {
    super(`${message} (run with --help for usage)`);
    this.name = "NsmUsageError";
  }
}

/** What the command line asks for. */
export interface NsmOptions {
  /** "xdp" or "tap". */
  readonly linkKind: "xdp" | "tap";
  /** Interface (xdp) or TAP device (tap) name. */
  readonly ifname: string;
  /** IPv4 addresses with prefix lengths. */
  readonly ipv4: { address: IpAddress; prefixLength: number }[];
  /** IPv6 addresses with prefix lengths. */
  readonly ipv6: { address: IpAddress; prefixLength: number }[];
  /** IPv4 default gateway. */
  readonly gateway4: IpAddress | undefined;
  /** IPv6 default gateway. */
  readonly gateway6: IpAddress | undefined;
  /** Layer-3 MTU override, or undefined for the link's. */
  readonly mtu: number | undefined;
  /** Services by port. */
  readonly services: { kind: ServiceKind; port: number }[];
  /** AF_XDP bind mode. */
  readonly xdpMode: BindMode;
  /** XDP attach mode. */
  readonly attach: AttachMode;
  /** AF_XDP queues. */
  readonly queues: number;
  /** AF_XDP ring size (descriptors per ring, power of two). */
  readonly ring: number;
  /** RX frames kept posted per queue in the steady state (`--rx-fill`; at most `ring`). */
  readonly rxFill: number;
  /** Accept partial checksums from a local veth peer: auto (veth only), on, off. */
  readonly partialChecksums: "auto" | "on" | "off";
  /** Transmit checksum offload through AF_XDP TX metadata (`--tx-checksum`). */
  readonly txChecksum: "auto" | "on" | "off" | "software";
  /** Who makes the AF_XDP transmit kicks (`--tx-kick`). */
  readonly txKick: "inline" | "thread" | "auto";
  /** TCP congestion control name. */
  readonly congestion: string | undefined;
  /** Busy-poll this long (µs) after the last work before sleeping (`--spin-us`). */
  readonly spinUs: number;
  /** `sched_yield(2)` on every spinning pass without work (`--spin-yield`). */
  readonly spinYield: boolean;
  /** Control socket for guests (ServiceLib), or null with --no-ctl. */
  readonly ctl: string | null;
  /** --ctl was given explicitly (a busy path is then an error, not a warning). */
  readonly ctlGiven: boolean;
}

/** The NSM's TCP settings (`--cc` names the default congestion control when given). */
export function nsmTcpConfig(congestion?: string): Partial<TcpConfig> {
  return {
    synQueueMax: 4096,
    // One ACK per connection per receive batch, as Linux after GRO (bench/e2e: bulk
    // receive 1.9-2.6 -> 3.9 Gbit/s; per-segment ACKs were a third of our frames).
    ackCoalescing: true,
    // Receive buffers grow to the largest window scale 3 expresses (512 KiB; bulk receive
    // +14 %). Past it the scale's granularity no longer divides a 1448-byte segment, window
    // edges fall inside segments, and the receive ring's reads made views again (4 MiB: 7 B per
    // frame, a scavenge every ~8 s at 4 Gbit/s). Send buffers stay at 256 KiB: grown with the
    // congestion window (+5 % bulk send), a loss-based flow filled the AF_XDP TX ring, which
    // nothing bounds as BQL and TCP Small Queues bound Linux's, and the demo's CUBIC and DCTCP
    // RTTs went 0.4 -> 1.5-1.7 ms.
    receiveBufferMax: 0xffff << 3,
    bufferTuningBudget: 1024 * 1024 * 1024,
    ...(congestion !== undefined
      ? { socket: { ...defaultSocketOptions(), congestionControl: congestion } }
      : {}),
  };
}

/** The usage text. */
export const USAGE = `usage: deno task nsm --link xdp:IF|tap:NAME --ip ADDR/LEN [options]

  --link xdp:IF           AF_XDP on interface IF (root); tap:NAME creates TAP device NAME
  --ip ADDR/LEN           IPv4 address and prefix (repeatable)
  --ip6 ADDR/LEN          IPv6 address and prefix (repeatable)
  --gw ADDR               default gateway (IPv4 or IPv6; once per family)
  --mtu N                 layer-3 MTU (default: the interface's; at most what the link carries)
  --echo PORT             RFC 862 echo on TCP and UDP PORT (repeatable)
  --discard PORT          RFC 863 discard on TCP and UDP PORT (repeatable)
  --xdp-mode M            auto | copy | zerocopy (AF_XDP bind mode; default auto)
  --attach M              auto | skb | native (XDP attach mode; auto: native on veth, which
                          turns the peer's GSO off; native elsewhere with fallback to skb)
  --queues N              AF_XDP queues 0..N-1 (default 1)
  --ring N                AF_XDP descriptors per ring, power of two (default 8192, i.e. a
                          32 MiB UMEM per queue: room for the burst of a few thousand
                          connections opening at once while the stack works)
  --rx-fill N             RX frames kept posted per queue while traffic is steady (default
                          1024, at most --ring): the receive path's working set. A burst that
                          fills half of them doubles it, up to --ring; quiet halves it again
  --partial-checksums M   auto | on | off: accept TCP/UDP checksums left partial by a local
                          Linux peer (auto: only on veth)
  --tx-checksum M         auto | on | off | software: TCP checksums completed by the kernel or
                          NIC through AF_XDP TX metadata (auto: on in copy mode when the kernel
                          has it, 6.11+); software: the kernel sums on the CPU; off: we do
  --tx-kick M             inline | thread | auto: who makes the AF_XDP transmit system calls
                          (default inline: the loop; thread: a worker thread beside it, for an
                          NSM with a spare CPU; auto: thread when the process may use 2+ CPUs)
  --cc NAME               TCP congestion control of new connections (default reno; cubic,
                          dctcp, bbr from cc/dist/; change live with deno task ctl cc set)
  --spin-us N             busy-poll N µs after the last packet or request before sleeping
                          (default 200; 0 sleeps at once: least CPU, most latency)
  --spin-yield on|off     sched_yield() on every empty spinning pass (default on), so a
                          guest or peer sharing the NSM's CPU runs instead of waiting out the
                          spin; off only when the NSM has its CPU to itself
  --ctl PATH              control socket guests attach to (GuestLib, nkcat; default
                          $NSM_CTL, $XDG_RUNTIME_DIR/nsm/ctl.sock, /run/nsm/ctl.sock as root)
  --no-ctl                serve no guests
  --stack S               tcpip (default) | kernel: serve guests with the host kernel's
                          sockets instead (see --stack kernel --help)
  --help                  this text

${OPS_FLAGS_USAGE}`;

function parsePrefix(flag: string, text: string, version: 4 | 6): {
  address: IpAddress;
  prefixLength: number;
} {
  const slash = text.indexOf("/");
  if (slash < 0) {
    throw new NsmUsageError(
      `${flag} ${text}: give ADDR/LEN, e.g. ${flag} ${
        version === 4 ? "198.18.0.1/24" : "fd00::1/64"
      }`,
    );
  }
  let address: IpAddress;
  try {
    address = IpAddress.parse(text.slice(0, slash));
  } catch {
    throw new NsmUsageError(`${flag} ${text}: '${text.slice(0, slash)}' is not an IP address`);
  }
  if (address.version !== version) {
    throw new NsmUsageError(
      `${flag} ${text}: an IPv${address.version} address; use ${version === 4 ? "--ip6" : "--ip"}`,
    );
  }
  const lenText = text.slice(slash + 1);
  const max = version === 4 ? 32 : 128;
  const prefixLength = Number(lenText);
  if (!/^\d+$/.test(lenText) || prefixLength > max) {
    throw new NsmUsageError(`${flag} ${text}: prefix length must be 0..${max}`);
  }
  return { address, prefixLength };
}

function parseInteger(flag: string, text: string, lo: number, hi: number): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < lo || n > hi) {
    throw new NsmUsageError(`${flag} ${text}: give an integer in ${lo}..${hi}`);
  }
  return n;
}

function oneOf<T extends string>(flag: string, text: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(text)) {
    throw new NsmUsageError(`${flag} ${text}: give one of ${allowed.join(", ")}`);
  }
  return text as T;
}

/** Parses the command line; throws `NsmUsageError` with a precise message for every mistake. */
export function parseNsmArgs(args: readonly string[]): NsmOptions {
  let link: string | undefined;
  const ipv4: NsmOptions["ipv4"] = [];
  const ipv6: NsmOptions["ipv6"] = [];
  let gateway4: IpAddress | undefined;
  let gateway6: IpAddress | undefined;
  let mtu: number | undefined;
  const services: NsmOptions["services"] = [];
  let xdpMode: BindMode = "auto";
  let attach: AttachMode = "auto";
  let queues = 1;
  let queuesGiven = false;
  let ring = 8192;
  let rxFill: number | undefined;
  let xdpModeGiven = false;
  let partialChecksums: NsmOptions["partialChecksums"] = "auto";
  let txChecksum: NsmOptions["txChecksum"] = "auto";
  let txKick: NsmOptions["txKick"] = "inline";
  let congestion: string | undefined;
  let spinUs = 200;
  let spinYield = true;
  let ctl: string | null = defaultCtlPath();
  let ctlGiven = false;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    let flag = a;
    let value: string | undefined;
    const eq = a.indexOf("=");
    if (a.startsWith("--") && eq > 0) {
      flag = a.slice(0, eq);
      value = a.slice(eq + 1);
    }
    const takeValue = (): string => {
      if (value !== undefined) return value;
      const v = args[i + 1];
      if (v === undefined || v.startsWith("--")) {
        throw new NsmUsageError(`${flag} needs a value`);
      }
      i++;
      return v;
    };
    switch (flag) {
      case "--ctl":
        ctl = takeValue();
        ctlGiven = true;
        break;
      case "--no-ctl":
        ctl = null;
        break;
      case "--link": {
        if (link !== undefined) throw new NsmUsageError("--link given twice; the NSM drives one");
        link = takeValue();
        break;
      }
      case "--ip":
        ipv4.push(parsePrefix(flag, takeValue(), 4));
        break;
      case "--ip6":
        ipv6.push(parsePrefix(flag, takeValue(), 6));
        break;
      case "--gw": {
        const t = takeValue();
        let gw: IpAddress;
        try {
          gw = IpAddress.parse(t);
        } catch {
          throw new NsmUsageError(`--gw ${t}: not an IP address`);
        }
        if (gw.version === 4) {
          if (gateway4 !== undefined) throw new NsmUsageError("--gw: two IPv4 gateways given");
          gateway4 = gw;
        } else {
          if (gateway6 !== undefined) throw new NsmUsageError("--gw: two IPv6 gateways given");
          gateway6 = gw;
        }
        break;
      }
      case "--mtu":
        mtu = parseInteger(flag, takeValue(), 1280, 65000);
        break;
      case "--echo":
      case "--discard": {
        const port = parseInteger(flag, takeValue(), 1, 65535);
        if (services.some((s) => s.port === port)) {
          throw new NsmUsageError(`${flag} ${port}: port ${port} already has a service`);
        }
        services.push({ kind: flag === "--echo" ? "echo" : "discard", port });
        break;
      }
      case "--xdp-mode":
        xdpMode = oneOf(flag, takeValue(), ["auto", "copy", "zerocopy"] as const);
        xdpModeGiven = true;
        break;
      case "--attach":
        attach = oneOf(flag, takeValue(), ["auto", "skb", "native"] as const);
        xdpModeGiven = true;
        break;
      case "--queues":
        queues = parseInteger(flag, takeValue(), 1, 64);
        queuesGiven = true;
        break;
      case "--ring": {
        ring = parseInteger(flag, takeValue(), 64, 16384);
        if ((ring & (ring - 1)) !== 0) {
          throw new NsmUsageError(`--ring ${ring}: give a power of two`);
        }
        queuesGiven = true;
        break;
      }
      case "--rx-fill":
        rxFill = parseInteger(flag, takeValue(), 1, 16384);
        queuesGiven = true;
        break;
      case "--partial-checksums":
        partialChecksums = oneOf(flag, takeValue(), ["auto", "on", "off"] as const);
        break;
      case "--tx-checksum":
        txChecksum = oneOf(flag, takeValue(), ["auto", "on", "off", "software"] as const);
        break;
      case "--tx-kick":
        txKick = oneOf(flag, takeValue(), ["inline", "thread", "auto"] as const);
        break;
      case "--cc": {
        congestion = takeValue();
        const known = registeredCcNames();
        if (!known.includes(congestion)) {
          throw new NsmUsageError(`--cc ${congestion}: give one of ${known.join(", ")}`);
        }
        break;
      }
      case "--spin-us":
        spinUs = parseInteger(flag, takeValue(), 0, 1_000_000);
        break;
      case "--spin-yield":
        spinYield = oneOf(flag, takeValue(), ["on", "off"] as const) === "on";
        break;
      default:
        throw new NsmUsageError(
          a.startsWith("-") ? `unknown flag ${a}` : `unexpected argument '${a}'`,
        );
    }
  }
  if (link === undefined) throw new NsmUsageError("--link is required (xdp:IF or tap:NAME)");
  const m = /^(xdp|tap):(.+)$/.exec(link);
  if (m === null) {
    throw new NsmUsageError(`--link ${link}: give xdp:IF (AF_XDP) or tap:NAME (TAP device)`);
  }
  const linkKind = m[1] as "xdp" | "tap";
  const ifname = m[2]!;
  if (ifname.length > 15 || /[\s/]/.test(ifname)) {
    throw new NsmUsageError(
      `--link ${link}: interface names are 1-15 characters, no '/' or spaces`,
    );
  }
  if (linkKind === "tap" && (xdpModeGiven || queuesGiven)) {
    throw new NsmUsageError(
      "--xdp-mode/--attach/--queues/--ring/--rx-fill apply to --link xdp:IF only",
    );
  }
  if (rxFill !== undefined && rxFill > ring) {
    throw new NsmUsageError(`--rx-fill ${rxFill}: at most --ring (${ring})`);
  }
  if (ipv4.length === 0 && ipv6.length === 0) {
    throw new NsmUsageError("give at least one address: --ip ADDR/LEN or --ip6 ADDR/LEN");
  }
  const onLink = (gw: IpAddress, list: NsmOptions["ipv4"]): boolean =>
    list.some((p) => samePrefix(gw, p.address, p.prefixLength));
  if (gateway4 !== undefined && !onLink(gateway4, ipv4)) {
    throw new NsmUsageError(`--gw ${gateway4}: not inside any --ip prefix`);
  }
  if (
    gateway6 !== undefined && !onLink(gateway6, ipv6) && !gateway6.toString().startsWith("fe80:")
  ) {
    throw new NsmUsageError(`--gw ${gateway6}: not link-local and not inside any --ip6 prefix`);
  }
  return {
    linkKind,
    ifname,
    ipv4,
    ipv6,
    gateway4,
    gateway6,
    mtu,
    services,
    xdpMode,
    attach,
    queues,
    ring,
    rxFill: rxFill ?? Math.min(ring, 1024),
    partialChecksums,
    txChecksum,
    txKick,
    congestion,
    spinUs,
    spinYield,
    ctl,
    ctlGiven,
  };
}

function samePrefix(a: IpAddress, b: IpAddress, len: number): boolean {
  const x = a.bytes, y = b.bytes;
  for (let i = 0; i < x.length && len > 0; i++, len -= 8) {
    const mask = len >= 8 ? 0xff : (0xff << (8 - len)) & 0xff;
    if ((x[i]! & mask) !== (y[i]! & mask)) return false;
  }
  return true;
}

/** A link seen with a smaller MTU than the device's (for `--mtu` below the interface's). */
class MtuLink implements WaitableLink {
  readonly name: string;
  readonly mac: Uint8Array;
  readonly mtu: number;
  readonly capabilities: Link["capabilities"];
  readonly #inner: WaitableLink;
  constructor(inner: WaitableLink, mtu: number) {
    this.#inner = inner;
    this.name = inner.name;
    this.mac = inner.mac;
    this.mtu = mtu;
    this.capabilities = inner.capabilities;
  }
  receive(onFrame: (frame: Uint8Array) => void, max: number): number {
    return this.#inner.receive(onFrame, max);
  }
  transmitBuffer(length: number): Uint8Array | null {
    return this.#inner.transmitBuffer(length);
  }
  commit(length: number): void {
    this.#inner.commit(length);
  }
  flush(): void {
    this.#inner.flush();
  }
  close(): void {
    this.#inner.close();
  }
  wait(timeoutMs: number): Promise<boolean> {
    return this.#inner.wait(timeoutMs);
  }
}

/** The opened device plus a description for the ready line. */
interface OpenedLink {
  readonly link: WaitableLink;
  readonly describe: string;
  readonly stats: () => Record<string, unknown>;
}

function openLink(o: NsmOptions): OpenedLink {
  if (o.linkKind === "tap") {
    const tap = TapLink.open({ ifname: o.ifname, ...(o.mtu !== undefined ? { mtu: o.mtu } : {}) });
    return {
      link: tap,
      describe: `link=tap:${tap.name}`,
      stats: () => ({ ...tap.stats() }),
    };
  }
  // On veth, generic (skb) XDP hands AF_XDP the peer's TSO/GSO super-frames, which do not fit
  // a UMEM frame and are dropped; a native program makes veth turn the peer's GSO off, so the
  // peer segments to the MTU. So "auto" means native on veth here (xdp/ keeps skb for itself).
  const attach = o.attach === "auto" && netdevInfo(o.ifname).driver === "veth"
    ? "native"
    : o.attach;
  const xdp = XdpLink.open({
    ifname: o.ifname,
    queues: o.queues,
    ringSize: o.ring,
    rxFillDepth: o.rxFill,
    mode: o.xdpMode,
    attachMode: attach,
    handleSignals: false,
    partialChecksums: o.partialChecksums === "auto" ? "auto" : o.partialChecksums === "on",
    txChecksumOffload: o.txChecksum,
    txKick: o.txKick,
    onWarning: (m) => console.error(`nsm: ${m}`),
  });
  let link: WaitableLink = xdp;
  if (o.mtu !== undefined) {
    if (o.mtu > xdp.mtu) {
      xdp.close();
      throw new NsmUsageError(
        `--mtu ${o.mtu}: ${o.ifname} carries at most ${xdp.mtu} over AF_XDP ` +
          `(raise the interface MTU first: multi-buffer frames are used when it exceeds one UMEM frame)`,
      );
    }
    if (o.mtu < xdp.mtu) link = new MtuLink(xdp, o.mtu);
  }
  return {
    link,
    describe: `link=xdp:${xdp.name} mode=${xdp.mode} attach=${xdp.attachMode} ` +
      `queues=${xdp.queueIds.length} multi-buffer=${
        xdp.multiBuffer ? "on" : "off"
      } partial-checksums=${
        xdp.capabilities.rxPartialChecksum ? "on" : "off"
      } tx-checksum=${xdp.txChecksum} tx-kick=${xdp.txKick}`,
    stats: () => {
      const s = xdp.stats();
      return {
        rx: s.rxPackets,
        tx: s.txPackets,
        rxMultiBuffer: s.rxMultiBuffer,
        txMultiBuffer: s.txMultiBuffer,
        rxTooLong: s.rxTooLong,
        txNoFrame: s.txNoFrame,
        txRingFull: s.txRingFull,
        rxFillDepth: s.rxFillDepth,
        rxFillGrows: s.rxFillGrows,
        kicks: s.kicks,
        kickThreadKicks: s.kickThreadKicks,
        txChecksumOffloaded: s.txChecksumOffloaded,
        kernel: s.kernel,
      };
    },
  };
}

/** Runs the NSM with `args`; resolves with the exit status. */
export async function main(argv: readonly string[]): Promise<number> {
  // --stack kernel: the host kernel's sockets behind the same ServiceLib (nsm/kernel_nsm.ts).
  let args: readonly string[];
  try {
    const split = splitStackFlag(argv);
    if (split.stack === "kernel") return await kernelMain(split.rest);
    args = split.rest;
  } catch (e) {
    console.error(`nsm: ${(e as Error).message}`);
    return 2;
  }
  if (args.includes("--help") || args.includes("-h")) {
    console.log(USAGE);
    return 0;
  }
  // WebAssembly congestion control (cubic, dctcp, bbr) before parsing: --cc may name them.
  const ccHost = new CcHost();
  const cc = loadBundledCc(ccHost);
  if (cc.missing.length > 0 && cc.loaded.length === 0) {
    console.error(
      `nsm: no congestion-control modules in cc/dist (run deno task build:cc); only reno is available`,
    );
  }
  let o: NsmOptions;
  let opsFlags: OpsFlags;
  try {
    const split = parseOpsFlags(args);
    opsFlags = split.flags;
    o = parseNsmArgs(split.rest);
  } catch (e) {
    if (e instanceof OpsFlagError) {
      console.error(`nsm: ${e.message}`);
      return 2;
    }
    if (e instanceof NsmUsageError) {
      console.error(`nsm: ${e.message}`);
      return 2;
    }
    throw e;
  }
  let opened: OpenedLink;
  try {
    opened = openLink(o);
  } catch (e) {
    console.error(`nsm: ${e instanceof Error ? e.message : String(e)}`);
    return e instanceof NsmUsageError ? 2 : 1;
  }
  const link = opened.link;
  try {
    const iface = new Interface(link, {
      ipv4: o.ipv4,
      ipv6: o.ipv6,
      // A server answers bursts (thousands of SYN-ACKs) to a neighbour it may still be
      // resolving: queue like Linux's unres_qlen rather than the library's 16 packets.
      neighbor: { queuePerEntry: 512, poolSlots: 1024 },
      ...(o.gateway4 !== undefined ? { gateway4: o.gateway4 } : {}),
      ...(o.gateway6 !== undefined ? { gateway6: o.gateway6 } : {}),
    });
    const rand = new Uint32Array(1);
    const tcp = new TcpStack({
      ip: iface,
      random: () => crypto.getRandomValues(rand)[0]!,
      config: nsmTcpConfig(o.congestion),
    });
    iface.register(tcp);
    const udp = iface.createUdp();
    // Guests' sockets and the services share TcpStack's one ready list: the services drain it
    // through the backend's view so neither steals the other's events.
    const backend = new TcpipBackend(tcp, udp);
    const services = new Services(backend.servicesView(), udp);
    for (const s of o.services) services.serve(s.kind, s.port);
    let sl = o.ctl === null
      ? null
      : new ServiceLib(backend, { ctlPath: o.ctl, log: (l) => console.error(`nsm: ${l}`) });
    try {
      await sl?.listen();
    } catch (e) {
      if (!(e instanceof ServiceLibError)) throw e;
      if (o.ctlGiven) {
        console.error(`nsm: ${e.message}`);
        return 2;
      }
      // Only the default path is taken (another NSM on this machine): serve the network
      // without guests rather than fail; --ctl PATH makes it an error.
      console.error(`nsm: ${e.message}; serving without guests`);
      sl = null;
    }
    if (sl !== null) {
      // Operators can swap cc, load modules and change SLAs here: owner and group only.
      try {
        Deno.chmodSync(sl.ctlPath, 0o660);
      } catch (e) {
        console.error(`nsm: chmod 0660 ${sl.ctlPath}: ${(e as Error).message}`);
      }
    }
    // Yielding while spinning: pinned to one CPU with a guest (bench:e2e), a spin without
    // yields held the CPU the guest needed to produce the next request (rr_1b ~4,000 ->
    // 6,000-8,000 trans/s with it, bulk 1.3 -> 1.8-2.0 Gbit/s; bench/RESULTS.md).
    const sys = libc();
    const rt = new NsmRuntime(sl === null ? link : sl.wrapLink(link), iface, {
      spinNs: o.spinUs * MICROSECOND,
      ...(o.spinYield ? { idle: () => void sys.sched_yield() } : {}),
    });
    // Operators: ctl on the shared control socket, metrics, SLAs (nsm/ops.ts).
    const serviceConns = (): { guest: number; stack: TcpStack; id: number }[] =>
      services.connectionIds().map((id) => ({ guest: NSM_GUEST, stack: tcp, id }));
    const resolve = (bid: number): { stack: TcpStack; id: number } | null => {
      const id = backend.tcpIdOf(bid);
      return id < 0 ? null : { stack: tcp, id };
    };
    const guests = sl !== null
      ? sl.guestTable(resolve, serviceConns)
      : { guests: () => [], connections: serviceConns };
    let ops: NsmOps;
    try {
      ops = NsmOps.start({
        flags: opsFlags,
        stacks: [{ name: "tcp", tcp }],
        ifaces: [{ name: link.name, iface }],
        guests,
        ...(sl !== null ? { nqe: () => sl!.stats } : {}),
        ccHost,
        clock: monotonicNow,
        onChange: () => rt.wake(),
      });
    } catch (e) {
      sl?.close(monotonicNow());
      console.error(`nsm: ${e instanceof Error ? e.message : String(e)}`);
      return 2;
    }
    if (sl !== null) {
      sl.setOperators(ops.server);
      sl.setSla(ops.sla);
      sl.onGuest = (event, guest, now): void => {
        if (event === "detach") return ops.guestDetached(guest);
        for (const w of ops.guestAttached(guest, now)) console.error(`nsm: sla: ${w}`);
      };
      sl.onSocket = (guest, bid, stream, now): void => {
        const name = stream ? ops.handler.guestCc(guest) : undefined;
        if (name !== undefined) backend.setCongestion(bid, name, now);
      };
    }
    if (sl !== null) rt.add(sl);
    rt.add(services);
    let signal = "";
    const onSignal = (name: string) => (): void => {
      signal = name;
      rt.stop();
    };
    const onInt = onSignal("SIGINT"), onTerm = onSignal("SIGTERM");
    Deno.addSignalListener("SIGINT", onInt);
    Deno.addSignalListener("SIGTERM", onTerm);
    const addrs = [
      ...o.ipv4.map((a) => `${a.address}/${a.prefixLength}`),
      ...o.ipv6.map((a) => `${a.address}/${a.prefixLength}`),
    ];
    const svc = o.services.map((s) => `${s.kind}:${s.port}`).join(",") || "none";
    const startupGc = collectStartupGarbage(); // before "ready": no guest is served yet
    console.log(
      `ready ${opened.describe} mtu=${link.mtu} mac=${
        [...link.mac].map((b) => b.toString(16).padStart(2, "0")).join(":")
      } addresses=${addrs.join(",")} services=${svc} cc=${tcp.config.socket.congestionControl}${
        sl === null ? "" : ` ctl=${sl.ctlPath}`
      }${ops.metrics === null ? "" : ` metrics=${ops.metrics.url}`}${
        ops.sla === null ? "" : ` sla-link=${ops.sla.link.rate}`
      }`,
    );
    const hint = heapSizingHint();
    if (hint !== null) console.error(`nsm: ${hint}`);
    await rt.run();
    Deno.removeSignalListener("SIGINT", onInt);
    Deno.removeSignalListener("SIGTERM", onTerm);
    sl?.close(monotonicNow()); // guests' sockets are reset, their devices freed
    await ops.close();
    services.close(monotonicNow());
    iface.poll(monotonicNow()); // push the RSTs
    console.log(`stopped ${signal || "stop()"} ${
      JSON.stringify({
        loop: rt.stats,
        heap: { startupGc, youngGenerationMb: Math.round(youngGenerationBytes() / 2 ** 20) },
        services: services.stats,
        ...(sl !== null ? { servicelib: sl.stats } : {}),
        link: opened.stats(),
        drops: iface.drops.snapshot?.() ?? {},
        partialChecksums: iface.counters.partialChecksums,
        txPartialChecksums: iface.counters.txPartialChecksums,
        tcpInternalErrors: tcp.counters.internalErrors,
        tcpDrops: tcp.counters.snapshot(),
        tcp: {
          retransmits: tcp.counters.retransmits,
          resetsSent: tcp.counters.resetsSent,
          cookiesSent: tcp.counters.cookiesSent,
          outputFailures: tcp.counters.outputFailures,
        },
        neighbors: iface.counters.snapshot(),
      })
    }`);
    return 0;
  } catch (e) {
    // Unexpected: keep the stack, it is a bug.
    console.error(`nsm: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    return 1;
  } finally {
    link.close();
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));

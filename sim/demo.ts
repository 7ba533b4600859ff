/**
 * `deno task demo:ping` (the first demo; `deno task demo` is now nsm/demo.ts, whose non-root
 * story is sim/cc_story.ts): two simulated hosts on a 1 Gbit/s link with 1 ms one-way delay ping each
 * other over IPv4 and IPv6 and exchange UDP datagrams (one of them large enough to be
 * fragmented). Prints the ARP/NDP resolution seen on the wire, every echo with its RTT, every
 * datagram, and a summary. Virtual time, fixed seed: the output is the same on every run.
 *
 * @module
 */

import { Simulator } from "./simulator.ts";
import type { SimNode } from "./simulator.ts";
import { pointToPoint } from "./topology.ts";
import type { SimPort } from "./port.ts";
import { Interface } from "../stacks/tcpip/iface/interface.ts";
import type { UdpSocket } from "../stacks/tcpip/iface/udp.ts";
import { IpAddress } from "../stacks/tcpip/wire/address.ts";
import { ARP_REQUEST, ArpRepr } from "../stacks/tcpip/wire/arp.ts";
import { EthernetRepr, ETHERTYPE_ARP, ETHERTYPE_IPV6 } from "../stacks/tcpip/wire/ethernet.ts";
import { Icmpv6Repr } from "../stacks/tcpip/wire/icmpv6.ts";
import { Ipv6Repr } from "../stacks/tcpip/wire/ipv6.ts";
import type { Instant } from "../stacks/time.ts";
import { MILLISECOND } from "../stacks/time.ts";

/** What the demo achieved, for tests and for the summary line. */
export interface DemoSummary {
  pingsSent: number;
  pingsAnswered: number;
  datagramsSent: number;
  datagramsReceived: number;
  framesOnWire: number;
  drops: number;
}

/** A host: an interface plus an application hook run after each poll. */
class Host implements SimNode {
  constructor(readonly iface: Interface, private readonly app: (now: Instant) => void) {}
  poll(now: Instant): void {
    this.iface.poll(now);
    this.app(now);
  }
  pollAt(): Instant {
    return this.iface.pollAt();
  }
}

const ms = (t: Instant): string => `${(t / MILLISECOND).toFixed(3).padStart(8)} ms`;
const macText = (m: Uint8Array): string =>
  [...m].map((b) => b.toString(16).padStart(2, "0")).join(":");

/** Runs the demo, writing lines to `log`; returns the summary. */
export function main(log: (line: string) => void = console.log): DemoSummary {
  const sim = new Simulator({ seed: 1 });
  const link = pointToPoint(sim, { rateBps: 1_000_000_000, delay: MILLISECOND });
  const a = new Interface(link.a, {
    ipv4: [{ address: "198.18.0.1", prefixLength: 24 }],
    ipv6: [{ address: "fd00::1", prefixLength: 64 }],
  });
  const b = new Interface(link.b, {
    ipv4: [{ address: "198.18.0.2", prefixLength: 24 }],
    ipv6: [{ address: "fd00::2", prefixLength: 64 }],
  });
  const names = new Map<SimPort, string>([[link.a, "a"], [link.b, "b"]]);
  const summary: DemoSummary = {
    pingsSent: 0,
    pingsAnswered: 0,
    datagramsSent: 0,
    datagramsReceived: 0,
    framesOnWire: 0,
    drops: 0,
  };

  log("Two simulated hosts on a 1 Gbit/s link with 1 ms one-way delay");
  for (const [n, i] of [["a", a], ["b", b]] as const) {
    log(
      `  host ${n}: mac ${macText(i.mac)}  ${i.ipv4Addresses.join(", ")}/24  ` +
        `${i.ipv6Addresses.slice(1).join(", ")}/64  ${i.linkLocal}`,
    );
  }
  log("");

  // Show neighbour resolution as it crosses the wire.
  const eth = new EthernetRepr(), arp = new ArpRepr(), ip6 = new Ipv6Repr();
  const icmp6 = new Icmpv6Repr();
  sim.onDeliver = (now, port, frame) => {
    summary.framesOnWire++;
    const to = names.get(port) ?? port.name;
    if (eth.parse(frame) !== undefined) return;
    if (eth.ethertype === ETHERTYPE_ARP && arp.parse(eth.payload) === undefined) {
      const tpa = IpAddress.fromV4(arp.tpa), spa = IpAddress.fromV4(arp.spa);
      log(
        arp.operation === ARP_REQUEST
          ? `${ms(now)}  ${to} <- ARP   who-has ${tpa} tell ${spa}`
          : `${ms(now)}  ${to} <- ARP   ${spa} is-at ${macText(arp.sha)}`,
      );
    } else if (eth.ethertype === ETHERTYPE_IPV6 && ip6.parse(eth.payload) === undefined) {
      if (ip6.protocol !== 58 || icmp6.parse(ip6.payload) !== undefined) return;
      const target = IpAddress.fromBytes(icmp6.target);
      if (icmp6.type === 135) {
        log(`${ms(now)}  ${to} <- NDP   neighbor solicitation for ${target}`);
      } else if (icmp6.type === 136) {
        log(`${ms(now)}  ${to} <- NDP   ${target} is-at ${macText(icmp6.targetLla)}`);
      }
    }
  };

  const A4 = IpAddress.parse("198.18.0.1"), B4 = IpAddress.parse("198.18.0.2");
  const A6 = IpAddress.parse("fd00::1"), B6 = IpAddress.parse("fd00::2");
  const ua = a.createUdp(), ub = b.createUdp();
  const sa = ua.bind(null, 40000);
  const sb = ub.bind(null, 7);
  const buf = new Uint8Array(70000);
  const text = new TextDecoder(), enc = new TextEncoder();
  const describe = (n: number): string =>
    n <= 64 ? `"${text.decode(buf.subarray(0, n))}"` : `${n} bytes`;

  // Application of each host: read echo replies and datagrams; b answers every datagram.
  const readEcho = (who: string, i: Interface): void => {
    for (let r = i.takeEchoReply(); r !== null; r = i.takeEchoReply()) {
      summary.pingsAnswered++;
      log(
        `${ms(r.at)}  ${who}: echo reply from ${r.from} seq=${r.seq} ${r.length} bytes ` +
          `rtt=${(r.rtt / MILLISECOND).toFixed(3)} ms`,
      );
    }
  };
  const readUdp = (who: string, s: UdpSocket, now: Instant, answer: boolean): void => {
    for (let r = s.recvFrom(buf); r !== null; r = s.recvFrom(buf)) {
      summary.datagramsReceived++;
      log(`${ms(now)}  ${who}: udp from [${r.address}]:${r.port} ${describe(r.length)}`);
      if (answer) {
        const reply = r.length <= 64
          ? enc.encode(`ack ${text.decode(buf.subarray(0, r.length))}`)
          : enc.encode(`ack ${r.length} bytes`);
        s.sendTo(reply, r.address, r.port);
        summary.datagramsSent++;
      }
    }
  };
  const hostA = new Host(a, (now) => {
    readEcho("a", a);
    readUdp("a", sa, now, false);
  });
  const hostB = new Host(b, (now) => {
    readEcho("b", b);
    readUdp("b", sb, now, true);
  });
  sim.addNode(hostA, [link.a]);
  sim.addNode(hostB, [link.b]);

  // The script: pings both ways and families, then datagrams (one 3000-byte, fragmented).
  const at = (t: number, fn: () => void): void => {
    sim.schedule(t * MILLISECOND, () => {
      fn();
      sim.wake(hostA);
      sim.wake(hostB);
    });
  };
  const payload = new Uint8Array(56).map((_, i) => i);
  const ping = (who: string, i: Interface, dst: IpAddress, seq: number): void => {
    summary.pingsSent++;
    log(`${ms(sim.now)}  ${who}: ping ${dst} seq=${seq}`);
    i.ping(dst, 0x1234, seq, payload, sim.now);
  };
  for (let seq = 1; seq <= 3; seq++) {
    at(10 * (seq - 1), () => ping("a", a, B4, seq));
    at(10 * (seq - 1) + 5, () => ping("a", a, B6, seq));
  }
  at(40, () => ping("b", b, A4, 1));
  at(45, () => ping("b", b, A6, 1));
  const send = (dst: IpAddress, data: Uint8Array, label: string): void => {
    summary.datagramsSent++;
    log(`${ms(sim.now)}  a: udp to [${dst}]:7 ${label}`);
    sa.sendTo(data, dst, 7);
  };
  at(60, () => send(B4, enc.encode("hello over IPv4"), `"hello over IPv4"`));
  at(70, () => send(B6, enc.encode("hello over IPv6"), `"hello over IPv6"`));
  at(80, () => {
    const big = new Uint8Array(3000).map((_, i) => i & 0xff);
    send(B4, big, "3000 bytes (fragmented: link MTU 1500)");
  });
  sim.runUntil(200 * MILLISECOND);

  summary.drops = a.drops.total() + b.drops.total();
  log("");
  log(
    `summary: ${summary.pingsAnswered}/${summary.pingsSent} pings answered, ` +
      `${summary.datagramsReceived}/${summary.datagramsSent} datagrams received, ` +
      `${summary.framesOnWire} frames on the wire, ` +
      `${b.counters.fragments.reassembled} datagram reassembled from ` +
      `${b.counters.fragments.rx} fragments, ${summary.drops} drops`,
  );
  return summary;
}

if (import.meta.main) main();

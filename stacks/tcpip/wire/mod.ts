/**
 * The zero-copy wire layer: views and reprs for Ethernet, ARP, IPv4, IPv6, ICMP, ICMPv6, UDP
 * and TCP, the Internet checksum (with its WebAssembly SIMD path), drop reasons, and a
 * whole-frame walker.
 *
 * @module
 */

export * from "./address.ts";
export * from "./arp.ts";
export * from "./checksum.ts";
export * from "./checksum_simd.ts";
export * from "./drop.ts";
export * from "./ethernet.ts";
export * from "./frame.ts";
export * from "./icmpv4.ts";
export * from "./icmpv6.ts";
export * from "./ipv4.ts";
export * from "./ipv6.ts";
export * from "./tcp.ts";
export * from "./udp.ts";

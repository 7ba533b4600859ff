/**
 * The interface layer: one IP interface over a `Link` (Ethernet, ARP, IPv4, IPv6 + NDP, ICMP),
 * its neighbour cache, routes and path MTU cache, fragment reassembly, UDP sockets, and the
 * contract transports plug into.
 *
 * @module
 */

export * from "./protocol.ts";
export * from "./interface.ts";
export * from "./neighbor.ts";
export * from "./route.ts";
export * from "./reassembly.ts";
export * from "./icmp.ts";
export * from "./echo.ts";
export * from "./udp.ts";
export * from "./router.ts";

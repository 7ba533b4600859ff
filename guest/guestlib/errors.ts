/**
 * Linux errno values from NQE results as the `Deno.errors` classes `Deno.connect` code expects
 * (ConnectionRefused, ConnectionReset, TimedOut, AddrInUse, NotConnected, ...).
 *
 * @module
 */

const NAMES: Record<number, [keyof typeof Deno.errors, string]> = {
  9: ["BadResource", "EBADF: the socket is closed"],
  11: ["WouldBlock", "EAGAIN: try again"],
  22: ["InvalidData", "EINVAL: invalid argument"],
  24: ["Busy", "EMFILE: this guest has too many sockets open; close some"],
  32: ["BrokenPipe", "EPIPE: the sending side is shut down"],
  90: ["InvalidData", "EMSGSIZE: datagram too long"],
  97: ["NotSupported", "EAFNOSUPPORT: address family not supported"],
  98: ["AddrInUse", "EADDRINUSE: address already in use; pick another port"],
  99: ["AddrNotAvailable", "EADDRNOTAVAIL: address not available"],
  101: ["NetworkUnreachable", "ENETUNREACH: no route to the network"],
  103: ["ConnectionAborted", "ECONNABORTED: connection aborted"],
  104: ["ConnectionReset", "ECONNRESET: connection reset by peer (or the NSM went away)"],
  105: ["Busy", "ENOBUFS: this guest's buffer budget is used up; close sockets"],
  107: ["NotConnected", "ENOTCONN: the socket is not connected"],
  110: ["TimedOut", "ETIMEDOUT: connection timed out; check the peer and the path"],
  111: ["ConnectionRefused", "ECONNREFUSED: connection refused; is the server listening?"],
  113: ["NetworkUnreachable", "EHOSTUNREACH: no route to host"],
};

/** The `Deno.errors` instance for a positive errno (`Error` with the errno for others). */
export function errnoError(errno: number, what: string): Error {
  const e = NAMES[errno];
  if (e === undefined) {
    const err = new Error(`${what}: errno ${errno}`);
    (err as { errno?: number }).errno = errno;
    return err;
  }
  const Cls = Deno.errors[e[0]] as unknown as new (m: string) => Error;
  const err = new Cls(`${what}: ${e[1]}`);
  (err as { errno?: number }).errno = errno;
  return err;
}

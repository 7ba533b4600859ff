/**
 * Typed socket errors. Each message says what happened and what the caller should do.
 *
 * @module
 */

/** Base class of every TCP socket error; `code` is a stable errno-like name. */
export class TcpError extends Error {
  /** Stable machine-readable name, e.g. "ECONNREFUSED". */
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
    this.name = "TcpError";
  }
}

/** The peer answered the SYN with RST: nothing listens there. */
export class ConnectionRefused extends TcpError {
  constructor(where: string) {
    super(
      "ECONNREFUSED",
      `connection to ${where} refused: nothing listens on that port; check the address and port or start the server`,
    );
    this.name = "ConnectionRefused";
  }
}

/** The peer reset an established connection. */
export class ConnectionReset extends TcpError {
  constructor(where: string) {
    super(
      "ECONNRESET",
      `connection with ${where} reset by the peer; data in flight may be lost, reconnect and retry idempotent work`,
    );
    this.name = "ConnectionReset";
  }
}

/** Retransmissions or keepalives ran out. */
export class TimedOut extends TcpError {
  constructor(where: string, what: string) {
    super(
      "ETIMEDOUT",
      `connection with ${where} timed out (${what}); the peer or the path is down, check reachability and reconnect`,
    );
    this.name = "TimedOut";
  }
}

/** Another socket already uses the local address and port. */
export class AddressInUse extends TcpError {
  constructor(where: string) {
    super(
      "EADDRINUSE",
      `${where} is already in use; pick another port, close the other socket, or set REUSEADDR for TIME_WAIT leftovers`,
    );
    this.name = "AddressInUse";
  }
}

/** The operation needs a connected socket. */
export class NotConnected extends TcpError {
  constructor(op: string) {
    super("ENOTCONN", `${op} needs a connected socket; call connect() or accept() first`);
    this.name = "NotConnected";
  }
}

/** A non-blocking operation could not make progress now. */
export class WouldBlock extends TcpError {
  constructor(op: string) {
    super("EAGAIN", `${op} would block; wait for readiness from poll()/the ready list and retry`);
    this.name = "WouldBlock";
  }
}

/** The socket id or handle is not (or no longer) valid. */
export class BadSocket extends TcpError {
  constructor(id: number) {
    super(
      "EBADF",
      `socket ${id} does not exist or was closed; do not reuse a socket after close()`,
    );
    this.name = "BadSocket";
  }
}

/** The operation does not fit the socket's state. */
export class InvalidState extends TcpError {
  constructor(op: string, state: string) {
    super("EINVAL", `${op} is not allowed in state ${state}; check the call order`);
    this.name = "InvalidState";
  }
}

/** Sending after shutdown(write) or close(). */
export class BrokenPipe extends TcpError {
  constructor() {
    super("EPIPE", "the sending side was shut down; no more data can be sent on this socket");
    this.name = "BrokenPipe";
  }
}

/** No route or no local address for the destination. */
export class NetworkUnreachable extends TcpError {
  constructor(where: string) {
    super("ENETUNREACH", `no route to ${where}; add an address or route on the interface`);
    this.name = "NetworkUnreachable";
  }
}

/** No free ephemeral port. */
export class AddressNotAvailable extends TcpError {
  constructor(where: string) {
    super(
      "EADDRNOTAVAIL",
      `no free ephemeral port towards ${where}; close idle connections or widen the port range`,
    );
    this.name = "AddressNotAvailable";
  }
}

/** An argument is out of range. */
export class InvalidArgument extends TcpError {
  constructor(what: string) {
    super("EINVAL", what);
    this.name = "InvalidArgument";
  }
}

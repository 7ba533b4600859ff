/**
 * Operating-system access shared by every driver: the one libc FFI table (`LIBC_SYMBOLS`), its
 * lazily opened handle (`libc()`, `Libc`), `errno()`, errno names and the `OsError` base that
 * the domain errors (XdpError, NkOsError) extend, plus the flag constants the callers pass.
 *
 * @module
 */

export * from "./libc.ts";

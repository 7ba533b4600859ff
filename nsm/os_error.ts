/**
 * NK devices' errno advice: `osError()` turns the errno of a failed libc call made while
 * setting up shared memory into an `NkOsError` whose message says what to try. The libc table
 * and handle are the shared ones (stacks/sys/libc.ts).
 *
 * @module
 */

import {
  EACCES,
  EEXIST,
  EINVAL,
  ENOENT,
  ENOMEM,
  ENOSPC,
  EPERM,
  errno as lastErrno,
  errnoName,
  OsError,
} from "../stacks/sys/libc.ts";

/**
 * A libc call failed; `errno` and `code` say why, the message says what to try. `call` is
 * `operation` under the name NK code has always used.
 */
export class NkOsError extends OsError {
  /** Builds the error; the message carries what to do. */
  constructor(call: string, errno: number, what: string, hint: string) {
    super(
      call,
      errno,
      `${call}(${what}) failed with ${errnoName(errno)} (errno ${errno}): ${hint}`,
    );
  }

  /** The failing call, e.g. "mmap". */
  get call(): string {
    return this.operation;
  }
}

/** Hints per errno so each error message says what to do. */
function hintFor(errno: number): string {
  switch (errno) {
    case ENOENT:
      return "the path does not exist; check that the NSM created the device and its path";
    case EACCES:
    case EPERM:
      return "permission denied; run both processes as the same user or fix the file mode";
    case EEXIST:
      return "the file already exists; pick another device name or unlink the stale one";
    case ENOMEM:
      return "out of memory or no huge pages (vm.nr_hugepages = 0); use ordinary pages or a smaller device";
    case ENOSPC:
      return "no space on the tmpfs/hugetlbfs mount; make the device smaller or free /dev/shm";
    case EINVAL:
      return "invalid argument; check sizes (page/huge-page multiple) and flags";
    default:
      return "see the errno for the cause";
  }
}

/** The errno->Error mapper for NK devices: an NkOsError for `call` from the current errno. */
export function osError(call: string, what: string): NkOsError {
  const errno = lastErrno();
  return new NkOsError(call, errno, what, hintFor(errno));
}

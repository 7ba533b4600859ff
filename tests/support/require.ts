/**
 * Test gates for things outside Deno: external tools (tshark, tcpdump, ip) and root.
 *
 * Locally a missing requirement ignores the test (so a laptop without tshark still runs the
 * rest). In CI (`CI=true`) nothing may be silently skipped: the test runs and fails at once
 * with a message saying what to install. Usage:
 *
 * ```ts
 * const tshark = needsTool("tshark");
 * Deno.test({
 *   name: "tshark reads what PcapWriter wrote",
 *   ignore: tshark.ignore,
 *   fn() {
 *     tshark.assert(); // throws MissingRequirementError in CI when tshark is absent
 *     // ...
 *   },
 * });
 * ```
 *
 * Combine gates with `needsAll(needsRoot(), needsTool("ip"))`.
 *
 * @module
 */

/** A requirement was not met in CI, where tests may not be skipped. */
export class MissingRequirementError extends Error {
  /** Builds the error from the description of what is missing. */
  constructor(missing: string) {
    super(
      `${missing}; CI must provide it: add the Debian package to .ci/run's package list`,
    );
    this.name = "MissingRequirementError";
  }
}

/** The outcome of checking a test requirement; see the module comment. */
export interface Requirement {
  /** Pass as `Deno.test({ ignore })`: true only when missing and not in CI. */
  readonly ignore: boolean;
  /** True when everything required is present. */
  readonly available: boolean;
  /** What is missing (for messages), or undefined when available. */
  readonly missing: string | undefined;
  /** Throws `MissingRequirementError` when something is missing; call first in the test. */
  assert(): void;
}

/** True when running under CI (`CI=true`), where missing requirements fail instead of skip. */
export function inCi(): boolean {
  return Deno.env.get("CI") === "true";
}

function requirement(missing: string | undefined): Requirement {
  const available = missing === undefined;
  return {
    ignore: !available && !inCi(),
    available,
    missing,
    assert(): void {
      if (missing !== undefined) throw new MissingRequirementError(missing);
    },
  };
}

/**
 * Finds executable `name` on PATH (or an absolute/relative path) without spawning anything.
 * Returns its path or undefined.
 */
export function findTool(name: string): string | undefined {
  const candidates = name.includes("/")
    ? [name]
    : (Deno.env.get("PATH") ?? "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
      .split(":")
      .filter((d) => d !== "")
      .map((d) => `${d}/${name}`);
  for (const path of candidates) {
    try {
      const st = Deno.statSync(path);
      if (st.isFile && st.mode !== null && (st.mode & 0o111) !== 0) return path;
    } catch {
      // Not in this directory; try the next.
    }
  }
  return undefined;
}

/** Requires executable `name` (searched on PATH). */
export function needsTool(name: string): Requirement {
  return requirement(findTool(name) === undefined ? `tool '${name}' is not on PATH` : undefined);
}

/** Requires running as root (uid 0), e.g. to create network namespaces. */
export function needsRoot(): Requirement {
  return requirement(Deno.uid() === 0 ? undefined : "the test needs root (uid 0)");
}

/** Requires every one of `reqs`; `missing` lists all that are missing. */
export function needsAll(...reqs: Requirement[]): Requirement {
  const missing = reqs.filter((r) => !r.available).map((r) => r.missing);
  return requirement(missing.length === 0 ? undefined : missing.join("; "));
}

/**
 * Where the NSM's control socket lives by default, shared by the NSM (`--ctl`), GuestLib and
 * guest tools so they find each other without flags: `$NSM_CTL` if set; else
 * `$XDG_RUNTIME_DIR/nsm/ctl.sock`; else `/run/nsm/ctl.sock` for root; else
 * `/tmp/nsm-<uid>/ctl.sock`.
 *
 * @module
 */

/** The default control socket path (see the module comment). */
export function defaultCtlPath(): string {
  const env = (name: string): string | undefined => {
    try {
      return Deno.env.get(name);
    } catch {
      return undefined; // no --allow-env: fall through to the fixed paths
    }
  };
  const explicit = env("NSM_CTL");
  if (explicit) return explicit;
  const xdg = env("XDG_RUNTIME_DIR");
  if (xdg) return `${xdg}/nsm/ctl.sock`;
  const uid = Deno.uid();
  if (uid === 0) return "/run/nsm/ctl.sock";
  return `/tmp/nsm-${uid ?? "user"}/ctl.sock`;
}

/**
 * A browser page may open a viewer socket when it is on the server's own origin (the host it asked
 * for) or on one listed in VIEWER_ORIGINS. Compared by host, because a TLS proxy in front of us makes
 * the page's https origin reach us as plain http.
 */
export function viewerOriginAllowed(origin: string, host: string | undefined, allowed: readonly string[]): boolean {
  if (allowed.includes(origin)) return true;
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false; // includes "null" (sandboxed frames, file: pages)
  }
  return (url.protocol === 'http:' || url.protocol === 'https:') && host !== undefined && url.host === host.toLowerCase();
}

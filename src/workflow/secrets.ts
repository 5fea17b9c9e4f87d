/**
 * Inputs whose names look secret (`password`, `api_token`, `client_key`…) are never shown: not in the
 * run's kept inputs, and not where their values end up once `{name}` placeholders are filled (a URL
 * in an error, a selector in a step result, a log line).
 */
const SECRET_NAME = /pass|secret|token|key|credential|auth/i;

export const REDACTED = '[redacted]';

export function isSecretName(name: string): boolean {
  return SECRET_NAME.test(name);
}

/** Inputs as they may be kept and shown: values of secret-looking names are replaced. */
export function redactInputs(inputs: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, isSecretName(k) ? REDACTED : v]));
}

/** How a filled-in value may be spelt by the time it shows in a message: as given, or as a URL parser or encoder wrote it. */
function spellings(value: string): string[] {
  const out = new Set([value, encodeURIComponent(value), encodeURI(value)]);
  // The URL parser percent-encodes a path, a query and a fragment each with its own set of characters.
  try {
    const url = new URL(`http://x/${value}?${value}#${value}`);
    out.add(url.pathname.slice(1));
    out.add(url.search.slice(1));
    out.add(url.hash.slice(1));
  } catch {
    // Not every value parses inside a URL; the other spellings still apply.
  }
  return [...out].filter((s) => s.length > 0);
}

const escapeRegExp = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

export type Redact = (text: string) => string;

/**
 * Replaces every secret input's value (in any spelling above, ignoring case, since a host name is
 * lower-cased) with `[redacted]`. One pass of one pattern, longest spelling first, so a value that
 * contains another is replaced whole and the replacement is never matched again.
 */
export function secretRedactor(inputs: Record<string, unknown>): Redact {
  const values = Object.entries(inputs)
    .filter(([name, v]) => isSecretName(name) && (typeof v === 'string' || typeof v === 'number'))
    .flatMap(([, v]) => spellings(String(v)));
  if (values.length === 0) return (text) => text;
  const pattern = new RegExp([...new Set(values)].sort((a, b) => b.length - a.length).map(escapeRegExp).join('|'), 'gi');
  return (text) => text.replace(pattern, REDACTED);
}

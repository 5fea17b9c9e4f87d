import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';
import { domainToASCII } from 'node:url';
import { ConfigError } from '../common/index.js';

/**
 * Addresses no run may reach, whatever the lists say: link-local ranges (where every cloud puts its
 * instance metadata service, 169.254.169.254 on AWS, GCP, Azure, OCI, DigitalOcean, 169.254.170.2 for
 * ECS task credentials, 169.254.0.23 on Tencent) plus the metadata addresses outside them.
 * IPv6 addresses that carry an IPv4 one are judged as that IPv4 address too (`embeddedIPv4`).
 */
const METADATA_SUBNETS: readonly [string, number, 'ipv4' | 'ipv6'][] = [
  ['169.254.0.0', 16, 'ipv4'], // IPv4 link-local
  ['fe80::', 10, 'ipv6'], // IPv6 link-local
  ['fd00:ec2::254', 128, 'ipv6'], // AWS instance metadata over IPv6
  ['100.100.100.200', 32, 'ipv4'], // Alibaba Cloud metadata
  ['192.0.0.192', 32, 'ipv4'], // Oracle Cloud legacy metadata
];

/** Names of metadata services, refused before any lookup (they may resolve only inside the cloud). */
const METADATA_NAMES = new Set([
  'metadata.google.internal',
  'metadata.goog',
  'metadata',
  'instance-data',
  'instance-data.ec2.internal',
  'metadata.tencentyun.com',
]);

const builtIn = new BlockList();
for (const [net, prefix, type] of METADATA_SUBNETS) builtIn.addSubnet(net, prefix, type);

const METADATA = 'a link-local / cloud metadata address';

type Family = 'ipv4' | 'ipv6';

/** The 16 bytes of a valid IPv6 address in any spelling `isIP` accepts (`::`, a dotted IPv4 tail); no zone. */
function ipv6Bytes(ip: string): number[] {
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(ip);
  const text = dotted ? `${ip.slice(0, dotted.index)}${((Number(dotted[1]) << 8) | Number(dotted[2])).toString(16)}:${((Number(dotted[3]) << 8) | Number(dotted[4])).toString(16)}` : ip;
  const [head = '', tail] = text.split('::');
  const groups = (part: string | undefined): string[] => (part ? part.split(':') : []);
  const left = groups(head);
  const right = groups(tail);
  const words = tail === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  return words.flatMap((w) => {
    const n = parseInt(w, 16);
    return [n >> 8, n & 0xff];
  });
}

/**
 * The IPv4 addresses an IPv6 address stands for under the schemes that carry one inside it, so that
 * a translator or tunnel on the host's network cannot turn a refused IPv4 address into an allowed
 * IPv6 one: IPv4-mapped ::ffff:0:0/96 and SIIT's IPv4-translated ::ffff:0:0:0/96, the deprecated
 * IPv4-compatible ::/96, NAT64's well-known prefix 64:ff9b::/96 and its local-use prefix
 * 64:ff9b:1::/48 (RFC 8215: the operator picks a /48 to /96 inside it, which moves the IPv4 bits
 * (RFC 6052), so every placement is a candidate), 6to4 2002::/16 and Teredo's client 2001::/32.
 */
function embeddedIPv4(ipv6: string): string[] {
  const b = ipv6Bytes(ipv6);
  const byte = (i: number): number => b[i] ?? 0;
  const word = (i: number): number => (byte(i) << 8) | byte(i + 1);
  const zero = (from: number, to: number): boolean => b.slice(from, to).every((x) => x === 0);
  const quad = (...at: number[]): string => at.map(byte).join('.');
  const last = quad(12, 13, 14, 15);
  const found: string[] = [];
  if (zero(0, 10) && word(10) === 0xffff) found.push(last);
  if (zero(0, 8) && word(8) === 0xffff && word(10) === 0) found.push(last);
  // Not ::/112: that holds :: and ::1, the unspecified and loopback addresses, which carry no IPv4 one.
  if (zero(0, 12) && word(12) !== 0) found.push(last);
  if (word(0) === 0x64 && word(2) === 0xff9b && zero(4, 12)) found.push(last);
  if (word(0) === 0x64 && word(2) === 0xff9b && word(4) === 1) {
    // Prefix lengths 48, 56, 64 and 96; byte 8 (bits 64-71) is never part of the IPv4 address.
    found.push(quad(6, 7, 9, 10), quad(7, 9, 10, 11), quad(9, 10, 11, 12), last);
  }
  if (word(0) === 0x2002) found.push(quad(2, 3, 4, 5));
  // Teredo stores the client's address with every bit inverted.
  if (word(0) === 0x2001 && word(2) === 0) found.push([12, 13, 14, 15].map((i) => byte(i) ^ 0xff).join('.'));
  return [...new Set(found)];
}

/** A URL's host: an IP address (brackets removed) or a lower-case ASCII name without a trailing dot. */
type Host = { ip: string; family: Family } | { name: string };

function ipOf(text: string): { ip: string; family: Family } | null {
  const bare = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
  const v = isIP(bare);
  return v === 0 ? null : { ip: bare, family: v === 4 ? 'ipv4' : 'ipv6' };
}

function normalizeName(name: string): string {
  const ascii = domainToASCII(name.toLowerCase()) || name.toLowerCase();
  return ascii.endsWith('.') ? ascii.slice(0, -1) : ascii;
}

/** Host names, `*.domain` (any depth of subdomain, not the domain itself), IP addresses and CIDR blocks. */
class HostList {
  private readonly names = new Set<string>();
  private readonly suffixes: string[] = [];
  private readonly ips = new BlockList();
  /** The same entries as Chromium proxy bypass rules, which also match the host as written. */
  readonly bypassRules: string[] = [];

  constructor(
    private readonly setting: string,
    entries: readonly string[],
  ) {
    for (const raw of entries) this.add(raw.trim().toLowerCase(), raw);
  }

  private add(entry: string, raw: string): void {
    const bad = (what: string) => new ConfigError(`${this.setting} entry ${JSON.stringify(raw)} ${what}`);
    const slash = entry.indexOf('/');
    if (slash >= 0) {
      const ip = ipOf(entry.slice(0, slash));
      const prefix = Number(entry.slice(slash + 1));
      const max = ip?.family === 'ipv4' ? 32 : 128;
      if (!ip || !/^\d{1,3}$/.test(entry.slice(slash + 1)) || prefix > max) throw bad('is not a valid CIDR block');
      this.ips.addSubnet(ip.ip, prefix, ip.family);
      this.bypassRules.push(`${ip.ip}/${prefix}`);
      return;
    }
    const ip = ipOf(entry);
    if (ip) {
      this.ips.addAddress(ip.ip, ip.family);
      this.bypassRules.push(ip.family === 'ipv6' ? `[${ip.ip}]` : ip.ip);
      return;
    }
    const wildcard = entry.startsWith('*.');
    const name = normalizeName(wildcard ? entry.slice(2) : entry);
    if (!name || name.includes('*')) throw bad('is not a host name, *.domain, IP address or CIDR block');
    if (wildcard) this.suffixes.push(`.${name}`);
    else this.names.add(name);
    this.bypassRules.push(wildcard ? `*.${name}` : name);
  }

  get empty(): boolean {
    return this.names.size === 0 && this.suffixes.length === 0 && this.ips.rules.length === 0;
  }

  hasIp(ip: string, family: Family): boolean {
    return this.ips.check(ip, family);
  }

  has(host: Host): boolean {
    if ('ip' in host) return this.hasIp(host.ip, host.family);
    return this.names.has(host.name) || this.suffixes.some((s) => host.name.endsWith(s));
  }
}

/** Every address a name resolves to; [] when it does not resolve. */
export type Resolve = (name: string) => Promise<{ address: string; family: number }[]>;

export interface NavigationPolicyOptions {
  /** When not empty, the only hosts that may be visited (matched against the URL's host as written). */
  allowedHosts?: readonly string[];
  /** Never visited; matched against the host as written and, for IPs and CIDR blocks, what it resolves to. */
  blockedHosts?: readonly string[];
  /** DNS lookup; the system resolver (getaddrinfo, like Chromium's) unless a test gives another. */
  resolve?: Resolve;
  /** How long a name's addresses are reused. */
  cacheMs?: number;
}

const systemResolve: Resolve = (name) => lookup(name, { all: true, verbatim: true });

const MAX_CACHED_NAMES = 1000;

/**
 * Decides which URLs a run's browser may load: http and https only; never link-local or cloud
 * metadata addresses, nor names that resolve to one; BLOCKED_HOSTS always win; a non-empty
 * ALLOWED_HOSTS is an allowlist. Loopback and private ranges are allowed unless listed (intranets).
 * Answers are reasons (human text) or null for allowed.
 */
export class NavigationPolicy {
  private readonly allowed: HostList;
  private readonly blocked: HostList;
  private readonly resolve: Resolve;
  private readonly cacheMs: number;
  private readonly cache = new Map<string, { at: number; addresses: Promise<{ address: string; family: number }[]> }>();

  constructor(options: NavigationPolicyOptions = {}) {
    this.allowed = new HostList('ALLOWED_HOSTS', options.allowedHosts ?? []);
    this.blocked = new HostList('BLOCKED_HOSTS', options.blockedHosts ?? []);
    this.resolve = options.resolve ?? systemResolve;
    this.cacheMs = options.cacheMs ?? 10_000;
  }

  /**
   * The hosts a browser may connect to directly, as Chromium proxy bypass rules, or null when any
   * host may be (no ALLOWED_HOSTS). See `BrowserLauncher.newContext`: every other host is sent to a
   * proxy that accepts nothing, which stops the connections the guard never sees.
   */
  directHosts(): string[] | null {
    return this.allowed.empty ? null : [...this.allowed.bypassRules];
  }

  /** The rules that need no lookup: scheme, and the host as written. */
  check(url: string | URL): string | null {
    return this.parse(url).reason;
  }

  /** `check`, then what a host name resolves to (a name pointing at a refused address is refused). */
  async verify(url: string | URL): Promise<string | null> {
    const { reason, host } = this.parse(url);
    if (reason !== null || !host || !('name' in host)) return reason;
    for (const { address, family } of await this.addresses(host.name)) {
      const refused = this.refusedAddress(address, family === 6 ? 'ipv6' : 'ipv4');
      if (refused) return `host ${host.name} resolves to ${address}${refused.via}, ${refused.why === 'metadata' ? METADATA : 'which is in BLOCKED_HOSTS'}`;
    }
    return null;
  }

  /**
   * Why `ip` may not be reached, whatever name led to it: a metadata address or one in BLOCKED_HOSTS,
   * itself or as the IPv4 address it carries (`via` then says which).
   */
  private refusedAddress(ip: string, family: Family): { why: 'metadata' | 'blocked'; via: string } | null {
    const candidates: [string, Family, string][] = [[ip, family, '']];
    if (family === 'ipv6') for (const v4 of embeddedIPv4(ip)) candidates.push([v4, 'ipv4', ` (carrying ${v4})`]);
    for (const [address, type, via] of candidates) if (builtIn.check(address, type)) return { why: 'metadata', via };
    for (const [address, type, via] of candidates) if (this.blocked.hasIp(address, type)) return { why: 'blocked', via };
    return null;
  }

  private parse(input: string | URL): { reason: string | null; host?: Host } {
    let url: URL;
    try {
      url = typeof input === 'string' ? new URL(input) : input;
    } catch {
      return { reason: 'it is not an absolute URL' };
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return { reason: `scheme ${url.protocol} is not allowed (only http and https)` };
    const shown = url.hostname.endsWith('.') ? url.hostname.slice(0, -1) : url.hostname;
    const ip = ipOf(url.hostname);
    const host: Host = ip ?? { name: normalizeName(url.hostname) };
    if ('name' in host && METADATA_NAMES.has(host.name)) return { reason: `host ${shown} is ${METADATA}` };
    const refused = 'ip' in host ? this.refusedAddress(host.ip, host.family) : null;
    if (refused) return { reason: `host ${shown}${refused.via} is ${refused.why === 'metadata' ? METADATA : 'in BLOCKED_HOSTS'}` };
    if (this.blocked.has(host)) return { reason: `host ${shown} is in BLOCKED_HOSTS` };
    if (!this.allowed.empty && !this.allowed.has(host)) return { reason: `host ${shown} is not in ALLOWED_HOSTS` };
    return { reason: null, host };
  }

  /**
   * A name's addresses, looked up once per `cacheMs` (concurrent requests share the lookup). A name
   * that does not resolve has nothing to reach: the browser's own lookup fails the same way.
   * `localhost` and `*.localhost` are loopback without DNS, as in Chromium.
   */
  private addresses(name: string): Promise<{ address: string; family: number }[]> {
    if (name === 'localhost' || name.endsWith('.localhost')) {
      return Promise.resolve([{ address: '127.0.0.1', family: 4 }, { address: '::1', family: 6 }]);
    }
    const now = Date.now();
    const hit = this.cache.get(name);
    if (hit && now - hit.at < this.cacheMs) return hit.addresses;
    if (this.cache.size >= MAX_CACHED_NAMES) this.cache.clear();
    const addresses = this.resolve(name).catch(() => []);
    this.cache.set(name, { at: now, addresses });
    return addresses;
  }
}

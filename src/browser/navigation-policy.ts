import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';
import { domainToASCII } from 'node:url';
import { ConfigError } from '../common/index.js';

/**
 * Addresses no run may reach, whatever the lists say: link-local ranges (where every cloud puts its
 * instance metadata service, 169.254.169.254 on AWS, GCP, Azure, OCI, DigitalOcean, 169.254.170.2 for
 * ECS task credentials, 169.254.0.23 on Tencent) plus the metadata addresses outside them.
 * IPv4-mapped forms (::ffff:169.254.x.x) match the IPv4 rules (node's BlockList checks them so).
 */
const METADATA_SUBNETS: readonly [string, number, 'ipv4' | 'ipv6'][] = [
  ['169.254.0.0', 16, 'ipv4'], // IPv4 link-local
  ['fe80::', 10, 'ipv6'], // IPv6 link-local
  ['fd00:ec2::254', 128, 'ipv6'], // AWS instance metadata over IPv6
  ['100.100.100.200', 32, 'ipv4'], // Alibaba Cloud metadata
  ['192.0.0.192', 32, 'ipv4'], // Oracle Cloud legacy metadata
  ['64:ff9b::a9fe:0', 112, 'ipv6'], // 169.254.0.0/16 through the NAT64 well-known prefix
  ['::a9fe:0', 112, 'ipv6'], // 169.254.0.0/16 as an IPv4-compatible IPv6 address
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
      return;
    }
    const ip = ipOf(entry);
    if (ip) {
      this.ips.addAddress(ip.ip, ip.family);
      return;
    }
    const wildcard = entry.startsWith('*.');
    const name = normalizeName(wildcard ? entry.slice(2) : entry);
    if (!name || name.includes('*')) throw bad('is not a host name, *.domain, IP address or CIDR block');
    if (wildcard) this.suffixes.push(`.${name}`);
    else this.names.add(name);
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

  /** The rules that need no lookup: scheme, and the host as written. */
  check(url: string | URL): string | null {
    return this.parse(url).reason;
  }

  /** `check`, then what a host name resolves to (a name pointing at a refused address is refused). */
  async verify(url: string | URL): Promise<string | null> {
    const { reason, host } = this.parse(url);
    if (reason !== null || !host || !('name' in host)) return reason;
    for (const { address, family } of await this.addresses(host.name)) {
      const type: Family = family === 6 ? 'ipv6' : 'ipv4';
      if (builtIn.check(address, type)) return `host ${host.name} resolves to ${address}, ${METADATA}`;
      if (this.blocked.hasIp(address, type)) return `host ${host.name} resolves to ${address}, which is in BLOCKED_HOSTS`;
    }
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
    if ('ip' in host ? builtIn.check(host.ip, host.family) : METADATA_NAMES.has(host.name)) return { reason: `host ${shown} is ${METADATA}` };
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

import type { IncomingMessage } from 'node:http';
import { BlockList, isIP } from 'node:net';
import type { Config } from './config.js';

/** Is the peer `hop` connections away from us (0: our own socket's peer) a proxy we believe? */
export type TrustProxy = (address: string, hop: number) => boolean;

/** proxy-addr's names for address ranges, as TRUST_PROXY takes them. */
const RANGES: Record<string, [string, number][]> = {
  loopback: [['127.0.0.0', 8], ['::1', 128]],
  linklocal: [['169.254.0.0', 16], ['fe80::', 10]],
  uniquelocal: [['10.0.0.0', 8], ['172.16.0.0', 12], ['192.168.0.0', 16], ['fc00::', 7]],
};

/** A TRUST_PROXY entry (validated by config.ts) as address ranges. */
function subnets(entry: string): [string, number][] {
  const named = RANGES[entry];
  if (named) return named;
  const [ip = '', bits] = entry.split('/');
  return [[ip, bits === undefined ? (isIP(ip) === 4 ? 32 : 128) : Number(bits)]];
}

/** `::ffff:10.0.0.1` (an IPv4 peer of a dual-stack socket) is 10.0.0.1. */
const unmapped = (address: string) => address.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, '');

/**
 * TRUST_PROXY as one function, given to fastify (req.ip, req.protocol, req.host) and used for
 * viewer sockets (their per-address limit and origin check), so both agree on who the client is.
 */
export function trustProxy(setting: Config['trustProxy']): TrustProxy {
  if (typeof setting === 'boolean') return () => setting;
  if (typeof setting === 'number') return (_address, hop) => hop < setting;
  const list = new BlockList();
  for (const [net, bits] of setting.flatMap(subnets)) list.addSubnet(net, bits, isIP(net) === 4 ? 'ipv4' : 'ipv6');
  return (address) => {
    const ip = unmapped(address);
    const family = isIP(ip);
    return family !== 0 && list.check(ip, family === 4 ? 'ipv4' : 'ipv6');
  };
}

const forwardedFor = (req: IncomingMessage): string[] =>
  String(req.headers['x-forwarded-for'] ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');

/** The client's address: our peer, or past each trusted proxy the address it says it got the request from. */
export function clientAddress(req: IncomingMessage, trust: TrustProxy): string {
  const chain = [req.socket.remoteAddress ?? 'unknown', ...forwardedFor(req).reverse()];
  let i = 0;
  while (i < chain.length - 1 && trust(chain[i] ?? '', i)) i++;
  return chain[i] ?? 'unknown';
}

/** The host the client asked for: X-Forwarded-Host when our peer is a trusted proxy, else Host. */
export function requestHost(req: IncomingMessage, trust: TrustProxy): string | undefined {
  const forwarded = req.headers['x-forwarded-host'];
  if (typeof forwarded === 'string' && forwarded !== '' && trust(req.socket.remoteAddress ?? '', 0)) {
    return forwarded.split(',').at(-1)?.trim();
  }
  return req.headers.host;
}

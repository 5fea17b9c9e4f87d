import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { NavigationPolicy, type NavigationPolicyOptions, type Resolve } from '../../src/browser/index.js';
import { ConfigError } from '../../src/common/index.js';

/** A resolver that knows only `table` (anything else does not resolve) and counts its lookups. */
function fakeDns(table: Record<string, string[]>): Resolve & { calls: string[] } {
  const calls: string[] = [];
  const resolve = async (name: string) => {
    calls.push(name);
    const addresses = table[name];
    if (!addresses) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${name}`), { code: 'ENOTFOUND' });
    return addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  };
  return Object.assign(resolve, { calls });
}

const policy = (options: NavigationPolicyOptions = {}) => new NavigationPolicy({ resolve: fakeDns({}), ...options });

describe('NavigationPolicy: schemes', () => {
  test('http and https are allowed by default, loopback and private ranges included', () => {
    const p = policy();
    for (const url of ['http://example.com/', 'https://example.com:8443/a?b#c', 'http://127.0.0.1:8080/', 'http://localhost/', 'http://10.1.2.3/', 'http://192.168.0.1/', 'http://[::1]/']) {
      assert.equal(p.check(url), null, url);
    }
  });

  test('every other scheme is refused, naming it', () => {
    const p = policy();
    assert.equal(p.check('file:///etc/passwd'), 'scheme file: is not allowed (only http and https)');
    assert.equal(p.check('chrome://version'), 'scheme chrome: is not allowed (only http and https)');
    assert.equal(p.check('javascript:alert(1)'), 'scheme javascript: is not allowed (only http and https)');
    assert.equal(p.check('data:text/html,<h1>x'), 'scheme data: is not allowed (only http and https)');
    for (const url of ['ftp://example.com/', 'about:blank', 'view-source:http://example.com/', 'ws://example.com/', 'blob:http://example.com/x', 'chrome-extension://abc/']) {
      assert.match(p.check(url) ?? '', /^scheme [a-z-]+: is not allowed/, url);
    }
  });

  test('something that is not an absolute URL is refused', () => {
    assert.equal(policy().check('/relative/path'), 'it is not an absolute URL');
    assert.equal(policy().check('http://'), 'it is not an absolute URL');
  });
});

describe('NavigationPolicy: built-in refusals', () => {
  test('link-local and cloud metadata addresses are refused, whatever the lists say', () => {
    const p = policy({ allowedHosts: ['169.254.169.254', '*.internal', 'metadata.goog', '0.0.0.0/0', '::/0'] });
    const cases: [string, string][] = [
      ['http://169.254.169.254/latest/meta-data/', '169.254.169.254'],
      ['http://169.254.170.2/v2/credentials', '169.254.170.2'],
      ['http://169.254.0.1/', '169.254.0.1'],
      ['http://[fe80::1]/', '[fe80::1]'],
      ['http://[febf:ffff::1]/', '[febf:ffff::1]'],
      ['http://[fd00:ec2::254]/', '[fd00:ec2::254]'],
      ['http://100.100.100.200/', '100.100.100.200'],
      ['http://192.0.0.192/', '192.0.0.192'],
      ['http://metadata.google.internal/computeMetadata/v1/', 'metadata.google.internal'],
      ['http://metadata.goog/', 'metadata.goog'],
      ['http://metadata/', 'metadata'],
      ['http://instance-data/', 'instance-data'],
    ];
    for (const [url, host] of cases) assert.equal(p.check(url), `host ${host} is a link-local / cloud metadata address`, url);
  });

  test('odd spellings of a metadata address are caught (the URL parser normalizes them)', () => {
    const p = policy();
    for (const url of [
      'http://2852039166/', // decimal
      'http://0xa9.0xfe.0xa9.0xfe/', // hex
      'http://0251.0376.0251.0376/', // octal
      'http://169.254.43518/', // two-part
      'http://169.254.169.254./', // trailing dot
      'http://[::ffff:169.254.169.254]/', // IPv4-mapped IPv6
      'http://[::ffff:a9fe:a9fe]/',
      'http://[64:ff9b::169.254.169.254]/', // NAT64
      'http://[fd00:ec2:0:0::254]/', // uncompressed
      'http://user:pass@169.254.169.254:80/',
      'https://169.254.169.254:443/',
      'http://METADATA.Google.Internal./',
    ]) {
      assert.match(p.check(url) ?? '', /is a link-local \/ cloud metadata address$/, url);
    }
  });

  test('a neighbour of a metadata address is not refused', () => {
    const p = policy();
    for (const url of ['http://169.253.255.255/', 'http://169.255.0.1/', 'http://100.100.100.201/', 'http://[fec0::1]/', 'http://metadata.example.com/', 'http://notmetadata.goog.example/']) {
      assert.equal(p.check(url), null, url);
    }
  });
});

describe('NavigationPolicy: IPv6 addresses that carry an IPv4 address', () => {
  test('169.254.169.254 inside any translation or tunnel prefix is refused, naming what it carries', () => {
    const p = policy({ allowedHosts: ['::/0'] });
    const cases: [string, string][] = [
      ['http://[::ffff:0:169.254.169.254]/', '[::ffff:0:a9fe:a9fe]'], // SIIT IPv4-translated, ::ffff:0:0:0/96
      ['http://[::169.254.169.254]/', '[::a9fe:a9fe]'], // IPv4-compatible
      ['http://[64:ff9b::169.254.169.254]/', '[64:ff9b::a9fe:a9fe]'], // NAT64 well-known prefix
      ['http://[64:ff9b:1::169.254.169.254]/', '[64:ff9b:1::a9fe:a9fe]'], // NAT64 local-use, a /96 inside it
      ['http://[64:ff9b:1:a9fe:a9:fe00::]/', '[64:ff9b:1:a9fe:a9:fe00::]'], // local-use /48 (RFC 6052 skips bits 64-71)
      ['http://[64:ff9b:1:a9:fe:a9fe::]/', '[64:ff9b:1:a9:fe:a9fe::]'], // local-use /56
      ['http://[64:ff9b:1:0:a9:fea9:fe00:0]/', '[64:ff9b:1:0:a9:fea9:fe00:0]'], // local-use /64
      ['http://[2002:a9fe:a9fe::]/', '[2002:a9fe:a9fe::]'], // 6to4
      ['http://[2002:a9fe:a9fe:1::1]/', '[2002:a9fe:a9fe:1::1]'],
      ['http://[2001:0:4136:e378:8000:63bf:5601:5601]/', '[2001:0:4136:e378:8000:63bf:5601:5601]'], // Teredo, client bits inverted
    ];
    for (const [url, host] of cases) {
      assert.equal(p.check(url), `host ${host} (carrying 169.254.169.254) is a link-local / cloud metadata address`, url);
    }
    assert.equal(p.check('http://[2002:6464:64c8::]/'), 'host [2002:6464:64c8::] (carrying 100.100.100.200) is a link-local / cloud metadata address');
    // The IPv4-mapped form, ::ffff:0:0/96, in every spelling the URL parser accepts.
    for (const url of ['http://[::ffff:169.254.169.254]/', 'http://[0:0:0:0:0:ffff:a9fe:a9fe]/', 'http://[::FFFF:A9FE:A9FE]/', 'http://[0::ffff:169.254.169.254]/']) {
      assert.equal(p.check(url), 'host [::ffff:a9fe:a9fe] is a link-local / cloud metadata address', url);
    }
  });

  test('an IPv4 address or block in BLOCKED_HOSTS is refused inside IPv6 too', () => {
    const p = policy({ blockedHosts: ['10.0.0.0/8', '192.0.2.7'] });
    assert.equal(p.check('http://[2002:a00:1::]/'), 'host [2002:a00:1::] (carrying 10.0.0.1) is in BLOCKED_HOSTS');
    assert.equal(p.check('http://[64:ff9b::10.9.8.7]/'), 'host [64:ff9b::a09:807] (carrying 10.9.8.7) is in BLOCKED_HOSTS');
    assert.equal(p.check('http://[64:ff9b:1::192.0.2.7]/'), 'host [64:ff9b:1::c000:207] (carrying 192.0.2.7) is in BLOCKED_HOSTS');
    assert.equal(p.check('http://[::ffff:0:10.0.0.1]/'), 'host [::ffff:0:a00:1] (carrying 10.0.0.1) is in BLOCKED_HOSTS');
    assert.equal(p.check('http://[2002:b00:1::]/'), null);
  });

  test('a name whose AAAA record is a synthesized (DNS64) metadata address is refused', async () => {
    const p = policy({ resolve: fakeDns({ 'dns64.test': ['64:ff9b::a9fe:a9fe'], 'sixtofour.test': ['2002:a9fe:a9fe::1'] }) });
    assert.equal(await p.verify('http://dns64.test/'), 'host dns64.test resolves to 64:ff9b::a9fe:a9fe (carrying 169.254.169.254), a link-local / cloud metadata address');
    assert.equal(await p.verify('http://sixtofour.test/'), 'host sixtofour.test resolves to 2002:a9fe:a9fe::1 (carrying 169.254.169.254), a link-local / cloud metadata address');
  });

  test('IPv6 addresses that carry no refused IPv4 address are not refused', () => {
    const p = policy({ blockedHosts: ['0.0.0.0/8'] });
    for (const url of [
      'http://[::1]/', // loopback, not the IPv4-compatible 0.0.0.1
      'http://[2002:a9fd:ffff::]/',
      'http://[64:ff9b:2::a9fe:a9fe]/', // outside the local-use /48
      'http://[64:ff9b::1:a9fe:a9fe]/', // neither the well-known /96 nor the local-use /48
      'http://[::ffff:1:a9fe:a9fe]/',
      'http://[2001:db8::a9fe:a9fe]/',
      'http://[2001:0:4136:e378:8000:63bf:a9fe:a9fe]/', // Teredo for client 86.1.86.1
    ]) {
      assert.equal(p.check(url), null, url);
    }
  });
});

describe('NavigationPolicy: BLOCKED_HOSTS', () => {
  test('an exact host name is refused, case and trailing dot aside, and its subdomains are not', () => {
    const p = policy({ blockedHosts: ['Evil.test'] });
    assert.equal(p.check('http://evil.test/'), 'host evil.test is in BLOCKED_HOSTS');
    assert.equal(p.check('https://EVIL.TEST./x'), 'host evil.test is in BLOCKED_HOSTS');
    assert.equal(p.check('http://evil.test:8080/'), 'host evil.test is in BLOCKED_HOSTS');
    assert.equal(p.check('http://www.evil.test/'), null);
    assert.equal(p.check('http://notevil.test/'), null);
  });

  test('*.domain matches subdomains at any depth but not the domain itself', () => {
    const p = policy({ blockedHosts: ['*.evil.test'] });
    assert.equal(p.check('http://a.evil.test/'), 'host a.evil.test is in BLOCKED_HOSTS');
    assert.equal(p.check('http://a.b.evil.test/'), 'host a.b.evil.test is in BLOCKED_HOSTS');
    assert.equal(p.check('http://evil.test/'), null);
    assert.equal(p.check('http://notevil.test/'), null);
    assert.equal(p.check('http://a.evil.test.example/'), null);
  });

  test('international names match in either spelling', () => {
    const p = policy({ blockedHosts: ['bücher.example'] });
    assert.equal(p.check('http://xn--bcher-kva.example/'), 'host xn--bcher-kva.example is in BLOCKED_HOSTS');
    assert.equal(p.check('http://BÜCHER.example/'), 'host xn--bcher-kva.example is in BLOCKED_HOSTS');
  });

  test('IP addresses match however the URL spells them', () => {
    const p = policy({ blockedHosts: ['10.0.0.1', '[2001:db8::1]', 'localhost'] });
    assert.equal(p.check('http://10.0.0.1/'), 'host 10.0.0.1 is in BLOCKED_HOSTS');
    assert.equal(p.check('http://167772161/'), 'host 10.0.0.1 is in BLOCKED_HOSTS');
    assert.equal(p.check('http://[::ffff:10.0.0.1]/'), 'host [::ffff:a00:1] is in BLOCKED_HOSTS');
    assert.equal(p.check('http://[2001:db8:0:0:0:0:0:1]/'), 'host [2001:db8::1] is in BLOCKED_HOSTS');
    assert.equal(p.check('http://10.0.0.2/'), null);
    // A name is a name: blocking localhost does not block 127.0.0.1 as written.
    assert.equal(p.check('http://localhost:3000/'), 'host localhost is in BLOCKED_HOSTS');
    assert.equal(p.check('http://127.0.0.1:3000/'), null);
  });

  test('CIDR blocks match IPv4 and IPv6 addresses inside them', () => {
    const p = policy({ blockedHosts: ['10.0.0.0/8', '192.168.1.0/24', '2001:db8::/32', '[fc00::]/7'] });
    assert.equal(p.check('http://10.255.1.2/'), 'host 10.255.1.2 is in BLOCKED_HOSTS');
    assert.equal(p.check('http://192.168.1.200/'), 'host 192.168.1.200 is in BLOCKED_HOSTS');
    assert.equal(p.check('http://192.168.2.1/'), null);
    assert.equal(p.check('http://11.0.0.1/'), null);
    assert.equal(p.check('http://[2001:db8:abcd::1]/'), 'host [2001:db8:abcd::1] is in BLOCKED_HOSTS');
    assert.equal(p.check('http://[fd12::1]/'), 'host [fd12::1] is in BLOCKED_HOSTS');
    assert.equal(p.check('http://[2001:db9::1]/'), null);
  });

  test('BLOCKED_HOSTS win over ALLOWED_HOSTS', () => {
    const p = policy({ allowedHosts: ['*.example.com', '10.0.0.0/8'], blockedHosts: ['bad.example.com', '10.6.6.6'] });
    assert.equal(p.check('http://bad.example.com/'), 'host bad.example.com is in BLOCKED_HOSTS');
    assert.equal(p.check('http://10.6.6.6/'), 'host 10.6.6.6 is in BLOCKED_HOSTS');
    assert.equal(p.check('http://good.example.com/'), null);
    assert.equal(p.check('http://10.1.1.1/'), null);
  });
});

describe('NavigationPolicy: ALLOWED_HOSTS', () => {
  test('when set, only the hosts it lists are allowed, as written in the URL', () => {
    const p = policy({ allowedHosts: ['127.0.0.1', 'app.example.com', '*.cdn.example', '192.168.0.0/16'] });
    assert.equal(p.check('http://127.0.0.1:9999/'), null);
    assert.equal(p.check('http://app.example.com/'), null);
    assert.equal(p.check('http://img.cdn.example/'), null);
    assert.equal(p.check('http://192.168.4.4/'), null);
    assert.equal(p.check('http://localhost:9999/'), 'host localhost is not in ALLOWED_HOSTS');
    assert.equal(p.check('http://cdn.example/'), 'host cdn.example is not in ALLOWED_HOSTS');
    assert.equal(p.check('http://example.com/'), 'host example.com is not in ALLOWED_HOSTS');
    assert.equal(p.check('http://[::1]/'), 'host [::1] is not in ALLOWED_HOSTS');
  });

  test('an allowed name is not widened to what it resolves to', async () => {
    const p = policy({ allowedHosts: ['127.0.0.1'], resolve: fakeDns({ 'alias.test': ['127.0.0.1'] }) });
    assert.equal(await p.verify('http://alias.test/'), 'host alias.test is not in ALLOWED_HOSTS');
  });
});

describe('NavigationPolicy: hosts the browser may connect to directly', () => {
  test('without ALLOWED_HOSTS any host may be: no list', () => {
    assert.equal(policy({ blockedHosts: ['evil.test'] }).directHosts(), null);
  });

  test('ALLOWED_HOSTS entries become Chromium proxy bypass rules that match the host as written', () => {
    const p = policy({ allowedHosts: ['127.0.0.1', 'App.Example.com.', '*.cdn.example', '192.168.0.0/16', '[::1]', '2001:db8::/32', 'bücher.example'] });
    assert.deepEqual(p.directHosts(), ['127.0.0.1', 'app.example.com', '*.cdn.example', '192.168.0.0/16', '[::1]', '2001:db8::/32', 'xn--bcher-kva.example']);
  });
});

describe('NavigationPolicy: what names resolve to', () => {
  test('a name that resolves to a link-local or metadata address is refused', async () => {
    const p = policy({ resolve: fakeDns({ 'rebind.test': ['93.184.216.34', '169.254.169.254'], 'v6.test': ['fe80::abcd'], 'ok.test': ['93.184.216.34'] }) });
    assert.equal(p.check('http://rebind.test/'), null, 'check alone does not look names up');
    assert.equal(await p.verify('http://rebind.test/'), 'host rebind.test resolves to 169.254.169.254, a link-local / cloud metadata address');
    assert.equal(await p.verify('http://v6.test/'), 'host v6.test resolves to fe80::abcd, a link-local / cloud metadata address');
    assert.equal(await p.verify('http://ok.test/'), null);
  });

  test('a name that resolves into a blocked address or CIDR block is refused', async () => {
    const p = policy({ blockedHosts: ['10.0.0.0/8', '127.0.0.1'], resolve: fakeDns({ 'intranet.test': ['10.2.3.4'] }) });
    assert.equal(await p.verify('http://intranet.test/'), 'host intranet.test resolves to 10.2.3.4, which is in BLOCKED_HOSTS');
    // localhost and *.localhost are loopback without asking DNS, as Chromium treats them.
    assert.equal(await p.verify('http://localhost/'), 'host localhost resolves to 127.0.0.1, which is in BLOCKED_HOSTS');
    assert.equal(await p.verify('http://app.localhost/'), 'host app.localhost resolves to 127.0.0.1, which is in BLOCKED_HOSTS');
  });

  test('a name that does not resolve is left to the browser, which cannot reach it either', async () => {
    assert.equal(await policy().verify('http://no-such-host.invalid/'), null);
  });

  test('verify gives the same answers as check for everything check refuses, without a lookup', async () => {
    const dns = fakeDns({});
    const p = new NavigationPolicy({ blockedHosts: ['evil.test'], resolve: dns });
    assert.equal(await p.verify('file:///etc/passwd'), 'scheme file: is not allowed (only http and https)');
    assert.equal(await p.verify('http://evil.test/'), 'host evil.test is in BLOCKED_HOSTS');
    assert.equal(await p.verify('http://169.254.169.254/'), 'host 169.254.169.254 is a link-local / cloud metadata address');
    assert.equal(await p.verify('http://10.0.0.1/'), null);
    assert.deepEqual(dns.calls, []);
  });

  test('lookups are shared and cached for a while', async () => {
    const dns = fakeDns({ 'a.test': ['93.184.216.34'] });
    const p = new NavigationPolicy({ resolve: dns, cacheMs: 60_000 });
    await Promise.all([p.verify('http://a.test/1'), p.verify('http://a.test/2'), p.verify('https://A.test./3')]);
    await p.verify('http://a.test/4');
    assert.deepEqual(dns.calls, ['a.test']);
    const fresh = fakeDns({ 'a.test': ['93.184.216.34'] });
    const uncached = new NavigationPolicy({ resolve: fresh, cacheMs: 0 });
    await uncached.verify('http://a.test/1');
    await uncached.verify('http://a.test/2');
    assert.deepEqual(fresh.calls, ['a.test', 'a.test']);
  });
});

describe('NavigationPolicy: list entries', () => {
  test('a bad entry stops the server at start with a message naming the setting and the entry', () => {
    const cases: [NavigationPolicyOptions, RegExp][] = [
      [{ blockedHosts: ['10.0.0.0/33'] }, /^BLOCKED_HOSTS entry "10.0.0.0\/33" is not a valid CIDR block$/],
      [{ blockedHosts: ['2001:db8::/129'] }, /is not a valid CIDR block/],
      [{ allowedHosts: ['example.com/24'] }, /^ALLOWED_HOSTS entry "example.com\/24" is not a valid CIDR block$/],
      [{ allowedHosts: ['*.'] }, /^ALLOWED_HOSTS entry "\*\." is not a host name/],
      [{ allowedHosts: ['a.*.example'] }, /is not a host name/],
    ];
    for (const [options, message] of cases) {
      assert.throws(() => new NavigationPolicy(options), (err: unknown) => err instanceof ConfigError && message.test(err.message), JSON.stringify(options));
    }
  });
});

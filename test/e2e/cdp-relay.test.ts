// e2e: alone (it measures which browser takes more than its share of the CPU)
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import WebSocket from 'ws';
import { BrowserLauncher, relayOf, type RelayDrop } from '../../src/browser/index.js';
import { BROWSER_NICE, HOG_NICE } from '../../src/browser/priority.js';

const MIB = 1024 * 1024;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function until(what: string, check: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("the DevTools relay: a page's oversized messages never reach the server's loop", () => {
  let launcher: BrowserLauncher;
  /** What the launcher was told of, for /health/visual. */
  const told: RelayDrop[] = [];
  before(() => {
    launcher = new BrowserLauncher({ log: pino({ level: 'silent' }), maxEventChars: 4 * MIB, onDrop: (d) => told.push(d) });
  });
  after(async () => {
    await launcher?.close();
  });

  test('a 6 MiB binding call and a 2 MiB console message are dropped in the relay and reported; small ones pass', async () => {
    const context = await launcher.newContext();
    const relay = relayOf(context.browser())!;
    assert.ok(relay, 'every launched browser is behind a relay');
    const drops: RelayDrop[] = [];
    relay.on('drop', (d) => drops.push(d));
    const received: number[] = [];
    await context.exposeBinding('__probe', (_source, arg: unknown) => {
      received.push(typeof arg === 'string' ? arg.length : -1);
    });
    const page = await context.newPage();
    const consoled: number[] = [];
    page.on('console', (m) => consoled.push(m.text().length));
    await page.setContent('<p>relay</p>');
    await page.evaluate((mib) => {
      const probe = (window as unknown as { __probe: (s: string) => void }).__probe;
      probe('a'.repeat(100));
      probe('[' + '1e20,'.repeat((6 * mib) / 5) + '1]');
      console.log('b'.repeat(2 * mib));
      console.log('small');
      probe('c'.repeat(200));
    }, MIB);
    await until('the small calls and the drop reports', () => received.length === 2 && consoled.length === 1 && drops.length >= 2);
    assert.deepEqual(received, [100, 200], 'the small binding calls arrived, in order; the large one never did');
    assert.deepEqual(consoled, [5], 'only the small console message arrived');
    const binding = drops.find((d) => d.method === 'Runtime.bindingCalled');
    assert.equal(binding?.binding, '__probe');
    assert.equal(binding?.reason, 'oversize');
    assert.ok(binding!.chars > 6 * MIB, `the dropped call's size is reported (${binding?.chars})`);
    const consoleDrop = drops.find((d) => d.method === 'Runtime.consoleAPICalled');
    assert.equal(consoleDrop?.reason, 'oversize');
    assert.equal(await page.textContent('p'), 'relay', 'the page is still driven through the relay');
    assert.deepEqual(told.map((d) => d.method).sort(), drops.map((d) => d.method).sort(), 'the launcher hears of every drop (counted in /health/visual)');
    await context.close();
  });

  test('the relay takes one client, at its secret path; closing the browser ends its whole process', async () => {
    const context = await launcher.newContext();
    const relay = relayOf(context.browser())!;
    const pid = relay.pid;
    assert.ok(alive(pid), 'Chromium runs');
    const closedAt = await new Promise<number>((resolve, reject) => {
      const ws = new WebSocket(relay.wsEndpoint);
      ws.on('close', (code) => resolve(code));
      ws.on('error', reject);
    });
    assert.ok(closedAt > 0, 'a second client is cut off at once');
    const wrongPath = await new Promise<string>((resolve) => {
      const ws = new WebSocket(relay.wsEndpoint.replace(/[0-9a-f-]{36}$/, '00000000-0000-0000-0000-000000000000'));
      ws.on('error', (err) => resolve(err.message));
      ws.on('open', () => resolve('opened'));
    });
    assert.notEqual(wrongPath, 'opened', 'another path is refused');
    const page = await context.newPage();
    await page.setContent('<p>still here</p>');
    assert.equal(await page.textContent('p'), 'still here', "Playwright's own connection was not disturbed");
    await context.close();
    await until('Chromium to exit', () => !alive(pid));
  });

  test("a browser's processes are scheduled as one group below the server's (sched_autogroup, nice 10)", async (t) => {
    if (!existsSync('/proc/sys/kernel/sched_autogroup_enabled') || readFileSync('/proc/sys/kernel/sched_autogroup_enabled', 'utf8').trim() !== '1') {
      return t.skip('this kernel does not group processes by session (sched_autogroup): browsers keep the server priority');
    }
    const context = await launcher.newContext();
    const page = await context.newPage();
    await page.setContent('<p>busy</p>');
    const pgid = relayOf(context.browser())!.pid;
    const group = (pid: number | string): string => readFileSync(`/proc/${pid}/autogroup`, 'utf8').trim();
    // /proc/<pid>/stat: after the command's closing parenthesis, the 3rd field is the process group.
    const tree = readdirSync('/proc')
      .filter((d) => /^\d+$/.test(d))
      .filter((pid) => {
        try {
          return Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[2]) === pgid;
        } catch {
          return false;
        }
      });
    assert.ok(tree.length >= 3, `the browser's process group has its processes (${tree.length})`);
    assert.match(group(pgid), new RegExp(`nice ${BROWSER_NICE}$`));
    assert.deepEqual(new Set(tree.map(group)), new Set([group(pgid)]), 'renderers, zygote and utilities share the group');
    assert.notEqual(group(pgid), group('self'), 'not the server\'s group');
    await context.close();
  });

  test('a browser that takes more than its share of a busy machine goes below the others, and back once it stops', async (t) => {
    if (!existsSync('/proc/sys/kernel/sched_autogroup_enabled') || readFileSync('/proc/sys/kernel/sched_autogroup_enabled', 'utf8').trim() !== '1') {
      return t.skip('this kernel does not group processes by session (sched_autogroup): nothing to govern');
    }
    const group = (pid: number): string => readFileSync(`/proc/${pid}/autogroup`, 'utf8').trim();
    const hogContext = await launcher.newContext();
    const workerContext = await launcher.newContext();
    try {
      // An ordinary page at work (a fifth of a core) beside a page that spins on every core it can get.
      const ordinary = await workerContext.newPage();
      await ordinary.setContent('<p id="n">0</p>');
      await ordinary.evaluate(() => {
        setInterval(() => {
          const end = performance.now() + 10;
          while (performance.now() < end);
          document.getElementById('n')!.textContent = String(Date.now());
        }, 50);
      });
      const hog = await hogContext.newPage();
      await hog.setContent('<p>hog</p>');
      await hog.evaluate(() => {
        const spin = 'for (;;) {}';
        const w = window as unknown as { hogs: Worker[] };
        w.hogs = [0, 1].map(() => new Worker(URL.createObjectURL(new Blob([spin], { type: 'text/javascript' }))));
      });
      const hogPid = relayOf(hogContext.browser())!.pid;
      const ordinaryPid = relayOf(workerContext.browser())!.pid;
      await until('the hog to be moved below the others', () => group(hogPid).endsWith(`nice ${HOG_NICE}`), 20_000);
      assert.ok(launcher.governor.stats.demotions >= 1);
      assert.ok(launcher.governor.stats.demoted >= 1);
      assert.match(group(ordinaryPid), new RegExp(`nice ${BROWSER_NICE}$`), 'the ordinary page keeps its place');
      // It stops spinning: back with the others.
      await hog.evaluate(() => (window as unknown as { hogs: Worker[] }).hogs.forEach((w) => w.terminate()));
      await until('the hog to be put back', () => group(hogPid).endsWith(`nice ${BROWSER_NICE}`), 20_000);
      assert.equal(launcher.governor.stats.demoted, 0);
    } finally {
      await hogContext.close();
      await workerContext.close();
    }
  });
});

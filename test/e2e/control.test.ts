import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import WebSocket from 'ws';
import { serveStatic, type StaticSite } from '../../src/cli/static-site.js';
import { projectRoot } from '../../src/common/index.js';
import { CustomTag, RrwebEventType, type ControlCustomPayload, type ControlServerFrame } from '../../src/protocol/index.js';
import { WsViewer, launchViewerBrowser, replayedText, startStack, streamUrl, waitFor, type Stack } from '../helpers/stack.js';

const PASSWORD = 'open sesame';

interface ControlLink {
  control_url: string;
  control_stream_url: string;
  control_token: string;
  token_id: string;
  expires_at: string;
}

interface RunView {
  status: string;
  error: string | null;
  current_step: number | null;
  steps: { state: string; type: string }[];
  outputs: Record<string, unknown>;
  refused_requests: number;
  control: { state: string; holder: string | null; human_request: { step: number; description: string | null; until: string } | null };
}

/** A control socket from Node (a client without Origin, like a script), keeping what it was told. */
class ControlClient {
  readonly frames: ControlServerFrame[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => this.frames.push(JSON.parse(data.toString()) as ControlServerFrame));
    this.closed = new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  }

  static open(url: string, headers: Record<string, string> = {}): Promise<ControlClient> {
    const ws = new WebSocket(url, { headers });
    const client = new ControlClient(ws);
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(client));
      ws.once('error', reject);
    });
  }

  send(message: unknown): void {
    this.ws.send(JSON.stringify(message));
  }

  /** The states this socket was told, in order. */
  states(): string[] {
    return this.frames.flatMap((f) => (f.t === 'control' ? [f.state] : []));
  }
}

const controlEvents = (viewer: WsViewer): ControlCustomPayload[] =>
  viewer.received
    .filter((r) => r.event.type === RrwebEventType.Custom && (r.event.data as { tag: string }).tag === CustomTag.control)
    .map((r) => (r.event.data as { payload: ControlCustomPayload }).payload);

describe('take control', () => {
  let stack: Stack;
  let pages: StaticSite;
  let browser: Browser;

  before(async () => {
    stack = await startStack({ DOMCAST_API_KEY: 'k'.repeat(32) });
    pages = await serveStatic(join(projectRoot, 'test', 'fixtures', 'pages', 'control'));
    browser = await launchViewerBrowser();
  });
  after(async () => {
    await browser?.close();
    await pages?.close();
    await stack?.close();
  });

  const auth = { authorization: `Bearer ${'k'.repeat(32)}` };
  const api = async <T>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> => {
    const res = await fetch(`${stack.base}${path}`, {
      method,
      headers: { ...auth, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: res.status, body: (await res.json()) as T };
  };
  const start = async (workflow: unknown): Promise<string> => {
    const res = await api<{ session_id: string }>('POST', '/workflows/execute', { workflow, visual_enabled: true });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    return res.body.session_id;
  };
  const run = async (id: string) => (await api<RunView>('GET', `/workflows/${id}`)).body;
  const link = async (id: string, body?: unknown) => {
    const res = await api<ControlLink>('POST', `/workflows/${id}/control`, body ?? {});
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return res.body;
  };
  const session = (id: string) => stack.server.deps.registry.get(id)!;
  const socketUrl = (l: ControlLink) => `${l.control_stream_url}?token=${encodeURIComponent(l.control_token)}`;

  /** The centre of an element of the replayed page, in the viewer page's coordinates (the replay is scaled). */
  const inReplay = async (viewer: Page, selector: string) => {
    const frame = viewer.frames().find((f) => f !== viewer.mainFrame())!;
    const box = await waitFor(`${selector} in the replay`, () => frame.locator(selector).boundingBox());
    return { x: box.x + box.width / 2, y: box.y + box.height / 2 };
  };
  const clickInReplay = async (viewer: Page, selector: string) => {
    const at = await inReplay(viewer, selector);
    await viewer.mouse.click(at.x, at.y);
  };
  /** A field's value in the replayed page of a viewer. */
  const replayedValue = (viewer: Page, selector: string) =>
    viewer.frames().find((f) => f !== viewer.mainFrame())!.evaluate((sel) => (document.querySelector(sel) as HTMLInputElement | null)?.value ?? null, selector);
  const dataset = (viewer: Page, key: string) => viewer.evaluate((k) => document.documentElement.dataset[k] ?? null, key);
  const bannerText = (viewer: Page) => viewer.evaluate(() => (document.getElementById('controlled')!.hidden ? '' : document.getElementById('controlled')!.textContent));

  test('a human step: a person types the password (masked) and signs in through the control viewer; the run goes on and succeeds; a read-only viewer sees all of it', async () => {
    const id = await start({
      name: 'sign in with a person',
      steps: [
        { type: 'navigation', url: `${pages.url}/login.html` },
        { type: 'input', cssSelector: '#user', value: 'ada' },
        { type: 'human', description: 'Type the password and sign in', timeoutMs: 120_000 },
        { type: 'wait', cssSelector: '#welcome' },
        { type: 'extract_page_content', cssSelector: '#who', output: 'who' },
      ],
    });
    const raw = await WsViewer.open(await streamUrl(stack, id));
    const watching = (await api<{ viewer_url: string }>('GET', `/workflows/${id}`)).body.viewer_url;
    const reader = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await reader.goto(watching);
    const l = await link(id);
    const person = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await person.goto(l.control_url);

    // The request, in the API and for every viewer.
    const asked = await waitFor('the human request', async () => (await run(id)).control.human_request);
    assert.equal(asked.step, 2);
    assert.equal(asked.description, 'Type the password and sign in');
    await waitFor('the reader sees the request', async () => /asks for a person: Type the password and sign in/.test(await bannerText(reader)));
    assert.equal(await person.locator('#take').textContent(), 'Take control');
    await waitFor('the user name in the replay', async () => (await replayedValue(person, '#user')) === 'ada');

    await person.click('#take');
    await waitFor('held', async () => (await dataset(person, 'controlMine')) === 'held');
    assert.equal(await person.locator('#take').textContent(), 'Release');
    await waitFor('the reader sees the page controlled', async () => /Controlled by a person/.test(await bannerText(reader)));
    assert.equal((await run(id)).control.holder, l.token_id);

    const real = stack.server.deps.runs.page(id)!;
    // The navigation policy holds for what the person does: the page's request to the cloud metadata is refused.
    const refusedBefore = (await run(id)).refused_requests;
    await clickInReplay(person, '#away');
    await waitFor('the refused request', async () => (await run(id)).refused_requests > refusedBefore);
    await waitFor('the page saw it fail', async () => (await real.textContent('#asked')) === 'refused');

    // Keyboard editing, in the notes: typing, the arrows, Backspace, select-all.
    await clickInReplay(person, '#note');
    await waitFor('the note focused', () => real.evaluate(() => document.activeElement?.id === 'note'));
    await person.keyboard.type('abc');
    await person.keyboard.press('ArrowLeft');
    await person.keyboard.type('X');
    await waitFor('abXc', async () => (await real.inputValue('#note')) === 'abXc');
    await person.keyboard.press('Backspace');
    await waitFor('abc', async () => (await real.inputValue('#note')) === 'abc');
    await person.keyboard.press('Control+A');
    await person.keyboard.type('new');
    await waitFor('select-all then typing replaced it', async () => (await real.inputValue('#note')) === 'new');
    // Pasted text (the viewer's paste event; this machine's clipboard) goes in at the caret.
    await person.evaluate(() => {
      const data = new DataTransfer();
      data.setData('text/plain', ' pasted');
      document.getElementById('controllayer')!.dispatchEvent(new ClipboardEvent('paste', { clipboardData: data, bubbles: true, cancelable: true }));
    });
    await waitFor('the paste', async () => (await real.inputValue('#note')) === 'new pasted');
    await person.keyboard.press('Enter');
    await waitFor('Enter makes a new line', async () => (await real.inputValue('#note')) === 'new pasted\n');
    // Tab moves the real page's focus; Shift+Escape leaves the page for the Release button.
    await person.keyboard.press('Tab');
    await waitFor('Tab to the next field', () => real.evaluate(() => document.activeElement?.id === 'counter'));
    await person.keyboard.press('Shift+Escape');
    assert.equal(await person.evaluate(() => document.activeElement?.id), 'take');
    await waitFor('the reader sees the note as typed', async () => (await replayedValue(reader, '#note')) === 'new pasted\n');

    // The password: typed with a mistake and a Backspace; masked for everyone, in clear only in the real page.
    await clickInReplay(person, '#password');
    await waitFor('the password focused', () => real.evaluate(() => document.activeElement?.id === 'password'));
    await person.keyboard.type('open sesamX');
    await person.keyboard.press('Backspace');
    await person.keyboard.type('e');
    await waitFor('the password in the real page', async () => (await real.inputValue('#password')) === PASSWORD);
    await waitFor('the reader sees it masked', async () => (await replayedValue(reader, '#password')) === '*'.repeat(PASSWORD.length));
    assert.equal(await replayedValue(person, '#password'), '*'.repeat(PASSWORD.length));

    // A click counted in the real page shows in both viewers as an ordinary DOM change, with the person's cursor.
    await clickInReplay(person, '#counter');
    await waitFor('the reader sees the click', async () => /1 click\b/.test(await replayedText(reader)));
    // The person's cursor, where they clicked, in the reader's replay (both in the replayed page's px).
    const cursorOnCounter = async () => {
      const frame = reader.frames().find((f) => f !== reader.mainFrame())!;
      const b = await frame.evaluate(() => document.getElementById('counter')!.getBoundingClientRect().toJSON() as { left: number; right: number; top: number; bottom: number });
      return reader.evaluate((box) => {
        const m = document.querySelector<HTMLElement>('.replayer-mouse');
        const x = parseFloat(m?.style.left ?? ''), y = parseFloat(m?.style.top ?? '');
        return x >= box.left - 1 && x <= box.right + 1 && y >= box.top - 1 && y <= box.bottom + 1;
      }, b);
    };
    await waitFor("the reader sees the person's cursor on the button", cursorOnCounter);

    // Hovering: the pointer's moves reach the real page (its mouseenter handler), and the reader sees what that changed.
    const hover = await inReplay(person, '#hover');
    await person.mouse.move(hover.x - 30, hover.y);
    await person.mouse.move(hover.x, hover.y, { steps: 4 });
    await waitFor('the reader sees the hover', async () => /\bhovered\b/.test(await replayedText(reader)));

    // The wheel scrolls the real page, and every viewer follows.
    const over = await inReplay(person, '#notes');
    await person.mouse.move(over.x, over.y);
    await person.mouse.wheel(0, 300);
    await waitFor('the real page scrolled', () => real.evaluate(() => scrollY > 0));
    const replayScroll = (viewer: Page) => viewer.frames().find((f) => f !== viewer.mainFrame())!.evaluate(() => document.scrollingElement?.scrollTop ?? 0);
    await waitFor('the reader follows the scroll', async () => (await replayScroll(reader)) > 0);
    await person.mouse.wheel(0, -300);
    await waitFor('back at the top', async () => (await real.evaluate(() => scrollY)) === 0 && (await replayScroll(person)) === 0);

    await clickInReplay(person, '#submit');
    await waitFor('the reader sees the welcome', async () => /Welcome, ada!/.test(await replayedText(reader)));
    assert.equal(session(id).steps[3]!.state, 'pending', 'the workflow waits while the person holds control');

    await person.click('#take');
    await waitFor('the run succeeds', async () => (await run(id)).status === 'succeeded');
    const done = await run(id);
    assert.equal(done.outputs.who, 'ada');
    assert.equal(done.control.state, 'free');
    await waitFor('the reader replays the ended run', async () => (await dataset(reader, 'connection')) === 'replay');

    // The audit trail: who (the token's id), what, in the stream and in the recording; never the text typed.
    await raw.closed;
    const audit = controlEvents(raw);
    assert.ok(audit.every((a) => a.token === l.token_id), 'every action names the control link');
    assert.deepEqual(
      audit.filter((a) => a.action !== 'input').map((a) => a.action),
      ['take', 'hold', 'release'],
    );
    const inputs = audit.filter((a) => a.action === 'input');
    assert.ok(inputs.some((a) => a.kind === 'click' && typeof a.node === 'number'), 'clicks name the node');
    assert.ok(inputs.some((a) => a.kind === 'key' && a.key === 'Backspace'));
    assert.ok(inputs.some((a) => a.kind === 'key' && a.key === 'ArrowLeft'));
    assert.ok(inputs.some((a) => a.kind === 'key' && a.key === 'character'));
    const recording = await (await fetch(`${stack.base}/workflows/${id}/events`, { headers: auth })).text();
    assert.ok(recording.includes(CustomTag.control), 'the recording keeps the audit events');
    for (const text of [raw.raw.join('\n'), recording]) assert.ok(!text.includes('sesam'), 'the password typed never appears in events');
    assert.ok(inputs.every((a) => a.key === undefined || [...a.key.replace(/^up /, '')].length > 1), 'the audit names no character typed');
    await reader.close();
    await person.close();
  });

  test('refusals: a read-only token, a control token of another run, a foreign origin, a revoked link; the API alone mints links', async () => {
    const workflow = { name: 'hold', steps: [{ type: 'navigation', url: `${pages.url}/login.html` }, { type: 'human', description: 'anyone', timeoutMs: 60_000 }] };
    const [a, b] = [await start(workflow), await start(workflow)];
    await waitFor('both runs wait for a person', async () => (await run(a)).control.human_request && (await run(b)).control.human_request);

    // Without the key: 401. A viewer token is not the key either.
    const viewToken = await stack.server.deps.viewerTokens.issue(a);
    assert.equal((await fetch(`${stack.base}/workflows/${a}/control`, { method: 'POST' })).status, 401);
    assert.equal((await fetch(`${stack.base}/workflows/${a}/control?token=${viewToken}`, { method: 'POST' })).status, 401);

    const la = await link(a);
    const lb = await link(b);
    const base = stack.base.replace('http', 'ws');
    // A read-only viewer token never opens the control socket.
    const readOnly = await ControlClient.open(`${base}/workflows/control/${a}?token=${encodeURIComponent(viewToken)}`);
    const ro = await readOnly.closed;
    assert.equal(ro.code, 4401);
    assert.match(ro.reason, /does not allow control/);
    // Nor does a control token on another run.
    const crossed = await ControlClient.open(`${base}/workflows/control/${a}?token=${encodeURIComponent(lb.control_token)}`);
    const cr = await crossed.closed;
    assert.equal(cr.code, 4401);
    assert.match(cr.reason, /another session/);
    // Nor a page on another origin.
    const foreign = await ControlClient.open(socketUrl(la), { origin: 'http://evil.example' });
    assert.equal((await foreign.closed).code, 4403);
    // And a control token does not open the viewer's stream, nor count as a viewer token over HTTP.
    const asViewer = await WsViewer.open(`${base}/workflows/visual/${a}?token=${encodeURIComponent(la.control_token)}`);
    assert.equal((await asViewer.closed).code, 4401);
    assert.equal((await fetch(`${stack.base}/workflows/${a}?token=${encodeURIComponent(la.control_token)}`)).status, 401);

    // The good one works; DELETE takes control away while it is held, and the workflow goes on.
    const person = await ControlClient.open(socketUrl(la));
    person.send({ t: 'take' });
    await waitFor('held', () => person.states().includes('held'));
    // Input is bounded: a flood is refused past the queue or the rate, not applied.
    for (let i = 0; i < 400; i++) person.send({ t: 'input', kind: 'key', phase: 'up', key: 'Shift', code: 'ShiftLeft' });
    await waitFor('refused', () => person.frames.some((f) => f.t === 'refused' && /too fast|too many inputs waiting/.test(f.reason)));
    assert.equal((await run(a)).control.state, 'held');
    assert.equal((await run(a)).control.holder, la.token_id);
    const revoked = await api<{ revoked: number }>('DELETE', `/workflows/${a}/control`);
    assert.deepEqual(revoked.body, { revoked: 1 });
    const gone = await person.closed;
    assert.equal(gone.code, 4401);
    assert.match(gone.reason, /taken away/);
    assert.ok(person.states().includes('revoked'));
    // A revoked token opens nothing any more (run a may have ended by now: refused either way).
    const again = await ControlClient.open(socketUrl(la));
    assert.match((await again.closed).reason, /revoked or has expired|has ended/);
    // One link revoked by its id, on a run that is still waiting for a person: that link alone stops working.
    const lb2 = await link(b);
    assert.deepEqual((await api('DELETE', `/workflows/${b}/control?token_id=${lb.token_id}`)).body, { revoked: 1 });
    const spent = await ControlClient.open(socketUrl(lb));
    const sp = await spent.closed;
    assert.equal(sp.code, 4401);
    assert.match(sp.reason, /revoked or has expired/);
    // The human step took the API's word for it: the run went on and succeeded.
    await waitFor('run a succeeds', async () => (await run(a)).status === 'succeeded');

    // An ended run gives no control link.
    assert.equal((await api('POST', `/workflows/${a}/control`, {})).status, 409);
    // A malformed message closes the socket with its reason.
    const sloppy = await ControlClient.open(socketUrl(lb2));
    sloppy.send({ t: 'input', kind: 'click', id: 1 });
    const bad = await sloppy.closed;
    assert.equal(bad.code, 4400);
    assert.match(bad.reason, /malformed/);
    await api('POST', `/workflows/${b}/cancel`);
  });

  test('taking control while a step runs waits for the end of that step; the next step waits while a person holds control', async () => {
    const id = await start({
      name: 'lock',
      steps: [
        { type: 'navigation', url: `${pages.url}/login.html` },
        { type: 'wait', ms: 1500, description: 'a slow step' },
        { type: 'input', cssSelector: '#user', value: 'after' },
      ],
    });
    const l = await link(id);
    const session = stack.server.deps.registry.get(id)!;
    await waitFor('the slow step runs', () => session.steps[1]!.state === 'running');
    const person = await ControlClient.open(socketUrl(l));
    person.send({ t: 'take' });
    await waitFor('told to wait', () => person.states().includes('waiting'));
    assert.equal(session.steps[1]!.state, 'running', 'the step was not interrupted');
    // An input while waiting is refused: control comes at the step's end.
    person.send({ t: 'input', kind: 'key', phase: 'down', key: 'a', code: 'KeyA' });
    await waitFor('refused', () => person.frames.some((f) => f.t === 'refused'));
    await waitFor('held', () => person.states().includes('held'));
    assert.equal(session.steps[1]!.state, 'succeeded', 'control came once the step had ended');
    assert.equal(session.steps[2]!.state, 'pending', 'and the next step waits');
    // Still waiting a moment later (the lock, not a race): the next step has not started.
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(session.steps[2]!.state, 'pending');
    person.send({ t: 'release' });
    assert.equal((await person.closed).code, 1000);
    await waitFor('the run succeeds', async () => (await run(id)).status === 'succeeded');
  });

  test("a human step nobody answers fails at its timeout, saying so", async () => {
    const id = await start({ name: 'nobody', steps: [{ type: 'navigation', url: `${pages.url}/login.html` }, { type: 'human', description: 'sign in', timeoutMs: 500 }] });
    await waitFor('the run fails', async () => (await run(id)).status === 'failed');
    const r = await run(id);
    assert.equal(r.error, 'step 2 (human) failed: no person took control and released it within 500 ms');
    assert.equal(r.control.human_request, null);
  });
});

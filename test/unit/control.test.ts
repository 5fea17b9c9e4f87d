import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { auditKey, keyEvent } from '../../src/control/index.js';
import { Modifier, type ControlCustomPayload } from '../../src/protocol/index.js';
import { SessionControl, TakeRefused } from '../../src/session/index.js';
import { ViewerTokens } from '../../src/server/viewer-tokens.js';

const secret = new Uint8Array(32).fill(5);
const later = () => Date.now() + 60_000;

function lock(): { control: SessionControl; audit: ControlCustomPayload[] } {
  const audit: ControlCustomPayload[] = [];
  const control = new SessionControl((p) => audit.push(p));
  control.grant('t1', later());
  control.grant('t2', later());
  return { control, audit };
}

describe('control tokens', () => {
  test('a control token checks out for its session only, and carries its id', async () => {
    const tokens = new ViewerTokens(secret, 60);
    const issued = await tokens.issueControl('s1', 60);
    const ok = await tokens.verifyControl(issued.token, 's1');
    assert.deepEqual(ok, { ok: true, jti: issued.jti, expiresAt: issued.expiresAt });
    assert.deepEqual(await tokens.verifyControl(issued.token, 's2'), { ok: false, reason: 'this control token is for another session' });
  });

  test('a viewer token never controls, and a control token never views', async () => {
    const tokens = new ViewerTokens(secret, 60);
    const view = await tokens.issue('s1');
    assert.deepEqual(await tokens.verifyControl(view, 's1'), { ok: false, reason: 'this token does not allow control (a viewer link only watches)' });
    const control = await tokens.issueControl('s1', 60);
    assert.equal((await tokens.verify(control.token, 's1')).ok, false);
  });
});

describe('the lock between a person and the workflow', () => {
  test('between steps a person holds control at once, and the next step waits until the release', async () => {
    const { control } = lock();
    assert.equal(control.take('t1'), 'held');
    let started = false;
    const next = control.beforeStep().then(() => (started = true));
    await new Promise((r) => setImmediate(r));
    assert.equal(started, false);
    control.release('t1');
    await next;
    assert.equal(started, true);
    assert.equal(control.granted('t1'), false, 'released: the link is spent');
  });

  test('during a step a person waits for its end; one person at a time', () => {
    const { control } = lock();
    void control.beforeStep();
    return Promise.resolve().then(() => {
      const held: string[] = [];
      control.on('held', (id) => held.push(id));
      assert.equal(control.take('t1'), 'waiting');
      assert.throws(() => control.take('t2'), (err: unknown) => err instanceof TakeRefused && err.code === 'busy');
      control.afterStep();
      assert.deepEqual(held, ['t1']);
      assert.equal(control.state, 'held');
    });
  });

  test('a human step ends when a person who took control releases it, not when a socket drops', async () => {
    const { control, audit } = lock();
    const done = control.human(1, 'sign in', 60_000);
    assert.equal(control.view.request?.description, 'sign in');
    control.take('t1');
    control.drop('t1');
    let ended = false;
    void done.then(() => (ended = true));
    await new Promise((r) => setImmediate(r));
    assert.equal(ended, false, 'a dropped socket is no release');
    control.take('t1');
    control.release('t1');
    await done;
    assert.equal(control.view.request, null);
    assert.deepEqual(audit.map((a) => a.action), ['take', 'hold', 'release', 'take', 'hold', 'release']);
  });

  test("a human step's timeout fails it", async () => {
    const { control } = lock();
    await assert.rejects(control.human(0, null, 30), /no person took control and released it within 30 ms/);
  });

  test("a human step's timeout fails it when its timer fires, even with Date.now() a little behind", async (t) => {
    const { control } = lock();
    // Timers run on a monotonic clock: one can fire before Date.now() reaches the deadline. Here
    // the wall clock stands still, so only the timer can end the wait (before, it waited for ever).
    const frozen = Date.now();
    t.mock.method(Date, 'now', () => frozen);
    const holdOpen = setTimeout(() => undefined, 5000);
    try {
      await assert.rejects(control.human(0, null, 30), /no person took control and released it within 30 ms/);
    } finally {
      clearTimeout(holdOpen);
    }
  });

  test('revoked, expired and ended tokens cannot take control', async () => {
    const { control } = lock();
    control.revoke('t1', 'revoked');
    assert.throws(() => control.take('t1'), TakeRefused);
    control.grant('t3', Date.now() + 20);
    await new Promise((r) => setTimeout(r, 40));
    assert.throws(() => control.take('t3'), TakeRefused);
    control.end();
    assert.throws(() => control.take('t2'), TakeRefused);
  });
});

describe('keys', () => {
  test('a character types (keyDown with text), an editing key does not (rawKeyDown with its virtual key code)', () => {
    assert.deepEqual(keyEvent('down', 'a', 'KeyA', 0, false), { type: 'keyDown', key: 'a', code: 'KeyA', windowsVirtualKeyCode: 65, nativeVirtualKeyCode: 65, modifiers: 0, text: 'a', unmodifiedText: 'a' });
    assert.equal(keyEvent('down', 'Backspace', 'Backspace', 0, false).type, 'rawKeyDown');
    assert.equal(keyEvent('down', 'Backspace', 'Backspace', 0, false).windowsVirtualKeyCode, 8);
    assert.equal(keyEvent('down', 'ArrowLeft', 'ArrowLeft', Modifier.shift, false).windowsVirtualKeyCode, 37);
    assert.equal(keyEvent('down', 'Enter', 'Enter', 0, false).text, '\r');
    assert.equal(keyEvent('up', 'a', 'KeyA', 0, false).type, 'keyUp');
  });

  test("a shortcut types nothing, and a Mac's ⌘A is Ctrl+A on the run's Linux Chromium", () => {
    const selectAll = keyEvent('down', 'a', 'KeyA', Modifier.meta, false);
    assert.equal(selectAll.modifiers, Modifier.ctrl);
    assert.equal(selectAll.type, 'rawKeyDown');
    assert.equal(selectAll.text, undefined);
  });

  test('the audit trail names editing keys and never a character', () => {
    assert.equal(auditKey('Backspace'), 'Backspace');
    assert.equal(auditKey('x'), 'character');
    assert.equal(auditKey('é'), 'character');
  });
});

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { bindingArgument, pageMethod, RelayFilter, RelayReader, sessionOf } from '../../src/browser/cdp-relay-worker.js';

const limits = { maxBindingChars: 1000, maxOtherBytes: 500, otherBudgetBytes: 2000, otherRefillBytesPerSecond: 1 };
/** A binding call as Chromium writes it: Playwright's {name, seq, serializedArgs} as the payload string. */
const bindingCall = (arg: string, session = 'S1'): Buffer =>
  Buffer.from(
    JSON.stringify({
      method: 'Runtime.bindingCalled',
      params: { name: '__playwright__binding__', payload: JSON.stringify({ name: '__domcastEmit', seq: 1, serializedArgs: [arg] }), executionContextId: 3 },
      sessionId: session,
    }),
  );
const consoleCall = (text: string, session = 'S1'): Buffer =>
  Buffer.from(JSON.stringify({ method: 'Runtime.consoleAPICalled', params: { type: 'log', args: [{ type: 'string', value: text }] }, sessionId: session }));

describe('DevTools relay filter', () => {
  test('knows page-originated events by their first bytes and their session by their last', () => {
    assert.equal(pageMethod(consoleCall('x')), 'Runtime.consoleAPICalled');
    assert.equal(pageMethod(bindingCall('x')), 'Runtime.bindingCalled');
    assert.equal(pageMethod(Buffer.from('{"id":4,"result":{}}')), null);
    assert.equal(pageMethod(Buffer.from('{"method":"Page.frameNavigated","params":{}}')), null);
    assert.equal(sessionOf(consoleCall('x', 'ABC123')), 'ABC123');
    assert.equal(sessionOf(Buffer.from('{"method":"Target.targetCreated","params":{}}')), '');
  });

  test("a binding call's argument is measured inside Playwright's envelope, escapes and all, without parsing", () => {
    const asciiOnly = (json: string): string => json.replace(/[\u007f-\uffff]/g, (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'));
    const args = [
      '[' + '"a",'.repeat(100) + '"a"]',
      'quotes " and \\ backslashes \\" mixed \\\\',
      'control \u0001\u0002\n\t\r\b\f and / slash',
      'unicode é ü 中文 and an emoji 😀 and a lone surrogate \ud800 end',
      '',
      JSON.stringify([{ type: 2, data: { node: { textContent: 'say "hi" \\ 😀' } } }]),
    ];
    for (const arg of args) {
      const raw = bindingCall(arg);
      assert.deepEqual(bindingArgument(raw), { name: '__domcastEmit', chars: arg.length }, `raw UTF-8: ${JSON.stringify(arg).slice(0, 40)}`);
      // Chromium may write non-ASCII as \uXXXX: the same count.
      const escaped = Buffer.from(asciiOnly(raw.toString('utf8')));
      assert.deepEqual(bindingArgument(escaped), { name: '__domcastEmit', chars: arg.length }, `escaped: ${JSON.stringify(arg).slice(0, 40)}`);
    }
    const other = Buffer.from(JSON.stringify({ method: 'Runtime.bindingCalled', params: { name: 'rawBinding', payload: 'plain text', executionContextId: 1 } }));
    assert.deepEqual(bindingArgument(other), { name: 'rawBinding', chars: 'plain text'.length }, 'a binding of our own shape counts its payload');
  });

  test('drops binding calls over the bound, and other page messages over theirs or past their budget; passes the rest', () => {
    const filter = new RelayFilter(limits);
    // Quotes escaped twice make the message about 4x the argument: still passed, the argument is what counts.
    const quoted = '"'.repeat(900);
    assert.ok(bindingCall(quoted).length > 1000);
    assert.equal(filter.pass(bindingCall(quoted)), true);
    assert.equal(filter.pass(bindingCall('1'.repeat(1001))), false);
    // Over 7 bytes per character of the bound: dropped unparsed (its name is not even read).
    assert.equal(filter.pass(bindingCall('2'.repeat(80_000))), false);
    assert.equal(filter.pass(consoleCall('y'.repeat(600))), false, 'one console message over 500 bytes');
    assert.equal(filter.pass(Buffer.from('{"id":1,"result":{"body":"' + 'z'.repeat(5000) + '"}}')), true, 'answers to our own commands are never sized');
    let passed = 0;
    for (let i = 0; i < 40; i++) if (filter.pass(consoleCall('w'.repeat(300)))) passed++;
    assert.equal(passed, Math.floor(2000 / consoleCall('w'.repeat(300)).length), 'as many as fit in the 2,000-byte budget');
    assert.equal(filter.pass(consoleCall('v', 'S2')), true, "another page's budget is its own");
    const reports = filter.take();
    const byKind = Object.fromEntries(reports.map((r) => [`${r.method}/${r.reason}`, r]));
    const dropped = reports.filter((r) => r.method === 'Runtime.bindingCalled');
    assert.deepEqual(
      dropped.map((r) => [r.binding ?? '', r.chars >= 80_000 ? 'huge' : r.chars]),
      [
        ['__domcastEmit', 1001],
        ['', 'huge'],
      ],
    );
    assert.equal(byKind['Runtime.consoleAPICalled/oversize']?.count, 1);
    assert.equal(byKind['Runtime.consoleAPICalled/budget']?.count, 40 - passed);
    assert.deepEqual(filter.take(), [], 'reported once');
  });

  test("the pipe's bytes, cut anywhere, give the same messages and drops; an oversized call is not kept while it arrives", () => {
    const big = { maxBindingChars: 5000, maxOtherBytes: 2000, otherBudgetBytes: 1 << 20, otherRefillBytesPerSecond: 1 << 20 };
    const messages = [
      Buffer.from('{"id":1,"result":{}}'),
      bindingCall('"quoted" 😀 '.repeat(200)),
      consoleCall('x'.repeat(3000)),
      bindingCall('y'.repeat(5001)),
      Buffer.from('{"method":"Page.loadEventFired","params":{"timestamp":1},"sessionId":"S1"}'),
      bindingCall('z'.repeat(40_000)),
      consoleCall('small'),
    ];
    const pipe = Buffer.concat(messages.flatMap((m) => [m, Buffer.from([0])]));
    const expected = [0, 1, 4, 6].map((i) => messages[i]!.toString('utf8'));
    for (const cut of [1, 7, 63, 64, 65, 1000, pipe.length]) {
      const filter = new RelayFilter(big);
      const out: string[] = [];
      const reader = new RelayReader(filter, (m, meter) => {
        if (filter.pass(m, meter)) out.push(m.toString('utf8'));
      });
      for (let i = 0; i < pipe.length; i += cut) reader.push(pipe.subarray(i, i + cut));
      assert.deepEqual(out, expected, `cut every ${cut} bytes`);
      const drops = filter.take().map((d) => [d.method, d.binding ?? '', d.chars, d.count]);
      assert.deepEqual(
        drops,
        [
          ['Runtime.consoleAPICalled', '', messages[2]!.length, 1],
          ['Runtime.bindingCalled', '__domcastEmit', 5001 + 40_000, 2],
        ],
        `drops, cut every ${cut} bytes`,
      );
    }
  });
});

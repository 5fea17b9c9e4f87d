import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { SharedDecode } from '../../bench/load-socket.js';

/** The load bench's viewers share decoded messages; the figures are only as good as this sharing is exact. */
describe('bench: SharedDecode', () => {
  const compress = (text: string): Buffer => deflateRawSync(Buffer.from(text));
  const inflate = (wire: Buffer) => () => inflateRawSync(wire);

  test('the same bytes decode once and give every receiver the same message object', () => {
    const shared = new SharedDecode();
    let decoded = 0;
    const message = '{"t":"events","from":1,"events":[]}';
    const decode = (): Buffer => {
      decoded++;
      return inflate(compress(message))();
    };
    const first = shared.decode(compress(message), true, decode);
    const second = shared.decode(compress(message), true, decode);
    assert.equal(decoded, 1);
    assert.equal(first, second);
    assert.equal(first.toString(), message);
    assert.deepEqual({ hits: shared.hits, misses: shared.misses }, { hits: 1, misses: 1 });
  });

  test('bytes that differ, even in one byte of the same length, are decoded on their own', () => {
    const shared = new SharedDecode();
    const a = '{"t":"events","from":1,"events":[]}';
    const b = '{"t":"events","from":2,"events":[]}';
    const wa = compress(a);
    const wb = compress(b);
    assert.equal(wa.length, wb.length);
    assert.equal(shared.decode(wa, true, inflate(wa)).toString(), a);
    assert.equal(shared.decode(wb, true, inflate(wb)).toString(), b);
    assert.equal(shared.misses, 2);
  });

  test('compressed and plain messages with the same bytes are not confused', () => {
    const shared = new SharedDecode();
    const wire = compress('{"t":"ping"}');
    const asCompressed = shared.decode(wire, true, inflate(wire));
    const asPlain = shared.decode(wire, false, () => assert.fail('a plain message is not decoded'));
    assert.equal(asCompressed.toString(), '{"t":"ping"}');
    assert.ok(asPlain.equals(wire));
    assert.notEqual(asPlain, asCompressed);
  });

  test('the wire bytes are copied: a socket reusing its read buffer cannot change a cached message', () => {
    const shared = new SharedDecode();
    const readBuffer = Buffer.from('{"t":"status"}');
    const first = shared.decode(readBuffer, false, () => assert.fail());
    readBuffer.fill(0x20);
    assert.equal(first.toString(), '{"t":"status"}');
    assert.notEqual(shared.decode(Buffer.from('{"t":"status"}'), false, () => assert.fail()), undefined);
    assert.equal(shared.hits, 1);
  });

  test('it holds at most its capacity, oldest out first', () => {
    const shared = new SharedDecode(2);
    const wire = (n: number) => Buffer.from(`{"n":${n}}`);
    for (const n of [1, 2, 3]) shared.decode(wire(n), false, () => assert.fail());
    shared.decode(wire(3), false, () => assert.fail());
    shared.decode(wire(2), false, () => assert.fail());
    assert.equal(shared.hits, 2);
    shared.decode(wire(1), false, () => assert.fail());
    assert.equal(shared.misses, 4, 'the first message was evicted');
  });
});

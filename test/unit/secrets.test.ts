import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { redactInputs, secretRedactor } from '../../src/workflow/index.js';

describe('secret inputs', () => {
  test('inputs with secret-looking names are kept as [redacted]', () => {
    assert.deepEqual(redactInputs({ user: 'ada', api_token: 't', Password: 'p', n: 3 }), { user: 'ada', api_token: '[redacted]', Password: '[redacted]', n: 3 });
  });

  test('a secret value is replaced as given, percent-encoded by a URL, or lower-cased like a host name', () => {
    const redact = secretRedactor({ api_token: 'Ab c/ü', user: 'ada' });
    assert.equal(redact('go to http://h/Ab c/ü'), 'go to http://h/[redacted]');
    assert.equal(redact('go to http://h/Ab%20c/%C3%BC'), 'go to http://h/[redacted]');
    assert.equal(redact('go to http://h/?q=Ab%20c%2F%C3%BC'), 'go to http://h/?q=[redacted]');
    assert.equal(redact('host ab c/ü.example'), 'host [redacted].example');
    assert.equal(redact('ada stays'), 'ada stays', 'values of other inputs are shown');
  });

  test('the longest value wins and a replacement is never matched again', () => {
    const redact = secretRedactor({ secret: 'red', api_key: 'redacted-key' });
    assert.equal(redact('x redacted-key y red z'), 'x [redacted] y [redacted] z');
  });

  test('no secret inputs: text is unchanged; numbers count, booleans do not', () => {
    assert.equal(secretRedactor({ user: 'ada' })('ada'), 'ada');
    assert.equal(secretRedactor({ pin_key: 4711, auth: true })('4711 true'), '[redacted] true');
  });
});

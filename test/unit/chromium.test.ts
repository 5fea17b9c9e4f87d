import assert from 'node:assert/strict';
import { test } from 'node:test';
import { findChromium } from '../../src/browser/index.js';
import { ChromiumNotFoundError } from '../../src/common/index.js';

test('a CHROMIUM_PATH that is not an executable fails with one message that says how to get Chromium', () => {
  assert.throws(
    () => findChromium({ explicitPath: '/nonexistent/chromium', install: true }),
    (err: unknown) =>
      err instanceof ChromiumNotFoundError &&
      err.code === 'CHROMIUM_NOT_FOUND' &&
      err.message.includes('CHROMIUM_PATH=/nonexistent/chromium') &&
      err.message.includes('apt-get install chromium'),
  );
});

test('an executable CHROMIUM_PATH is used as given', () => {
  assert.equal(findChromium({ explicitPath: process.execPath }), process.execPath);
});

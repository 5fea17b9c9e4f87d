import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { prettyLine } from '../../src/common/logger.js';

describe('pretty log lines (LOG_FORMAT=pretty, the default on a terminal)', () => {
  const time = new Date(2026, 11, 4, 15, 4, 5).getTime();
  const line = JSON.stringify({ level: 30, time, pid: 1, hostname: 'h', app: 'domcast', msg: 'domcast listening', url: 'http://127.0.0.1:3000', apiKey: 'off' });

  test('time, level and message first, then the fields as key=value, without pid, host or app', () => {
    assert.equal(prettyLine(line, false), '15:04:05 INFO  domcast listening url=http://127.0.0.1:3000 apiKey=off\n');
  });

  test('values with spaces or structure are quoted as JSON; warnings and errors are coloured on a terminal', () => {
    const warn = JSON.stringify({ level: 40, time, msg: 'page batch refused', refused: 'batch of 5 chars', drop: { count: 2 } });
    assert.equal(prettyLine(warn, false), '15:04:05 WARN  page batch refused refused="batch of 5 chars" drop={"count":2}\n');
    assert.ok(prettyLine(warn, true).includes('\u001b[33mWARN '), 'yellow WARN');
  });

  test('a line that is not JSON is kept as it is', () => {
    assert.equal(prettyLine('not json\n', false), 'not json\n');
  });
});

/**
 * The Redis side of a session's log, after Centrifugo's Redis engine: each write is one Lua script,
 * so a reader never sees a stream and its meta disagree.
 *
 * Keys (the `{id}` hash tag keeps both in one Redis Cluster slot):
 * - `<prefix>:log:{<id>}`: a stream; one entry per batch, id `<first seq>-0`, fields `p` (epoch),
 *   `n` (events), `e` (each event's JSON text, joined by `\n`, which JSON text never holds
 *   unescaped), `t` (page timestamps, joined by `,`), `c` (the checkpoint's seq, when
 *   this batch made a new one), `v` (the session's view as JSON, src/cluster/view.ts, when the
 *   batch changed it). Markers carry `n` 0: `<last seq>-1` after a
 *   seed (a reader that sees its epoch change rebuilds), `<last seq>-2` at the end.
 * - `<prefix>:log:{<id>}:meta`: a hash: `epoch`, `seq` (last seq), `cp` (checkpoint seq: its Meta),
 *   `cpid` (first seq of the entry holding that Meta), `view` (the latest), `ended` (the run's final status, once it ended).
 *
 * The seqs are the worker's: its SessionLog numbers the events and the stream stores them under
 * those numbers, so the stream offset is the seq. A write that does not follow the stream's last
 * seq, or finds the stream gone (Redis restarted without persistence, the key evicted), is refused,
 * and the worker seeds the stream again from its checkpoint under a new epoch.
 */

/**
 * KEYS: stream, meta. ARGV: from ('' = the next seq, for events written by another node), events,
 * joined events, joined timestamps, checkpoint seq ('0' = none in this batch), first seq of the
 * entry holding the checkpoint, expected epoch ('' = any), the session's view ('' = unchanged).
 * → {'ok', from} | {'lost'} (no stream or meta, or another epoch) | {'gap', last seq} | {'ended', status}
 */
/**
 * A live stream expires a day after its last write: one whose run never ended (its worker and
 * every node that could have ended it went away) does not stay for ever. Each write renews it.
 */
export const LIVE_TTL_MS = 86_400_000;

export const APPEND_SCRIPT = `
local meta = redis.call('HMGET', KEYS[2], 'seq', 'epoch', 'cpid', 'ended')
if not meta[1] or redis.call('EXISTS', KEYS[1]) == 0 then return {'lost'} end
if ARGV[7] ~= '' and meta[2] ~= ARGV[7] then return {'lost'} end
if meta[4] then return {'ended', meta[4]} end
local from = tonumber(meta[1]) + 1
if ARGV[1] ~= '' and tonumber(ARGV[1]) ~= from then
  -- The same batch sent again (ioredis resends what was in flight when a connection dropped): done already.
  if tonumber(ARGV[1]) < from and #redis.call('XRANGE', KEYS[1], ARGV[1] .. '-0', ARGV[1] .. '-0') == 1 then return {'ok', ARGV[1]} end
  return {'gap', meta[1]}
end
local n = tonumber(ARGV[2])
local fields = {'p', meta[2], 'n', ARGV[2], 'e', ARGV[3], 't', ARGV[4]}
if ARGV[5] ~= '0' then
  table.insert(fields, 'c')
  table.insert(fields, ARGV[5])
end
if ARGV[8] ~= '' then
  table.insert(fields, 'v')
  table.insert(fields, ARGV[8])
  redis.call('HSET', KEYS[2], 'view', ARGV[8])
end
redis.call('XADD', KEYS[1], string.format('%d-0', from), unpack(fields))
redis.call('HSET', KEYS[2], 'seq', string.format('%d', from + n - 1))
if ARGV[5] ~= '0' then
  if meta[3] then redis.call('XTRIM', KEYS[1], 'MINID', meta[3] .. '-0') end
  redis.call('HSET', KEYS[2], 'cp', ARGV[5], 'cpid', ARGV[6])
end
redis.call('PEXPIRE', KEYS[1], LIVE_TTL_MS)
redis.call('PEXPIRE', KEYS[2], LIVE_TTL_MS)
return {'ok', string.format('%d', from)}
`.replaceAll('LIVE_TTL_MS', String(LIVE_TTL_MS));

/**
 * Starts the stream again (a new run, or after a loss): everything from the checkpoint as one
 * entry, then a marker with the new epoch. Never after the end: an ended stream stays as it is ('ended').
 * KEYS: stream, meta. ARGV: epoch, from, events, joined events, joined timestamps, checkpoint seq,
 * the marker's sequence part (larger at each seed: a tail may hold the id of the last stream's
 * marker, `<last seq>-<its stamp>`, and reads only what follows it), the session's view.
 */
export const SEED_SCRIPT = `
local ended = redis.call('HGET', KEYS[2], 'ended')
if ended then return 'ended' end
redis.call('DEL', KEYS[1], KEYS[2])
local from = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local last = from + n - 1
if n > 0 then
  redis.call('XADD', KEYS[1], string.format('%d-0', from), 'p', ARGV[1], 'n', ARGV[3], 'e', ARGV[4], 't', ARGV[5], 'c', ARGV[6], 'v', ARGV[8])
end
redis.call('XADD', KEYS[1], string.format('%d-', last) .. ARGV[7], 'p', ARGV[1], 'n', '0', 'reset', '1')
redis.call('HSET', KEYS[2], 'epoch', ARGV[1], 'seq', string.format('%d', last), 'cp', ARGV[6], 'cpid', ARGV[2], 'view', ARGV[8])
redis.call('PEXPIRE', KEYS[1], LIVE_TTL_MS)
redis.call('PEXPIRE', KEYS[2], LIVE_TTL_MS)
return 'ok'
`.replaceAll('LIVE_TTL_MS', String(LIVE_TTL_MS));

/**
 * The run ended: the status is kept beside the stream, a marker tells the tails, and both keys
 * expire (the recording is in the store by then).
 * KEYS: stream, meta. ARGV: status, expected epoch ('' = any), time to live in ms.
 * → 'ok' | 'lost'
 */
export const END_SCRIPT = `
local meta = redis.call('HMGET', KEYS[2], 'seq', 'epoch', 'ended')
if not meta[1] then return 'lost' end
if ARGV[2] ~= '' and meta[2] ~= ARGV[2] then return 'lost' end
if not meta[3] then
  redis.call('XADD', KEYS[1], meta[1] .. '-*', 'p', meta[2], 'n', '0', 'end', ARGV[1])
  redis.call('HSET', KEYS[2], 'ended', ARGV[1])
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return 'ok'
`;

/**
 * What a joiner needs, read at one instant: the meta and every entry from the checkpoint's (a
 * session's log, here as on the worker, holds what follows its latest checkpoint).
 * KEYS: stream, meta. → {} when there is no stream, else {epoch, cp, seq, ended or '', entries, view or ''}
 */
export const OPEN_SCRIPT = `
local meta = redis.call('HMGET', KEYS[2], 'epoch', 'cp', 'cpid', 'seq', 'ended', 'view')
if not meta[1] then return {} end
local entries = redis.call('XRANGE', KEYS[1], meta[3] .. '-0', '+')
return {meta[1], meta[2], meta[4], meta[5] or '', entries, meta[6] or ''}
`;

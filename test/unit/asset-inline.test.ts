import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { assetPath, inlineAssets, type AssetSource } from '../../src/assets/index.js';
import { collect } from '../helpers/stores.js';

const store = (bodies: Record<string, string>): AssetSource => ({
  assetHash: async (sid, url) => (sid === 's1' && url in bodies ? `h:${url}` : undefined),
  assetBody: async (sid, hash) => (sid === 's1' && hash.startsWith('h:') ? { contentType: 'image/png', body: Buffer.from(bodies[hash.slice(2)]!) } : undefined),
});

/** A recording's pieces as the store yields them. */
async function* pieces(texts: string[]): AsyncGenerator<string> {
  yield* texts;
}

describe('inlineAssets (domcast export)', () => {
  test('asset paths of the session become data: URLs of their bodies; unknown ones, other sessions\' and plain text stay', async () => {
    const a = assetPath('s1', 'http://site.test/a.png');
    const b = assetPath('s1', 'http://site.test/missing.png');
    const other = assetPath('s2', 'http://site.test/a.png');
    const events = [`[{"src":"${a}"},{"style":"background:url(${a})"}`, `,{"src":"${b}","x":"${other}"},{"t":"no assets here"}]`];
    const out = (await collect(inlineAssets(pieces(events), 's1', store({ 'http://site.test/a.png': 'PNG!' })))).join('');
    const data = `data:image/png;base64,${Buffer.from('PNG!').toString('base64')}`;
    assert.equal(out, `[{"src":"${data}"},{"style":"background:url(${data})"},{"src":"${b}","x":"${other}"},{"t":"no assets here"}]`);
    assert.doesNotThrow(() => JSON.parse(out));
  });

  test('keeps a fragment after the data URL, and stops inlining at its byte bound', async () => {
    const a = assetPath('s1', 'http://site.test/a.png');
    const out = (await collect(inlineAssets(pieces([`["${a}#icon","${a}"]`]), 's1', store({ 'http://site.test/a.png': 'x'.repeat(30) }), 70))).join('');
    const parsed = JSON.parse(out) as string[];
    assert.match(parsed[0]!, /^data:image\/png;base64,[A-Za-z0-9+/=]+#icon$/);
    assert.equal(parsed[1], a, 'past the bound the path is left as it is');
  });
});

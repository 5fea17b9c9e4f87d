import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { CloseCode, RrwebEventType } from '../../src/protocol/index.js';
import { demoWorkflow, waitFor, WsViewer, type Stack, startStack } from '../helpers/stack.js';

const KEY = 'e2e-metrics-api-key-0123456789';
const METRICS_TOKEN = 'e2e-metrics-scrape-token-0123';

/** One scrape, parsed: a sample's value by family name and labels (histograms: their count, by `name_count`). */
class Scrape {
  private readonly families: ReturnType<typeof parsePrometheusTextFormat>;
  constructor(readonly text: string) {
    this.families = parsePrometheusTextFormat(text);
  }

  value(name: string, labels: Record<string, string> = {}): number {
    const histogram = /^(.*)_count$/.exec(name);
    const family = this.families.find((f) => f.name === name) ?? (histogram ? this.families.find((f) => f.name === histogram[1] && f.type === 'HISTOGRAM') : undefined);
    assert.ok(family, `no metric ${name} in:\n${this.text.slice(0, 2000)}`);
    const sample = family.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
    assert.ok(sample, `no ${name}${JSON.stringify(labels)}`);
    return Number(family.type === 'HISTOGRAM' ? sample.count : sample.value);
  }

  type(name: string): string | undefined {
    return this.families.find((f) => f.name === name)?.type;
  }
}

describe('GET /metrics, as runs and viewers happen', () => {
  let stack: Stack;

  before(async () => {
    stack = await startStack({ DOMCAST_API_KEY: KEY, METRICS_TOKEN, LOG_LEVEL: 'warn' });
  });
  after(async () => {
    await stack?.close();
  });

  async function scrape(bearer = METRICS_TOKEN): Promise<Scrape> {
    const res = await fetch(`${stack.base}/metrics`, { headers: { authorization: `Bearer ${bearer}` } });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    return new Scrape(await res.text());
  }

  async function run(workflow: unknown, extra: Record<string, unknown> = {}): Promise<{ session_id: string; visual_stream_url: string | null }> {
    const res = await fetch(`${stack.base}/workflows/execute`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` },
      body: JSON.stringify({ workflow, inputs: { user: 'grace' }, visual_enabled: true, ...extra }),
    });
    const body = (await res.json()) as { session_id: string; visual_stream_url: string | null };
    assert.equal(res.status, 202, JSON.stringify(body));
    return body;
  }

  const statusOf = async (id: string): Promise<string> =>
    ((await (await fetch(`${stack.base}/workflows/${id}`, { headers: { authorization: `Bearer ${KEY}` } })).json()) as { status: string }).status;

  test('the route needs the API key or METRICS_TOKEN', async () => {
    assert.equal((await fetch(`${stack.base}/metrics`)).status, 401);
    assert.equal((await fetch(`${stack.base}/metrics`, { headers: { authorization: 'Bearer not-the-key-not-the-token' } })).status, 401);
    assert.ok((await scrape(KEY)).text.length > 0);
    assert.ok((await scrape(METRICS_TOKEN)).text.length > 0);
    // The scrape token is for /metrics alone.
    assert.equal((await fetch(`${stack.base}/workflows/sessions`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } })).status, 401);
  });

  test('a visual run in Chromium watched by a viewer that reconnects moves the counters', async () => {
    const before = await scrape();
    assert.equal(before.type('domcast_events_total'), 'COUNTER');
    assert.equal(before.type('domcast_delivery_lag_seconds'), 'HISTOGRAM');
    assert.ok(before.text.includes('domcast_delivery_lag_seconds_bucket{le="0.001"}'), 'the first bucket is 1 ms');
    assert.ok(before.value('domcast_process_resident_memory_bytes') > 0, "Node's default metrics, prefixed");

    const started = await run(demoWorkflow(stack.site.url, { midWaitMs: 2500, holdMs: 500 }));
    const first = await WsViewer.open(started.visual_stream_url!);
    await waitFor('the todo page', () => first.received.some((r) => r.event.type === RrwebEventType.Meta && String((r.event.data as { href: string }).href).includes('todo')));

    const during = await scrape();
    assert.equal(during.value('domcast_viewer_connections'), before.value('domcast_viewer_connections') + 1);
    assert.equal(during.value('domcast_runs', { status: 'running' }), 1);
    assert.equal(during.value('domcast_run_queue_depth'), 0);
    assert.ok(during.value('domcast_events_total') > before.value('domcast_events_total'));

    // The viewer drops and comes back where it left off: a reconnection, resumed without a reset.
    await first.close();
    const second = await WsViewer.open(`${started.visual_stream_url}&since=${first.lastSeq}&epoch=${first.hello()!.epoch}`);
    // A viewer with a bad token is refused: an error of its type.
    const refused = await WsViewer.open(started.visual_stream_url!.replace(/token=[^&]+/, 'token=not.a.token'));
    assert.equal((await refused.closed).code, CloseCode.unauthorized);
    assert.deepEqual(await second.closed, { code: CloseCode.normal, reason: 'session ended' });
    await waitFor('the run to succeed', async () => (await statusOf(started.session_id)) === 'succeeded');
    await waitFor('the store to have written the run', () => stack.server.deps.store.eventsWritten >= first.lastSeq);

    const afterRun = await scrape();
    const moved = (name: string, labels: Record<string, string> = {}): number => afterRun.value(name, labels) - before.value(name, labels);
    // The page's events, that is: the server's own step and status marks (Custom events) are not counted.
    const seen = new Map([...first.received, ...second.received].map((r) => [r.seq, r.event.type]));
    const pageEvents = [...seen.values()].filter((type) => type !== RrwebEventType.Custom).length;
    const events = moved('domcast_events_total');
    assert.ok(pageEvents > 50, `the viewers saw ${pageEvents} page events`);
    assert.equal(events, pageEvents);
    // Every page event's lag is observed once, when it is handed to the viewers.
    assert.equal(moved('domcast_delivery_lag_seconds_count'), events);
    assert.equal(moved('domcast_runs_finished_total', { status: 'succeeded' }), 1);
    assert.equal(afterRun.value('domcast_runs', { status: 'running' }), 0);
    assert.equal(afterRun.value('domcast_viewer_connections'), before.value('domcast_viewer_connections'));
    assert.equal(moved('domcast_viewer_reconnections_total', { outcome: 'resumed' }), 1);
    assert.equal(moved('domcast_viewer_reconnections_total', { outcome: 'reset' }), 0);
    assert.equal(moved('domcast_errors_total', { type: 'refused_connection' }), 1);
    // On the wire, compressed: at least a byte per frame received, and many in all.
    const frames = first.raw.length + second.raw.length;
    const bytes = moved('domcast_viewer_sent_bytes_total');
    assert.ok(bytes > frames * 2 && bytes > 10_000, `${bytes} bytes for ${frames} frames`);
    assert.ok(moved('domcast_store_events_written_total') >= first.lastSeq);
    assert.ok(afterRun.value('domcast_store_bytes') > 0);
  });

  test('a viewer resuming from another epoch is counted as a reconnection with a reset', async () => {
    const before = await scrape();
    const started = await run(demoWorkflow(stack.site.url, { midWaitMs: 1500, holdMs: 300 }));
    const first = await WsViewer.open(started.visual_stream_url!);
    await waitFor('some events', () => first.received.length > 5);
    await first.close();
    const stale = await WsViewer.open(`${started.visual_stream_url}&since=${first.lastSeq}&epoch=another-server`);
    await stale.closed;
    assert.equal(stale.frames[1]?.t, 'reset');
    await waitFor('the run to end', async () => (await statusOf(started.session_id)) === 'succeeded');
    const afterRun = await scrape();
    assert.equal(afterRun.value('domcast_viewer_reconnections_total', { outcome: 'reset' }) - before.value('domcast_viewer_reconnections_total', { outcome: 'reset' }), 1);
    assert.equal(afterRun.value('domcast_viewer_resets_total', { reason: 'resume' }) - before.value('domcast_viewer_resets_total', { reason: 'resume' }), 1);
  });

  test('a failed run counts as failed, and as an error of type failed_run', async () => {
    const before = await scrape();
    const started = await run(
      { name: 'fails', steps: [{ type: 'navigation', url: `${stack.site.url}/index.html` }, { type: 'click', cssSelector: '#no-such-button' }] },
      { step_timeout_ms: 1000, inputs: {} },
    );
    await waitFor('the run to fail', async () => (await statusOf(started.session_id)) === 'failed');
    const afterRun = await scrape();
    assert.equal(afterRun.value('domcast_runs_finished_total', { status: 'failed' }) - before.value('domcast_runs_finished_total', { status: 'failed' }), 1);
    assert.equal(afterRun.value('domcast_errors_total', { type: 'failed_run' }) - before.value('domcast_errors_total', { type: 'failed_run' }), 1);
  });
});

import type { BrowserContext, Page } from 'playwright-core';
import type { GovernorStats } from '../browser/cpu-governor.js';
import { AssetCapture, installRecorder, recordPage, type PageRecorder, RECORDER_BINDING, relayOf, type RelayDrop, guardRun, openShadowRoots, type AssetLimits, NavigationPolicy, screenshotMasks, type NavigationPolicyOptions, type BrowserLauncher, type PrivacyOptions, type VisualQuality } from '../browser/index.js';
import { BadRequestError, errorMessage, machineLoad, type Logger } from '../common/index.js';
import type { FrameRemap } from '../protocol/index.js';
import type { AssetTally, RecordingLimits, Session, SessionRegistry, StreamMetrics } from '../session/index.js';
import { redactInputs, runWorkflow, secretRedactor, Tabs, type Redact, type Workflow } from '../workflow/index.js';

/** Keeps a captured body for a session under each URL that led to it. */
export interface AssetSink {
  put(sessionId: string, url: string, contentType: string, body: Buffer): Promise<unknown>;
}

export interface StartRun {
  workflow: Workflow;
  visual: boolean;
  quality: VisualQuality;
  privacy: PrivacyOptions;
  /** Default timeout of each step (a step's own `timeoutMs` wins). */
  stepTimeoutMs?: number;
  /** Kept with the session, secrets redacted. */
  inputs?: Record<string, unknown>;
  /** The session's id, when the run was queued elsewhere (cluster mode: the API node chose it). */
  sessionId?: string;
}

/**
 * The run's logger with its secret inputs hidden in the fields that carry page or step text: a
 * refused request's URL (logged by the guard) can hold a value filled into a navigation.
 */
/**
 * `work`, or a rejection as soon as the run is cancelled or its context closes (the server closing
 * its browsers): Playwright may never settle a page still being created in a browser that went away,
 * and a run that never settles keeps the server from closing.
 */
function unlessStopped<T>(work: Promise<T>, signal: AbortSignal, context: BrowserContext): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const stop = (): void => {
      done();
      reject(new Error(signal.aborted ? 'cancelled' : 'the browser closed'));
    };
    const done = (): void => {
      signal.removeEventListener('abort', stop);
      context.off('close', stop);
    };
    if (signal.aborted) return stop();
    signal.addEventListener('abort', stop);
    context.on('close', stop);
    work.then(
      (v) => {
        done();
        resolve(v);
      },
      (err: unknown) => {
        done();
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}

function redactingLog(log: Logger, redact: Redact): Logger {
  const text = (v: unknown): unknown => (typeof v === 'string' ? redact(v) : v);
  return log.child({}, { serializers: { url: text, reason: text, err: text, error: text } });
}

interface StepInterrupt {
  reason: string;
  fatal: boolean;
}

/**
 * What fails a run's step in flight from outside it: a refused navigation fails that step; a crashed
 * page or a dead browser is fatal, failing it and any step after.
 */
class Interrupts {
  private readonly listeners = new Set<(interrupt: StepInterrupt) => void>();
  fatal: StepInterrupt | undefined;

  trip(reason: string, fatal: boolean): void {
    const interrupt = { reason, fatal };
    if (fatal) this.fatal ??= interrupt;
    for (const listener of [...this.listeners]) listener(interrupt);
  }

  readonly subscribe = (listener: (interrupt: StepInterrupt) => void): (() => void) => {
    if (this.fatal) listener(this.fatal);
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };
}

interface Active {
  abort: AbortController;
  context?: BrowserContext;
  page?: Page;
}

/**
 * Ties the parts together for each run: a browser context, the recorder, the session and the steps.
 * At most `maxConcurrent` runs at once; the others wait `queued`, first come first served.
 */
export class RunManager {
  private readonly running = new Set<Promise<void>>();
  private readonly active = new Map<string, Active>();
  private readonly queue: { session: Session; req: StartRun }[] = [];
  private readonly policy: NavigationPolicy;
  /** Set when shutdown begins: why queued runs were cancelled, and why any started later is. */
  private stopping: string | null = null;

  constructor(
    private readonly deps: {
      launcher: BrowserLauncher;
      registry: SessionRegistry;
      metrics: StreamMetrics;
      /** Bounds of each session's recording (VISUAL_EVENT_BUFFER_SIZE, VISUAL_SESSION_MAX_MB, VISUAL_MAX_EVENT_MB). */
      limits: RecordingLimits;
      maxConcurrent: number;
      log: Logger;
      /** ALLOWED_HOSTS / BLOCKED_HOSTS; without them the built-in refusals (non-http schemes, link-local, cloud metadata) still apply. */
      navigation?: NavigationPolicyOptions;
      /**
       * Where the bodies of the assets a visual run's page loaded go (the recordings store), and
       * their limits. Only when every run has a browser of its own (BROWSER_ISOLATION=run).
       */
      assets?: { sink: AssetSink; limits: AssetLimits };
    },
  ) {
    this.policy = new NavigationPolicy(deps.navigation);
  }

  /** CPU fairness between the runs' browsers: how many are below their share now, and since start. */
  get cpuGovernor(): GovernorStats {
    return this.deps.launcher.governor.stats;
  }

  get queued(): number {
    return this.queue.length;
  }

  /** Creates the session at once; it runs as soon as a slot is free. */
  start(req: StartRun): Session {
    const session = this.deps.registry.create({
      ...(req.sessionId !== undefined ? { id: req.sessionId } : {}),
      workflowName: req.workflow.name,
      steps: req.workflow.steps.map((s) => ({ type: s.type, description: s.description ?? null })),
      visual: req.visual,
      quality: req.quality,
      limits: this.deps.limits,
      metrics: this.deps.metrics,
      inputs: redactInputs(req.inputs ?? {}),
      // Its page's asset URLs point at our copies only when its browser captures them.
      assets: req.visual && this.deps.assets !== undefined,
    });
    session.on('listenerError', (err) => this.deps.log.error({ err, session: session.id }, 'a consumer of the event log failed'));
    if (this.stopping !== null) {
      session.setStatus('cancelled', this.stopping);
      return session;
    }
    this.queue.push({ session, req });
    this.pump();
    return session;
  }

  private pump(): void {
    while (this.stopping === null && this.active.size < this.deps.maxConcurrent && this.queue.length > 0) {
      const { session, req } = this.queue.shift()!;
      const entry: Active = { abort: new AbortController() };
      this.active.set(session.id, entry);
      const run = this.execute(session, req, entry).finally(() => {
        this.running.delete(run);
        this.active.delete(session.id);
        this.pump();
      });
      this.running.add(run);
    }
  }

  /**
   * Stops a run: a queued one never starts, a running one stops at once (its browser context is
   * closed). Viewers are told through the session's status. A finished run is a 409.
   */
  async cancel(session: Session, end?: { status: 'interrupted'; reason: string }): Promise<void> {
    if (session.finished) throw new BadRequestError(`session ${session.id} already ended (${session.status})`, 409, 'ALREADY_ENDED');
    const queuedAt = this.queue.findIndex((q) => q.session === session);
    if (queuedAt >= 0) {
      this.queue.splice(queuedAt, 1);
      session.setStatus(end?.status ?? 'cancelled', end?.reason ?? 'cancelled before it started');
      return;
    }
    const entry = this.active.get(session.id);
    if (!entry) return;
    entry.abort.abort();
    // The last frames the page sent are kept; closing the context ends the step in flight.
    session.setStatus(end?.status ?? 'cancelled', end?.reason ?? 'cancelled while running');
    await entry.context?.close().catch(() => undefined);
  }

  private async execute(session: Session, req: StartRun, entry: Active): Promise<void> {
    const redact = secretRedactor(req.inputs ?? {});
    const log = redactingLog(this.deps.log.child({ session: session.id }), redact);
    const signal = entry.abort.signal;
    try {
      entry.context = await this.deps.launcher.newContext(this.policy);
    } catch (err) {
      log.error({ err: errorMessage(err) }, 'could not start a browser');
      session.setStatus('failed', `could not start a browser: ${errorMessage(err)}`);
      return;
    }
    const context = entry.context;
    const interrupts = new Interrupts();
    const browser = context.browser();
    const browserGone = (): void => interrupts.trip('the browser process exited', true);
    // A page that floods its binding makes the server work for nothing: its run ends.
    const flooded = (reason: string): void => interrupts.trip(`${reason}; the run was ended`, true);
    session.on('flood', flooded);
    browser?.on('disconnected', browserGone);
    // With a browser of its own, what its relay drops is this run's page's doing: recorder batches
    // over VISUAL_MAX_EVENT_MB count against the page's budget as if read, and are refused.
    const relay = this.deps.launcher.isolation === 'run' ? relayOf(browser) : undefined;
    const dropped = (drop: RelayDrop): void => {
      log.warn({ drop }, 'the page made its browser send more than the server reads; dropped unread');
      if (drop.binding !== RECORDER_BINDING) return;
      const refused = session.batchesDropped(drop.count, drop.chars);
      if (refused) log.warn({ refused }, 'page batch refused');
    };
    relay?.on('drop', dropped);
    if (relay) {
      this.deps.launcher.governor.watch(relay.pid, (cores) => {
        log.warn({ cores: Math.round(cores * 100) / 100 }, "the run's browser took more than its share of a busy machine; it runs below the others until it uses less");
      });
    }
    let unguard = (): void => {};
    let tally: AssetTally | undefined;
    let tabs: Tabs | undefined;
    const releaseLoad = machineLoad.hold();
    try {
      if (signal.aborted) return;
      // Before any page exists: closed shadow roots are attached open, for steps and the recorder alike.
      await openShadowRoots(context);
      const page = await unlessStopped(context.newPage(), signal, context);
      entry.page = page;
      const watchCrash = (tab: Page): void => {
        tab.on('crash', () => {
          log.error('page crashed');
          // A tab the run is not on may crash on its own; the one it is on takes the step with it.
          if (tab === (tabs?.active ?? page)) interrupts.trip('the page crashed (renderer process gone)', true);
        });
      };
      watchCrash(page);
      const assets = this.deps.assets;
      const capture =
        assets && req.visual
          ? new AssetCapture(assets.limits, ({ urls, contentType, body }) => {
              for (const url of urls) {
                assets.sink.put(session.id, url, contentType, body).catch((err: unknown) => log.error({ err: errorMessage(err) }, 'could not keep a captured asset'));
              }
            })
          : undefined;
      if (capture) {
        session.assets = capture.counts;
        this.deps.metrics.trackAssets(capture.counts);
        tally = capture.counts;
      }
      unguard = await guardRun(
        context,
        page,
        this.policy,
        log,
        {
          onNavigationRefused: ({ url, reason }) => interrupts.trip(`navigation to ${url} refused: ${reason}`, false),
          onRefused: () => session.refusedRequests++,
        },
        capture,
      );
      // Every tab is recorded; the stream shows the one the run is on (src/workflow/tabs.ts).
      const recorders = new Map<Page, PageRecorder>();
      const ingest = async (json: string, frame?: FrameRemap): Promise<void> => {
        const refused = await session.ingest(json, frame);
        if (refused) log.warn({ refused }, 'page batch refused');
      };
      if (req.visual) {
        recorders.set(page, await recordPage(context, page, ingest));
        await installRecorder(context, page, req.quality, req.privacy, capture ? 'captured' : 'inline');
      }
      const recorder = (): PageRecorder | undefined => recorders.get(tabs?.active ?? page);
      if (req.visual) session.requestSnapshot = () => void recorder()?.takeFullSnapshot();
      tabs = new Tabs(context, page, {
        onOpen: async (opened) => {
          watchCrash(opened);
          log.info({ url: opened.url().slice(0, 300) }, 'a tab opened');
          if (req.visual) recorders.set(opened, await recordPage(context, opened, ingest, false));
        },
        onSwitch: async (to, from) => {
          entry.page = to;
          recorders.get(from)?.mute();
          await recorders.get(to)?.checkpoint();
          log.info({ url: to.url().slice(0, 300) }, 'the run switched tabs');
        },
        onChange: (list) => session.tabsChanged(list),
      });
      await tabs.start();
      session.setStatus('running');
      log.info({ workflow: req.workflow.name, steps: req.workflow.steps.length, visual: req.visual }, 'run started');
      const result = await runWorkflow(tabs, req.workflow, {
        signal,
        checkNavigation: (url) => this.policy.verify(url),
        onInterrupt: interrupts.subscribe,
        screenshotMask: screenshotMasks(req.privacy),
        redact,
        machineBusy: () => machineLoad.busy(),
        // Take control: a person holding the page keeps the next step waiting; human steps wait for one.
        control: session.control,
        ...(req.stepTimeoutMs !== undefined ? { stepTimeoutMs: req.stepTimeoutMs } : {}),
        hooks: {
          onStepStart: (i) => session.stepStarted(i),
          onStepEnd: (i, r) => {
            log.info({ step: i + 1, type: req.workflow.steps[i]?.type, ms: Math.round(r.durationMs) }, 'step done');
            session.stepEnded(i, r);
          },
          onStepFail: (i, f) => {
            log.warn({ step: i + 1, type: req.workflow.steps[i]?.type, ms: Math.round(f.durationMs), selector: f.selector, error: f.error }, 'step failed');
            session.stepFailed(i, f);
          },
        },
      });
      // The page's last changes reach viewers before the run is declared over.
      if (!signal.aborted && !interrupts.fatal) await recorder()?.flush();
      if (result.ok) session.setStatus('succeeded');
      else if (!result.cancelled) session.setStatus('failed', result.error.message);
      log.info({ status: session.status, error: session.error, refused: session.refusedRequests }, 'run ended');
    } catch (err) {
      if (!signal.aborted) {
        const reason = redact(interrupts.fatal?.reason ?? errorMessage(err));
        log.error({ err: reason }, 'run crashed');
        session.setStatus('failed', reason);
      }
    } finally {
      session.requestSnapshot = () => {};
      tabs?.close();
      releaseLoad();
      unguard();
      browser?.off('disconnected', browserGone);
      relay?.off('drop', dropped);
      if (tally) this.deps.metrics.untrackAssets(tally);
      session.off('flood', flooded);
      await context.close().catch(() => undefined);
    }
  }

  /**
   * Shutdown begins: every queued run is cancelled with `reason` and none starts from now on, so
   * the grace period is spent finishing what runs, not starting runs it would cut short.
   */
  stopQueue(reason: string): void {
    this.stopping ??= reason;
    for (const { session } of this.queue.splice(0)) session.setStatus('cancelled', reason);
  }

  /** Cancels every queued and running session with `reason` (shutdown after its grace period). */
  async cancelAll(reason: string): Promise<void> {
    for (const { session } of this.queue.splice(0)) session.setStatus('cancelled', reason);
    await Promise.all(
      [...this.active].map(async ([id, entry]) => {
        entry.abort.abort();
        this.deps.registry.get(id)?.setStatus('cancelled', reason);
        await entry.context?.close().catch(() => undefined);
      }),
    );
    await this.idle();
  }

  /** The page a running session drives (for tests and diagnostics); undefined once it ended. */
  page(sessionId: string): Page | undefined {
    return this.active.get(sessionId)?.page;
  }

  /** Waits for every run in flight (used at shutdown and by tests). */
  async idle(): Promise<void> {
    while (this.running.size > 0) await Promise.allSettled([...this.running]);
  }
}

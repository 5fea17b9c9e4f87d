import type { Page } from 'playwright-core';
import { attachRecorder, type BrowserLauncher, type VisualQuality } from '../browser/index.js';
import { errorMessage, type Logger } from '../common/index.js';
import type { Session, SessionRegistry, StreamMetrics } from '../session/index.js';
import { runWorkflow, type Workflow } from '../workflow/index.js';

export interface StartRun {
  workflow: Workflow;
  visual: boolean;
  quality: VisualQuality;
}

/** Ties the parts together for one run: a browser context, the recorder, the session and the steps. */
export class RunManager {
  private readonly running = new Set<Promise<void>>();
  private readonly pages = new Map<string, Page>();

  constructor(
    private readonly deps: {
      launcher: BrowserLauncher;
      registry: SessionRegistry;
      metrics: StreamMetrics;
      bufferSize: number;
      log: Logger;
    },
  ) {}

  /** Creates the session at once and runs the workflow in the background. */
  start(req: StartRun): Session {
    const session = this.deps.registry.create({
      workflowName: req.workflow.name,
      steps: req.workflow.steps.map((s) => ({ type: s.type, description: s.description ?? null })),
      visual: req.visual,
      quality: req.quality,
      bufferSize: this.deps.bufferSize,
      metrics: this.deps.metrics,
    });
    const run = this.execute(session, req).finally(() => this.running.delete(run));
    this.running.add(run);
    return session;
  }

  private async execute(session: Session, req: StartRun): Promise<void> {
    const log = this.deps.log.child({ session: session.id });
    const context = await this.deps.launcher.newContext().catch((err: unknown) => {
      log.error({ err: errorMessage(err) }, 'could not start a browser');
      session.setStatus('failed', `could not start a browser: ${errorMessage(err)}`);
      return undefined;
    });
    if (!context) return;
    try {
      const page = await context.newPage();
      this.pages.set(session.id, page);
      const recorder = req.visual ? await attachRecorder(context, page, req.quality, (json) => session.ingest(json)) : null;
      if (recorder) session.requestSnapshot = () => void recorder.takeFullSnapshot();
      page.on('crash', () => log.error('page crashed'));
      session.setStatus('running');
      log.info({ workflow: req.workflow.name, steps: req.workflow.steps.length, visual: req.visual }, 'run started');
      const result = await runWorkflow(page, req.workflow, {
        hooks: {
          onStepStart: (i) => session.stepStarted(i),
          onStepEnd: (i, r) => session.stepEnded(i, r),
          onStepFail: (i, f) => session.stepFailed(i, f),
        },
      });
      // The page's last changes reach viewers before the run is declared over.
      await recorder?.flush();
      if (result.ok) session.setStatus('succeeded');
      else session.setStatus('failed', result.error.message);
      log.info({ status: session.status, error: session.error }, 'run ended');
    } catch (err) {
      log.error({ err: errorMessage(err) }, 'run crashed');
      session.setStatus('failed', errorMessage(err));
    } finally {
      this.pages.delete(session.id);
      session.requestSnapshot = () => {};
      await context.close().catch(() => undefined);
    }
  }

  /** The page a running session drives (for tests and diagnostics); undefined once it ended. */
  page(sessionId: string): Page | undefined {
    return this.pages.get(sessionId);
  }

  /** Waits for every run in flight (used at shutdown and by tests). */
  async idle(): Promise<void> {
    while (this.running.size > 0) await Promise.allSettled([...this.running]);
  }
}

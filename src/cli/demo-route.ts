import type { FastifyInstance } from 'fastify';
import { BadRequestError } from '../common/index.js';
import type { Session } from '../session/index.js';

/** The demo's short link: `http://127.0.0.1:<port>/demo`. */
export const DEMO_PATH = '/demo';

/** A run joined by a new viewer is still on its first page: opening it (step 1) or letting the viewer settle (step 2). */
const JOIN_UP_TO_STEP = 1;
/** Demo runs going at once, however many people open the link. */
const MAX_ACTIVE = 2;

/**
 * Which demo run a viewer who opens the short link watches: the newest one while it is still at its
 * start, else a new one, so that every viewer sees a run from its first page. Past MAX_ACTIVE runs
 * at once, the newest is joined wherever it is.
 */
export class DemoRuns {
  private active: Session[] = [];

  constructor(private readonly startRun: () => Session) {}

  forViewer(): { session: Session; started: boolean } {
    this.active = this.active.filter((s) => !s.finished);
    const newest = this.active.at(-1);
    // currentStep is null before the first step (queued, or its browser starting).
    if (newest && (newest.currentStep === null || newest.currentStep <= JOIN_UP_TO_STEP || this.active.length >= MAX_ACTIVE)) {
      return { session: newest, started: false };
    }
    const session = this.startRun();
    this.active.push(session);
    return { session, started: true };
  }
}

const LOOPBACK_NAMES = new Set(['127.0.0.1', 'localhost', '[::1]']);

function isLoopbackHost(host: string | undefined): boolean {
  if (!host) return false;
  try {
    return LOOPBACK_NAMES.has(new URL(`http://${host}`).hostname);
  } catch {
    return false;
  }
}

/**
 * GET /demo, registered by `domcast demo` alone, on a server bound to a loopback address: redirects
 * to the viewer of the run DemoRuns picks, with a fresh viewer token. It needs no key (a browser
 * opens it); the Host check keeps a page on another site from reading the redirect through DNS rebinding.
 */
export function registerDemoRoute(app: FastifyInstance, runs: DemoRuns, viewerUrl: (sessionId: string) => Promise<string>): void {
  app.get(DEMO_PATH, { config: { access: 'public' } }, async (req, reply) => {
    if (!isLoopbackHost(req.headers.host)) {
      throw new BadRequestError(`${DEMO_PATH} answers only on 127.0.0.1 or localhost`, 403, 'FORBIDDEN');
    }
    const { session } = runs.forViewer();
    const link = new URL(await viewerUrl(session.id));
    return reply
      .header('cache-control', 'no-store')
      .header('referrer-policy', 'no-referrer')
      .redirect(`${link.pathname}${link.search}`, 303);
  });
}

/**
 * What the command line says about itself, and its usage error: light on purpose. `main.ts` imports
 * only this and the errors at start, and each command's module when that command runs, so that
 * `domcast health` (a container's HEALTHCHECK, every 15 s) or `--help` loads neither the server nor
 * Playwright, Redis or PostgreSQL clients.
 */
import { DomcastError } from '../common/errors.js';

export const RUN_USAGE = `domcast run <workflow.json | stored name> [--input name=value …] [--visual] [--quality standard|high] [--timeout ms] [--keep-serving]
               [--mask-all-inputs] [--mask-text <css>] [--block <css>]`;
export const DEMO_USAGE = 'domcast demo [--once] [--site-port 8080]';
export const DEMO_SITE_USAGE = 'domcast demo-site [--port 8080]';
export const HEALTH_USAGE = 'domcast health [--worker]';

/** A usage mistake: exit code 2, and the message says what to fix. */
export class UsageError extends DomcastError {
  constructor(message: string) {
    super('USAGE', message);
  }
}

import { relative } from 'node:path';
import type { Config } from '../server/index.js';
import type { Session } from '../session/index.js';

/** Follows a run, a line per finished step with its duration; resolves with the final status. */
export function followSteps(session: Session, print: (line: string) => void): Promise<string> {
  const printed = new Set<number>();
  return new Promise((done) => {
    const onStatus = () => {
      for (const s of session.steps) {
        if (printed.has(s.index) || !['succeeded', 'failed', 'cancelled'].includes(s.state)) continue;
        printed.add(s.index);
        const mark = s.state === 'succeeded' ? '✓' : '✗';
        const via = s.matched && s.matched !== s.description ? ` [${s.matched}]` : '';
        print(`  ${mark} ${String(s.index + 1).padStart(2)}. ${s.description ?? s.type}${via} (${s.durationMs ?? 0} ms)${s.error ? ` — ${s.error}` : ''}`);
      }
      if (session.finished) {
        session.off('status', onStatus);
        done(session.status);
      }
    };
    session.on('status', onStatus);
    onStatus();
  });
}

/** How to see a run again once the process that served it (and with it every viewer link) is gone. */
export function replayHint(config: Config, sessionId: string): string {
  if (!config.recordings) return 'Its recording was not kept (DOMCAST_RECORDINGS=false).';
  const dataDir = relative(process.cwd(), config.dataDir) || '.';
  const env = dataDir === 'data' ? '' : `DOMCAST_DATA_DIR=${config.dataDir} `;
  return `Its recording is kept in ${dataDir}/; replay it with:\n  ${env}npx domcast export ${sessionId} > run.json && npx domcast replay run.json`;
}

import { pino, type Logger } from 'pino';

export type { Logger };

const LEVELS: Record<number, [string, string]> = {
  10: ['TRACE', '\x1b[90m'],
  20: ['DEBUG', '\x1b[90m'],
  30: ['INFO ', '\x1b[32m'],
  40: ['WARN ', '\x1b[33m'],
  50: ['ERROR', '\x1b[31m'],
  60: ['FATAL', '\x1b[31m'],
};
const OMIT = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'app']);

/** One of pino's JSON lines as a person reads it: `15:04:05 INFO  message key=value …` (colours when `color`). */
export function prettyLine(json: string, color: boolean): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json;
  }
  const [name, tint] = LEVELS[Number(entry.level)] ?? ['LOG  ', ''];
  const time = new Date(typeof entry.time === 'number' ? entry.time : Date.now()).toTimeString().slice(0, 8);
  const fields = Object.entries(entry)
    .filter(([k]) => !OMIT.has(k))
    .map(([k, v]) => `${k}=${typeof v === 'string' && /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v)}`);
  const level = color ? `${tint}${name}\x1b[0m` : name;
  const msg = typeof entry.msg === 'string' ? entry.msg : '';
  return `${time} ${level} ${msg}${fields.length > 0 ? ` ${color ? '\x1b[2m' : ''}${fields.join(' ')}${color ? '\x1b[0m' : ''}` : ''}\n`;
}

/**
 * The process's logger: pino's JSON lines on stdout, or with `format` pretty (the default when
 * the output is a terminal) one readable line per entry. Commands whose stdout is their result
 * (`domcast run` prints the run's JSON there) log to stderr instead.
 */
export function createLogger(level: string, format?: 'pretty' | 'json', to: 'stdout' | 'stderr' = 'stdout'): Logger {
  const options = { level, base: { app: 'domcast' } };
  const out = to === 'stderr' ? process.stderr : process.stdout;
  const pretty = format === 'pretty' || (format === undefined && out.isTTY === true);
  if (!pretty) return pino(options, to === 'stderr' ? pino.destination(2) : undefined);
  const color = out.isTTY === true && !process.env.NO_COLOR;
  return pino(options, { write: (line: string) => out.write(prettyLine(line, color)) });
}

// Progress for the long steps of `npm run demo` (installing, building): plain JavaScript with no
// dependencies, so it works before `npm install` has run.
import { spawn } from 'node:child_process';

/** 83 → "1:23". */
export const clock = (ms) => {
  const s = Math.floor(ms / 1000);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
};

/**
 * Runs `cmd args` and says how it goes while it does: on a terminal one status line that ticks every
 * second; otherwise (a log, CI) a line every `everyMs`. `detail()` adds what can be measured (packages
 * unpacked so far). The command's own output passes through, on lines of its own. Resolves with its
 * exit code and how long it took.
 */
export function runWithProgress({ label, cmd, args, cwd, env = process.env, detail = () => '', out = process.stdout, tty = Boolean(out.isTTY), everyMs = tty ? 1000 : 10_000 }) {
  const started = Date.now();
  const status = () => [label, detail(), clock(Date.now() - started)].filter(Boolean).join(' · ');
  let shown = false;
  const clear = () => {
    if (tty && shown) out.write('\r\x1b[2K');
    shown = false;
  };
  const tick = () => {
    if (tty) {
      out.write(`\r\x1b[2K${status()}`);
      shown = true;
    } else out.write(`  … ${status()}\n`);
  };
  if (tty) tick();
  const timer = setInterval(tick, everyMs);
  const child = spawn(cmd, args, { cwd, env, stdio: ['inherit', 'pipe', 'pipe'] });
  const pass = (chunk) => {
    clear();
    out.write(chunk);
  };
  child.stdout.on('data', pass);
  child.stderr.on('data', pass);
  return new Promise((resolve) => {
    const done = (code) => {
      clearInterval(timer);
      clear();
      resolve({ code, ms: Date.now() - started });
    };
    child.on('error', (err) => {
      out.write(`${cmd}: ${err.message}\n`);
      done(127);
    });
    child.on('close', (code, signal) => done(code ?? (signal ? 1 : 0)));
  });
}

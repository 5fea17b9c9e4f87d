/** The benchmarks' numeric settings: a missing or empty variable takes the default; anything else out of range stops the run with a clear message. */
export function envNumber(name: string, fallback: number, min: number, max: number, whole = false): number {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || (whole && !Number.isInteger(n)) || n < min || n > max) {
    throw new Error(`${name} must be a ${whole ? 'whole ' : ''}number between ${min} and ${max} (got ${JSON.stringify(raw)})`);
  }
  return n;
}

export const envInt = (name: string, fallback: number, min: number, max: number): number => envNumber(name, fallback, min, max, true);

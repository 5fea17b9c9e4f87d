import { readFileSync, statSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { BadRequestError, errorMessage, NotFoundError } from '../common/index.js';
import { loadConfig } from '../server/index.js';
import { describeIssues } from '../server/validation.js';
import { prepareWorkflow, WorkflowLibrary, workflowSchema, type InputValue, type Workflow } from '../workflow/index.js';
import { startEmbeddedServer } from './embedded.js';
import { followSteps, replayHint } from './progress.js';
import { RUN_USAGE, UsageError } from './usage.js';

/** A JSON file given on the command line; a missing or broken one is a usage error saying which. */
export function readJsonFile(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read ${file}: ${errorMessage(err)}`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new UsageError(`${file} is not valid JSON (truncated?): ${errorMessage(err)}`);
  }
}

/**
 * A workflow file, or, when no such file is there, a stored workflow by its name
 * (`<WORKFLOWS_DIR>/<name>.json`, as `POST /workflows/execute` takes `name`): `domcast run demo`.
 */
function readWorkflow(file: string): Workflow {
  let json: unknown;
  // A path (or an existing file) is read as a file; a bare name that is no file here is looked up.
  if (/[\\/]/.test(file) || statSync(file, { throwIfNoEntry: false })?.isFile()) json = readJsonFile(file);
  else {
    const dir = loadConfig().workflowsDir;
    try {
      json = new WorkflowLibrary(dir).load(file);
    } catch (err) {
      if (err instanceof NotFoundError || (err instanceof BadRequestError && err.statusCode === 400)) {
        throw new UsageError(`no workflow file "${file}", and no stored workflow of that name in ${dir} (WORKFLOWS_DIR)`);
      }
      throw new UsageError(errorMessage(err));
    }
  }
  const parsed = workflowSchema.safeParse(json);
  if (!parsed.success) throw new UsageError(`${file} is not a valid workflow: ${describeIssues(parsed.error.issues)}`);
  return parsed.data;
}

/** `--input name=value`, typed by the workflow's input_schema (numbers and bools are converted). */
function parseInputs(workflow: Workflow, pairs: string[]): Record<string, InputValue> {
  const inputs: Record<string, InputValue> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new UsageError(`--input ${pair}: expected name=value`);
    const name = pair.slice(0, eq);
    const raw = pair.slice(eq + 1);
    const type = workflow.input_schema.find((i) => i.name === name)?.type ?? 'string';
    if (type === 'number') {
      const n = Number(raw);
      if (raw.trim() === '' || !Number.isFinite(n)) throw new UsageError(`input "${name}" must be a number, got "${raw}"`);
      inputs[name] = n;
    } else if (type === 'bool') {
      const v = raw.toLowerCase();
      if (!['true', 'false', '1', '0', 'yes', 'no'].includes(v)) throw new UsageError(`input "${name}" must be true or false, got "${raw}"`);
      inputs[name] = ['true', '1', 'yes'].includes(v);
    } else {
      inputs[name] = raw;
    }
  }
  return inputs;
}

/**
 * `domcast run`: runs one workflow file in this process and follows it step by step on stderr;
 * prints the run's outputs as JSON on stdout; exits 0 when it succeeded, 1 when not, 2 on a usage error.
 */
export async function runCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      input: { type: 'string', short: 'i', multiple: true, default: [] },
      visual: { type: 'boolean', default: false },
      quality: { type: 'string', default: 'standard' },
      timeout: { type: 'string' },
      'keep-serving': { type: 'boolean', default: false },
      'mask-all-inputs': { type: 'boolean', default: false },
      'mask-text': { type: 'string' },
      block: { type: 'string' },
    },
  });
  if (positionals.length !== 1) throw new UsageError(`expected one workflow file\nusage: ${RUN_USAGE}`);
  const quality = values.quality;
  if (quality !== 'standard' && quality !== 'high') throw new UsageError(`--quality must be standard or high, got "${quality}"`);
  const timeout = values.timeout === undefined ? undefined : Number(values.timeout);
  if (timeout !== undefined && (!Number.isInteger(timeout) || timeout < 100)) throw new UsageError(`--timeout must be a whole number of ms (at least 100), got "${values.timeout}"`);

  const file = positionals[0]!;
  const raw = readWorkflow(file);
  let workflow: Workflow;
  const inputs = parseInputs(raw, values.input);
  try {
    workflow = prepareWorkflow(raw, inputs);
  } catch (err) {
    if (err instanceof BadRequestError) throw new UsageError(err.message);
    throw err;
  }

  const log = (line: string) => process.stderr.write(`${line}\n`);
  const config = loadConfig({ LOG_LEVEL: 'warn', ...process.env, ...(values.visual ? {} : { PORT: '0' }) });
  // One run: no browser launched ahead for a next one.
  const { server } = await startEmbeddedServer(config, log, undefined, 'stderr', { spareBrowser: false });
  try {
    const privacy = {
      maskAllInputs: values['mask-all-inputs'],
      ...(values['mask-text'] ? { maskTextSelector: values['mask-text'] } : {}),
      ...(values.block ? { blockSelector: values.block } : {}),
    };
    const session = server.deps.runs.start({ workflow, inputs, visual: values.visual, quality, privacy, ...(timeout !== undefined ? { stepTimeoutMs: timeout } : {}) });
    log(`Running "${workflow.name}" (${workflow.steps.length} steps)`);
    const viewerUrl = values.visual ? await server.viewerUrl(session.id) : null;
    if (viewerUrl) log(`Watch it live: ${viewerUrl}`);
    const status = await followSteps(session, log);
    log(status === 'succeeded' ? `Run succeeded in ${session.endedAt! - session.startedAt!} ms` : `Run ${status}: ${session.error ?? ''}`);
    process.stdout.write(`${JSON.stringify({ status, outputs: session.outputs, error: session.error }, null, 2)}\n`);
    if (values.visual && values['keep-serving']) {
      log(`The viewer keeps showing the final page at ${viewerUrl}; Ctrl-C to stop.`);
      await new Promise(() => {});
    }
    // The live link dies with this process: say what still works instead.
    if (values.visual) log(`The viewer link stops working now that the run is over (--keep-serving keeps it open). ${replayHint(config, session.id)}`);
    return status === 'succeeded' ? 0 : 1;
  } finally {
    await server.close();
  }
}

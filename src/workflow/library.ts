import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { BadRequestError, NotFoundError } from '../common/index.js';

export interface StoredWorkflowInfo {
  name: string;
  file: string;
  title: string | null;
  description: string | null;
  version: string | null;
  input_schema: unknown[];
  /** Set when the file is not valid JSON; such a file is listed so the mistake is visible. */
  error?: string;
}

const NAME = /^[\w.-]{1,100}$/;

/** The stored workflows: `<dir>/<name>.json`, as workflow-use's own backend keeps them. */
export class WorkflowLibrary {
  constructor(readonly dir: string) {}

  private read(name: string): unknown {
    const base = name.replace(/\.json$/, '');
    if (!NAME.test(base)) throw new BadRequestError('name: must be a workflow file name (letters, digits, _ . -)');
    let text: string;
    try {
      text = readFileSync(join(this.dir, `${base}.json`), 'utf8');
    } catch {
      throw new NotFoundError(`no stored workflow named "${base}" in ${this.dir}`);
    }
    try {
      return JSON.parse(text);
    } catch (err) {
      throw new BadRequestError(`stored workflow "${base}" is not valid JSON: ${(err as Error).message}`, 422, 'WORKFLOW_FILE_INVALID');
    }
  }

  /** The raw JSON of a stored workflow (validated by the caller, like any inline one). */
  load(name: string): unknown {
    return this.read(name);
  }

  list(): StoredWorkflowInfo[] {
    let files: string[];
    try {
      files = readdirSync(this.dir).filter((f) => f.endsWith('.json')).sort();
    } catch {
      return [];
    }
    return files.map((file) => {
      const name = file.slice(0, -'.json'.length);
      try {
        const w = this.read(name) as Record<string, unknown>;
        const str = (v: unknown) => (typeof v === 'string' ? v : null);
        return {
          name,
          file,
          title: str(w.name),
          description: str(w.description),
          version: str(w.version),
          input_schema: Array.isArray(w.input_schema) ? w.input_schema : [],
        };
      } catch (err) {
        return { name, file, title: null, description: null, version: null, input_schema: [], error: (err as Error).message };
      }
    });
  }
}

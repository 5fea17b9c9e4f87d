import { BadRequestError, InputsError } from '../common/index.js';
import type { InputValue, Step, Workflow } from './schema.js';

const PLACEHOLDER = /\{([A-Za-z_][A-Za-z0-9_]*)\}/g;
const FILLED_FIELDS = ['url', 'value', 'selectedText', 'task', 'cssSelector', 'xpath', 'elementText', 'waitForElement', 'key'] as const;

const quoted = (names: string[]): string => names.map((n) => `"${n}"`).join(', ');

/** Every `{name}` placeholder of the steps, with the first field that uses it. */
function placeholders(workflow: Workflow): Map<string, string> {
  const used = new Map<string, string>();
  workflow.steps.forEach((step, index) => {
    for (const field of FILLED_FIELDS) {
      const v = (step as Record<string, unknown>)[field];
      if (typeof v !== 'string') continue;
      for (const m of v.matchAll(PLACEHOLDER)) if (!used.has(m[1]!)) used.set(m[1]!, `steps[${index}].${field}`);
    }
  });
  return used;
}

/**
 * Checks inputs against the workflow's input_schema and its placeholders, and throws one
 * BadRequestError naming every problem at once: required inputs missing, placeholders with no
 * input, values of the wrong type, and inputs the workflow does not take (a misspelled name).
 * Its `fields` say the same per input name, for a form that shows each at its field.
 */
export function checkInputs(workflow: Workflow, inputs: Record<string, InputValue>): void {
  const problems: string[] = [];
  const fields: Record<string, string> = {};
  const declared = new Set(workflow.input_schema.map((i) => i.name));
  const used = placeholders(workflow);
  const missing = workflow.input_schema.filter((i) => i.required && inputs[i.name] === undefined).map((i) => i.name);
  for (const name of missing) fields[name] = 'required';
  if (missing.length === 1) problems.push(`input "${missing[0]}" is required`);
  else if (missing.length > 1) problems.push(`inputs ${quoted(missing)} are required`);
  for (const [name, where] of used) {
    if (inputs[name] === undefined && !missing.includes(name)) {
      problems.push(`${where} uses {${name}} but no input "${name}" was given`);
      fields[name] = `required (${where} uses it)`;
    }
  }
  for (const item of workflow.input_schema) {
    const value = inputs[item.name];
    if (value === undefined) continue;
    const expected = item.type === 'bool' ? 'boolean' : item.type;
    if (typeof value !== expected) {
      problems.push(`input "${item.name}" must be a ${item.type}, got ${typeof value}`);
      fields[item.name] = `must be a ${item.type}`;
    }
  }
  const known = [...new Set([...declared, ...used.keys()])];
  const unknown = Object.keys(inputs).filter((name) => !declared.has(name) && !used.has(name));
  if (unknown.length > 0) {
    const takes = known.length > 0 ? `this workflow takes ${quoted(known)}` : 'this workflow takes no inputs';
    problems.push(`unknown input${unknown.length > 1 ? 's' : ''} ${quoted(unknown.map((n) => n.slice(0, 64)).slice(0, 20))} (${takes})`);
    for (const name of unknown.slice(0, 20)) fields[name.slice(0, 64)] = 'not an input of this workflow';
  }
  if (problems.length > 0) throw new InputsError(problems.join('; '), fields);
}

function fill(text: string, inputs: Record<string, InputValue>, where: string): string {
  return text.replace(PLACEHOLDER, (whole, name: string) => {
    const value = inputs[name];
    if (value === undefined) throw new BadRequestError(`${where} uses {${name}} but no input "${name}" was given`);
    return String(value);
  });
}

/** A copy of the step with `{name}` placeholders filled from inputs. */
function fillStep<S extends Step>(step: S, index: number, inputs: Record<string, InputValue>): S {
  const filled: Record<string, unknown> = { ...step };
  for (const field of FILLED_FIELDS) {
    const v = filled[field];
    if (typeof v === 'string') filled[field] = fill(v, inputs, `steps[${index}].${field}`);
  }
  return filled as S;
}

/** Checks the inputs and fills every placeholder, so a bad input fails before any browser starts. */
export function prepareWorkflow(workflow: Workflow, inputs: Record<string, InputValue>): Workflow {
  checkInputs(workflow, inputs);
  return { ...workflow, steps: workflow.steps.map((s, i) => fillStep(s, i, inputs)) };
}

import { BadRequestError } from '../common/index.js';
import type { InputValue, Step, Workflow } from './schema.js';

const PLACEHOLDER = /\{([A-Za-z_][A-Za-z0-9_]*)\}/g;
const FILLED_FIELDS = ['url', 'value', 'selectedText', 'task', 'cssSelector', 'xpath', 'elementText', 'waitForElement', 'key'] as const;

/** Checks inputs against the workflow's input_schema; throws BadRequestError naming the input. */
export function checkInputs(workflow: Workflow, inputs: Record<string, InputValue>): void {
  for (const item of workflow.input_schema) {
    const value = inputs[item.name];
    if (value === undefined) {
      if (item.required) throw new BadRequestError(`input "${item.name}" is required`);
      continue;
    }
    const expected = item.type === 'bool' ? 'boolean' : item.type;
    if (typeof value !== expected) throw new BadRequestError(`input "${item.name}" must be a ${item.type}, got ${typeof value}`);
  }
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

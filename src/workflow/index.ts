export { workflowSchema, type Workflow, type Step, type InputValue } from './schema.js';
export { checkInputs, prepareWorkflow } from './variables.js';
export { runWorkflow, DEFAULT_STEP_TIMEOUT_MS, type StepHooks, type RunResult } from './runner.js';

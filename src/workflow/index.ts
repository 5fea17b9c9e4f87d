export { workflowSchema, type Workflow, type Step, type InputValue } from './schema.js';
export { checkInputs, prepareWorkflow } from './variables.js';
export { redactInputs, secretRedactor, type Redact } from './secrets.js';
export { WorkflowLibrary, type StoredWorkflowInfo } from './library.js';
export { runWorkflow, DEFAULT_STEP_TIMEOUT_MS, HUMAN_STEP_TIMEOUT_MS, type StepLock, type PageSource, type StepHooks, type StepEnd, type StepFailure, type RunResult } from './runner.js';
export { Tabs, type TabHooks, type TabInfo } from './tabs.js';

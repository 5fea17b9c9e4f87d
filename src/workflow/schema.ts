import { z } from 'zod';

const text = z.string();
const optionalText = z.string().nullish();
const required = text.min(1, 'must not be empty');

/** Fields every step may carry (workflow-use allows more; unknown ones are kept as they are). */
const base = {
  description: optionalText,
  /** Where the step's result goes in the run's outputs. */
  output: optionalText,
  /** A selector to wait for (visible) before the step runs. */
  waitForElement: optionalText,
  /** Ours: this step's timeout, overriding the run's. */
  timeoutMs: z.number().int().positive().max(600_000).optional(),
  timestamp: z.number().nullish(),
  tabId: z.number().nullish(),
};

/** How a step finds its element: CSS first, then XPath, then tag + visible text. */
const target = {
  cssSelector: required,
  xpath: optionalText,
  elementTag: optionalText,
  elementText: optionalText,
};

export const navigationStep = z.looseObject({ ...base, type: z.literal('navigation'), url: required });
export const clickStep = z.looseObject({ ...base, ...target, type: z.literal('click') });
export const inputStep = z.looseObject({
  ...base,
  ...target,
  type: z.literal('input'),
  value: text,
  /** Ours: type key by key with this delay (watchable), instead of filling at once. */
  typeDelayMs: z.number().int().min(0).max(1000).optional(),
});
export const selectChangeStep = z.looseObject({ ...base, ...target, type: z.literal('select_change'), selectedText: text });
export const keyPressStep = z.looseObject({ ...base, ...target, cssSelector: optionalText, type: z.literal('key_press'), key: required });
export const scrollStep = z.looseObject({ ...base, type: z.literal('scroll'), scrollX: z.number(), scrollY: z.number() });
export const waitStep = z
  .looseObject({ ...base, type: z.literal('wait'), cssSelector: optionalText, ms: z.number().int().min(0).max(600_000).optional() })
  .refine((s) => s.cssSelector != null || s.ms !== undefined, 'a wait step needs cssSelector or ms');
export const extractStep = z.looseObject({
  ...base,
  type: z.literal('extract_page_content'),
  /** Text of this element; the whole page's text when absent. */
  cssSelector: optionalText,
  /** workflow-use's instruction for a language model; kept, not used: we extract the text itself. */
  goal: optionalText,
});
export const screenshotStep = z.looseObject({ ...base, type: z.literal('screenshot'), fullPage: z.boolean().optional() });
/** Ours: the run waits for a person to take control and release it (issue 16); `timeoutMs` (default 5 min, at most 1 h) fails it. */
export const humanStep = z.looseObject({ ...base, type: z.literal('human'), timeoutMs: z.number().int().positive().max(3_600_000).optional() });

const STEP_TYPES = ['navigation', 'click', 'input', 'select_change', 'key_press', 'scroll', 'wait', 'extract_page_content', 'screenshot', 'human'];

export const step = z.discriminatedUnion(
  'type',
  [navigationStep, clickStep, inputStep, selectChangeStep, keyPressStep, scrollStep, waitStep, extractStep, screenshotStep, humanStep],
  {
    error: (issue) => {
      const type = (issue.input as { type?: unknown } | undefined)?.type;
      if (type === 'agent') return 'step type "agent" needs a language model, which domcast does not run; replace it with deterministic steps';
      return `unknown step type ${JSON.stringify(type)}; expected one of ${STEP_TYPES.join(', ')}`;
    },
  },
);

export const inputSchemaItem = z.looseObject({
  name: required,
  type: z.enum(['string', 'number', 'bool']),
  required: z.boolean().nullish(),
});

export const workflowSchema = z.looseObject({
  name: required,
  description: z.string().default(''),
  version: z.string().default('1.0'),
  steps: z.array(step).min(1, 'a workflow needs at least one step'),
  input_schema: z.array(inputSchemaItem).default([]),
  workflow_analysis: z.string().nullish(),
});

export type Workflow = z.infer<typeof workflowSchema>;
export type Step = z.infer<typeof step>;
export type InputValue = string | number | boolean;

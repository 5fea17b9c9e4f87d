import { z } from 'zod';

const text = z.string();
const optionalText = z.string().nullish();

/** Fields every step may carry (workflow-use allows more; unknown ones are kept as they are). */
const base = {
  description: optionalText,
  output: optionalText,
  timeoutMs: z.number().int().positive().max(600_000).optional(),
};

const target = {
  cssSelector: text.min(1, 'must not be empty'),
  xpath: optionalText,
  elementTag: optionalText,
  elementText: optionalText,
};

export const navigationStep = z.looseObject({ ...base, type: z.literal('navigation'), url: text.min(1, 'must not be empty') });
export const clickStep = z.looseObject({ ...base, ...target, type: z.literal('click') });
export const inputStep = z.looseObject({
  ...base,
  ...target,
  type: z.literal('input'),
  value: text,
  /** Ours: type key by key with this delay (watchable), instead of filling at once. */
  typeDelayMs: z.number().int().min(0).max(1000).optional(),
});
export const keyPressStep = z.looseObject({ ...base, ...target, cssSelector: optionalText, type: z.literal('key_press'), key: text.min(1) });
export const waitStep = z
  .looseObject({ ...base, type: z.literal('wait'), cssSelector: optionalText, ms: z.number().int().min(0).max(600_000).optional() })
  .refine((s) => s.cssSelector != null || s.ms !== undefined, 'a wait step needs cssSelector or ms');

/** Step types of the workflow-use format this version does not run yet; refused with a clear message. */
const NOT_YET = ['select_change', 'scroll', 'extract_page_content', 'screenshot', 'agent'];

export const step = z.discriminatedUnion(
  'type',
  [navigationStep, clickStep, inputStep, keyPressStep, waitStep],
  {
    error: (issue) => {
      const type = (issue.input as { type?: unknown } | undefined)?.type;
      if (typeof type === 'string' && NOT_YET.includes(type)) return `step type "${type}" is not supported yet`;
      return `unknown step type ${JSON.stringify(type)}; expected one of navigation, click, input, key_press, wait`;
    },
  },
);

export const inputSchemaItem = z.object({
  name: text.min(1),
  type: z.enum(['string', 'number', 'bool']),
  required: z.boolean().nullish(),
});

export const workflowSchema = z.looseObject({
  name: text.min(1, 'must not be empty'),
  description: z.string().default(''),
  version: z.string().default('1.0'),
  steps: z.array(step).min(1, 'a workflow needs at least one step'),
  input_schema: z.array(inputSchemaItem).default([]),
});

export type Workflow = z.infer<typeof workflowSchema>;
export type Step = z.infer<typeof step>;
export type InputValue = string | number | boolean;

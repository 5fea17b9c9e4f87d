/** Every error we raise on purpose carries a stable `code` so callers can branch without parsing text. */
export class DomcastError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

export class ConfigError extends DomcastError {
  constructor(message: string) {
    super('CONFIG_INVALID', message);
  }
}

export class ChromiumNotFoundError extends DomcastError {
  constructor(message: string) {
    super('CHROMIUM_NOT_FOUND', message);
  }
}

/** A request the client got wrong; the HTTP layer answers it with a 4xx and `{error}`. */
export class BadRequestError extends DomcastError {
  readonly statusCode: number;
  constructor(message: string, statusCode = 400, code = 'BAD_REQUEST') {
    super(code, message);
    this.statusCode = statusCode;
  }
}

/** A run's inputs were wrong: the message names every problem, `fields` says which input each one concerns. */
export class InputsError extends BadRequestError {
  readonly fields: Readonly<Record<string, string>>;
  constructor(message: string, fields: Record<string, string>) {
    super(message);
    this.fields = fields;
  }
}

export class NotFoundError extends BadRequestError {
  constructor(message: string) {
    super(message, 404, 'NOT_FOUND');
  }
}

/** A workflow step that could not be carried out; `selector` names what was looked for. */
export class StepError extends DomcastError {
  readonly stepIndex: number;
  readonly selector: string | null;
  constructor(stepIndex: number, selector: string | null, message: string, options?: { cause?: unknown }) {
    super('STEP_FAILED', message, options);
    this.stepIndex = stepIndex;
    this.selector = selector;
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

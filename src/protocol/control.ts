/**
 * Take control (docs/PROTOCOL.md, "Control socket"): who holds a run's page, the messages of the
 * control socket, and the audit events every viewer and the recording get. Shared by the server and
 * the viewer, like the rest of the protocol.
 */

/** `free`: the workflow drives the page. `waiting`: a person asked while a step ran, and gets it at the step's end. `held`: a person drives it; the workflow waits between steps. */
export type ControlState = 'free' | 'waiting' | 'held';

/** A `human` step asking for a person, and until when it waits (ms since the epoch). */
export interface HumanRequest {
  step: number;
  description: string | null;
  until: number;
}

/** The run's control as every viewer sees it (hello and status frames) and GET /workflows/{id} shows it. */
export interface ControlView {
  state: ControlState;
  /** The id (`jti`) of the control token that holds or waits, or null. */
  holder: string | null;
  /** When the holder took (or asked for) control, ms since the epoch. */
  since: number | null;
  request: HumanRequest | null;
}

export const FREE_CONTROL: ControlView = { state: 'free', holder: null, since: null, request: null };

/** Bits of `mods`, as CDP's Input domain counts them. */
export const Modifier = { alt: 1, ctrl: 2, meta: 4, shift: 8 } as const;

/** Element-relative coordinates: `id` is the rrweb node id of the element under the pointer, `x`/`y` CSS px from its top-left corner. */
interface Pointed {
  id: number;
  x: number;
  y: number;
  mods?: number;
}

export type ControlInput =
  | (Pointed & { kind: 'move' })
  | (Pointed & { kind: 'click'; button?: 'left' | 'middle' | 'right'; clicks?: number })
  | (Pointed & { kind: 'wheel'; dx: number; dy: number })
  /** A key going down or up: `key` and `code` as the browser's KeyboardEvent has them. */
  | { kind: 'key'; phase: 'down' | 'up'; key: string; code: string; mods?: number; repeat?: boolean }
  /** Text inserted at the caret at once (a paste). */
  | { kind: 'text'; text: string };

export type ControlClientMessage = { t: 'take' } | { t: 'release' } | ({ t: 'input' } & ControlInput) | { t: 'ping' };

/**
 * What the control socket says: the state of this token's hold (`released`, `revoked`, `expired`
 * and `ended` are final; the socket then closes), an input that was not applied and why, a pong.
 */
export type ControlServerFrame =
  | { t: 'control'; state: ControlState | 'busy' | 'released' | 'revoked' | 'expired' | 'ended'; reason?: string; view: ControlView }
  | { t: 'refused'; kind: string; reason: string }
  | { t: 'ping'; serverTime: number };

/**
 * The audit trail: one `domcast.control` custom event per take, hold, release and input (pointer
 * moves excepted: the recorded cursor shows them). Never what was typed: a key is named only when
 * it is not a character (`Backspace`, `ArrowLeft`, `Enter`…), text only by its kind.
 */
export interface ControlCustomPayload {
  action: 'take' | 'wait' | 'hold' | 'release' | 'revoke' | 'expire' | 'end' | 'input';
  /** The control token's id (`jti`). */
  token: string;
  kind?: 'click' | 'wheel' | 'key' | 'text';
  /** The rrweb node id acted on. */
  node?: number;
  /** For keys: the key's name when it is not a character, else `character`; with the modifiers held. */
  key?: string;
  mods?: number;
  reason?: string;
}

/** The control socket of a session: `WS /workflows/control/{id}?token=<control token>`. */
export function controlPath(sessionId: string): string {
  return `/workflows/control/${encodeURIComponent(sessionId)}`;
}

/** The control token rides in the viewer link's fragment (`#control=…`): never sent in a request, so never in a log or a Referer. */
export const CONTROL_FRAGMENT = 'control';

import { Modifier } from '../protocol/index.js';

/**
 * Windows virtual key codes by KeyboardEvent.code: Chromium's editing commands (Backspace, the
 * arrows, Home/End, Ctrl+A…) are looked up by this code, not by the key's name, so a key event
 * without it types nothing and edits nothing.
 */
const NAMED: Record<string, number> = {
  Backspace: 8, Tab: 9, Enter: 13, NumpadEnter: 13, ShiftLeft: 16, ShiftRight: 16, ControlLeft: 17, ControlRight: 17,
  AltLeft: 18, AltRight: 18, Pause: 19, CapsLock: 20, Escape: 27, Space: 32, PageUp: 33, PageDown: 34, End: 35, Home: 36,
  ArrowLeft: 37, ArrowUp: 38, ArrowRight: 39, ArrowDown: 40, PrintScreen: 44, Insert: 45, Delete: 46,
  MetaLeft: 91, MetaRight: 92, ContextMenu: 93, NumpadMultiply: 106, NumpadAdd: 107, NumpadSubtract: 109,
  NumpadDecimal: 110, NumpadDivide: 111, NumLock: 144, ScrollLock: 145,
  Semicolon: 186, Equal: 187, Comma: 188, Minus: 189, Period: 190, Slash: 191, Backquote: 192,
  BracketLeft: 219, Backslash: 220, BracketRight: 221, Quote: 222, IntlBackslash: 226,
};

/** By key name, for a code the table lacks (or none). */
const BY_KEY: Record<string, number> = {
  Backspace: 8, Tab: 9, Enter: 13, Shift: 16, Control: 17, Alt: 18, Escape: 27, ' ': 32, PageUp: 33, PageDown: 34,
  End: 35, Home: 36, ArrowLeft: 37, ArrowUp: 38, ArrowRight: 39, ArrowDown: 40, Delete: 46, Meta: 91,
};

export function virtualKeyCode(key: string, code: string): number {
  const named = NAMED[code];
  if (named !== undefined) return named;
  let m = /^Key([A-Z])$/.exec(code);
  if (m) return m[1]!.charCodeAt(0);
  m = /^Digit([0-9])$/.exec(code);
  if (m) return m[1]!.charCodeAt(0);
  m = /^Numpad([0-9])$/.exec(code);
  if (m) return 96 + Number(m[1]);
  m = /^F([1-9]|1[0-9]|2[0-4])$/.exec(code);
  if (m) return 111 + Number(m[1]);
  const byKey = BY_KEY[key];
  if (byKey !== undefined) return byKey;
  if (key.length === 1 && /[a-z0-9]/i.test(key)) return key.toUpperCase().charCodeAt(0);
  return 0;
}

/** A key that writes text when nothing but Shift is held: a single character, or Enter. */
export function printable(key: string): boolean {
  return [...key].length === 1 || key === 'Enter';
}

/** What the audit trail may say of a key: its name when it is no character (typed text never is). */
export function auditKey(key: string): string {
  return [...key].length === 1 ? 'character' : key.slice(0, 32);
}

export interface KeyEventParams {
  type: 'keyDown' | 'rawKeyDown' | 'keyUp';
  key: string;
  code: string;
  windowsVirtualKeyCode: number;
  nativeVirtualKeyCode: number;
  modifiers: number;
  text?: string;
  unmodifiedText?: string;
  autoRepeat?: boolean;
  location?: number;
}

/**
 * CDP Input.dispatchKeyEvent parameters for a key the viewer saw go down or up. A Mac's ⌘ with a
 * letter (⌘A, ⌘C, ⌘Z…) becomes Ctrl: the run's Chromium is on Linux, where the editing shortcuts are
 * Ctrl's. A key with text is `keyDown` (it types), one without `rawKeyDown` (it edits or moves).
 */
export function keyEvent(phase: 'down' | 'up', key: string, code: string, mods: number, repeat: boolean): KeyEventParams {
  let modifiers = mods & (Modifier.alt | Modifier.ctrl | Modifier.meta | Modifier.shift);
  if (modifiers & Modifier.meta && !(modifiers & Modifier.ctrl) && /^Key[A-Z]$/.test(code)) modifiers = (modifiers & ~Modifier.meta) | Modifier.ctrl;
  const vk = virtualKeyCode(key, code);
  const shortcut = (modifiers & (Modifier.ctrl | Modifier.meta | Modifier.alt)) !== 0;
  const text = phase === 'down' && printable(key) && !shortcut ? (key === 'Enter' ? '\r' : key) : undefined;
  const location = /(Left)$/.test(code) && vk >= 16 && vk <= 18 ? 1 : /(Right)$/.test(code) && vk >= 16 && vk <= 18 ? 2 : /^Numpad/.test(code) ? 3 : 0;
  return {
    type: phase === 'up' ? 'keyUp' : text !== undefined ? 'keyDown' : 'rawKeyDown',
    key,
    code,
    windowsVirtualKeyCode: vk,
    nativeVirtualKeyCode: vk,
    modifiers,
    ...(text !== undefined ? { text, unmodifiedText: text } : {}),
    ...(repeat ? { autoRepeat: true } : {}),
    ...(location ? { location } : {}),
  };
}

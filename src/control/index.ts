export { ControlHub, type ControlHubOptions, type ControlRefusal } from './hub.js';
export { PageInput, InputMissed } from './input.js';
export { keyEvent, virtualKeyCode, auditKey } from './keys.js';

export { StreamHub, type HubOptions } from './hub.js';

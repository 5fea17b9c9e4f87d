/** The embed protocol, shared by the viewer page (embed mode) and the `<domcast-viewer>` element (element.ts, its own bundle). */
export * from './messages.js';
export { embedUrl } from './url.js';

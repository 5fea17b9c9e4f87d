export { findChromium, CHROMIUM_ARGS } from './chromium.js';
export { BrowserLauncher, VIEWPORT } from './launcher.js';
export { attachRecorder, recorderScript, type PrivacyOptions, type RecorderHandle, type VisualQuality } from './recorder.js';

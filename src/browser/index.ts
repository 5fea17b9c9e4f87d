export { findChromium, CHROMIUM_ARGS } from './chromium.js';
export { BrowserLauncher, VIEWPORT } from './launcher.js';
export { attachRecorder, installRecorder, recordPage, type PageRecorder, RECORDER_BINDING, PrivacySelectorError, recorderScript, screenshotMasks, type ImageSource, type PrivacyOptions, type RecorderHandle, type VisualQuality } from './recorder.js';
export { guardRun, type Refusal, type RunGuardHooks } from './guard.js';
export { NavigationPolicy, type NavigationPolicyOptions, type Resolve } from './navigation-policy.js';
export { AssetCapture, type AssetCounts, type AssetLimits, type CapturedAsset } from './asset-capture.js';
export { openShadowRoots, OPEN_SHADOW_ROOTS } from './open-shadow.js';
export { relayOf, type CdpRelay, type RelayDrop } from './cdp-relay.js';

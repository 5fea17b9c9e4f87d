export { SessionLog, type Batch, type Slice } from './log.js';
export { Session, type StepResult } from './session.js';
export { prepareBatch, measureJson, type BatchLimits, type LogEntry, type PreparedBatch } from './prepare.js';
export { DEFAULT_LIMITS, MIB, type RecordingLimits } from './limits.js';
export { SessionRegistry } from './registry.js';
export { SampleWindow, StreamMetrics, roundMs, type AssetTally } from './metrics.js';
export { SessionControl, TakeRefused, MAX_CONTROL_GRANTS, type ReleaseReason, type RevokeReason } from './control.js';

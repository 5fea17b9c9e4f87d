export { SessionLog, type Batch, type Slice } from './log.js';
export { Session, parseBatch, type StepResult } from './session.js';
export { SessionRegistry } from './registry.js';
export { SampleWindow, StreamMetrics, roundMs } from './metrics.js';

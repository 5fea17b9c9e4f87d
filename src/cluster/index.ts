export { streamKeys, type StreamEntry, type StreamKeys } from './stream-keys.js';
export { StreamPublisher, type PublisherOptions } from './stream-publisher.js';
export { StreamTail, openStream, type StreamState, type TailHandler } from './stream-tail.js';
export { RunQueue, RunWorker, runKeys, HEARTBEAT_LAPSE_MS, type RunQueueOptions, type RunWorkerOptions, type RunOutcome } from './run-queue.js';
export { SessionMirrors, IDLE_MS, type MirrorOptions } from './mirror.js';
export { sessionView, parseView, applyView, type SessionView } from './view.js';

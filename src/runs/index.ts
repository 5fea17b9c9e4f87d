export { RunManager, type StartRun } from './manager.js';

/** The detection engine: pure code, no I/O. */
export { Detector } from './detector.js';
export type { DetectorOptions, DetectorStats, FindingChange } from './detector.js';

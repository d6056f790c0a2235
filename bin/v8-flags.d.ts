/** The V8 flags `waitgraph run` runs with (see v8-flags.js). */
export declare const RUN_V8_FLAGS: readonly string[];

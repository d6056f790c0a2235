// The V8 flags `waitgraph run` runs with (bin/waitgraph.js starts itself again with them); the benchmarks
// measure with the same.
export const RUN_V8_FLAGS = ['--max-semi-space-size=64'];

// The V8 flags `waitgraph run` runs with (bin/waitgraph.js starts itself again with them); the benchmarks
// measure with the same.
//
// --max-semi-space-size=64: the span stream's garbage dies young instead of filling the old generation
// (bin/waitgraph.js says what that did to latency).
//
// --initial-old-space-size=256: V8 flags hold for every isolate of the process, so the worker threads'
// semi-spaces are 64 MiB too (their resourceLimits do not override the flag). V8 starts marking the old
// generation whenever what is left below its limit is less than the young generation could promote, and
// a small old generation's limit is only a few MiB above what is live: with 64 MiB semi-spaces the Kafka
// thread and the decode thread (13-20 MiB live) ran a full mark-compact every 60-130 ms, one after the
// other (~100 in 10 s), 5-25 ms each. A limit of at least 256 MiB leaves room for the young generation:
// one in the same time. The event loop's graph is larger than that anyway.
export const RUN_V8_FLAGS = ['--max-semi-space-size=64', '--initial-old-space-size=256'];

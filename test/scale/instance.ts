/**
 * One scaled-out processor instance for the tests, run as a child process so a test can SIGKILL it: a
 * decode stage (on a thread of its own, as in `--role both`) and a detection stage on the topics named by the JSON configuration in argv[2]. It prints a
 * JSON status line on stdout every 100 ms (what it decoded, which findings partitions it owns, what it
 * published) and shuts down on SIGTERM.
 */
import { silentLogger } from '../../processor/src/io/index.js';
import { DecodeStageThread, DetectStage } from '../../processor/src/scale/index.js';

/** What the test tells the instance. */
export interface InstanceConfig {
  instanceId: string;
  brokers: string[];
  spansTopic: string;
  waitsTopic: string;
  alertTopic: string;
  decodeGroup: string;
  ownershipGroup: string;
  sessionTimeoutMs: number;
}

/** One status line. */
export interface InstanceStatus {
  instanceId: string;
  pid: number;
  /** Spans its decode stage read. */
  decoded: number;
  /** Ownership-group partitions it holds. */
  owned: number[];
  /** Announcements it published. */
  published: number;
  /** Active deadlocks its engine sees. */
  active: number;
}

const config = JSON.parse(process.argv[2]!) as InstanceConfig;
const common = { brokers: config.brokers, clientId: config.instanceId, logger: silentLogger };
// The decode stage on a thread of its own, as `waitgraph run --role both` runs it.
const decode = new DecodeStageThread({
  ...common,
  topics: [{ topic: config.spansTopic, signal: 'traces' }],
  groupId: config.decodeGroup,
  waitsTopic: config.waitsTopic,
  sessionTimeoutMs: config.sessionTimeoutMs,
  deadLetterTopic: null,
});
const detect = new DetectStage({
  ...common,
  instanceId: config.instanceId,
  waitsTopic: config.waitsTopic,
  alertTopic: config.alertTopic,
  ownershipGroup: config.ownershipGroup,
  sessionTimeoutMs: config.sessionTimeoutMs,
  // The test's spans are sent once and never refreshed: they must not go stale while it runs.
  staleAfterMs: 600_000,
});

await detect.start();
await decode.start();
const timer = setInterval(() => {
  const status: InstanceStatus = {
    instanceId: config.instanceId,
    pid: process.pid,
    decoded: decode.counts.spansIn,
    owned: [...detect.ownedPartitions],
    published: detect.counts.published,
    active: detect.findings().filter((f) => f.state === 'active').length,
  };
  process.stdout.write(JSON.stringify(status) + '\n');
}, 100);
process.on('SIGTERM', () => {
  clearInterval(timer);
  void Promise.all([decode.shutdown(), detect.shutdown()]).finally(() => process.exit(0));
});

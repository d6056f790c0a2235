/**
 * A real Kafka broker for the tests: `ensureKafka()` starts one single-node KRaft broker per test run with
 * scripts/kafka.sh and shares it between all test files, which vitest runs in separate worker processes.
 *
 * The first caller in the run starts the broker on free ports and every other caller, in any process,
 * joins it (`sharedServer()` of test/support/servers.ts). The broker's pid file and data dir live in
 * $WAITGRAPH_TEST_RUN_DIR, so the global teardown stops it and removes its data when the run ends. A test
 * that restarts or stops its broker asks for one of its own by name (`ensureKafka({ name: 'restart' })`),
 * so it never disturbs the test files that run beside it on the shared one.
 */
import { join } from 'node:path';
import { Kafka, logLevel, Partitioners, type Producer } from 'kafkajs';
import { freePorts, runScript, sharedServer } from './servers.js';

/** A broker started for this test run. */
export interface TestKafka {
  /** `127.0.0.1:<port>`, the bootstrap address. */
  bootstrap: string;
  /** The same, as kafkajs takes it. */
  brokers: string[];
  /** Stops the broker cleanly (SIGTERM, then SIGKILL after 30 s). Its data is kept for `restart()`. */
  stop(): Promise<void>;
  /** Stops the broker if it runs and starts it again on the same ports with the same data. */
  restart(): Promise<void>;
  /** Creates a topic on this broker; see `createTopic`. */
  createTopic(topic: string, partitions?: number): Promise<void>;
}

/** Options of `ensureKafka`. */
export interface EnsureKafkaOptions {
  /**
   * Which broker: every caller with the same name in the run gets the same broker. Default `shared`. Use
   * another name for a test that stops or restarts its broker.
   */
  name?: string;
}

interface BrokerState {
  port: number;
  controllerPort: number;
  dataDir: string;
  pidFile: string;
}

const inProcess = new Map<string, Promise<TestKafka>>();

/** Starts this run's broker of the given name, or joins it if another test file already started it. */
export function ensureKafka(options: EnsureKafkaOptions = {}): Promise<TestKafka> {
  const name = options.name ?? 'shared';
  if (!/^[a-z0-9-]+$/.test(name)) throw new Error(`ensureKafka: bad broker name ${JSON.stringify(name)}`);
  let p = inProcess.get(name);
  if (!p) {
    p = joinOrStart(name);
    inProcess.set(name, p);
    p.catch(() => inProcess.delete(name));
  }
  return p;
}

async function joinOrStart(name: string): Promise<TestKafka> {
  const state = await sharedServer<BrokerState>(`kafka-${name}`, async () => {
    const dir = process.env.WAITGRAPH_TEST_RUN_DIR!;
    const [port, controllerPort] = await freePorts(2);
    const s: BrokerState = { port, controllerPort, dataDir: join(dir, `kafka-${name}`), pidFile: join(dir, `kafka-${name}.pid`) };
    await script('start', s);
    return s;
  });
  return handle(state);
}

function handle(state: BrokerState): TestKafka {
  const bootstrap = `127.0.0.1:${state.port}`;
  return {
    bootstrap,
    brokers: [bootstrap],
    stop: async () => {
      await script('stop', state);
    },
    restart: async () => {
      await script('stop', state);
      await script('start', state);
    },
    createTopic: (topic, partitions) => createTopic([bootstrap], topic, partitions),
  };
}

function script(command: 'start' | 'stop', state: BrokerState): Promise<string> {
  return runScript('kafka.sh', command, {
    WAITGRAPH_KAFKA_PORT: String(state.port),
    WAITGRAPH_KAFKA_CONTROLLER_PORT: String(state.controllerPort),
    WAITGRAPH_KAFKA_DATA_DIR: state.dataDir,
    // In the run directory, where the global teardown finds it.
    WAITGRAPH_KAFKA_PID_FILE: state.pidFile,
    // Test topics are created with the partitions each test needs; auto-created ones get a few.
    WAITGRAPH_KAFKA_PARTITIONS: '3',
  });
}

/** A kafkajs client for tests: quiet, and quick to retry. */
export function testKafkaClient(brokers: string[], clientId = 'waitgraph-test'): Kafka {
  return new Kafka({ clientId, brokers, logLevel: logLevel.NOTHING, retry: { initialRetryTime: 100, retries: 8 } });
}

/** The shared broker, a client of it and a connected producer: what a test file sets up first. */
export async function kafkaWithProducer(): Promise<{ broker: TestKafka; kafka: Kafka; producer: Producer }> {
  const broker = await ensureKafka();
  const kafka = testKafkaClient(broker.brokers);
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  return { broker, kafka, producer };
}

/** A topic name no other test uses, so test files can share a broker. */
export function uniqueTopic(prefix: string): string {
  return `${prefix}.${process.pid}.${Date.now().toString(36)}.${Math.random().toString(36).slice(2, 8)}`;
}

/** Creates a topic with the given number of partitions and waits until every partition has a leader. */
export async function createTopic(brokers: string[], topic: string, partitions = 1): Promise<void> {
  const admin = testKafkaClient(brokers).admin();
  await admin.connect();
  try {
    for (let attempt = 1; ; attempt++) {
      try {
        await admin.createTopics({ topics: [{ topic, numPartitions: partitions, replicationFactor: 1 }], waitForLeaders: true });
        return;
      } catch (e) {
        // A busy broker may answer the leader check before the new partitions have their leader
        // ("does not host this topic-partition"): look again, and take the topic once every partition has one.
        if (attempt >= 20) throw e;
        await new Promise((r) => setTimeout(r, 250));
        const md = await admin.fetchTopicMetadata({ topics: [topic] }).catch(() => undefined);
        const parts = md?.topics[0]?.partitions ?? [];
        if (parts.length === partitions && parts.every((p) => p.leader >= 0)) return;
      }
    }
  } finally {
    await admin.disconnect();
  }
}

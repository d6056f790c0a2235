/**
 * A real OpenTelemetry Collector for the tests: `ensureCollector()` starts waitgraph's Collector
 * (deploy/otelcol.yaml: OTLP in; Kafka `otlp_spans`/`otlp_logs`, Jaeger and debug out) with
 * scripts/otelcol.sh, building it first if the cache is cold. One Collector per test run and broker is
 * shared by all test files (see `sharedServer` in jaeger.ts); it exports to this run's Jaeger from
 * `ensureJaeger()`. Its OTLP ports are free ports on 127.0.0.1, and its pid file lives in
 * $WAITGRAPH_TEST_RUN_DIR, so the global teardown stops it.
 */
import { ensureJaeger, type TestJaeger } from './jaeger.js';
import { freePorts, runScript, sharedServer } from './servers.js';

/** Options of `ensureCollector`. */
export interface EnsureCollectorOptions {
  /**
   * The Kafka bootstrap address (`127.0.0.1:<port>`, as `ensureKafka()` gives it) the kafka exporter
   * produces to. Default: none, and the Collector runs without its kafka exporter (Jaeger and debug only).
   */
  kafkaBootstrap?: string;
}

/** A Collector started for this test run. */
export interface TestCollector {
  /** `127.0.0.1:<port>`: the OTLP/gRPC receiver. */
  otlpGrpcEndpoint: string;
  /** `http://127.0.0.1:<port>`: the OTLP/HTTP receiver's base URL. */
  otlpHttpUrl: string;
  /** `http://127.0.0.1:<port>/v1/traces`: where an OTLP/HTTP trace exporter posts. */
  tracesUrl: string;
  /** `http://127.0.0.1:<port>/v1/logs`: where an OTLP/HTTP log exporter posts. */
  logsUrl: string;
  /** The broker the kafka exporter produces to, if any. */
  kafkaBootstrap?: string;
  /** The Jaeger the Collector exports to. */
  jaeger: TestJaeger;
}

interface CollectorState {
  grpcPort: number;
  httpPort: number;
}

const inProcess = new Map<string, Promise<TestCollector>>();

/**
 * Starts this run's Collector for the given broker (and this run's Jaeger), or joins the one another test
 * file started. Builds the Collector first if needed.
 */
export function ensureCollector(options: EnsureCollectorOptions = {}): Promise<TestCollector> {
  const { kafkaBootstrap } = options;
  // One Collector per broker: the instance name keys its pid, log and state files in the run directory.
  const instance = `otelcol-${kafkaBootstrap ? kafkaBootstrap.replace(/[^A-Za-z0-9]+/g, '-') : 'no-kafka'}`;
  let p = inProcess.get(instance);
  if (!p) {
    p = start(instance, kafkaBootstrap);
    inProcess.set(instance, p);
    p.catch(() => inProcess.delete(instance));
  }
  return p;
}

async function start(instance: string, kafkaBootstrap: string | undefined): Promise<TestCollector> {
  // The Collector's build (a no-op when cached; serialized by a lock across workers) overlaps Jaeger's.
  const [jaeger] = await Promise.all([ensureJaeger(), runScript('otelcol.sh', 'build', {})]);
  const state = await sharedServer<CollectorState>(instance, async () => {
    const [grpcPort, httpPort] = await freePorts(2);
    await runScript('otelcol.sh', 'start', {
      WAITGRAPH_OTELCOL_INSTANCE: instance,
      WAITGRAPH_OTELCOL_GRPC_PORT: String(grpcPort),
      WAITGRAPH_OTELCOL_HTTP_PORT: String(httpPort),
      WAITGRAPH_KAFKA_BOOTSTRAP: kafkaBootstrap ?? 'none',
      WAITGRAPH_JAEGER_OTLP_GRPC_PORT: jaeger.otlpGrpcEndpoint.split(':')[1],
    });
    return { grpcPort, httpPort };
  });
  const otlpHttpUrl = `http://127.0.0.1:${state.httpPort}`;
  return {
    otlpGrpcEndpoint: `127.0.0.1:${state.grpcPort}`,
    otlpHttpUrl,
    tracesUrl: `${otlpHttpUrl}/v1/traces`,
    logsUrl: `${otlpHttpUrl}/v1/logs`,
    kafkaBootstrap,
    jaeger,
  };
}

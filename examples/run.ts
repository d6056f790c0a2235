/**
 * Runs one example service: `node --import tsx examples/run.ts <service>`. Starts OpenTelemetry first
 * (so the http instrumentation is in place before the service serves or calls anything), then the
 * service from examples/services/<service>.ts, configured by its environment variables. Prints one JSON
 * line `{"ready":true,"service":...,"url":...}` on stdout when it listens; SIGTERM stops it.
 */
import { startTelemetry } from './lib/telemetry.js';
import { SERVICES, type ServiceName } from './services/index.js';

const name = process.argv[2] as ServiceName;
const def = SERVICES[name];
if (def === undefined) {
  console.error(`usage: examples/run.ts <service>; services: ${Object.keys(SERVICES).join(', ')}`);
  process.exit(2);
}
const telemetry = startTelemetry({ serviceName: name, role: def.role });
try {
  const { start } = await def.load();
  await start(telemetry);
} catch (err) {
  console.error(`${name}: failed to start: ${(err as Error).stack ?? err}`);
  await telemetry.shutdown();
  process.exit(1);
}

/**
 * What makes an OTLP log record a wait event (OTEP 4430): its event name, from the top-level `eventName`
 * of newer OTLP or, before that, the `event.name` attribute. Shared by the JSON and protobuf log decoders.
 */
import { EVENT_NAMES } from '../../../schemas/index.js';

/**
 * The OpenTelemetry attribute that carried a log record's event name before OTLP had a field for it.
 * OTel's name (semantic conventions), not part of the waitgraph vocabulary, hence not in `ATTR`.
 */
export const EVENT_NAME_ATTR = 'event.name';

const WAIT_EVENT_NAMES: ReadonlySet<string> = new Set(EVENT_NAMES);

/** True for a name of the wait-event vocabulary (`lock.wait`, `pool.checkout`, ...). */
export function isWaitEventName(name: string): boolean {
  return WAIT_EVENT_NAMES.has(name);
}

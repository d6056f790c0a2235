/**
 * Helpers of the scenario drivers: plain HTTP calls from outside the services (no OpenTelemetry here:
 * each request a driver sends starts a trace of its own at the service), and polling.
 */
import { callJson, type CallResult } from '../lib/http-service.js';

/** Calls a service; a non-2xx status is returned, a network failure rejects. */
export function call(method: string, url: string, body?: unknown): Promise<CallResult> {
  return callJson(url, { method, body });
}

/** Calls a service and fails unless it answers 2xx. */
export async function callOk(method: string, url: string, body?: unknown): Promise<CallResult> {
  const r = await call(method, url, body);
  if (!r.ok) throw new Error(`${method} ${url}: ${r.status} ${JSON.stringify(r.body)}`);
  return r;
}

/** Polls `probe` every `intervalMs` until it returns something other than undefined; fails after `timeoutMs`. */
export async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 10_000, intervalMs = 25): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Waits for every promise of `calls` and returns their results by name. */
export async function settleAll(calls: Record<string, Promise<CallResult>>): Promise<Record<string, CallResult>> {
  const names = Object.keys(calls);
  const results = await Promise.all(names.map((n) => calls[n]!));
  return Object.fromEntries(names.map((n, i) => [n, results[i]!]));
}

/**
 * join / certWait / certIssue / detached / runAsTask under a real SDK, and wait events as OTLP log
 * records (OTEP 4430).
 */
import { context, trace } from '@opentelemetry/api';
import { InMemoryLogRecordExporter, LoggerProvider, SimpleLogRecordProcessor } from '@opentelemetry/sdk-logs';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { ATTR, EVENT } from '../../schemas/index.js';
import {
  certIssue,
  certWait,
  configureWaitEvents,
  currentTaskId,
  detached,
  join,
  Mutex,
  runAsTask,
} from '../../instrumentation/index.js';
import { endedSpan, events, inSpan, names, sleep, startTracing } from './support/tracing.js';

const tracing = startTracing();
const { tracer } = tracing;

beforeEach(() => tracing.exporter.reset());
afterAll(() => tracing.shutdown());

describe('join', () => {
  it('runs each branch as a task of its own and records task.wait on them, then task.resume', async () => {
    const mutex = new Mutex({ id: 'shared-cache' });
    const seen: (string | undefined)[] = [];
    const result = await inSpan(tracer, 'parent', () =>
      join([
        () => mutex.runExclusive(async () => {
          seen.push(currentTaskId());
          await sleep(10);
          return 1;
        }),
        () => mutex.runExclusive(async () => {
          seen.push(currentTaskId());
          return 'two';
        }),
      ]),
    );
    expect(result).toEqual([1, 'two']);
    const parent = endedSpan(tracing, 'parent');
    const wait = parent.events.find((e) => e.name === EVENT.TASK_WAIT)!;
    const branchIds = wait.attributes![ATTR.TASK_WAIT_ON] as string[];
    expect(branchIds).toHaveLength(2);
    expect(new Set(branchIds).size).toBe(2);
    expect(seen).toEqual(branchIds);
    expect(wait.attributes![ATTR.TASK_WAIT_MODE]).toBe('all');
    // the siblings' lock events on the shared span name their own tasks: the second waits for the first
    const lockEvents = events(parent).filter((e) => e.name.startsWith('lock.'));
    expect(lockEvents.map((e) => [e.name, e.attributes[ATTR.TASK_ID]])).toEqual([
      [EVENT.LOCK_ACQUIRE, branchIds[0]],
      [EVENT.LOCK_WAIT, branchIds[1]],
      [EVENT.LOCK_RELEASE, branchIds[0]],
      [EVENT.LOCK_ACQUIRE, branchIds[1]],
      [EVENT.LOCK_RELEASE, branchIds[1]],
    ]);
    expect(names(parent).at(-1)).toBe(EVENT.TASK_RESUME);
    expect(parent.attributes[ATTR.TASK_ID]).toBeUndefined(); // the parent flow is not a task: its span is
  });

  it('stamps spans started in a branch with the branch task', async () => {
    await inSpan(tracer, 'parent', () =>
      join([() => inSpan(tracer, 'child-a', async () => currentTaskId()), () => inSpan(tracer, 'child-b', async () => 0)]),
    );
    const a = endedSpan(tracing, 'child-a');
    const b = endedSpan(tracing, 'child-b');
    const wait = endedSpan(tracing, 'parent').events.find((e) => e.name === EVENT.TASK_WAIT)!;
    expect([a.attributes[ATTR.TASK_ID], b.attributes[ATTR.TASK_ID]]).toEqual(wait.attributes![ATTR.TASK_WAIT_ON]);
  });

  it('keeps the semantics of any, allSettled and race, and of a failing branch', async () => {
    const any = await inSpan(tracer, 'any', () => join([() => Promise.reject(new Error('x')), async () => 'ok'], { mode: 'any' }));
    expect(any).toBe('ok');
    expect(endedSpan(tracing, 'any').events[0]!.attributes![ATTR.TASK_WAIT_MODE]).toBe('any');
    const settled = await join([() => 1, () => Promise.reject(new Error('y'))], { mode: 'allSettled' });
    expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'rejected']);
    expect(await join([() => sleep(20).then(() => 'slow'), async () => 'fast'], { mode: 'race' })).toBe('fast');
    await expect(
      inSpan(tracer, 'failing', () =>
        join([
          () => {
            throw new TypeError('sync throw');
          },
        ]),
      ),
    ).rejects.toThrow(TypeError);
    expect(names(endedSpan(tracing, 'failing'))).toEqual([EVENT.TASK_WAIT, EVENT.TASK_RESUME]);
  });

  it('records task.timeout when abandoned through its signal', async () => {
    const stop = new AbortController();
    const joined = inSpan(tracer, 'abandoned', () => join([() => sleep(1000)], { signal: stop.signal }));
    await sleep(10);
    stop.abort(new Error('enough'));
    await expect(joined).rejects.toThrow('enough');
    expect(names(endedSpan(tracing, 'abandoned'))).toEqual([EVENT.TASK_WAIT, EVENT.TASK_TIMEOUT]);
  });
});

describe('certificates', () => {
  it('records the wait, the issue and readiness', async () => {
    const issued = await inSpan(tracer, 'issuer', () => certIssue('tls/api.example', async () => 'PEM'));
    const got = await inSpan(tracer, 'waiter', () => certWait('tls/api.example', 'ca-service', async () => 'PEM'));
    expect([issued, got]).toEqual(['PEM', 'PEM']);
    expect(events(endedSpan(tracing, 'issuer'))).toEqual([
      { name: EVENT.CERT_ISSUE, attributes: { [ATTR.CERT_ID]: 'tls/api.example' } },
      { name: EVENT.CERT_READY, attributes: { [ATTR.CERT_ID]: 'tls/api.example' } },
    ]);
    expect(events(endedSpan(tracing, 'waiter'))).toEqual([
      { name: EVENT.CERT_WAIT, attributes: { [ATTR.CERT_ID]: 'tls/api.example', [ATTR.CERT_ISSUER]: 'ca-service' } },
      { name: EVENT.CERT_READY, attributes: { [ATTR.CERT_ID]: 'tls/api.example' } },
    ]);
  });

  it('records cert.timeout when the wait fails, and passes the error on', async () => {
    const failure = new Error('issuer unreachable');
    await expect(inSpan(tracer, 'waiter', () => certWait('db-password', undefined, () => Promise.reject(failure)))).rejects.toBe(failure);
    expect(names(endedSpan(tracing, 'waiter'))).toEqual([EVENT.CERT_WAIT, EVENT.CERT_TIMEOUT]);
  });
});

describe('detached', () => {
  it('runs fire-and-forget work in a detached child span, as its own task', async () => {
    let inner: string | undefined;
    const work = await inSpan(tracer, 'request', async () =>
      detached('send-email', async () => {
        inner = currentTaskId();
        return 'sent';
      }),
    );
    expect(work).toBe('sent');
    const span = endedSpan(tracing, 'send-email');
    expect(span.attributes[ATTR.TASK_DETACHED]).toBe(true);
    expect(span.attributes[ATTR.TASK_ID]).toBe(inner);
    expect(span.parentSpanContext?.spanId).toBe(endedSpan(tracing, 'request').spanContext().spanId);
  });

  it('passes a failure through and records it on the span', async () => {
    await expect(detached('doomed', () => Promise.reject(new Error('smtp down')))).rejects.toThrow('smtp down');
    const span = endedSpan(tracing, 'doomed');
    expect(span.status.code).toBe(2);
    expect(names(span)).toEqual(['exception']);
  });
});

describe('runAsTask', () => {
  it('gives a flow a task id that its async continuations keep', async () => {
    const ids = await runAsTask(async () => {
      const before = currentTaskId();
      await sleep(1);
      return [before, currentTaskId()];
    }, 'worker-7');
    expect(ids).toEqual(['worker-7', 'worker-7']);
    expect(currentTaskId()).toBeUndefined();
  });
});

describe('log records (OTEP 4430)', () => {
  it('emits each wait event as a log record of its span, and can stop writing span events', async () => {
    const logExporter = new InMemoryLogRecordExporter();
    const loggerProvider = new LoggerProvider({ processors: [new SimpleLogRecordProcessor({ exporter: logExporter })] });
    configureWaitEvents({ records: 'log-records', loggerProvider });
    try {
      const mutex = new Mutex({ id: 'm' });
      await inSpan(tracer, 'logged', () => mutex.runExclusive(() => context.active()));
    } finally {
      configureWaitEvents();
    }
    const span = endedSpan(tracing, 'logged');
    expect(span.events).toEqual([]);
    const records = logExporter.getFinishedLogRecords();
    expect(records.map((r) => [r.eventName, r.attributes[ATTR.LOCK_ID]])).toEqual([
      [EVENT.LOCK_ACQUIRE, 'm'],
      [EVENT.LOCK_RELEASE, 'm'],
    ]);
    expect(records[0]!.spanContext?.spanId).toBe(span.spanContext().spanId);
    expect(records[0]!.spanContext?.traceId).toBe(span.spanContext().traceId);
    expect(() => configureWaitEvents({ records: 'smoke-signals' as never })).toThrow(expect.objectContaining({ code: 'bad-config' }));
  });
});

describe('no recording span', () => {
  it('records nothing and changes nothing outside a span', async () => {
    expect(trace.getActiveSpan()).toBeUndefined();
    const mutex = new Mutex();
    expect(await mutex.runExclusive(() => 'plain')).toBe('plain');
    expect(await join([() => 1, () => 2])).toEqual([1, 2]);
    expect(tracing.exporter.getFinishedSpans()).toEqual([]);
  });
});

/**
 * What the library instrumentations share: the contrib shape (`InstrumentationBase`, a semver range per
 * module, `isWrapped` before `_wrap`, so enabling twice never wraps twice) applied to a table of method
 * wrappers, and the same table applied to one instance for the explicit `instrument...()` functions.
 */
import { InstrumentationBase, InstrumentationNodeModuleDefinition, isWrapped, type InstrumentationConfig } from '@opentelemetry/instrumentation';
import { SCOPE_VERSION } from '../core/recorder.js';

/** Any method. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyFn = (this: any, ...args: any) => any;

/** Wrapper makers by method name. */
export type Wrappers = Readonly<Record<string, (original: AnyFn) => AnyFn>>;

/** Wraps the methods of one object in place, as own properties. */
export function wrapOwn(target: object, wrappers: Wrappers): void {
  const t = target as Record<string, AnyFn>;
  for (const [name, wrap] of Object.entries(wrappers)) t[name] = wrap(t[name]!);
}

/** An instrumentation of one library, named `waitgraph-instrumentation-<library>`. */
export abstract class WaitgraphInstrumentation<C extends InstrumentationConfig = InstrumentationConfig> extends InstrumentationBase<C> {
  constructor(library: string, config: C) {
    super(`waitgraph-instrumentation-${library}`, SCOPE_VERSION, config);
  }

  /** Wraps the methods of `target` (a prototype or a module), unwrapping an earlier wrap first. */
  protected wrapMethods(target: object, wrappers: Wrappers): void {
    const t = target as Record<string, AnyFn>;
    for (const [name, wrap] of Object.entries(wrappers)) {
      if (isWrapped(t[name])) this._unwrap(t, name);
      this._wrap(t, name, wrap);
    }
  }

  /** Undoes `wrapMethods`. */
  protected unwrapMethods(target: object | undefined, names: readonly string[]): void {
    if (target === undefined) return;
    const t = target as Record<string, AnyFn>;
    for (const name of names) if (isWrapped(t[name])) this._unwrap(t, name);
  }

  /**
   * The definition of a module (within `versions`) whose one prototype, found in its exports by
   * `prototypeOf`, gets `wrappers` when the module loads, and loses them when the instrumentation is
   * disabled.
   */
  protected prototypePatch<M>(module: string, versions: string[], prototypeOf: (exports: M) => object, wrappers: Wrappers): InstrumentationNodeModuleDefinition {
    return new InstrumentationNodeModuleDefinition(
      module,
      versions,
      (exports: M) => {
        this.wrapMethods(prototypeOf(exports), wrappers);
        return exports;
      },
      (exports?: M) => this.unwrapMethods(exports === undefined ? undefined : prototypeOf(exports), Object.keys(wrappers)),
    );
  }
}

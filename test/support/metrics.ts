/** Reading the processor's metrics in tests. */
import type { ProcessorMetrics } from '../../processor/src/io/index.js';

/** The value of the series `name` with exactly `labels` (`reason="decode"`; none: the unlabelled one), NaN when absent. */
export async function metricValue(metrics: ProcessorMetrics, name: string, labels = ''): Promise<number> {
  const line = (await metrics.text()).split('\n').find((l) => l.startsWith(labels === '' ? `${name} ` : `${name}{${labels}} `));
  return line ? Number(line.split(' ').pop()) : NaN;
}

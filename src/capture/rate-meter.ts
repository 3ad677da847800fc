/** Records per second over a sliding window of samples. */
export class RateMeter {
  private samples: [number, number][] = [];
  constructor(private readonly windowMs = 10_000) {}
  sample(nowMs: number, total: number): number {
    this.samples.push([nowMs, total]);
    while (this.samples.length > 2 && nowMs - this.samples[0]![0] > this.windowMs) this.samples.shift();
    const [t0, v0] = this.samples[0]!;
    return nowMs > t0 ? ((total - v0) * 1000) / (nowMs - t0) : 0;
  }
}

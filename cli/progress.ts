/**
 * Progress output of a training run: on a terminal one line rewritten in place (bar, step,
 * reward, accuracy, tokens/s, ETA); otherwise a plain line every `logEvery` steps.
 *
 * @module
 */

/** Formats seconds as `1h02m`, `3m05s` or `42s`. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "?";
  const s = Math.round(seconds);
  if (s >= 3600) {
    return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
  }
  if (s >= 60) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${s}s`;
}

/** Writes training progress to stdout. */
export class ProgressReporter {
  readonly #total: number;
  readonly #start: number;
  #logEvery: number;
  readonly #tty: boolean;
  #lastLength = 0;

  /**
   * @param total last step of the run
   * @param start step the run starts after (0, or the resumed step)
   * @param logEvery plain-line interval when stdout is not a terminal
   */
  constructor(total: number, start: number, logEvery: number) {
    this.#total = total;
    this.#start = start;
    this.#logEvery = logEvery;
    this.#tty = Deno.stdout.isTerminal();
  }
  /** Plain-line interval when stdout is not a terminal (a live `run.log_every` change). */
  set logEvery(every: number) {
    this.#logEvery = every;
  }

  /** The progress line for a step. */
  line(step: number, metrics: Record<string, number>, elapsed: number): string {
    const done = step - this.#start, left = this.#total - step;
    const eta = done > 0 ? (elapsed / done) * left : NaN;
    const pct = (x: number | undefined) => (x === undefined ? "-" : `${(100 * x).toFixed(1)}%`);
    const width = 20;
    const filled = Math.round((width * step) / this.#total);
    const bar = this.#tty ? `[${"#".repeat(filled)}${".".repeat(width - filled)}] ` : "";
    return `${bar}step ${step}/${this.#total} reward ${(metrics["reward/mean"] ?? 0).toFixed(3)} ` +
      `acc ${pct(metrics["accuracy"])} kl ${(metrics["kl"] ?? 0).toFixed(4)} ` +
      `len ${(metrics["completions/mean_length"] ?? 0).toFixed(1)} ` +
      `${(metrics["throughput/sampler_tokens_per_s"] ?? 0).toFixed(0)} tok/s ` +
      `${(metrics["time/step"] ?? 0).toFixed(1)} s/step ETA ${formatDuration(eta)}`;
  }

  /** Reports one finished step. */
  update(step: number, metrics: Record<string, number>, elapsed: number): void {
    const text = this.line(step, metrics, elapsed);
    if (this.#tty) {
      const pad = Math.max(0, this.#lastLength - text.length);
      Deno.stdout.writeSync(new TextEncoder().encode(`\r${text}${" ".repeat(pad)}`));
      this.#lastLength = text.length;
    } else if (step % this.#logEvery === 0 || step === this.#total) {
      console.log(text);
    }
  }

  /** Ends the in-place line. */
  done(): void {
    if (this.#tty && this.#lastLength > 0) Deno.stdout.writeSync(new TextEncoder().encode("\n"));
  }
}

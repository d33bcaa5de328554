/**
 * Progress output of a training run: on a terminal one line rewritten in place, cut to the
 * terminal's width (step, reward, training accuracy and ETA always; elapsed time, loss,
 * learning rate, KL, length, tokens/s and a bar when there is room); otherwise a plain line
 * with every field every `logEvery` steps.
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

  /**
   * The progress line for a step, at most `columns − 1` characters wide (a full last column
   * would wrap on some terminals); `Infinity` keeps every field. Fields are dropped from the
   * least useful up: the bar, s/step, tokens/s, length, KL, learning rate, loss, elapsed.
   * `train-acc` is the step's sampled training accuracy, not a held-out figure.
   */
  line(
    step: number,
    metrics: Record<string, number>,
    elapsed: number,
    columns = Number.POSITIVE_INFINITY,
  ): string {
    const done = step - this.#start, left = this.#total - step;
    const eta = done > 0 ? (elapsed / done) * left : NaN;
    const pct = (x: number | undefined) => (x === undefined ? "-" : `${(100 * x).toFixed(1)}%`);
    const num = (key: string, digits: number) => (metrics[key] ?? 0).toFixed(digits);
    // [priority (lower is kept first), text], in display order.
    const fields: [number, string][] = [
      [0, `step ${step}/${this.#total}`],
      [0, `reward ${num("reward/mean", 3)}`],
      [0, `train-acc ${pct(metrics["accuracy"])}`],
      [2, `loss ${num("loss/policy", 4)}`],
      [3, `lr ${(metrics["learning_rate"] ?? 0).toExponential(1)}`],
      [4, `kl ${num("kl", 4)}`],
      [5, `len ${num("completions/mean_length", 1)}`],
      [6, `${num("throughput/sampler_tokens_per_s", 0)} tok/s`],
      [7, `${num("time/step", 1)} s/step`],
      [1, `${formatDuration(elapsed)} elapsed`],
      [0, `ETA ${formatDuration(eta)}`],
    ];
    if (this.#tty) {
      const width = 20;
      const filled = Math.round((width * step) / this.#total);
      fields.unshift([8, `[${"#".repeat(filled)}${".".repeat(width - filled)}]`]);
    }
    const limit = columns - 1;
    let kept = fields;
    for (let drop = 8; drop > 0 && kept.map((f) => f[1]).join(" ").length > limit; drop--) {
      kept = kept.filter(([priority]) => priority < drop);
    }
    const text = kept.map((f) => f[1]).join(" ");
    return text.length > limit ? text.slice(0, Math.max(0, limit)) : text;
  }

  /** Reports one finished step. */
  update(step: number, metrics: Record<string, number>, elapsed: number): void {
    let columns = Number.POSITIVE_INFINITY;
    if (this.#tty) {
      try {
        columns = Deno.consoleSize().columns || 80;
      } catch {
        columns = 80;
      }
    }
    const text = this.line(step, metrics, elapsed, columns);
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

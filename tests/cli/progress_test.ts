import assert from "node:assert/strict";
import { formatDuration, ProgressReporter } from "../../cli/progress.ts";

const METRICS = {
  "reward/mean": 0.4375,
  accuracy: 0.4375,
  "loss/policy": 0.0442,
  learning_rate: 9.5e-5,
  kl: 0.0012,
  "completions/mean_length": 18.4,
  "throughput/sampler_tokens_per_s": 2150.4,
  "time/step": 10.2,
};

Deno.test("the progress line fits the terminal, keeping step, reward, train-acc and ETA", () => {
  const p = new ProgressReporter(16, 0, 1); // stdout is a pipe here: no bar
  const full = p.line(4, METRICS, 40.8);
  assert.equal(
    full,
    "step 4/16 reward 0.438 train-acc 43.8% loss 0.0442 lr 9.5e-5 kl 0.0012 len 18.4 " +
      "2150 tok/s 10.2 s/step 41s elapsed ETA 2m02s",
  );
  for (const columns of [120, 100, 80, 60, 50]) {
    const text = p.line(4, METRICS, 40.8, columns);
    assert.ok(text.length <= columns - 1, `${columns}: ${text.length} characters: ${text}`);
    for (const field of ["step 4/16", "reward 0.438", "train-acc 43.8%", "ETA 2m02s"]) {
      assert.ok(text.includes(field), `${columns}: ${field} missing from ${text}`);
    }
  }
  // The least useful fields go first: s/step, tokens/s, length, KL, then the learning rate.
  assert.equal(
    p.line(4, METRICS, 40.8, 100),
    "step 4/16 reward 0.438 train-acc 43.8% loss 0.0442 lr 9.5e-5 kl 0.0012 41s elapsed ETA 2m02s",
  );
  assert.equal(
    p.line(4, METRICS, 40.8, 80),
    "step 4/16 reward 0.438 train-acc 43.8% loss 0.0442 41s elapsed ETA 2m02s",
  );
  assert.ok(!/ acc /.test(full), "accuracy is labelled as the training accuracy");
  // Narrower than the essentials: cut, never wrapped.
  assert.equal(p.line(4, METRICS, 40.8, 20).length, 19);
});

Deno.test("formatDuration() writes hours, minutes and seconds", () => {
  assert.equal(formatDuration(42), "42s");
  assert.equal(formatDuration(185), "3m05s");
  assert.equal(formatDuration(3720), "1h02m");
  assert.equal(formatDuration(Number.NaN), "?");
});

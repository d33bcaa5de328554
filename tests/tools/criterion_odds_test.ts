import assert from "node:assert/strict";
import { highestRate, poissonCdf } from "../../tools/criterion_odds.ts";
import { REPO_ROOT } from "../helpers.ts";

Deno.test("poissonCdf() and highestRate() give hand-computed values", () => {
  // P(X <= 0) = e^-2; P(X <= 2 | 1) = e^-1 (1 + 1 + 1/2).
  assert.ok(Math.abs(poissonCdf(0, 2) - Math.exp(-2)) < 1e-15);
  assert.ok(Math.abs(poissonCdf(2, 1) - 2.5 / Math.E) < 1e-15);
  // One seed, bound 0: e^-lambda >= 0.5 up to lambda = ln 2.
  assert.ok(Math.abs(highestRate(0, 1, 0.5) - Math.LN2) < 1e-9);
  const r = highestRate(10, 5, 0.9);
  assert.ok(Math.abs(poissonCdf(10, r) ** 5 - 0.9) < 1e-9);
});

/** `deno run --allow-read tools/criterion_odds.ts <the 07f report> ...flags`: code and streams. */
async function odds(...flags: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-read",
      "tools/criterion_odds.ts",
      "docs/compare-2026-12-07f/results.json",
      ...flags,
    ],
    cwd: REPO_ROOT,
    env: { NO_COLOR: "1" },
  }).output();
  const d = new TextDecoder();
  return { code: out.code, stdout: d.decode(out.stdout), stderr: d.decode(out.stderr) };
}

Deno.test("tools/criterion_odds.ts reads a report's MGRPO breaks per seed", async () => {
  const out = await odds();
  assert.equal(out.code, 0);
  assert.equal(
    out.stdout,
    "MGRPO breaks per seed (1000 problems): seed 0 12, seed 1 10, seed 2 7, seed 3 9, seed 4 8; mean 9.2\n" +
      "P(all 5 seeds break at most 10) at that mean, Poisson: 0.148\n" +
      "highest mean with that chance >= 0.9: 5.3 per 1000\n",
  );
});

Deno.test("tools/criterion_odds.ts refuses a bad flag value with exit 2, naming the flag", async () => {
  const out = await odds("--seeds", "five");
  assert.equal(out.code, 2);
  assert.match(
    out.stderr,
    /Invalid value for --seeds: must be an integer >= 1: current value is "five"/,
  );
});

/**
 * Agreement with the labelled answer pairs of peer test suites (Math-Verify,
 * hendrycks/math, lm-evaluation-harness, Qwen2.5-Math): see
 * `tests/fixtures/VERIFIER_CASES_LICENSE.md`.
 *
 * Each label is what the source's own checker is expected to answer under the
 * settings its test used, which `origin` records. Those settings are mapped to
 * our options: Math-Verify's `match_types` with `latex` adds the `last_math`
 * extraction rule, with `expr` the `last_number` rule (Math-Verify reads
 * unmarked answers that way); `precision=p` becomes a relative tolerance of
 * `2·10^-p`. Lines whose origin has `FLAG:` carry a disputable label and are left
 * out of the strict score.
 */
import assert from "node:assert/strict";
import { verifyMath } from "../../../verifiers/math/verify.ts";
import { DEFAULT_EXTRACTION } from "../../../verifiers/math/extract.ts";
import type { ExtractionRule, MathVerifyOptions } from "../../../verifiers/math/types.ts";

interface Case {
  pred: string;
  gold: string;
  equal: boolean;
  origin: string;
}

const CASES: Case[] = Deno.readTextFileSync(
  new URL("../../fixtures/verifier_cases.jsonl", import.meta.url),
).trim().split("\n").map((line) => JSON.parse(line) as Case);

/** The options that reproduce the source test's checker settings. */
function optionsFor(origin: string): MathVerifyOptions {
  const options: MathVerifyOptions = {};
  const matchTypes = /match_types=([a-z+]+)/.exec(origin)?.[1];
  if (matchTypes !== undefined) {
    const extraction: ExtractionRule[] = [...DEFAULT_EXTRACTION];
    if (matchTypes.includes("latex")) extraction.push("last_math");
    if (matchTypes.includes("expr")) extraction.push("last_number");
    options.extraction = extraction;
  }
  const precision = /precision=(\d+)/.exec(origin)?.[1];
  if (precision !== undefined) options.relativeTolerance = 2 * 10 ** -Number(precision);
  return options;
}

interface Score {
  strict: number;
  overall: number;
  disagreements: string[];
}

function score(options: (origin: string) => MathVerifyOptions): Score {
  let agreeStrict = 0;
  let totalStrict = 0;
  let agree = 0;
  const disagreements: string[] = [];
  CASES.forEach((c, line) => {
    const verdict = verifyMath(c.pred, c.gold, options(c.origin));
    const ok = verdict.equal === c.equal;
    const flagged = c.origin.includes("FLAG:");
    if (ok) agree++;
    if (!flagged) {
      totalStrict++;
      if (ok) agreeStrict++;
    }
    if (!ok) {
      disagreements.push(
        `  line ${line + 1}${
          flagged ? " (FLAG)" : ""
        }: expected ${c.equal}, got ${verdict.equal}; pred ${
          JSON.stringify(verdict.predAnswer?.slice(0, 80))
        } gold ${JSON.stringify(verdict.goldAnswer?.slice(0, 80))}`,
      );
    }
  });
  return { strict: agreeStrict / totalStrict, overall: agree / CASES.length, disagreements };
}

Deno.test("verifyMath() agrees with at least 95% of the unflagged peer test cases", () => {
  assert.equal(CASES.length, 312);
  const mapped = score(optionsFor);
  console.log(
    `verifier cases with the sources' settings: ${
      (mapped.strict * 100).toFixed(1)
    }% of unflagged lines, ` +
      `${(mapped.overall * 100).toFixed(1)}% of all lines; disagreements:\n${
        mapped.disagreements.join("\n")
      }`,
  );
  assert.ok(mapped.strict >= 0.95, `strict agreement ${mapped.strict}`);
});

Deno.test("verifyMath() with default options still agrees with most peer test cases", () => {
  // Without last_math / last_number, unmarked prose answers are not read (by design),
  // which is most of the difference from the mapped score.
  const defaults = score(() => ({}));
  console.log(
    `verifier cases with default options: ${
      (defaults.strict * 100).toFixed(1)
    }% of unflagged lines, ` +
      `${
        (defaults.overall * 100).toFixed(1)
      }% of all lines (${defaults.disagreements.length} disagreements)`,
  );
  assert.ok(defaults.strict >= 0.85, `strict agreement ${defaults.strict}`);
});

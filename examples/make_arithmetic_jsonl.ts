/**
 * Writes `examples/arithmetic.jsonl`, the dataset of the README's "your data" recipe: 1,200
 * two-step word problems of the synthetic task as `{"question", "answer"}` lines, the shape any
 * JSONL dataset of yours takes. The embedded model's character vocabulary can read them.
 *
 *   deno run --allow-write examples/make_arithmetic_jsonl.ts
 *
 * @module
 */
import { makeProblems } from "../data/arithmetic.ts";

const lines = makeProblems(2026, 1200, { minSteps: 2, maxSteps: 2, maxOperand: 9 })
  .map((p) => JSON.stringify({ question: p.question, answer: p.answer }));
await Deno.writeTextFile(
  new URL("./arithmetic.jsonl", import.meta.url),
  lines.join("\n") + "\n",
);
console.log(`wrote examples/arithmetic.jsonl: ${lines.length} problems`);

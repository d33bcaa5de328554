import assert from "node:assert/strict";
import { parseInputLine, parseVerifyArgs, verifyJsonLines } from "../../cli/verify.ts";
import { VerifierPool } from "../../verifiers/math/pool.ts";
import { verifyMath } from "../../verifiers/math/verify.ts";
import { REPO_ROOT } from "../helpers.ts";

/** The CLI's output line for a pair, computed in-process. */
function expectedLine(line: number, pred: string, gold: string): string {
  const v = verifyMath(pred, gold);
  return JSON.stringify({
    line,
    equal: v.equal,
    pred_answer: v.predAnswer,
    gold_answer: v.goldAnswer,
    reason: v.reason,
  });
}

/** Runs `deno run <permissions> cli/verify.ts <args>` with `stdin` piped in. */
async function runCli(
  permissions: string[],
  args: string[],
  stdin: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...permissions, "cli/verify.ts", ...args],
    cwd: REPO_ROOT,
    env: { NO_COLOR: "1" },
    // A deadline for a hang (the pathological pairs must be answered), not a speed bound.
    signal: AbortSignal.timeout(120_000),
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  // Write and read at once: the CLI streams, so a full stdout pipe would stop it reading.
  const writing = (async () => {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(stdin));
    await writer.close();
  })();
  const { code, stdout, stderr } = await child.output();
  await writing;
  const decoder = new TextDecoder();
  return { code, stdout: decoder.decode(stdout), stderr: decoder.decode(stderr) };
}

/** A stream of `text` cut into chunks of `size` bytes (to split lines and characters). */
function chunked(text: string, size: number): ReadableStream<Uint8Array> {
  const bytes = new TextEncoder().encode(text);
  let offset = 0;
  return new ReadableStream({
    pull(controller) {
      if (offset >= bytes.length) controller.close();
      else {
        controller.enqueue(bytes.slice(offset, offset + size));
        offset += size;
      }
    },
  });
}

function collector(): { stream: WritableStream<Uint8Array>; text: () => string } {
  const decoder = new TextDecoder();
  let text = "";
  return {
    stream: new WritableStream({ write: (chunk) => void (text += decoder.decode(chunk)) }),
    text: () => text,
  };
}

const INPUT_LINES = [
  '{"pred": "42", "gold": "42"}',
  "",
  '{"pred": 1, "gold": "1"}',
  "{bad",
  '["pred", "gold"]',
  '{"pred": "x"}',
  '{"pred": "7", "gold": "8"}\r',
  '{"pred": "a", "gold": null}',
  '{"pred": "#### 18", "gold": 18}',
  '{"pred": "½ → \\\\frac{1}{2}", "gold": "0.5"}',
];

const EXPECTED_LINES = [
  expectedLine(1, "42", "42"),
  '{"line":2,"error":"line 2: blank line: expected a JSON object with \\"pred\\" and \\"gold\\""}',
  '{"line":3,"error":"line 3: field \\"pred\\" must be a string: current value is 1"}',
  `{"line":4,"error":"line 4: invalid JSON: ${
    (() => {
      try {
        JSON.parse("{bad");
      } catch (e) {
        return (e as Error).message.replaceAll('"', '\\"');
      }
    })()
  }"}`,
  '{"line":5,"error":"line 5: must be a JSON object with fields \\"pred\\" and \\"gold\\": current value is [\\"pred\\",\\"gold\\"]"}',
  '{"line":6,"error":"line 6: field \\"gold\\" is missing"}',
  expectedLine(7, "7", "8"),
  '{"line":8,"error":"line 8: field \\"gold\\" must be a string or a number: current value is null"}',
  expectedLine(9, "#### 18", "18"),
  expectedLine(10, "½ → \\frac{1}{2}", "0.5"),
];

Deno.test("parseInputLine() reads a record or says what is wrong with it", () => {
  assert.deepEqual(parseInputLine('{"pred": "\\\\boxed{2}", "gold": "2", "id": 7}', 1), {
    pred: "\\boxed{2}",
    gold: "2",
  });
  assert.deepEqual(parseInputLine('{"pred": "0.5", "gold": 0.5}', 1), { pred: "0.5", gold: "0.5" });
  assert.deepEqual(parseInputLine('{"pred": "1", "gold": -1234}', 1), { pred: "1", gold: "-1234" });
  assert.deepEqual(parseInputLine('{"gold": "1"}', 2), {
    error: 'line 2: field "pred" is missing',
  });
  assert.deepEqual(parseInputLine('{"pred": "1", "gold": true}', 9), {
    error: 'line 9: field "gold" must be a string or a number: current value is true',
  });
  assert.deepEqual(parseInputLine(`"${"x".repeat(200)}"`, 4), {
    error: `line 4: must be a JSON object with fields "pred" and "gold": current value is "${
      "x".repeat(76)
    }...`,
  });
});

Deno.test("parseVerifyArgs() reads the flags", () => {
  assert.deepEqual(parseVerifyArgs([]), { help: false });
  assert.deepEqual(parseVerifyArgs(["-h"]), { help: true });
  assert.deepEqual(parseVerifyArgs(["--isolation", "worker", "--timeout-ms=250"]), {
    help: false,
    timeoutMs: 250,
    isolation: "worker",
  });
  assert.throws(() => parseVerifyArgs(["--isolation", "thread"]), {
    name: "ArgsError",
    message:
      'Invalid value for --isolation: must be "process" or "worker": current value is "thread"',
  });
  assert.throws(() => parseVerifyArgs(["--timeout-ms", "1.5"]), {
    message: 'Invalid value for --timeout-ms: must be a positive integer: current value is "1.5"',
  });
  assert.throws(() => parseVerifyArgs(["--verbose"]), {
    message:
      'Unknown flag "--verbose": known flags are --timeout-ms, --workers, --isolation, --help',
  });
  assert.throws(() => parseVerifyArgs(["--workers"]), {
    message: "Missing value for --workers: expected --workers N",
  });
  assert.throws(() => parseVerifyArgs(["pairs.jsonl"]), {
    message: 'Unexpected argument "pairs.jsonl": pairs are read from stdin',
  });
});

Deno.test("verifyJsonLines() answers every record in order, across chunk boundaries", async () => {
  // 3-byte chunks split lines and the multi-byte characters; no newline at the very end.
  const out = collector();
  const pool = new VerifierPool({ isolation: "worker", size: 2, batchSize: 2 });
  try {
    const n = await verifyJsonLines(chunked(INPUT_LINES.join("\n"), 3), out.stream, pool);
    assert.equal(n, 10);
  } finally {
    await pool.close();
  }
  assert.equal(out.text(), EXPECTED_LINES.join("\n") + "\n");
});

Deno.test("verifyJsonLines() keeps the order with few records read ahead", async () => {
  const pairs = Array.from(
    { length: 60 },
    (_, i) => ({ pred: `${i}`, gold: i % 4 === 0 ? i : i + 1 }),
  );
  const out = collector();
  const pool = new VerifierPool({ isolation: "worker", size: 2, batchSize: 3 });
  try {
    const input = pairs.map((p) => JSON.stringify(p)).join("\n") + "\n";
    assert.equal(
      await verifyJsonLines(chunked(input, 50), out.stream, pool, { maxPending: 4 }),
      60,
    );
  } finally {
    await pool.close();
  }
  const lines = out.text().trimEnd().split("\n");
  assert.deepEqual(lines, pairs.map((p, i) => expectedLine(i + 1, p.pred, String(p.gold))));
  assert.equal(lines.filter((l) => l.includes('"equal":true')).length, 15);
});

Deno.test("verify CLI streams JSON Lines through verifier processes", async () => {
  const stdin = [
    ...INPUT_LINES,
    JSON.stringify({ pred: "10^{10^{10}}", gold: "1" }),
    JSON.stringify({ pred: "{".repeat(10_000), gold: "1" }),
  ].join("\n") + "\n";
  const { code, stdout, stderr } = await runCli(
    ["--allow-read", "--allow-run"],
    ["--workers", "2"],
    stdin,
  );
  assert.equal(code, 0, stderr);
  const lines = stdout.trimEnd().split("\n");
  // One output line per input line, the blank one included.
  assert.deepEqual(lines.slice(0, 10), EXPECTED_LINES);
  assert.equal(lines.length, 12);
  for (const [k, line] of lines.slice(10).entries()) {
    const verdict = JSON.parse(line);
    assert.deepEqual(Object.keys(verdict), [
      "line",
      "equal",
      "pred_answer",
      "gold_answer",
      "reason",
    ]);
    assert.equal(verdict.line, 11 + k);
    assert.equal(verdict.equal, false);
  }
});

Deno.test("verify CLI falls back to Web Workers without --allow-run", async () => {
  const { code, stdout, stderr } = await runCli(
    ["--allow-read"],
    ["--timeout-ms", "2000"],
    '{"pred": "\\\\boxed{1,234}", "gold": 1234}\n{"pred": "5", "gold": "6"}\n',
  );
  assert.equal(code, 0, stderr);
  assert.equal(
    stdout,
    `${expectedLine(1, "\\boxed{1,234}", "1234")}\n${expectedLine(2, "5", "6")}\n`,
  );
});

Deno.test("verify CLI prints help, and exits 2 on a bad flag", async () => {
  const help = await runCli(["--allow-read"], ["--help"], "");
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^Usage: deno task verify /);
  assert.match(help.stdout, /--timeout-ms MS +Wall-clock limit/);
  const bad = await runCli(["--allow-read"], ["--workers", "two"], "");
  assert.equal(bad.code, 2);
  assert.equal(bad.stdout, "");
  assert.equal(
    bad.stderr.trim(),
    'Invalid value for --workers: must be a positive integer: current value is "two"',
  );
});

/**
 * The verifier worker: runs {@linkcode verifyMath} for a {@linkcode VerifierPool} in a Web
 * Worker or in a child `deno run` process, speaking one small message protocol over either
 * transport (structured-clone messages, or JSON Lines on stdin/stdout).
 *
 * The worker announces `{ type: "ready" }` once its modules are loaded, then answers every
 * request item as soon as it is done, one reply per item, so the pool always knows which
 * item is running and can time out exactly that one.
 *
 * @module
 */
import type { MathVerdict, MathVerifyOptions } from "./types.ts";
import { verifyMath } from "./verify.ts";

/** One (prediction, reference) pair to verify, with the pool's id for the reply. */
export interface VerifyItem {
  /** The pool's id of the call, echoed in the reply. */
  id: number;
  /** The model's response or answer. */
  pred: string;
  /** The reference answer. */
  gold: string;
  /** Verifier options; absent means the defaults. */
  options?: MathVerifyOptions;
}

/** A message from the pool to a worker: pairs to verify one after the other, in order. */
export interface VerifyRequest {
  /** The message kind. */
  type: "verify";
  /** The pairs, answered in this order. */
  items: VerifyItem[];
}

/** A message from a worker to the pool. */
export type VerifierReply =
  | { type: "ready" }
  | { type: "result"; id: number; verdict: MathVerdict }
  | { type: "error"; id: number; message: string };

/** The function a worker serves: {@linkcode verifyMath} or a stand-in with its signature. */
export type VerifyFunction = (
  pred: string,
  gold: string,
  options?: MathVerifyOptions,
) => MathVerdict;

/**
 * Serves `verify` on the transport this module runs under: `postMessage` in a Web Worker,
 * JSON Lines on stdin/stdout in a child process (one request per stdin line, one reply per
 * stdout line; the process exits when stdin closes). A throw from `verify` becomes an
 * `"error"` reply for that item and the worker keeps serving.
 *
 * A test double for the pool is a module that calls this with its own function.
 */
export function serveVerifier(verify: VerifyFunction): void {
  const scope = globalThis as unknown as {
    postMessage?: (message: VerifierReply) => void;
    onmessage?: ((event: MessageEvent<VerifyRequest>) => void) | null;
  };
  const inWorker = "WorkerGlobalScope" in globalThis && typeof scope.postMessage === "function";
  if (inWorker) {
    const post = scope.postMessage!.bind(globalThis);
    scope.onmessage = (event) => {
      for (const item of event.data.items) post(answer(verify, item));
    };
    post({ type: "ready" });
  } else {
    void serveStdio(verify);
  }
}

/** Runs one item, turning a throw into an `"error"` reply. */
function answer(verify: VerifyFunction, item: VerifyItem): VerifierReply {
  try {
    const verdict = item.options === undefined
      ? verify(item.pred, item.gold)
      : verify(item.pred, item.gold, item.options);
    return { type: "result", id: item.id, verdict };
  } catch (e) {
    return { type: "error", id: item.id, message: e instanceof Error ? e.message : String(e) };
  }
}

const encoder = new TextEncoder();

/** Writes one reply line synchronously, so that a later hang cannot hold it back in a buffer. */
function writeLine(reply: VerifierReply): void {
  const bytes = encoder.encode(JSON.stringify(reply) + "\n");
  let offset = 0;
  while (offset < bytes.length) offset += Deno.stdout.writeSync(bytes.subarray(offset));
}

async function serveStdio(verify: VerifyFunction): Promise<void> {
  writeLine({ type: "ready" });
  let buffer = "";
  for await (const chunk of Deno.stdin.readable.pipeThrough(new TextDecoderStream())) {
    buffer += chunk;
    let start = 0;
    for (let newline = buffer.indexOf("\n"); newline >= 0; newline = buffer.indexOf("\n", start)) {
      const line = buffer.slice(start, newline);
      start = newline + 1;
      if (line.trim() === "") continue;
      const request = JSON.parse(line) as VerifyRequest;
      for (const item of request.items) writeLine(answer(verify, item));
    }
    buffer = buffer.slice(start);
  }
}

if (import.meta.main) serveVerifier(verifyMath);

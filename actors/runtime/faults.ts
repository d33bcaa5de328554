/**
 * Fault injection, for tests of supervision: a list of {@linkcode FaultSpec}s says which
 * actor misbehaves at which step (throw, delay a message, drop a worker), and
 * {@linkcode withFaults} wraps that actor's logic so that the fault happens just before the
 * real handler runs. A graph applies them by name through `GraphOptions.faults`.
 *
 * A fault fires on a message whose numeric `step` field equals the fault's `step` (and
 * whose `type` is `message_type` when that is given), at most `times` times. The count lives
 * in the wrapper, not in the actor's state, so it survives restarts: a throw-once fault with
 * `maxRestarts: 1` fires once, the restart redelivers the message and the run goes on.
 *
 * @module
 */
import { z } from "zod";
import type { ActorContext, ActorLogic } from "./actor.ts";

/** Kinds of fault {@linkcode withFaults} can inject. */
export const FAULT_KINDS = ["throw", "delay", "exit_worker"] as const;

/** One injected fault: which actor, at which step, what happens and how often. */
export const FaultSpecSchema = z.object({
  actor: z.string().min(1).describe("Name of the actor the fault happens in"),
  step: z.number().int().min(1).describe(
    "Training step whose message triggers the fault (the message's `step` field)",
  ),
  kind: z.enum(FAULT_KINDS).describe(
    "throw: the handler throws before it runs; delay: the message waits `ms` first; " +
      "exit_worker: one of the actor's worker processes is killed, then the message is handled",
  ),
  ms: z.number().int().min(0).optional().describe(
    "How long a `delay` fault holds the message, in milliseconds (only for kind: delay)",
  ),
  times: z.number().int().min(1).default(1).describe(
    "How many matching messages the fault fires on, counted across restarts",
  ),
  message_type: z.string().min(1).optional().describe(
    "Only messages of this `type` trigger the fault; absent means any message with the step",
  ),
}).strict().superRefine((fault, ctx) => {
  if (fault.kind === "delay" && fault.ms === undefined) {
    ctx.addIssue({ code: "custom", path: ["ms"], message: "must be set when kind is delay" });
  }
  if (fault.kind !== "delay" && fault.ms !== undefined) {
    ctx.addIssue({
      code: "custom",
      path: ["ms"],
      message: `must be left out when kind is not delay: kind is "${fault.kind}"`,
    });
  }
}).describe("One injected fault (for tests of supervision)");

/** The `faults:` list: faults injected into a run, for tests; empty by default. */
export const FaultsSchema = z.array(FaultSpecSchema).default([]).describe(
  "Faults injected into the run, for tests of supervision and restarts",
);

/** A parsed fault (`times` defaulted). */
export type FaultSpec = z.output<typeof FaultSpecSchema>;

/** A fault as written (`times` may be left out). */
export type FaultSpecInput = z.input<typeof FaultSpecSchema>;

/** Options of {@linkcode withFaults}. */
export interface WithFaultsOptions {
  /** Name of the wrapped actor: only the faults whose `actor` is this name apply. */
  name: string;
  /**
   * How an `exit_worker` fault drops a worker of the actor (e.g. `() => pool.killWorker()`
   * for the Verifier's pool). When absent, the fault calls `killWorker()` on the actor's
   * state if it has one, and otherwise throws.
   * @default undefined
   */
  exitWorker?: (actor: string) => void | Promise<void>;
}

/**
 * Wraps `logic` so that the faults of `faults` that name `options.name` happen just before
 * its handler runs: `throw` throws `Error("injected fault: …")` (the real handler does not
 * run, so nothing is half done), `delay` waits `ms` (rejecting with the reason when
 * `ctx.signal` aborts), `exit_worker` drops a worker and then handles the message. Each
 * fault fires at most `times` times over the wrapper's life, restarts included.
 *
 * Returns `logic` itself when no fault names the actor.
 *
 * @throws {TypeError} When a fault does not match {@linkcode FaultSpecSchema}.
 *
 * @example A throw-once fault at step 2
 * ```ts
 * import assert from "node:assert/strict";
 * import type { ActorContext, ActorLogic } from "./actor.ts";
 * import { withFaults } from "./faults.ts";
 *
 * type Item = { type: "Item"; step: number };
 * const echo: ActorLogic<void, Item> = { init() {}, handle() {} };
 * const faulty = withFaults(echo, [{ actor: "echo", step: 2, kind: "throw" }], { name: "echo" });
 * const ctx: ActorContext = {
 *   name: "echo",
 *   send: () => Promise.resolve(),
 *   signal: new AbortController().signal,
 * };
 * await faulty.handle(undefined, { type: "Item", step: 1 }, ctx);
 * await assert.rejects(
 *   async () => await faulty.handle(undefined, { type: "Item", step: 2 }, ctx),
 *   { message: 'injected fault: throw in actor "echo" at step 2 while handling "Item" (1 of 1)' },
 * );
 * await faulty.handle(undefined, { type: "Item", step: 2 }, ctx); // fired once already
 * ```
 */
export function withFaults<State, Msg extends { type: string }, Input>(
  logic: ActorLogic<State, Msg, Input>,
  faults: readonly FaultSpecInput[],
  options: WithFaultsOptions,
): ActorLogic<State, Msg, Input> {
  const { name, exitWorker } = options;
  const mine = parseFaults(faults).filter((fault) => fault.actor === name);
  if (mine.length === 0) return logic;
  // Fired counts live here, not in the actor's state, so a restart does not reset them.
  const fired = mine.map(() => 0);
  const handle = logic.handle.bind(logic);
  return {
    ...logic,
    init: logic.init.bind(logic),
    ...(logic.close ? { close: logic.close.bind(logic) } : {}),
    async handle(state: State, message: Msg, ctx: ActorContext): Promise<State | void> {
      const step = (message as { step?: unknown }).step;
      if (typeof step === "number") {
        for (const [i, fault] of mine.entries()) {
          if (fault.step !== step || fired[i]! >= fault.times) continue;
          if (fault.message_type !== undefined && fault.message_type !== message.type) continue;
          fired[i]!++;
          const what =
            `${fault.kind} in actor "${name}" at step ${step} while handling "${message.type}" (${
              fired[i]
            } of ${fault.times})`;
          switch (fault.kind) {
            case "throw":
              throw new Error(`injected fault: ${what}`);
            case "delay":
              await abortableDelay(fault.ms ?? 0, ctx.signal);
              break;
            case "exit_worker":
              await dropWorker(name, state, exitWorker, what);
              break;
            default:
              throw new TypeError(`Unknown fault kind "${(fault as { kind: string }).kind}"`);
          }
        }
      }
      return await handle(state, message, ctx);
    },
  };
}

/**
 * Parses a list of faults against {@linkcode FaultSpecSchema}, defaulting `times`.
 *
 * @throws {TypeError} Naming the first invalid field, as `faults[i].field`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseFaults } from "./faults.ts";
 *
 * assert.deepEqual(parseFaults([{ actor: "sampler", step: 3, kind: "throw" }]), [
 *   { actor: "sampler", step: 3, kind: "throw", times: 1 },
 * ]);
 * assert.throws(() => parseFaults([{ actor: "sampler", step: 3, kind: "delay" }]), {
 *   message: 'Invalid fault: field "faults[0].ms": must be set when kind is delay',
 * });
 * ```
 */
export function parseFaults(faults: readonly FaultSpecInput[]): FaultSpec[] {
  const parsed = z.array(FaultSpecSchema).safeParse(faults);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const field = issue.path.reduce<string>(
    (path, key) => typeof key === "number" ? `${path}[${key}]` : `${path}.${String(key)}`,
    "faults",
  );
  throw new TypeError(`Invalid fault: field "${field}": ${issue.message}`);
}

/** Runs the `exit_worker` hook, or the state's `killWorker()`. */
async function dropWorker(
  name: string,
  state: unknown,
  exitWorker: ((actor: string) => void | Promise<void>) | undefined,
  what: string,
): Promise<void> {
  if (exitWorker !== undefined) {
    await exitWorker(name);
    return;
  }
  const kill = (state as { killWorker?: unknown } | null | undefined)?.killWorker;
  if (typeof kill === "function") {
    await (kill as () => unknown).call(state);
    return;
  }
  throw new Error(
    `Cannot inject fault ${what}: no exitWorker hook was given and the actor's state has no killWorker() method`,
  );
}

/** Waits `ms`; rejects with `signal.reason` when `signal` aborts first. */
function abortableDelay(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

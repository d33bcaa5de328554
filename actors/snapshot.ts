/**
 * Helpers for the snapshot protocol of exact resume: the driver sends `Snapshot` to every
 * actor that accepts it (`ActorLogic.accepts`, `Graph.accepting("Snapshot")`) at a step
 * boundary, each answers one `ActorSnapshot` on the `events` sink,
 * the Learner writes them into the checkpoint; a resumed run sends each its `Restore` before
 * the first step.
 *
 * @module
 */
import type { ActorContext } from "./runtime/mod.ts";
import type { ActorSnapshot, Restore } from "./messages.ts";
import type { RngState } from "../util/rng.ts";

/** Sends this actor's `ActorSnapshot` to the `events` sink. */
export async function sendSnapshot(
  ctx: ActorContext,
  step: number,
  state: Record<string, unknown>,
  files: ActorSnapshot["files"] = {},
): Promise<void> {
  const message: ActorSnapshot = { type: "ActorSnapshot", actor: ctx.name, step, state, files };
  await ctx.send("events", message);
}

/**
 * Reads an RNG state from a `Restore`, or names the actor and field.
 *
 * @throws {TypeError} When the field is missing or not four 32-bit words.
 */
export function restoredRng(message: Restore, actor: string, field = "rng"): RngState {
  const value = message.state[field];
  if (
    !Array.isArray(value) || value.length !== 4 ||
    !value.every((w) => Number.isInteger(w) && w >= 0 && w < 2 ** 32)
  ) {
    throw new TypeError(
      `Cannot restore actor "${actor}": "${field}" must be 4 unsigned 32-bit integers: ` +
        `current value is ${JSON.stringify(value)}`,
    );
  }
  return value as unknown as RngState;
}

/**
 * Reads a non-negative integer from a `Restore`, or names the actor and field.
 *
 * @throws {TypeError} When the field is missing or not an integer >= 0.
 */
export function restoredCount(message: Restore, actor: string, field: string): number {
  const value = message.state[field];
  if (!Number.isInteger(value) || (value as number) < 0) {
    throw new TypeError(
      `Cannot restore actor "${actor}": "${field}" must be an integer >= 0: ` +
        `current value is ${JSON.stringify(value)}`,
    );
  }
  return value as number;
}

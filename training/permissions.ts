/**
 * The Deno permissions of a training process: `deno task train`, `deno task actor` and the
 * actor processes a run spawns for `placement: nats` all get exactly these, never
 * `--allow-all`.
 *
 * @module
 */

/**
 * Read and write (configs, datasets, checkpoints, the run folder), env (settings such as
 * `MGRPO_API_KEY`), run (verifier processes), net (the control server, NATS, an
 * OpenAI-compatible sampler) and ffi (the optional tensorflow backend, a Node-API addon).
 */
export const RUN_PERMISSIONS: readonly string[] = [
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-run",
  "--allow-net",
  "--allow-ffi",
];

/**
 * The live control server of a training run: {@linkcode RunControl} holds the run's state
 * and live config, {@linkcode createControlApp} serves it over HTTP with Hono.
 *
 * @module
 */
export * from "./run_control.ts";
export * from "./app.ts";
export * from "./serve.ts";
export * from "./openai_app.ts";

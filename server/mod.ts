/**
 * The HTTP side of mgrpo: the live control server of a training run ({@linkcode RunControl}
 * holds the run's state and live config, {@linkcode createControlApp} serves it over HTTP with
 * Hono), the read-only dashboard of run folders ({@linkcode createDashboardApp} over the files
 * {@linkcode discoverRuns} finds), and the OpenAI-compatible server of a policy.
 *
 * @module
 */
export * from "./run_control.ts";
export * from "./app.ts";
export * from "./serve.ts";
export * from "./openai_app.ts";
export * from "./dashboard_app.ts";
export * from "./run_files.ts";

import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { parse as parseYaml, YAMLParseError } from "yaml";
import { z } from "zod";
import { SHORT_GUIDE_PHRASES } from "../../prompts/system_prompts.ts";
import { ConfigError, configToYaml, parseOverride, setConfigValue } from "../../config/load.ts";
import { deriveConfig, loadConfig } from "../../training/config.ts";
import { DEFAULT_CONFIG_PATH, DEFAULT_SYSTEM_PROMPT } from "../../config/schema.ts";
import { type TrainConfig, TrainConfigSchema } from "../../algorithms/builtins.ts";

const SMOKE_PATH = fileURLToPath(new URL("../../configs/smoke-grpo.yaml", import.meta.url));

/** The ConfigError thrown by `fn`, failing the test if it throws anything else or nothing. */
function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${error}`);
    return error;
  }
  assert.fail("expected a ConfigError, nothing was thrown");
}

const LEARNER_FIELDS = '"lr", "lr_schedule", "warmup_ratio", "min_lr_ratio", "weight_decay", ' +
  '"adam_beta1", "adam_beta2", "adam_eps", "max_consecutive_skips", "max_grad_norm", "micro_batch_size", "gradient_checkpointing", "backend"';

// --- the embedded configs ---

/**
 * Where the embedded default departs from the schema's defaults: the tiny model's Layer-2 query
 * (short guide phrases inside the open thought) and its corrections (sampled at 0.7, their own
 * 136-token budget, Layer 2's loss weighted 4), the latent-count warm start with the 200 unseen
 * dev problems it kept out of training, its learning rate and its steps (docs/self-correction.md, docs/embedded-default.md).
 */
const EMBEDDED_LAYER2 = {
  guide_phrases: [...SHORT_GUIDE_PHRASES],
  guide_separator: " ",
  guide_position: "in_think" as const,
  layer2_temperature: 0.7,
  layer2_max_new_tokens: 136,
  layer2_weight: 4,
};
const EMBEDDED_INIT = "checkpoints/tiny-sft-latent-long";
const EMBEDDED_LR = 2e-4;
const EMBEDDED_DEV_UNSEEN = 200;

function embeddedFrom(defaults: TrainConfig, steps: number, name: string) {
  return {
    ...defaults,
    run: { ...defaults.run, name, steps },
    model: { ...defaults.model, init: EMBEDDED_INIT },
    task: { ...defaults.task, dev_unseen_size: EMBEDDED_DEV_UNSEEN },
    learner: { ...defaults.learner, lr: EMBEDDED_LR },
    mgrpo: { ...defaults.mgrpo, ...EMBEDDED_LAYER2 },
  };
}

Deno.test("loadConfig() reads the embedded default: the schema defaults but the tiny model's Layer 2, warm start, lr and steps", () => {
  const defaults = TrainConfigSchema.parse({});
  const embedded = embeddedFrom(defaults, 24, "tiny-mgrpo");
  assert.deepEqual(loadConfig(undefined), embedded);
  assert.deepEqual(loadConfig(DEFAULT_CONFIG_PATH), embedded);
  assert.equal(defaults.mgrpo.guide_position, "after_answer");
  assert.equal(defaults.mgrpo.layer2_weight, 1);
  assert.equal(defaults.mgrpo.layer2_temperature, undefined);
  assert.equal(defaults.task.heldout_size, 1000);
  assert.equal(defaults.run.name, "tiny-mgrpo");
  assert.equal(defaults.run.steps, 16);
  assert.equal(defaults.model.init, "checkpoints/tiny-sft");
  assert.equal(defaults.model.backend, "wasm");
  assert.equal(defaults.prompts.system, "");
  assert.equal(defaults.prompts.template, undefined);
  assert.equal(defaults.algorithm, "mgrpo");
  assert.equal(defaults.sampler.prompts_per_step, 8);
  assert.equal(defaults.learner.lr, 1e-4);
  assert.equal(defaults.learner.adam_eps, 1e-8);
  assert.equal(defaults.eval.batch_size, 100);
  assert.equal(defaults.runtime.mailbox_capacity, 2);
});

Deno.test("configs/tiny-grpo.yaml is the embedded default with algorithm grpo and 100 steps", () => {
  const defaults = TrainConfigSchema.parse({});
  const grpo = loadConfig("configs/tiny-grpo.yaml");
  assert.deepEqual(grpo, { ...embeddedFrom(defaults, 100, "tiny-grpo"), algorithm: "grpo" });
});

Deno.test("configs/tiny-mgrpo.yaml spells out every section, every defaulted field and the optional ones it sets", async () => {
  const raw = parseYaml(await Deno.readTextFile(DEFAULT_CONFIG_PATH)) as Record<string, unknown>;
  for (const [section, schema] of Object.entries(TrainConfigSchema.shape)) {
    assert.ok(section in raw, `section "${section}" is missing`);
    const inner = (schema as z.ZodPrefault<z.ZodObject>)._zod.def.innerType;
    if (!(inner instanceof z.ZodObject)) continue; // `algorithm` is a plain value
    const fields = Object.entries(inner.shape)
      .filter(([name, field]) =>
        (field as z.ZodType).safeParse(undefined).data !== undefined ||
        (section === "mgrpo" && name in EMBEDDED_LAYER2)
      )
      .map(([name]) => name);
    assert.deepEqual(Object.keys(raw[section] as object), fields, `fields of "${section}"`);
  }
});

Deno.test("loadConfig() reads configs/smoke-grpo.yaml: a two-step run with beta > 0", () => {
  const config = loadConfig(SMOKE_PATH);
  const defaults = TrainConfigSchema.parse({});
  assert.equal(config.run.steps, 2);
  assert.equal(config.sampler.prompts_per_step, 2);
  assert.equal(config.grpo.num_generations, 4);
  assert.equal(config.grpo.beta, 0.04);
  assert.equal(config.task.eval_size, 8);
  assert.equal(config.sampler.max_new_tokens, 32);
  assert.equal(config.eval.max_new_tokens, 32);
  assert.equal(config.algorithm, "grpo");
  assert.deepEqual(config.learner, defaults.learner);
  assert.deepEqual(config.model, defaults.model);
});

// --- validation errors ---

Deno.test("loadConfig() names the line and field of a value of the wrong type", () => {
  const text = "run:\n  steps: 5\nsampler:\n  temperature: hot\n";
  const error = configError(() => loadConfig("configs/x.yaml", { text }));
  assert.equal(
    error.message,
    'Cannot load config "configs/x.yaml": line 4, field "sampler.temperature" must be a number: current value is "hot"',
  );
  assert.deepEqual(error.issues, [{
    field: "sampler.temperature",
    line: 4,
    message: 'field "sampler.temperature" must be a number: current value is "hot"',
  }]);
  assert.equal(error.path, "configs/x.yaml");
});

Deno.test("loadConfig() says an integer field must be an integer", () => {
  const text = "run:\n  steps: 1.5\n  seed: '3'\n";
  const error = configError(() => loadConfig("x.yaml", { text }));
  assert.equal(
    error.message,
    'Cannot load config "x.yaml": line 2, field "run.steps" must be an integer: current value is 1.5\n' +
      '  line 3, field "run.seed" must be an integer: current value is "3"',
  );
});

Deno.test("loadConfig() names an unknown field at its key's line and lists the known ones", () => {
  const text = "# comment\nlearner:\n  lr: 3.0e-4\n  lrr: 1\n";
  const error = configError(() => loadConfig("configs/x.yaml", { text }));
  assert.equal(
    error.message,
    'Cannot load config "configs/x.yaml": line 4, field "learner.lrr" is not a known field: ' +
      `known fields are ${LEARNER_FIELDS}`,
  );
});

Deno.test("loadConfig() names an unknown section", () => {
  const error = configError(() => loadConfig("x.yaml", { text: "run: {}\nlearnr:\n  lr: 1\n" }));
  assert.equal(
    error.message,
    'Cannot load config "x.yaml": line 2, field "learnr" is not a known field: known fields are ' +
      '"run", "model", "task", "prompts", "algorithm", "plugins", "grpo", "mgrpo", "ppo", "reward", "sampler", "learner", "eval", "runtime", "control", "placement", "nats", "faults"',
  );
});

Deno.test("loadConfig() rejects a negative learning rate with the bound and the value", () => {
  const text = [
    "run:",
    "  name: x",
    "sampler:",
    "  temperature: 0.7",
    "  top_p: 1.0",
    "  top_k: 0",
    "grpo:",
    "  beta: 0.0",
    "",
    "# optimiser",
    "learner:",
    "  lr: -1",
    "",
  ].join("\n");
  const error = configError(() => loadConfig("configs/x.yaml", { text }));
  assert.equal(
    error.message,
    'Cannot load config "configs/x.yaml": line 12, field "learner.lr" must be > 0: current value is -1',
  );
});

Deno.test("loadConfig() lists the allowed values of an enum field", () => {
  const error = configError(() => loadConfig("x.yaml", { text: "grpo:\n  loss_type: ppo\n" }));
  assert.equal(
    error.message,
    'Cannot load config "x.yaml": line 2, field "grpo.loss_type" must be one of ' +
      '"grpo", "bnpo", "dr_grpo", "dapo": current value is "ppo"',
  );
});

Deno.test("loadConfig() reports inclusive and exclusive bounds as >=, >, <= and <", () => {
  const text = "learner:\n  warmup_ratio: 1\n  weight_decay: -0.5\nsampler:\n  top_p: 1.5\n" +
    "  prompts_per_step: 0\n";
  const error = configError(() => loadConfig("x.yaml", { text }));
  assert.equal(
    error.message,
    'Cannot load config "x.yaml": line 2, field "learner.warmup_ratio" must be < 1: current value is 1\n' +
      '  line 3, field "learner.weight_decay" must be >= 0: current value is -0.5\n' +
      '  line 5, field "sampler.top_p" must be <= 1: current value is 1.5\n' +
      '  line 6, field "sampler.prompts_per_step" must be >= 1: current value is 0',
  );
});

Deno.test("loadConfig() lists every bad field, sorted by line, one per line", () => {
  const text = [
    "sampler:", // 1
    "  temperature: hot", // 2
    "learner:", // 3
    "  lrr: 1", // 4
    "  lr: -1", // 5
    "grpo:", // 6
    "  loss_type: ppo", // 7
    "",
  ].join("\n");
  const error = configError(() => loadConfig("configs/x.yaml", { text }));
  assert.equal(
    error.message,
    'Cannot load config "configs/x.yaml": line 2, field "sampler.temperature" must be a number: current value is "hot"\n' +
      `  line 4, field "learner.lrr" is not a known field: known fields are ${LEARNER_FIELDS}\n` +
      '  line 5, field "learner.lr" must be > 0: current value is -1\n' +
      '  line 7, field "grpo.loss_type" must be one of "grpo", "bnpo", "dr_grpo", "dapo": current value is "ppo"',
  );
  assert.deepEqual(error.issues.map((i) => [i.line, i.field]), [
    [2, "sampler.temperature"],
    [4, "learner.lrr"],
    [5, "learner.lr"],
    [7, "grpo.loss_type"],
  ]);
});

Deno.test("loadConfig() puts a cross-field error on the section's line when the field is absent", () => {
  const error = configError(() =>
    loadConfig("x.yaml", { text: "run: {}\ntask:\n  min_steps: 4\n" })
  );
  assert.equal(
    error.message,
    'Cannot load config "x.yaml": line 2, field "task.max_steps" must be >= task.min_steps (4): current value is 2',
  );
});

Deno.test("loadConfig() requires the document and each section to be a mapping", () => {
  assert.equal(
    configError(() => loadConfig("x.yaml", { text: "- run\n" })).message,
    'Cannot load config "x.yaml": line 1, the config must be a mapping: current value is ["run"]',
  );
  assert.equal(
    configError(() => loadConfig("x.yaml", { text: "run: {}\nlearner: 0.1\n" })).message,
    'Cannot load config "x.yaml": line 2, field "learner" must be a mapping: current value is 0.1',
  );
});

Deno.test("loadConfig() gives an empty file and empty sections their defaults", () => {
  const defaults = TrainConfigSchema.parse({});
  assert.deepEqual(loadConfig("x.yaml", { text: "" }), defaults);
  assert.deepEqual(loadConfig("x.yaml", { text: "# nothing\ngrpo:\nlearner:\n" }), defaults);
});

// --- YAML and file errors ---

Deno.test("loadConfig() reports a YAML syntax error with line and column, keeping the cause", () => {
  const text = "run:\n  steps: 2\n  steps: 3\n";
  const error = configError(() => loadConfig("x.yaml", { text }));
  assert.equal(
    error.message,
    'Cannot load config "x.yaml": line 3, column 3: Map keys must be unique',
  );
  assert.ok(error.cause instanceof YAMLParseError);
  assert.equal(error.cause.code, "DUPLICATE_KEY");
});

Deno.test("loadConfig() reads a file from disk and names it in the error", async () => {
  const path = await Deno.makeTempFile({ suffix: ".yaml" });
  try {
    await Deno.writeTextFile(path, "run:\n  steps: 0\n");
    const error = configError(() => loadConfig(path));
    assert.equal(
      error.message,
      `Cannot load config "${path}": line 2, field "run.steps" must be >= 1: current value is 0`,
    );
    await Deno.writeTextFile(path, "run:\n  steps: 7\n");
    assert.equal(loadConfig(path).run.steps, 7);
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("loadConfig() refuses a config file that holds no settings, or bytes that are not UTF-8", async () => {
  const path = await Deno.makeTempFile({ suffix: ".yaml" });
  try {
    for (const text of ["", "\n\n", "# all commented out\n# run:\n#   steps: 3\n"]) {
      await Deno.writeTextFile(path, text);
      assert.equal(
        configError(() => loadConfig(path)).message,
        `Cannot load config "${path}": the file holds no settings (it is empty or only ` +
          "comments): write the settings to change, or leave out --config to run the embedded default",
      );
    }
    // Latin-1 "é" in a phrase on line 3.
    const bytes = new TextEncoder().encode('run:\n  steps: 2\nmgrpo:\n  guide_phrases: ["caf?"]\n');
    bytes[bytes.indexOf(0x3f)] = 0xe9;
    await Deno.writeFile(path, bytes);
    assert.equal(
      configError(() => loadConfig(path)).message,
      `Cannot load config "${path}": line 4, not valid UTF-8 text (save the file as UTF-8)`,
    );
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("loadConfig() says so when the file does not exist", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/missing.yaml`;
    const error = configError(() => loadConfig(path));
    assert.equal(error.message, `Cannot load config "${path}": file not found`);
    assert.ok(error.cause instanceof Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// --- overrides ---

Deno.test("loadConfig() applies --set overrides with YAML-typed values, the last one winning", () => {
  const text = "learner:\n  lr: 1.0e-4\ngrpo:\n  loss_type: grpo\n";
  const config = loadConfig("x.yaml", {
    text,
    overrides: [
      "learner.lr=3e-4",
      "grpo.loss_type=bnpo",
      "eval.greedy=false",
      "run.steps=10",
      "prompts.system=Answer: 42",
      "run.name=first",
      "run.name=second",
      "grpo.epsilon_high=0.28",
      "sampler.top_k= 5 ",
    ],
  });
  assert.equal(config.learner.lr, 3e-4);
  assert.equal(config.grpo.loss_type, "bnpo");
  assert.equal(config.eval.greedy, false);
  assert.equal(config.run.steps, 10);
  assert.equal(config.prompts.system, "Answer: 42");
  assert.equal(config.run.name, "second");
  assert.equal(config.grpo.epsilon_high, 0.28);
  assert.equal(config.sampler.top_k, 5);
  assert.equal(config.grpo.num_generations, 8); // untouched fields keep defaults
});

Deno.test("loadConfig() names the override that holds a bad value", () => {
  const error = configError(() =>
    loadConfig("configs/tiny-mgrpo.yaml", { text: "", overrides: ["learner.lr=-1"] })
  );
  assert.equal(
    error.message,
    'Cannot load config "configs/tiny-mgrpo.yaml": --set learner.lr=-1: field "learner.lr" must be > 0: current value is -1',
  );
  assert.deepEqual(error.issues, [{
    field: "learner.lr",
    override: "learner.lr=-1",
    message: 'field "learner.lr" must be > 0: current value is -1',
  }]);
});

Deno.test("loadConfig() with no path names the default config in override errors", () => {
  const error = configError(() => loadConfig(undefined, { overrides: ["sampler.temperature=0"] }));
  assert.equal(
    error.message,
    'Cannot load config "configs/tiny-mgrpo.yaml": --set sampler.temperature=0: field "sampler.temperature" must be > 0: current value is 0',
  );
});

Deno.test("loadConfig() rejects an override of an unknown field or section", () => {
  assert.equal(
    configError(() => loadConfig("x.yaml", { text: "", overrides: ["learner.lrr=1"] })).message,
    'Cannot load config "x.yaml": --set learner.lrr=1: field "learner.lrr" is not a known field: ' +
      `known fields are ${LEARNER_FIELDS}`,
  );
  assert.match(
    configError(() => loadConfig("x.yaml", { text: "", overrides: ["lerner.lr=1"] })).message,
    /^Cannot load config "x\.yaml": --set lerner\.lr=1: field "lerner" is not a known field: known fields are "run", /,
  );
});

Deno.test("loadConfig() rejects a malformed override or one that goes through a value", () => {
  assert.equal(
    configError(() => loadConfig("x.yaml", { text: "", overrides: ["learner.lr"] })).message,
    'Cannot load config "x.yaml": --set learner.lr: must have the form key=value',
  );
  assert.equal(
    configError(() => loadConfig("x.yaml", { text: "", overrides: ["learner..lr=1"] })).message,
    'Cannot load config "x.yaml": --set learner..lr=1: the key must be a dotted field path such as ' +
      'learner.lr: current value is "learner..lr"',
  );
  assert.equal(
    configError(() =>
      loadConfig("x.yaml", { text: "learner:\n  lr: 0.5\n", overrides: ["learner.lr.x=1"] })
    ).message,
    'Cannot load config "x.yaml": --set learner.lr.x=1: field "learner.lr" is not a section: current value is 0.5',
  );
});

Deno.test("loadConfig() lists file errors by line, then override errors", () => {
  const error = configError(() =>
    loadConfig("x.yaml", {
      text: "run:\n  steps: 0\n",
      overrides: ["task.max_steps=1", "eval.greedy=maybe"],
    })
  );
  assert.equal(
    error.message,
    'Cannot load config "x.yaml": line 2, field "run.steps" must be >= 1: current value is 0\n' +
      '  --set task.max_steps=1: field "task.max_steps" must be >= task.min_steps (2): current value is 1\n' +
      '  --set eval.greedy=maybe: field "eval.greedy" must be a boolean (true or false): current value is "maybe"',
  );
});

Deno.test("parseOverride() reads the value as YAML, or as text when it is not one YAML value", () => {
  assert.deepEqual(parseOverride("learner.lr=3e-4"), {
    key: "learner.lr",
    path: ["learner", "lr"],
    value: 3e-4,
  });
  assert.equal(parseOverride("a=true").value, true);
  assert.equal(parseOverride("a=007").value, 7);
  assert.equal(parseOverride("a='007'").value, "007");
  assert.deepEqual(parseOverride("a=[1, 2]").value, [1, 2]);
  assert.deepEqual(parseOverride("a={x: 1}").value, { x: 1 });
  assert.equal(parseOverride("a=x=y").value, "x=y");
  assert.equal(parseOverride("a=Answer: 42").value, "Answer: 42");
  assert.equal(parseOverride("a=use #tags").value, "use #tags");
  assert.equal(parseOverride("a=[1, 2").value, "[1, 2");
  assert.equal(parseOverride("a=").value, "");
  assert.throws(() => parseOverride("learner.lr"), {
    name: "SyntaxError",
    message: 'Invalid override "learner.lr": must have the form key=value',
  });
});

Deno.test("setConfigValue() creates missing sections and refuses to go through a value", () => {
  const data: Record<string, unknown> = { learner: { lr: 1e-4 }, grpo: null };
  setConfigValue(data, ["learner", "lr"], 3e-4);
  setConfigValue(data, ["grpo", "beta"], 0.04);
  setConfigValue(data, ["eval", "greedy"], false);
  assert.deepEqual(data, { learner: { lr: 3e-4 }, grpo: { beta: 0.04 }, eval: { greedy: false } });
  assert.throws(() => setConfigValue(data, ["learner", "lr", "x"], 1), {
    name: "TypeError",
    message:
      'Cannot set "learner.lr.x": field "learner.lr" is not a section: current value is 0.0003',
  });
});

// --- writing ---

Deno.test("configToYaml() round-trips through loadConfig(), awkward strings included", () => {
  const config: TrainConfig = loadConfig(SMOKE_PATH, {
    overrides: [
      "learner.lr=3e-4",
      "learner.adam_eps=1e-12",
      "grpo.epsilon_high=0.28",
      "run.name='007'",
      "prompts.system='yes: \"quoted\" # not a comment'",
    ],
  });
  config.prompts.template =
    "{% for m in messages %}\n<|{{ m.role }}|>{{ m.content }}\n{% endfor %}";
  const yaml = configToYaml(config);
  assert.deepEqual(loadConfig("run/config.yaml", { text: yaml }), config);
  assert.equal(config.run.name, "007");
  assert.equal(config.prompts.system, 'yes: "quoted" # not a comment');

  const defaults = TrainConfigSchema.parse({});
  assert.deepEqual(loadConfig("x.yaml", { text: configToYaml(defaults) }), defaults);
  assert.equal(defaults.prompts.system, DEFAULT_SYSTEM_PROMPT);
});

Deno.test("configToYaml() writes the sections in schema order", () => {
  const yaml = configToYaml(TrainConfigSchema.parse({}));
  const sections = yaml.split("\n").filter((line) => /^[a-z_]+:/.test(line)).map((line) =>
    line.split(":")[0]
  );
  assert.deepEqual(sections, Object.keys(TrainConfigSchema.shape));
});

// --- derived values ---

Deno.test("deriveConfig() computes the run folder, warm-up steps and completions per step", () => {
  const defaults = deriveConfig(TrainConfigSchema.parse({}));
  assert.deepEqual(defaults, { runDir: "runs/tiny-mgrpo", warmupSteps: 1, completionsPerStep: 64 });
  // 0.07 * 100 is 7.000000000000001 in floating point: still 7 warm-up steps
  const config = loadConfig("x.yaml", {
    text: "run:\n  steps: 100\n  dir: /tmp/r\n  name: a\nlearner:\n  warmup_ratio: 0.07\n",
  });
  assert.deepEqual(deriveConfig(config), {
    runDir: "/tmp/r/a",
    warmupSteps: 7,
    completionsPerStep: 64,
  });
  const smoke = deriveConfig(loadConfig(SMOKE_PATH));
  assert.equal(smoke.warmupSteps, 1); // ceil(0.05 * 2)
  assert.equal(smoke.completionsPerStep, 8); // 2 prompts * 4 completions
});

import assert from "node:assert/strict";
import { AlgorithmRegistry, asAlgorithmPlugin } from "../../algorithms/registry.ts";
import { builtinAlgorithms } from "../../algorithms/builtins.ts";
import { algorithm as rloo } from "../../algorithms/rloo/mod.ts";

Deno.test("AlgorithmRegistry.get() lists the known algorithms for an unknown name", () => {
  const registry = builtinAlgorithms().register(rloo);
  assert.deepEqual(registry.names(), ["grpo", "mgrpo", "ppo", "rloo"]);
  assert.equal(registry.get("rloo"), rloo);
  assert.throws(() => registry.get("dpo"), {
    name: "RangeError",
    message: 'Unknown algorithm "dpo": known algorithms are "grpo", "mgrpo", "ppo", "rloo"',
  });
  assert.throws(() => registry.register(rloo), /the name is taken/);
  assert.throws(
    () => new AlgorithmRegistry().register({ ...rloo, name: "My Algo" }),
    /must be lower_snake_case/,
  );
});

Deno.test("asAlgorithmPlugin() names what a module's export lacks", () => {
  assert.equal(asAlgorithmPlugin(rloo, "x.ts"), rloo);
  assert.throws(() => asAlgorithmPlugin({ name: "half" }, '"x.ts"'), {
    name: "TypeError",
    message:
      '"x.ts" does not export an algorithm plug-in as "algorithm": missing configSchema (a zod schema), needsReference (a function), buildGraph (a function)',
  });
  assert.throws(() => asAlgorithmPlugin(undefined, '"y.ts"'), /missing name \(a string\)/);
});

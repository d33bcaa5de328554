/**
 * Writes `manifest.json` (each file's size and SHA-256, as `saveCheckpoint` does) into
 * checkpoint folders that lack one, such as checkpoints committed before every checkpoint
 * carried a manifest. Refuses a folder that already has one.
 *
 *   deno run --allow-read --allow-write --allow-env tools/write_manifest.ts checkpoints/tiny-sft
 *
 * @module
 */
import { MANIFEST_FILE, verifyCheckpoint, writeManifest } from "../model/checkpoint.ts";

for (const dir of Deno.args) {
  const path = `${dir}/${MANIFEST_FILE}`;
  if (await Deno.stat(path).then(() => true, () => false)) {
    console.error(`${path} exists: left as it is`);
    Deno.exit(2);
  }
  await writeManifest(dir);
  await verifyCheckpoint(dir);
  console.log(`${path}: written`);
}

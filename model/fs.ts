/**
 * File-system helpers of the atomic folder writes (`saveCheckpoint`, `saveHfModel`): fsynced
 * files, fsynced folder entries, and the swap of a finished temporary folder into place.
 *
 * @module
 */

/** Whether `path` exists (other errors than "not found" are thrown). */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/** Writes `data` to `path` and fsyncs it before returning. */
export async function writeSynced(path: string, data: Uint8Array): Promise<void> {
  const file = await Deno.open(path, { write: true, create: true, truncate: true });
  try {
    let written = 0;
    while (written < data.length) written += await file.write(data.subarray(written));
    await file.sync();
  } finally {
    file.close();
  }
}

/**
 * Flushes a folder's entries (names created or renamed in it) to disk. Best effort: Windows
 * cannot open a folder, and some file systems refuse `fsync` on one.
 */
export async function syncDir(path: string): Promise<void> {
  let dir: Deno.FsFile | undefined;
  try {
    dir = await Deno.open(path, { read: true });
    await dir.sync();
  } catch {
    // Durability against power loss only; a killed process loses nothing here.
  } finally {
    dir?.close();
  }
}

/**
 * Puts the finished folder `tmp` (in the same parent) at `dest`: fsyncs `tmp`, moves an
 * existing `dest` aside to `<dest>.old-<pid>-<ms>`, renames `tmp` in, fsyncs the parent and
 * deletes the old copy. Between the two renames `dest` is missing and the moved-aside copy
 * is complete (`loadCheckpoint` and `repairCheckpoints` use it).
 */
export async function swapIntoPlace(tmp: string, dest: string, parent: string): Promise<void> {
  await syncDir(tmp);
  let aside: string | undefined;
  if (await exists(dest)) {
    aside = `${dest}.old-${Deno.pid}-${Date.now()}`;
    await Deno.rename(dest, aside);
  }
  await Deno.rename(tmp, dest);
  await syncDir(parent);
  if (aside) await Deno.remove(aside, { recursive: true });
}

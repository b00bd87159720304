/**
 * `serve --watch`: a reload whenever the config file's content changes, however it was written. A watch on
 * the file itself follows its inode, which an editor's save-by-rename or a Kubernetes ConfigMap's symlink swap
 * replaces, so it would fire once and then hear nothing. The directory is watched instead, and any event in
 * it (debounced) compares the file's content with what was last seen.
 */
import { createHash } from "node:crypto";
import { readFileSync, watch } from "node:fs";
import { dirname } from "node:path";

/** Calls `changed` after each change of `file`'s content; returns what stops watching. */
export function watchConfigFile(file: string, changed: () => void, debounceMs = 200): () => void {
  let seen = digest(file);
  let timer: NodeJS.Timeout | undefined;
  const watcher = watch(dirname(file), () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      const now = digest(file);
      // Missing for a moment (between an unlink and a rename): the write that completes it fires again.
      if (now === undefined || now === seen) return;
      seen = now;
      changed();
    }, debounceMs);
  });
  return () => {
    clearTimeout(timer);
    watcher.close();
  };
}

function digest(file: string): string | undefined {
  try {
    return createHash("sha256").update(readFileSync(file)).digest("hex");
  } catch {
    return undefined;
  }
}

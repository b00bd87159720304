/**
 * The bench scripts' command lines. `--help` (`-h`) prints the script's usage, which is its header comment, so
 * the usage has one source. A mistake (an unknown option, a value that is not a number, a number out of
 * range) prints one line naming it and exits 2, before anything starts: no stack trace, and no run that
 * measures `NaN` calls.
 */
import { readFileSync } from "node:fs";
import { relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { type ParseArgsOptionsConfig, parseArgs } from "node:util";

const ROOT = resolve(import.meta.dirname, "../..");

/** The header comment of a script, without its comment markers. */
export function usageOf(file: string): string {
  const header = /^\/\*\*\n([\s\S]*?)\n\s*\*\//.exec(readFileSync(file, "utf8"))?.[1] ?? "";
  return `${header
    .split("\n")
    .map((line) => line.replace(/^ \* ?|^ \*$/, ""))
    .join("\n")}\n`;
}

/**
 * Parses `process.argv` for the script at `scriptUrl` (its `import.meta.url`) with node:util's parser, strict,
 * and returns the values with checked readers for numbers and choices.
 */
export function benchCli<const O extends ParseArgsOptionsConfig>(scriptUrl: string, options: O) {
  const file = fileURLToPath(scriptUrl);
  const name = relative(ROOT, file);
  const fail = (message: string): never => {
    process.stderr.write(`${name}: ${message} (node ${name} --help for its options)\n`);
    process.exit(2);
  };
  const args = process.argv.slice(2);
  if (args.includes("--help") || args.includes("-h")) {
    process.stdout.write(usageOf(file));
    process.exit(0);
  }
  let values: ReturnType<typeof parseArgs<{ options: O }>>["values"];
  try {
    ({ values } = parseArgs({ args, options, strict: true }));
  } catch (error) {
    // Node's message is two sentences; the first names the mistake.
    return fail((error as Error).message.split(/\.\s/)[0] as string);
  }
  type Key = keyof O & string;
  /** `undefined` for an option without a default that was not given. */
  type Unset<K extends Key> = O[K] extends { default: unknown } ? never : undefined;
  const raw = (key: Key): string | undefined => {
    const value = (values as Record<string, unknown>)[key];
    return typeof value === "string" ? value : undefined;
  };
  const number = (key: Key, text: string, least: number, whole: boolean): number => {
    const n = text.trim() === "" ? Number.NaN : Number(text);
    if (!(Number.isFinite(n) && n >= least && (!whole || Number.isInteger(n)))) {
      fail(`--${key} is ${whole ? "a whole number" : "a number"} ≥ ${least}, not "${text}"`);
    }
    return n;
  };
  return {
    values,
    fail,
    /** A whole number ≥ `least`. */
    whole: <K extends Key>(key: K, least = 1) => {
      const text = raw(key);
      return (text === undefined ? undefined : number(key, text, least, true)) as number | Unset<K>;
    },
    /** A number ≥ `least`, fractions allowed. */
    decimal: <K extends Key>(key: K, least = 0) => {
      const text = raw(key);
      return (text === undefined ? undefined : number(key, text, least, false)) as number | Unset<K>;
    },
    /** A comma-separated list of whole numbers ≥ `least`. */
    wholeList: <K extends Key>(key: K, least = 1) =>
      raw(key)
        ?.split(",")
        .map((part) => number(key, part, least, true)) as number[] | Unset<K>,
    /** An absolute URL. */
    url: <K extends Key>(key: K) => {
      const text = raw(key);
      if (text !== undefined && !URL.canParse(text)) fail(`--${key} is a URL, not "${text}"`);
      return (text === undefined ? undefined : new URL(text)) as URL | Unset<K>;
    },
    /** One of `choices`. */
    choice: <K extends Key, C extends string>(key: K, choices: readonly C[]) => {
      const text = raw(key);
      if (text !== undefined && !choices.includes(text as C)) {
        fail(`--${key} is ${choices.join(" or ")}, not "${text}"`);
      }
      return text as C | Unset<K>;
    },
  };
}

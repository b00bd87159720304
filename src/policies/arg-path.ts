/**
 * Argument paths used by lock keys and fallback argument mapping: a dotted path (`path`, `a.b`) or a
 * JSON pointer (`/a/b`, with `~1` for `/` and `~0` for `~`). Compiled once, read on every call.
 */
export type ArgReader = (args: Record<string, unknown>) => unknown;

export function compileArgPath(path: string): ArgReader {
  const segments = path.startsWith("/")
    ? path
        .slice(1)
        .split("/")
        .map((s) => s.replaceAll("~1", "/").replaceAll("~0", "~"))
    : path.split(".");
  if (segments.length === 1) {
    const [only] = segments as [string];
    return (args) => (Object.hasOwn(args, only) ? args[only] : undefined);
  }
  return (args) => {
    let value: unknown = args;
    for (const segment of segments) {
      if (value === null || typeof value !== "object" || !Object.hasOwn(value, segment)) return undefined;
      value = (value as Record<string, unknown>)[segment];
    }
    return value;
  };
}

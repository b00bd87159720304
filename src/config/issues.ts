/** A problem found in a config file, at its JSON path. */
export interface ConfigIssue {
  /** JSON path, e.g. `$.mcpServers.github.url`. */
  path: string;
  message: string;
}

export function childPath(parent: string, key: string | number): string {
  if (typeof key === "number") return `${parent}[${key}]`;
  return /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(key) ? `${parent}.${key}` : `${parent}[${JSON.stringify(key)}]`;
}

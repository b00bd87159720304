/** Plain-text tables for the terminal: columns padded, numbers right-aligned. */

export type Cell = string | number | undefined;

export function fmt(value: number | undefined, digits = 2): string {
  if (value === undefined || !Number.isFinite(value)) return "-";
  if (Math.abs(value) >= 1000) return Math.round(value).toLocaleString("en-US");
  if (Number.isInteger(value)) return String(value);
  return value.toFixed(digits);
}

export function table(
  title: string,
  header: readonly string[],
  rows: ReadonlyArray<readonly Cell[]>,
): string {
  const text = rows.map((row) => row.map((c) => (typeof c === "number" ? fmt(c) : (c ?? "-"))));
  const widths = header.map((h, i) => Math.max(h.length, ...text.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[], numeric: boolean) =>
    cells
      .map((c, i) => {
        const w = widths[i] ?? 0;
        return numeric && i > 0 && /^[-\d.,]+%?x?$/.test(c) ? c.padStart(w) : c.padEnd(w);
      })
      .join("  ")
      .trimEnd();
  return [
    `\n${title}`,
    line(header, false),
    widths.map((w) => "-".repeat(w)).join("  "),
    ...text.map((r) => line(r, true)),
  ].join("\n");
}

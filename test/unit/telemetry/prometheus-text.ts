/**
 * A strict parser of the Prometheus text exposition format 0.0.4, for tests. (parse-prometheus-text-format
 * merges the series of a labelled histogram into one and drops their labels, so it cannot check names.)
 * Throws on any malformed line, on samples outside their family, and on inconsistent histograms.
 */

export interface Sample {
  /** Series name, e.g. `x_bucket`. */
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Family {
  name: string;
  type: "counter" | "gauge" | "histogram" | "summary" | "untyped";
  help?: string;
  unit?: string;
  samples: Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(["counter", "gauge", "histogram", "summary", "untyped"]);

export function parsePrometheusText(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  let current: Family | undefined;
  const family = (name: string): Family => {
    if (!NAME.test(name)) throw new Error(`invalid metric name "${name}"`);
    let f = families.get(name);
    if (!f) {
      f = { name, type: "untyped", samples: [] };
      families.set(name, f);
    }
    return f;
  };
  text.split("\n").forEach((line, index) => {
    const where = `line ${index + 1}: ${line}`;
    if (line.trim() === "") return;
    if (line.startsWith("#")) {
      const m = /^# (HELP|TYPE|UNIT) (\S+) ?(.*)$/.exec(line);
      if (!m) return; // a plain comment
      const [, keyword, name = "", rest = ""] = m;
      const f = family(name);
      if (keyword === "HELP") f.help = rest;
      else if (keyword === "UNIT") f.unit = rest;
      else {
        if (!TYPES.has(rest)) throw new Error(`unknown type: ${where}`);
        if (f.samples.length) throw new Error(`TYPE after samples: ${where}`);
        f.type = rest as Family["type"];
      }
      current = f;
      return;
    }
    const sample = parseSample(line, where);
    const owner = current && ownerOf(current, sample.name) ? current : undefined;
    if (!owner) throw new Error(`sample outside its family: ${where}`);
    owner.samples.push(sample);
  });
  for (const f of families.values()) if (f.type === "histogram") checkHistogram(f);
  return families;
}

function ownerOf(family: Family, series: string): boolean {
  if (family.type === "histogram") {
    return [`${family.name}_bucket`, `${family.name}_sum`, `${family.name}_count`].includes(series);
  }
  if (family.type === "summary")
    return [family.name, `${family.name}_sum`, `${family.name}_count`].includes(series);
  return series === family.name;
}

function parseSample(line: string, where: string): Sample {
  const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)( -?\d+)?$/.exec(line);
  if (!m) throw new Error(`malformed sample: ${where}`);
  const [, name = "", labelText, valueText = ""] = m;
  return {
    name,
    labels: labelText ? parseLabels(labelText, where) : {},
    value: parseValue(valueText, where),
  };
}

function parseLabels(text: string, where: string): Record<string, string> {
  const labels: Record<string, string> = {};
  let i = 1; // after "{"
  while (text[i] !== "}") {
    const eq = text.indexOf("=", i);
    const name = text.slice(i, eq);
    if (eq < 0 || !LABEL.test(name) || text[eq + 1] !== '"') throw new Error(`malformed label: ${where}`);
    let value = "";
    let j = eq + 2;
    for (; j < text.length && text[j] !== '"'; j++) {
      if (text[j] !== "\\") {
        value += text[j];
        continue;
      }
      const next = text[++j];
      if (next === "n") value += "\n";
      else if (next === "\\" || next === '"') value += next;
      else throw new Error(`bad escape in label value: ${where}`);
    }
    if (j >= text.length) throw new Error(`unterminated label value: ${where}`);
    if (name in labels) throw new Error(`duplicate label ${name}: ${where}`);
    labels[name] = value;
    i = j + 1;
    if (text[i] === ",") i++;
    else if (text[i] !== "}") throw new Error(`expected , or } after a label: ${where}`);
  }
  if (i !== text.length - 1) throw new Error(`text after labels: ${where}`);
  return labels;
}

function parseValue(text: string, where: string): number {
  if (text === "+Inf") return Number.POSITIVE_INFINITY;
  if (text === "-Inf") return Number.NEGATIVE_INFINITY;
  if (text === "NaN") return Number.NaN;
  const n = Number(text);
  if (text === "" || Number.isNaN(n)) throw new Error(`bad value: ${where}`);
  return n;
}

/** Per series: `le` ascending and ending at +Inf, cumulative counts, and +Inf equal to _count. */
function checkHistogram(f: Family): void {
  const key = (labels: Record<string, string>) =>
    JSON.stringify(
      Object.entries(labels)
        .filter(([k]) => k !== "le")
        .sort(),
    );
  const series = new Map<string, { buckets: Array<[number, number]>; count?: number }>();
  for (const s of f.samples) {
    const k = key(s.labels);
    const entry = series.get(k) ?? { buckets: [] };
    series.set(k, entry);
    if (s.name.endsWith("_bucket")) {
      const le = s.labels.le;
      if (le === undefined) throw new Error(`${f.name}: bucket without le`);
      entry.buckets.push([parseValue(le, f.name), s.value]);
    } else if (s.name.endsWith("_count")) entry.count = s.value;
  }
  for (const [k, { buckets, count }] of series) {
    const last = buckets.at(-1);
    if (!last || last[0] !== Number.POSITIVE_INFINITY) throw new Error(`${f.name}${k}: no +Inf bucket`);
    for (let i = 1; i < buckets.length; i++) {
      const [prevLe = 0, prevCount = 0] = buckets[i - 1] ?? [];
      const [le = 0, n = 0] = buckets[i] ?? [];
      if (!(le > prevLe) || n < prevCount) throw new Error(`${f.name}${k}: buckets not cumulative`);
    }
    if (count !== last[1]) throw new Error(`${f.name}${k}: _count ${count} differs from the +Inf bucket`);
  }
}

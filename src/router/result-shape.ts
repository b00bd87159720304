/**
 * What a client's SDK would refuse in an upstream's `tools/call`, `resources/read` or `prompts/get` result.
 * Results are forwarded as they arrived, not parsed by the SDK's schema (issue 15: that parse was a cost on
 * every call), so a malformed one would reach the client as its own validation error naming nothing. Checked
 * here instead, by hand and only as deep as the required fields: the caller gets an error (an `isError` for a
 * call) naming the upstream. Content types this gateway does not know pass, so a newer server's blocks still
 * reach a newer client.
 */

/** Why an upstream's result of `method` would be refused; undefined when it is fine or not checked. */
export function forwardedResultProblem(method: string, result: Record<string, unknown>): string | undefined {
  if (method === "resources/read") return listProblem(result, "contents", resourceProblem);
  if (method === "prompts/get") return listProblem(result, "messages", promptMessageProblem);
  return undefined;
}

/** Why `result` is not a CallToolResult, or undefined when it is one (or a task's creation). */
export function callResultProblem(result: Record<string, unknown>): string | undefined {
  if (result.task !== undefined) return undefined; // CreateTaskResult: the task's own result comes later
  const { content, structuredContent, isError } = result;
  if (isError !== undefined && typeof isError !== "boolean")
    return `isError is ${describe(isError)}, not a boolean`;
  if (structuredContent !== undefined && !isObject(structuredContent))
    return `structuredContent is ${describe(structuredContent)}, not an object`;
  if (content === undefined) return undefined;
  if (!Array.isArray(content)) return `content is ${describe(content)}, not an array`;
  for (let i = 0; i < content.length; i++) {
    const problem = blockProblem(content[i]);
    if (problem !== undefined) return `content[${i}] ${problem}`;
  }
  return undefined;
}

function listProblem(
  result: Record<string, unknown>,
  field: string,
  itemProblem: (item: unknown) => string | undefined,
): string | undefined {
  const items = result[field];
  if (!Array.isArray(items)) return `${field} is ${describe(items)}, not an array`;
  for (let i = 0; i < items.length; i++) {
    const problem = itemProblem(items[i]);
    if (problem !== undefined) return `${field}[${i}] ${problem}`;
  }
  return undefined;
}

function promptMessageProblem(message: unknown): string | undefined {
  if (!isObject(message)) return `is ${describe(message)}, not a message`;
  if (message.role !== "user" && message.role !== "assistant")
    return `has role ${describe(message.role)}, not "user" or "assistant"`;
  const problem = blockProblem(message.content);
  return problem === undefined ? undefined : `content ${problem}`;
}

/** The resource of a `resource` block or of `resources/read`: a uri, and text or a blob. */
function resourceProblem(resource: unknown): string | undefined {
  if (!isObject(resource)) return `is ${describe(resource)}, not a resource`;
  if (typeof resource.uri !== "string") return `has uri ${describe(resource.uri)}, not a string`;
  if (typeof resource.text !== "string" && typeof resource.blob !== "string")
    return "has neither a string text nor a string blob";
  return undefined;
}

function blockProblem(block: unknown): string | undefined {
  if (!isObject(block)) return `is ${describe(block)}, not a content block`;
  switch (block.type) {
    case "text":
      return strings(block, "text");
    case "image":
    case "audio":
      return strings(block, "data", "mimeType");
    case "resource_link":
      return strings(block, "uri", "name");
    case "resource": {
      const problem = resourceProblem(block.resource);
      return problem === undefined ? undefined : `(resource) resource ${problem}`;
    }
    default:
      return typeof block.type === "string" ? undefined : "has no string type";
  }
}

function strings(block: Record<string, unknown>, ...fields: string[]): string | undefined {
  for (const field of fields) {
    if (typeof block[field] !== "string")
      return `(${String(block.type)}) has ${field} ${describe(block[field])}, not a string`;
  }
  return undefined;
}

function describe(value: unknown): string {
  if (value === undefined) return "missing";
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 60)}…` : text;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

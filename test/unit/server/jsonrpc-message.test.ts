import { JSONRPCMessageSchema } from "@modelcontextprotocol/sdk/types.js";
import { describe, expect, it } from "vitest";
import { parseMessage, Refusal, toJsonRpcMessage } from "../../../src/server/jsonrpc-message.ts";

// Each case as a JSON text: the gateway only ever sees what JSON.parse produced.
const CASES: Record<string, string> = {
  "a tools/call": '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","arguments":{"x":1}}}',
  "a string id": '{"jsonrpc":"2.0","id":"abc","method":"ping"}',
  "no params": '{"jsonrpc":"2.0","id":0,"method":"tools/list"}',
  "a notification": '{"jsonrpc":"2.0","method":"notifications/initialized"}',
  "a progress token":
    '{"jsonrpc":"2.0","id":2,"method":"x","params":{"_meta":{"progressToken":"t","other":1}}}',
  "an integer progress token": '{"jsonrpc":"2.0","id":2,"method":"x","params":{"_meta":{"progressToken":7}}}',
  "a fractional progress token":
    '{"jsonrpc":"2.0","id":2,"method":"x","params":{"_meta":{"progressToken":1.5}}}',
  "a null progress token": '{"jsonrpc":"2.0","id":2,"method":"x","params":{"_meta":{"progressToken":null}}}',
  "a related task":
    '{"jsonrpc":"2.0","id":2,"method":"x","params":{"_meta":{"io.modelcontextprotocol/related-task":{"taskId":"t"}}}}',
  "a bad related task":
    '{"jsonrpc":"2.0","id":2,"method":"x","params":{"_meta":{"io.modelcontextprotocol/related-task":{}}}}',
  "_meta not an object": '{"jsonrpc":"2.0","id":2,"method":"x","params":{"_meta":[]}}',
  "params null": '{"jsonrpc":"2.0","id":2,"method":"x","params":null}',
  "params an array": '{"jsonrpc":"2.0","id":2,"method":"x","params":[1]}',
  "a fractional id": '{"jsonrpc":"2.0","id":1.5,"method":"x"}',
  "a huge id": '{"jsonrpc":"2.0","id":1e300,"method":"x"}',
  "a null id": '{"jsonrpc":"2.0","id":null,"method":"x"}',
  "a method not a string": '{"jsonrpc":"2.0","id":1,"method":5}',
  "jsonrpc 1.0": '{"jsonrpc":"1.0","id":1,"method":"x"}',
  "no jsonrpc": '{"id":1,"method":"x"}',
  "an extra envelope key": '{"jsonrpc":"2.0","id":1,"method":"x","extra":true}',
  "a result": '{"jsonrpc":"2.0","id":1,"result":{"content":[]}}',
  "an error": '{"jsonrpc":"2.0","id":1,"error":{"code":-32600,"message":"no"}}',
  "a result and a method": '{"jsonrpc":"2.0","id":1,"method":"x","result":{}}',
  "a __proto__ key": '{"jsonrpc":"2.0","id":1,"method":"x","__proto__":{"a":1}}',
  "a number": "42",
  null: "null",
  "an array": "[]",
};

describe("toJsonRpcMessage: the same verdict and value as the SDK's JSONRPCMessageSchema", () => {
  it.each(Object.entries(CASES))("%s", (_, text) => {
    const expected = JSONRPCMessageSchema.safeParse(JSON.parse(text));
    const got = toJsonRpcMessage(JSON.parse(text));
    expect(got !== undefined).toBe(expected.success);
    if (expected.success) expect(got).toEqual(expected.data);
  });

  it("passes a plain request on without copying it", () => {
    const message = JSON.parse(CASES["a tools/call"] as string);
    expect(toJsonRpcMessage(message)).toBe(message);
  });
});

describe("parseMessage: a stdio line or WebSocket frame, or the error to answer", () => {
  it("gives a valid message back as the message", () => {
    expect(parseMessage('{"jsonrpc":"2.0","id":1,"method":"ping"}', "line")).toEqual({
      jsonrpc: "2.0",
      id: 1,
      method: "ping",
    });
  });

  it.each([
    ["{oops", -32700, /^the line is not valid JSON: /, undefined],
    ['{"hello":"world"}', -32600, /^the line is not a JSON-RPC 2.0 message$/, undefined],
    ['{"jsonrpc":"2.0","id":7,"method":5}', -32600, /^the line is not a JSON-RPC 2.0 message$/, 7],
    // A response's id is never echoed: it answers nothing of the sender's.
    ['{"jsonrpc":"2.0","id":8,"result":5}', -32600, /not a JSON-RPC 2.0 message/, undefined],
  ])("refuses %s with %i", (text, rpcCode, message, id) => {
    const parsed = parseMessage(text, "line");
    expect(parsed).toBeInstanceOf(Refusal);
    expect(parsed).toMatchObject({ rpcCode, message: expect.stringMatching(message), id });
  });
});

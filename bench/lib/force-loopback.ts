/**
 * Preload (`node --import`) for peers that cannot be told where to listen (supergateway binds every
 * interface): a `listen(port)` without a host binds 127.0.0.1, keeping the bench on loopback.
 */
import net from "node:net";

const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (this: net.Server, ...args: unknown[]) {
  const [first, second] = args;
  if (typeof first === "object" && first !== null && !("host" in first) && "port" in first) {
    args[0] = { ...first, host: "127.0.0.1" };
  } else if ((typeof first === "number" || /^\d+$/.test(String(first))) && typeof second !== "string") {
    args.splice(1, 0, "127.0.0.1");
  }
  return listen.apply(this, args as Parameters<typeof listen>);
} as typeof listen;

import { z } from "zod";
import { SecuritySchema } from "../../../src/config/security-schema.ts";
try { z.toJSONSchema(SecuritySchema); console.log("output ok") } catch (e) { console.log("output mode:", (e as Error).message) }

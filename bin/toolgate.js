#!/usr/bin/env node
// Runs the compiled CLI when present (Docker image, npm install), else the TypeScript source (Node 24 strips types).
import { existsSync } from "node:fs";

const compiled = new URL("../dist/main.js", import.meta.url);
await import(existsSync(compiled) ? compiled.href : new URL("../src/main.ts", import.meta.url).href);

// Copies non-TypeScript assets (the CRI .proto, UI files) next to the compiled output.
import { cpSync, existsSync, mkdirSync } from "node:fs";
const assets = [["src/cri/proto", "dist/src/cri/proto"], ["src/ui/static", "dist/src/ui/static"]];
for (const [from, to] of assets) {
  if (!existsSync(from)) continue;
  mkdirSync(to, { recursive: true });
  cpSync(from, to, { recursive: true });
}

// Type-checked lint: the compiler and the linter are reviewers.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["dist/**", "node_modules/**", "test/cluster/**", "**/*.js", "**/*.mjs"] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      "@typescript-eslint/no-floating-promises": ["error", {
        allowForKnownSafeCalls: [{ from: "package", package: "node:test", name: ["describe", "it", "test", "suite", "before", "after", "beforeEach", "afterEach"] }],
      }],
      "@typescript-eslint/no-misused-promises": ["error", { checksVoidReturn: { arguments: false } }],
      "@typescript-eslint/no-explicit-any": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "max-params": ["error", 4],
      "complexity": ["warn", 25],
      "no-restricted-properties": ["error",
        { object: "Date", property: "now", message: "Use the injected Clock (src/util/clock.ts)." }],
      "no-restricted-globals": ["error",
        { name: "setTimeout", message: "Use the injected Clock (src/util/clock.ts)." },
        { name: "setInterval", message: "Use the injected Clock (src/util/clock.ts)." }],
    },
  },
  {
    files: ["src/util/clock.ts", "test/**/*.ts", "bench/**/*.ts"],
    rules: { "no-restricted-properties": "off", "no-restricted-globals": "off" },
  },
);

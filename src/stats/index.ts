/**
 * The stats folder's public surface: the provider (cgroups v1/v2, /proc, statfs and CRI stats in
 * one snapshot), the HTTP routes that serve it (Summary API, /metrics/cadvisor, /metrics/resource,
 * /spec/, cAdvisor's v1.3/v2.0 API) and the machine description.
 */
export { createStatsProvider, type StatsImages, type StatsProvider, type StatsProviderDeps, type StatsProviderOptions, type StatsRuntime } from "./provider.js";
export { cadvisorApiRoutes, statsRoutes, versionLabels } from "./handlers.js";
export { buildSummary, type Summary } from "./summary.js";
export { readMachineInfo, type MachineInfo } from "./machine.js";
export { detectCgroupLayout, type CgroupLayout } from "./cgroup.js";
export type { StatsSnapshot, CgroupEntry, PodEntry } from "./types.js";

export { createProbeManager, runtimeContainerId, type ProbeManager, type ProbeManagerDeps } from "./manager.js";

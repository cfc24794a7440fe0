/** Reads one cgroup with the reader of its hierarchy's version. */
import { pathFor, type CgroupLayout, type CgroupPath, type CgroupSpec, type CgroupStats } from "./cgroup.js";
import { readCgroupV1 } from "./cgroup-v1.js";
import { readCgroupV2 } from "./cgroup-v2.js";

/** Undefined when the cgroup does not exist (any more). A known `spec` (limits) is not read again. */
export function readCgroup(layout: CgroupLayout, path: CgroupPath, spec?: CgroupSpec): Promise<CgroupStats | undefined> {
  return layout.version === 2 ? readCgroupV2(layout.root, pathFor(path, "unified"), spec) : readCgroupV1(layout, path, spec);
}

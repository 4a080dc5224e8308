/**
 * Applies faults from a scenario's schedule to the simulated world: network cuts and heals,
 * node crashes, restarts, pauses and resumes, clock jumps and store faults. Each application
 * returns a one-line description that the run records and folds into the trace.
 *
 * `healAll` is applied once after the last scheduled fault and the end of the workload, so
 * every run ends with a healed world in which liveness can be judged: links restored, crashed
 * nodes restarted, paused nodes resumed, store faults cleared (clock jumps stay).
 */
import type { Node } from "./Node.js"
import { type Fault, type Scenario, targetNodes } from "./Scenario.js"
import type { PhysicalClock } from "./SimClock.js"
import type { SimNetwork } from "./SimNetwork.js"
import type { StoreFaults } from "./StoreFaults.js"

/** The parts of a run that faults act on. */
export interface Targets {
  readonly scenario: Scenario
  readonly network: SimNetwork
  readonly nodes: ReadonlyMap<string, Node>
  readonly clocks: ReadonlyMap<string, PhysicalClock>
  readonly stores: ReadonlyMap<string, StoreFaults>
  /** Restarts a node on an empty disk (with a shared store: every node of its region); returns the nodes restarted. */
  readonly wipe: (nodeId: string) => ReadonlyArray<string>
}

const regionIds = (scenario: Scenario): ReadonlyArray<string> => scenario.topology.regions.map((region) => region.id)

const groupsText = (groups: ReadonlyArray<ReadonlyArray<string>>): string => groups.map((group) => `[${group.join(",")}]`).join(" | ")

/** Applies one fault; returns what was done. */
export const apply = (fault: Fault, targets: Targets): string => {
  const { network, nodes, scenario } = targets
  switch (fault.kind) {
    case "isolate":
      network.isolate(fault.region, regionIds(scenario))
      return `isolate ${fault.region}`
    case "split":
      network.split(fault.groups)
      return `split ${groupsText(fault.groups)}`
    case "one_way":
      network.cut(fault.from, fault.to, true)
      return `cut ${fault.from} -> ${fault.to}`
    case "bridge":
      network.bridge(fault.node, fault.groups)
      return `split ${groupsText(fault.groups)} bridged by ${fault.node}`
    case "heal":
      network.heal()
      return "heal network"
    case "clock_jump": {
      const affected = targetNodes(scenario, fault.target)
      for (const id of affected) targets.clocks.get(id)?.jump(fault.deltaMs)
      return `clock of ${affected.join(",")} jumps ${fault.deltaMs} ms`
    }
    case "store": {
      const store = targets.stores.get(fault.region)
      if (store !== undefined) {
        store.slowMinMs = fault.slowMs.min
        store.slowMaxMs = fault.slowMs.max
        store.failRate = fault.failRate
      }
      return `store of ${fault.region}: slow ${fault.slowMs.min}-${fault.slowMs.max} ms, fail rate ${fault.failRate}`
    }
    case "wipe": {
      const restarted = new Set<string>()
      for (const id of targetNodes(scenario, fault.target)) if (!restarted.has(id)) for (const node of targets.wipe(id)) restarted.add(node)
      return `wipe ${[...restarted].join(",")}`
    }
    default: {
      const affected = targetNodes(scenario, fault.target)
      for (const id of affected) {
        const node = nodes.get(id)
        if (node === undefined) continue
        if (fault.kind === "crash") node.crash()
        else if (fault.kind === "restart") node.start()
        else if (fault.kind === "pause") node.pause()
        else node.resume()
      }
      return `${fault.kind} ${affected.join(",")}`
    }
  }
}

/** Heals everything that can be healed; returns what was done. */
export const healAll = (targets: Targets): string => {
  const done: Array<string> = []
  if (targets.network.partitioned) done.push("network healed")
  targets.network.heal()
  for (const node of targets.nodes.values()) {
    if (!node.up) {
      node.start()
      done.push(`${node.id} restarted`)
    } else if (node.paused) {
      node.resume()
      done.push(`${node.id} resumed`)
    }
  }
  for (const [region, store] of targets.stores) {
    if (store.failRate > 0 || store.slowMaxMs > 0) done.push(`store of ${region} cleared`)
    store.reset()
  }
  return `heal all: ${done.length === 0 ? "nothing left to heal" : done.join(", ")}`
}

/** Whether a fault hits a region (for failover timings: when the primary was lost). */
export const hitsRegion = (fault: Fault, scenario: Scenario, regionId: string): boolean => {
  switch (fault.kind) {
    case "isolate":
      return fault.region === regionId
    case "split":
    case "bridge":
      return fault.groups.some((group) => group.includes(regionId))
    case "one_way":
      return fault.from === regionId
    case "crash":
    case "wipe":
    case "pause": {
      const region = scenario.topology.regions.find((candidate) => candidate.id === regionId)
      const affected = new Set(targetNodes(scenario, fault.target))
      return region !== undefined && region.nodes.every((node) => affected.has(node))
    }
    default:
      return false
  }
}

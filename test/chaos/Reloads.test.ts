/**
 * The simulated world must be the deployed world for topology faults too: the chaos harness
 * gives real nodes a topology change as a rewritten configuration file and SIGHUP
 * (`Nodes.reconfigure`), the simulator as a topology handed to the node's `TopologyManager`.
 * Whatever serve's file parser refuses beyond what the manager refuses is a change that
 * happens in the simulator and never on real nodes (chaos seed 58029: under SourcePriority,
 * serve refused every file that left the removed region's rank in `region_priorities`, so
 * `remove_region` never happened on real nodes while the simulator applied it).
 */
import { describe, expect, it } from "vitest"
import { Either } from "effect"
import * as Netns from "../../src/chaos/Netns.js"
import * as Nodes from "../../src/chaos/Nodes.js"
import * as TopologyBuilder from "../../src/replication/TopologyBuilder.js"
import * as Swarm from "../../src/sim/Swarm.js"
import * as TopologyFaults from "../../src/sim/TopologyFaults.js"

/** Every node of the scenario on an address of its own, as `Netns.create` gives them. */
const networkOf = (regions: ReadonlyArray<{ readonly id: string; readonly nodes: ReadonlyArray<string> }>): Netns.Network => ({
  tag: "reloads",
  bridge: "reloads0",
  hostAddress: "10.99.0.1",
  nodes: regions.flatMap((region, r) => region.nodes.map((nodeId, n) => ({ nodeId, regionId: region.id, namespace: `ns-${nodeId}`, address: `10.99.${r + 1}.${n + 2}` })))
})

/**
 * Whether the simulator's node refuses a view: what `TopologyManager.reconfigure` checks of a
 * reloaded topology (`reconfigured`: a valid deployment, peer regions possibly empty; a
 * PrimaryReplica scenario never removes a region, `TopologyFaults.problems`).
 */
const simRefuses = (view: ReturnType<typeof TopologyFaults.viewOf>, regionId: string): boolean =>
  Either.isLeft(Either.flatMap(TopologyFaults.build(view, regionId), (topology) => TopologyBuilder.validateDeployment(topology, { peerNodesRequired: false })))

describe("a topology fault's configuration reload", () => {
  it("serve refuses a node's rewritten configuration exactly when the simulator's node refuses the same view (1,500 drawn scenarios)", () => {
    const disagreements: Array<string> = []
    const seen = { scenarios: 0, reloads: 0, refused: 0, removedUnderPriority: 0 }
    for (let seed = 1; seed <= 1500; seed++) {
      const scenario = Swarm.swarmScenario(seed)
      const changes = scenario.faults.flatMap((fault) => (fault.kind === "topology" ? [fault.change] : []))
      if (changes.length === 0) continue
      seen.scenarios++
      const network = networkOf(scenario.topology.regions)
      let graph = TopologyFaults.initial(scenario.topology)
      for (const change of changes) {
        graph = Either.getOrThrow(TopologyFaults.apply(graph, change))
        const priority = change.op === "remove_region" && scenario.replication.conflictResolution === "SourcePriority"
        if (priority) seen.removedUnderPriority++
        for (const self of network.nodes) {
          const view = TopologyFaults.viewOf(scenario.topology, graph, self.regionId)
          const refusal = Nodes.refusal(Nodes.configYaml({ ...scenario, topology: view }, network, self, false))
          const refused = simRefuses(view, self.regionId)
          seen.reloads++
          if (refused) seen.refused++
          if ((refusal !== undefined) !== refused) {
            disagreements.push(`seed ${seed}, ${TopologyFaults.describe(change)}, ${self.nodeId}: serve ${refusal === undefined ? "applies it" : `refuses it (${refusal})`}, the simulator ${refused ? "refuses" : "applies"} it`)
          }
        }
      }
    }
    expect(disagreements.slice(0, 5)).toEqual([])
    // The comparison covered both answers and the case that diverged.
    expect(seen.scenarios).toBeGreaterThan(100)
    expect(seen.refused).toBeGreaterThan(0)
    expect(seen.reloads - seen.refused).toBeGreaterThan(0)
    expect(seen.removedUnderPriority).toBeGreaterThan(0)
  })
})

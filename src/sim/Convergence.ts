/**
 * The convergence probe: whether every region holds the same state for every vault it may
 * hold and serves the same answers from it (by the judge's rule, `Oracle.ts`), judged from
 * per-vault digests of the regions' disks while the run goes on. A region's
 * digest is recomputed only when its disk changed since the last probe, and a tuple's stored
 * value is summarized only when it changed, so probing every few simulated milliseconds after the
 * world is healed stays cheap. The exact, whole-state comparison is the safety checker's job.
 */
import type * as KvDriver from "../replication/KvDriver.js"
import * as Topology from "../replication/Topology.js"
import type * as Oracle from "./Oracle.js"
import * as RegionState from "./RegionState.js"

/** Probes the regions of one run. */
export class Convergence {
  private readonly digests = new Map<string, { readonly tree: unknown; readonly digest: ReadonlyMap<string, string> }>()
  private readonly parsed = new Map<string, Map<string, { readonly value: unknown; readonly names: string; readonly summary: string }>>()

  constructor(
    /** Disks by id; a wipe may replace one while the run goes on. */
    private readonly disks: ReadonlyMap<string, KvDriver.MemoryDisk>,
    private readonly topology: Topology.Topology,
    private readonly rules: Oracle.Rules,
    private readonly regionOf: (diskId: string) => string = (diskId) => diskId
  ) {}

  /**
   * Whether every disk (per-node or regional) that may hold a vault holds the same state of it;
   * only the disks `judged` accepts count (the disks of a removed region do not).
   */
  converged(judged: (diskId: string) => boolean = () => true): boolean {
    const disks = [...this.disks.keys()].filter(judged)
    const vaults = new Set(disks.flatMap((disk) => [...this.digestOf(disk).keys()]))
    for (const vault of vaults) {
      const holders = disks.filter((disk) => Topology.vaultAllowedIn(this.topology, vault, this.regionOf(disk)))
      if (new Set(holders.map((disk) => this.digestOf(disk).get(vault) ?? "")).size > 1) return false
    }
    return true
  }

  private digestOf(region: string): ReadonlyMap<string, string> {
    const disk = this.disks.get(region)!
    const cached = this.digests.get(region)
    if (cached !== undefined && cached.tree === disk.tree) return cached.digest
    let parsed = this.parsed.get(region)
    if (parsed === undefined) {
      parsed = new Map()
      this.parsed.set(region, parsed)
    }
    const digest = RegionState.digest(disk, parsed, this.rules)
    this.digests.set(region, { tree: disk.tree, digest })
    return digest
  }
}

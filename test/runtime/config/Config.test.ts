import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import * as Config from "../../../src/runtime/config/Config.js"
import type * as ConfigError from "../../../src/runtime/config/ConfigError.js"
import * as Environment from "../../../src/runtime/config/Environment.js"
import * as FileSchema from "../../../src/runtime/config/FileSchema.js"
import * as FileTopology from "../../../src/runtime/config/FileTopology.js"
import * as Topology from "../../../src/replication/Topology.js"

type Env = Record<string, string | undefined>

const decodeOk = (result: Either.Either<Config.ReplicationConfig, ConfigError.ConfigError>): Config.ReplicationConfig => {
  if (Either.isLeft(result)) throw new Error(`expected a valid configuration, got: ${result.left.message}`)
  return result.right
}

const decodeError = (result: Either.Either<Config.ReplicationConfig, ConfigError.ConfigError>): ConfigError.ConfigError => {
  if (Either.isRight(result)) throw new Error("expected the configuration to be rejected")
  return result.left
}

/** Asserts the error's fields and that its message carries all three. */
const expectError = (
  error: ConfigError.ConfigError,
  expected: { readonly path: string; readonly value?: string; readonly expected?: string }
): void => {
  expect(error._tag).toBe("ConfigError")
  expect(error.path).toBe(expected.path)
  if (expected.value !== undefined) expect(error.value).toBe(expected.value)
  if (expected.expected !== undefined) expect(error.expected).toContain(expected.expected)
  expect(error.message).toContain(error.path)
  expect(error.message).toContain(error.value)
  expect(error.message).toContain(error.expected)
}

/** A valid two-region section in the top-level `replication:` form, as a plain object. */
const twoRegions = (): Record<string, any> => ({
  enabled: true,
  strategy: "ActiveActive",
  local_region: "us-west-1",
  regions: [
    { id: "us-west-1", name: "US West", zones: [{ id: "us-west-1a", nodes: [{ id: "node1", endpoint: "127.0.0.1:50051" }] }] },
    { id: "eu-central-1", name: "EU Central", zones: [{ id: "eu-central-1a", nodes: [{ id: "node2", endpoint: "127.0.0.1:50052" }] }] }
  ]
})

const threeRegions = (): Record<string, any> => {
  const section = twoRegions()
  section.regions.push({
    id: "ap-southeast-1",
    name: "AP Southeast",
    zones: [{ id: "ap-southeast-1a", nodes: [{ id: "node3", endpoint: "127.0.0.1:50053" }] }]
  })
  return section
}

const decodeSection = (section: unknown, env: Env = {}) => Config.fromObject({ replication: section }, env)

const seedQuickStart = `
replication:
  enabled: true
  strategy: ActiveActive
  local_region: "us-west-1"
  conflict_resolution: LastWriteWins
  agent:
    max_retries: 5
    retry_delay_ms: 100
    batch_size: 100
  regions:
    - id: "us-west-1"
      name: "US West"
      is_primary: false
      zones:
        - id: "us-west-1a"
          name: "Zone A"
          nodes:
            - id: "node1"
              endpoint: "engine-us-west.internal:50051"
    - id: "eu-central-1"
      name: "EU Central"
      is_primary: false
      zones:
        - id: "eu-central-1a"
          name: "Zone A"
          nodes:
            - id: "node2"
              endpoint: "engine-eu.internal:50051"
  replication_targets:
    us-west-1:
      - eu-central-1
    eu-central-1:
      - us-west-1
`

const seedEngineForm = `
engine:
  replication:
    enabled: true
    strategy: "active_active"
    local_region: "us-west-1"
    conflict_resolution: "lww"
    region_priorities:
      - us-west-1
      - eu-central-1
      - ap-southeast-1
    agent:
      max_retries: 5
      retry_delay_ms: 100
      batch_size: 100
      request_timeout_secs: 10
      buffer_size: 10000
    regions:
      - id: us-west-1
        name: "US West 1"
        is_primary: false
        zones:
          - id: us-west-1a
            name: "Zone A"
            nodes:
              - id: node1
                endpoint: "localhost:50051"
      - id: eu-central-1
        name: "EU Central 1"
        is_primary: false
        zones:
          - id: eu-central-1a
            name: "Zone A"
            nodes:
              - id: node2
                endpoint: "localhost:50052"
    replication_targets:
      us-west-1:
        - eu-central-1
      eu-central-1:
        - us-west-1
`

describe("Config", () => {
  describe("the two YAML forms of the seed", () => {
    it("the seed's quick-start replication: section decodes", () => {
      const config = decodeOk(Config.parse(seedQuickStart))
      expect(config.enabled).toBe(true)
      expect(config.strategy).toBe("ActiveActive")
      expect(config.localRegion).toBe("us-west-1")
      expect(config.conflictResolution).toBe("LastWriteWins")
      expect(config.agent).toEqual({ ...Config.defaults.agent, maxRetries: 5, retryDelayMs: 100, batchSize: 100 })
      expect(config.topology.regions.map((region) => region.id)).toEqual(["us-west-1", "eu-central-1"])
      expect(Topology.targetsOf(config.topology, "eu-central-1")).toEqual(["us-west-1"])
    })

    it("the seed's engine.replication: section with snake_case enum spellings decodes", () => {
      const config = decodeOk(Config.parse(seedEngineForm))
      expect(config.strategy).toBe("ActiveActive")
      expect(config.conflictResolution).toBe("LastWriteWins")
      expect(config.agent.requestTimeoutMs).toBe(10_000)
      expect(config.agent.bufferSize).toBe(10_000)
      // Under lww the priority list is not used, so the seed's extra region is tolerated.
      expect(config.regionPriorities).toEqual(["us-west-1", "eu-central-1", "ap-southeast-1"])
      expect(Topology.findRegion(config.topology, "eu-central-1")?.name).toBe("EU Central 1")
    })

    it("a document with both replication: and engine.replication: is an error naming both paths", () => {
      const error = decodeError(Config.fromObject({ replication: twoRegions(), engine: { replication: twoRegions() } }))
      expect(error.path).toBe("replication")
      expect(error.message).toContain("engine.replication")
      expect(error.expected).toContain("exactly one")
    })

    it("a document without a replication section is an error", () => {
      expectError(decodeError(Config.parse("engine:\n  storage: memory\n")), { path: "replication", value: "(missing)" })
    })

    it("a replication section that is not a mapping is an error at the section path", () => {
      expectError(decodeError(Config.parse("engine:\n  replication: yes-please\n")), {
        path: "engine.replication",
        value: '"yes-please"',
        expected: "a mapping"
      })
    })

    it("a YAML syntax error is a config error that gives the line and column", () => {
      const error = decodeError(Config.parse("replication:\n  strategy: ActiveActive\n  strategy: MultiMaster\n"))
      expect(error.path).toBe("yaml:3:3")
      expect(error.expected).toBe("valid YAML")
      expect(error.value).toContain("unique")
    })

    it("an unresolved YAML alias is a config error, not a thrown exception", () => {
      expect(decodeError(Config.parse("replication: *nowhere\n")).expected).toBe("valid YAML")
    })
  })

  describe("defaults", () => {
    it("a minimal section gets every documented default", () => {
      const section = twoRegions()
      delete section["enabled"]
      delete section.regions[1].name
      const config = decodeOk(decodeSection(section))
      expect(config.enabled).toBe(false)
      expect(config.nodeId).toBeUndefined()
      expect(config.conflictResolution).toBe("LastWriteWins")
      expect(config.clock).toBe("hlc")
      expect(config.regionPriorities).toEqual([])
      expect(config.agent).toEqual(Config.defaults.agent)
      expect(config.agent).toEqual({
        maxRetries: 5,
        retryDelayMs: 100,
        retryDelayMaxMs: 10_000,
        batchSize: 100,
        flushDelayMs: 10,
        requestTimeoutMs: 10_000,
        bufferSize: 10_000
      })
      expect(config.health).toEqual({ lagMsMax: 5_000 })
      expect(config.heartbeat).toEqual({ intervalMs: 1_000, timeoutMs: 30_000, recoverAfter: 3 })
      expect(config.failover).toEqual({ detectAfterMs: 10_000, promoteBackAfterMs: 30_000, fenceAfterMs: 0, confirmAfterMs: 60_000, checkIntervalMs: 1_000 })
      expect(config.maxOffsetMs).toBe(500)
      expect(config.topology.vaults).toEqual([])
    })

    it("regions default to no primary, failover priority by position, name and zone name by id", () => {
      const section = twoRegions()
      delete section.regions[1].name
      const topology = decodeOk(decodeSection(section)).topology
      expect(topology.regions.map((region) => [region.id, region.name, region.isPrimary, region.failoverPriority])).toEqual([
        ["us-west-1", "US West", false, 1],
        ["eu-central-1", "eu-central-1", false, 2]
      ])
      expect(topology.regions[0]?.zones[0]?.name).toBe("us-west-1a")
      expect(topology.regions[0]?.zones[0]?.nodes[0]?.status).toBe("Healthy")
    })

    it("replication targets default to a full mesh among the regions", () => {
      const topology = decodeOk(decodeSection(threeRegions())).topology
      expect(topology.replicationTargets).toEqual({
        "us-west-1": ["eu-central-1", "ap-southeast-1"],
        "eu-central-1": ["us-west-1", "ap-southeast-1"],
        "ap-southeast-1": ["us-west-1", "eu-central-1"]
      })
    })

    it("make builds an enabled configuration around a topology with the defaults", () => {
      const topology = decodeOk(decodeSection(twoRegions())).topology
      const config = Config.make(topology, { clock: "wall" })
      expect(config).toMatchObject({ enabled: true, strategy: "ActiveActive", localRegion: "us-west-1", clock: "wall" })
      expect(config.agent).toEqual(Config.defaults.agent)
    })
  })

  describe("enum spellings", () => {
    const strategies: ReadonlyArray<readonly [string, Topology.ReplicationStrategy]> = [
      ["ActiveActive", "ActiveActive"],
      ["active_active", "ActiveActive"],
      ["PrimaryReplica", "PrimaryReplica"],
      ["primary_replica", "PrimaryReplica"],
      ["MultiMaster", "MultiMaster"],
      ["multi_master", "MultiMaster"]
    ]
    it.each(strategies)("strategy %s decodes to %s", (spelling, strategy) => {
      const section: Record<string, any> = { ...twoRegions(), strategy: spelling }
      section.regions[0].is_primary = true
      expect(decodeOk(decodeSection(section)).strategy).toBe(strategy)
    })

    const resolutions = [
      ["LastWriteWins", "LastWriteWins"],
      ["lww", "LastWriteWins"],
      ["last_write_wins", "LastWriteWins"],
      ["SourcePriority", "SourcePriority"],
      ["source_priority", "SourcePriority"],
      ["InsertWins", "InsertWins"],
      ["insert_wins", "InsertWins"],
      ["Custom", "Custom"],
      ["custom", "Custom"]
    ] as const
    it.each(resolutions)("conflict_resolution %s decodes to %s", (spelling, strategy) => {
      const section = { ...twoRegions(), conflict_resolution: spelling, region_priorities: ["eu-central-1", "us-west-1"] }
      expect(decodeOk(decodeSection(section)).conflictResolution).toBe(strategy)
    })

    it("clock accepts hlc and wall", () => {
      expect(decodeOk(decodeSection({ ...twoRegions(), clock: "wall" })).clock).toBe("wall")
      expect(decodeOk(decodeSection({ ...twoRegions(), clock: "hlc" })).clock).toBe("hlc")
    })

    it("an unknown strategy is an error that names the key, the value and the accepted spellings", () => {
      expectError(decodeError(Config.parse(seedEngineForm.replace('"active_active"', '"active-active"'))), {
        path: "engine.replication.strategy",
        value: '"active-active"',
        expected: "ActiveActive"
      })
    })

    it("an unknown conflict resolution is an error that lists the accepted spellings", () => {
      expectError(decodeError(decodeSection({ ...twoRegions(), conflict_resolution: "newest" })), {
        path: "replication.conflict_resolution",
        value: '"newest"',
        expected: "lww"
      })
    })
  })

  describe("value errors name the key path, the value and what was expected", () => {
    it("a negative batch size", () => {
      expectError(decodeError(Config.parse(seedEngineForm.replace("batch_size: 100", "batch_size: -5"))), {
        path: "engine.replication.agent.batch_size",
        value: "-5",
        expected: "an integer >= 1"
      })
    })

    it("a fractional retry count and a negative one", () => {
      expectError(decodeError(decodeSection({ ...twoRegions(), agent: { max_retries: 1.5 } })), {
        path: "replication.agent.max_retries",
        value: "1.5",
        expected: "an integer >= 0"
      })
      expectError(decodeError(decodeSection({ ...twoRegions(), agent: { max_retries: -1 } })), {
        path: "replication.agent.max_retries",
        value: "-1"
      })
    })

    it("a number given as a string", () => {
      expectError(decodeError(decodeSection({ ...twoRegions(), agent: { batch_size: "100" } })), {
        path: "replication.agent.batch_size",
        value: '"100"'
      })
    })

    it("a zero lag threshold", () => {
      expectError(decodeError(decodeSection({ ...twoRegions(), health: { lag_ms_max: 0 } })), {
        path: "replication.health.lag_ms_max",
        value: "0",
        expected: "an integer >= 1"
      })
    })

    it("a buffer smaller than a batch", () => {
      expectError(decodeError(decodeSection({ ...twoRegions(), agent: { batch_size: 500, buffer_size: 100 } })), {
        path: "replication.agent.buffer_size",
        value: "100",
        expected: "agent.batch_size (500)"
      })
    })

    it("a batch larger than the default buffer names the batch size, the key that was set", () => {
      expectError(decodeError(decodeSection({ ...twoRegions(), agent: { batch_size: 20_000 } })), {
        path: "replication.agent.batch_size",
        value: "20000",
        expected: "<= agent.buffer_size (10000)"
      })
    })

    it("a catch-up batch smaller than a batch, or beyond its bound", () => {
      expectError(decodeError(decodeSection({ ...twoRegions(), agent: { batch_size: 500, catch_up_batch_size: 100 } })), {
        path: "replication.agent.catch_up_batch_size",
        value: "100",
        expected: "agent.batch_size (500)"
      })
      expectError(decodeError(decodeSection({ ...twoRegions(), agent: { catch_up_batch_size: 50_000 } })), {
        path: "replication.agent.catch_up_batch_size",
        value: "50000",
        expected: "an integer from 1 to 5000"
      })
    })

    it("a backoff cap below the base delay", () => {
      expectError(decodeError(decodeSection({ ...twoRegions(), agent: { retry_delay_ms: 500, retry_delay_max_ms: 100 } })), {
        path: "replication.agent.retry_delay_max_ms",
        value: "100"
      })
    })

    it("failover timers and the max clock offset come from the file and the environment, and a bad one is named", () => {
      const config = decodeOk(
        decodeSection({ ...twoRegions(), max_offset_ms: 250, failover: { detect_after_ms: 4_000, promote_back_after_ms: 0, check_interval_ms: 200 } }, {
          INFERADB__ENGINE__REPLICATION__FAILOVER__CONFIRM_AFTER_MS: "9000"
        })
      )
      expect(config.failover).toEqual({ detectAfterMs: 4_000, promoteBackAfterMs: 0, fenceAfterMs: 0, confirmAfterMs: 9_000, checkIntervalMs: 200 })
      expect(config.maxOffsetMs).toBe(250)
      expectError(decodeError(decodeSection({ ...twoRegions(), failover: { detect_after_ms: "soon" } })), { path: "replication.failover.detect_after_ms" })
      expectError(decodeError(decodeSection({ ...twoRegions(), failover: { detect_after: 10 } })), { path: "replication.failover.detect_after" })
      expectError(decodeError(decodeSection({ ...twoRegions(), max_offset_ms: 0 })), { path: "replication.max_offset_ms" })
    })

    it("a heartbeat timeout that is not longer than the interval", () => {
      expectError(decodeError(decodeSection({ ...twoRegions(), heartbeat: { interval_ms: 1000, timeout_ms: 1000 } })), {
        path: "replication.heartbeat.timeout_ms",
        expected: "> heartbeat.interval_ms (1000)"
      })
    })

    it("an unknown key at the top of the section", () => {
      expectError(decodeError(decodeSection({ ...twoRegions(), batch_sise: 10 })), {
        path: "replication.batch_sise",
        value: "10",
        expected: "local_region"
      })
    })

    it("an unknown key deep inside a node", () => {
      const section = twoRegions()
      section.regions[1].zones[0].nodes[0].port = 50052
      expectError(decodeError(decodeSection(section)), {
        path: "replication.regions[1].zones[0].nodes[0].port",
        value: "50052",
        expected: "id, endpoint"
      })
    })

    it("a missing required key", () => {
      const section = twoRegions()
      delete section["local_region"]
      expectError(decodeError(decodeSection(section)), { path: "replication.local_region", value: "(missing)", expected: "required" })
    })

    it("a blank node id", () => {
      const section = twoRegions()
      section.regions[0].zones[0].nodes[0].id = ""
      expectError(decodeError(decodeSection(section)), { path: "replication.regions[0].zones[0].nodes[0].id", value: '""' })
    })
  })

  describe("topology errors surface with the key path", () => {
    it("a node id used in two regions names the second declaration", () => {
      const section = twoRegions()
      section.regions[1].zones[0].nodes[0].id = "node1"
      const error = decodeError(decodeSection(section))
      expectError(error, { path: "replication.regions[1].zones[0].nodes[0].id", value: '"node1"', expected: "unique" })
      expect(error.message).toContain("already used at replication.regions[0].zones[0].nodes[0].id")
    })

    it("an endpoint used twice names the second declaration", () => {
      const section = twoRegions()
      section.regions[1].zones[0].nodes[0].endpoint = "127.0.0.1:50051"
      expectError(decodeError(decodeSection(section)), {
        path: "replication.regions[1].zones[0].nodes[0].endpoint",
        value: '"127.0.0.1:50051"'
      })
    })

    it("a region declared twice", () => {
      const section = twoRegions()
      section.regions[1].id = "us-west-1"
      section.regions[1].zones[0].id = "us-west-1b"
      expectError(decodeError(decodeSection(section)), { path: "replication.regions[1].id", value: '"us-west-1"' })
    })

    it("a local region that is not declared", () => {
      expectError(decodeError(decodeSection({ ...twoRegions(), local_region: "us-east-1" })), {
        path: "replication.local_region",
        value: '"us-east-1"',
        expected: "us-west-1, eu-central-1"
      })
    })

    it("PrimaryReplica without a primary", () => {
      expectError(decodeError(decodeSection({ ...twoRegions(), strategy: "primary_replica" })), {
        path: "replication.regions",
        expected: "exactly one region with is_primary: true"
      })
    })

    it("PrimaryReplica with two primaries names the second", () => {
      const section: Record<string, any> = { ...twoRegions(), strategy: "PrimaryReplica" }
      section.regions[0].is_primary = true
      section.regions[1].is_primary = true
      expectError(decodeError(decodeSection(section)), { path: "replication.regions[1].is_primary", value: "true" })
    })

    it("two regions with the same failover priority", () => {
      const section = twoRegions()
      section.regions[1].priority = 1
      expectError(decodeError(decodeSection(section)), { path: "replication.regions[1].priority", value: "1", expected: "lower = higher" })
    })

    it("a replication target that is not a declared region", () => {
      const section = { ...twoRegions(), replication_targets: { "us-west-1": ["eu-central-1", "eu-west-1"] } }
      expectError(decodeError(decodeSection(section)), { path: "replication.replication_targets.us-west-1[1]", value: '"eu-west-1"' })
    })

    it("a replication source that is not a declared region", () => {
      const section = { ...twoRegions(), replication_targets: { "eu-west-1": ["us-west-1"] } }
      expectError(decodeError(decodeSection(section)), { path: "replication.replication_targets.eu-west-1" })
    })

    it("a region replicating to itself", () => {
      const section = { ...twoRegions(), replication_targets: { "us-west-1": ["us-west-1"] } }
      expectError(decodeError(decodeSection(section)), {
        path: "replication.replication_targets.us-west-1[0]",
        expected: "other than 'us-west-1'"
      })
    })

    it("vaults under a strategy other than MultiMaster", () => {
      const section = { ...twoRegions(), vaults: [{ id: "acme", home_region: "us-west-1" }] }
      expectError(decodeError(decodeSection(section)), { path: "replication.vaults", expected: "MultiMaster" })
    })

    it("a vault whose home region is not declared", () => {
      const section = { ...twoRegions(), strategy: "MultiMaster", vaults: [{ id: "acme", home_region: "mars-1" }] }
      expectError(decodeError(decodeSection(section)), { path: "replication.vaults[0].home_region", value: '"mars-1"' })
    })

    it("a vault allowed in an undeclared region", () => {
      const section = {
        ...twoRegions(),
        strategy: "MultiMaster",
        vaults: [{ id: "acme", home_region: "us-west-1", allowed_regions: ["us-west-1", "mars-1"] }]
      }
      expectError(decodeError(decodeSection(section)), { path: "replication.vaults[0].allowed_regions[1]", value: '"mars-1"' })
    })

    it("a vault whose allowed regions exclude its home region", () => {
      const section = {
        ...twoRegions(),
        strategy: "MultiMaster",
        vaults: [{ id: "eu-bank", home_region: "us-west-1", allowed_regions: ["eu-central-1"] }]
      }
      expectError(decodeError(decodeSection(section)), { path: "replication.vaults[0].allowed_regions", expected: "'us-west-1'" })
    })

    it("a vault placed twice names the second placement", () => {
      const section = {
        ...twoRegions(),
        strategy: "MultiMaster",
        vaults: [
          { id: "acme", home_region: "us-west-1" },
          { id: "acme", home_region: "eu-central-1" }
        ]
      }
      expectError(decodeError(decodeSection(section)), { path: "replication.vaults[1].id", value: '"acme"' })
    })

    it("a node id that belongs to another region", () => {
      expectError(decodeError(decodeSection({ ...twoRegions(), node_id: "node2" })), {
        path: "replication.node_id",
        value: '"node2"',
        expected: "'us-west-1'"
      })
    })
  })

  describe("source priority", () => {
    it("the list runs lowest to highest priority and is kept in order", () => {
      const section = { ...threeRegions(), conflict_resolution: "source_priority", region_priorities: ["us-west-1", "eu-central-1", "ap-southeast-1"] }
      expect(decodeOk(decodeSection(section)).regionPriorities).toEqual(["us-west-1", "eu-central-1", "ap-southeast-1"])
    })

    it("a region missing from region_priorities is an error naming it, not priority 0", () => {
      const section = { ...threeRegions(), conflict_resolution: "SourcePriority", region_priorities: ["us-west-1", "eu-central-1"] }
      expectError(decodeError(decodeSection(section)), { path: "replication.region_priorities", expected: "missing 'ap-southeast-1'" })
    })

    it("SourcePriority without region_priorities is an error naming every region", () => {
      const error = decodeError(decodeSection({ ...twoRegions(), conflict_resolution: "SourcePriority" }))
      expectError(error, { path: "replication.region_priorities", value: "(missing)" })
      expect(error.expected).toContain("'us-west-1', 'eu-central-1'")
    })

    it("a rank of a region the topology does not declare (one removed from the deployment) is kept, in order", () => {
      // A removed region's changes stay in the logs: a reload that drops it from the regions keeps its rank.
      const section = { ...twoRegions(), conflict_resolution: "SourcePriority", region_priorities: ["us-east-1", "us-west-1", "eu-central-1"] }
      const config = decodeOk(decodeSection(section))
      expect(config.regionPriorities).toEqual(["us-east-1", "us-west-1", "eu-central-1"])
      expect(FileTopology.undeclaredRanks(config.regionPriorities, config.topology)).toEqual(["us-east-1"])
    })

    it("an extra rank does not stand in for a declared region that is missing (a misspelling is still caught)", () => {
      const section = { ...twoRegions(), conflict_resolution: "SourcePriority", region_priorities: ["us-west-1", "eu-centrl-1"] }
      expectError(decodeError(decodeSection(section)), { path: "replication.region_priorities", expected: "missing 'eu-central-1'" })
    })

    it("a region listed twice in region_priorities is an error", () => {
      const section = { ...twoRegions(), conflict_resolution: "SourcePriority", region_priorities: ["us-west-1", "eu-central-1", "us-west-1"] }
      expectError(decodeError(decodeSection(section)), { path: "replication.region_priorities[2]", expected: "not already listed" })
    })
  })

  describe("environment overrides", () => {
    it("top-level keys are overridden by INFERADB__ENGINE__REPLICATION__<KEY>", () => {
      const config = decodeOk(
        decodeSection(twoRegions(), {
          INFERADB__ENGINE__REPLICATION__ENABLED: "false",
          INFERADB__ENGINE__REPLICATION__STRATEGY: "multi_master",
          INFERADB__ENGINE__REPLICATION__LOCAL_REGION: "eu-central-1",
          INFERADB__ENGINE__REPLICATION__CONFLICT_RESOLUTION: "source_priority",
          INFERADB__ENGINE__REPLICATION__REGION_PRIORITIES: "eu-central-1, us-west-1",
          INFERADB__ENGINE__REPLICATION__CLOCK: "wall"
        })
      )
      expect(config).toMatchObject({
        enabled: false,
        strategy: "MultiMaster",
        localRegion: "eu-central-1",
        conflictResolution: "SourcePriority",
        regionPriorities: ["eu-central-1", "us-west-1"],
        clock: "wall"
      })
      expect(config.topology.localRegion).toBe("eu-central-1")
      expect(config.topology.strategy).toBe("MultiMaster")
    })

    it("nested keys are overridden by INFERADB__ENGINE__REPLICATION__<SECTION>__<KEY>", () => {
      const config = decodeOk(
        decodeSection(twoRegions(), {
          INFERADB__ENGINE__REPLICATION__AGENT__BATCH_SIZE: "50",
          INFERADB__ENGINE__REPLICATION__AGENT__RETRY_DELAY_MAX_MS: "2000",
          INFERADB__ENGINE__REPLICATION__AGENT__FLUSH_DELAY_MS: "0",
          INFERADB__ENGINE__REPLICATION__HEALTH__LAG_MS_MAX: "250",
          INFERADB__ENGINE__REPLICATION__HEARTBEAT__INTERVAL_MS: "100",
          INFERADB__ENGINE__REPLICATION__HEARTBEAT__TIMEOUT_MS: "500",
          INFERADB__ENGINE__REPLICATION__HEARTBEAT__RECOVER_AFTER: "5"
        })
      )
      expect(config.agent).toMatchObject({ batchSize: 50, retryDelayMaxMs: 2000, flushDelayMs: 0 })
      expect(config.health.lagMsMax).toBe(250)
      expect(config.heartbeat).toEqual({ intervalMs: 100, timeoutMs: 500, recoverAfter: 5 })
    })

    it("the seed's short agent variables set agent keys and win over the file", () => {
      const config = decodeOk(
        Config.parse(seedEngineForm, {
          INFERADB__ENGINE__REPLICATION__MAX_RETRIES: "7",
          INFERADB__ENGINE__REPLICATION__RETRY_DELAY_MS: "200",
          INFERADB__ENGINE__REPLICATION__BATCH_SIZE: "25",
          INFERADB__ENGINE__REPLICATION__REQUEST_TIMEOUT_SECS: "3",
          INFERADB__ENGINE__REPLICATION__BUFFER_SIZE: "500"
        })
      )
      expect(config.agent).toMatchObject({ maxRetries: 7, retryDelayMs: 200, batchSize: 25, requestTimeoutMs: 3000, bufferSize: 500 })
    })

    it("the troubleshooting form INFERADB__REPLICATION__BATCH_SIZE is an alias", () => {
      const config = decodeOk(decodeSection(twoRegions(), { INFERADB__REPLICATION__BATCH_SIZE: "50" }))
      expect(config.agent.batchSize).toBe(50)
    })

    it("INFERADB__ENGINE__NODE_ID and INFERADB__ENGINE__LOCAL_REGION set the node id and local region", () => {
      const config = decodeOk(
        decodeSection(twoRegions(), { INFERADB__ENGINE__NODE_ID: "node2", INFERADB__ENGINE__LOCAL_REGION: "eu-central-1" })
      )
      expect(config.nodeId).toBe("node2")
      expect(config.localRegion).toBe("eu-central-1")
    })

    it("unrelated and unset variables are ignored", () => {
      const config = decodeOk(
        decodeSection(twoRegions(), {
          PATH: "/usr/bin",
          INFERADB__ENGINE__STORAGE__BACKEND: "memory",
          INFERADB__ENGINE__REPLICATION__BATCH_SIZE: undefined
        })
      )
      expect(config.agent.batchSize).toBe(100)
    })

    it("a variable that is not an integer is an error naming the variable, the value and what was expected", () => {
      expectError(decodeError(decodeSection(twoRegions(), { INFERADB__ENGINE__REPLICATION__BATCH_SIZE: "lots" })), {
        path: "INFERADB__ENGINE__REPLICATION__BATCH_SIZE",
        value: '"lots"',
        expected: "an integer"
      })
      expectError(decodeError(decodeSection(twoRegions(), { INFERADB__ENGINE__REPLICATION__AGENT__MAX_RETRIES: "2.5" })), {
        path: "INFERADB__ENGINE__REPLICATION__AGENT__MAX_RETRIES",
        value: '"2.5"'
      })
    })

    it("an integer variable out of range is an error naming the variable, not the file key", () => {
      expectError(decodeError(decodeSection(twoRegions(), { INFERADB__ENGINE__REPLICATION__BATCH_SIZE: "0" })), {
        path: "INFERADB__ENGINE__REPLICATION__BATCH_SIZE",
        value: "0",
        expected: "an integer >= 1"
      })
    })

    it("an invalid enum from a variable names the variable", () => {
      expectError(decodeError(decodeSection(twoRegions(), { INFERADB__ENGINE__REPLICATION__STRATEGY: "mesh" })), {
        path: "INFERADB__ENGINE__REPLICATION__STRATEGY",
        value: '"mesh"'
      })
    })

    it("an invalid boolean from a variable is an error", () => {
      expectError(decodeError(decodeSection(twoRegions(), { INFERADB__ENGINE__REPLICATION__ENABLED: "yes" })), {
        path: "INFERADB__ENGINE__REPLICATION__ENABLED",
        expected: "true or false"
      })
    })

    it("an unknown replication variable is an error naming it", () => {
      expectError(decodeError(decodeSection(twoRegions(), { INFERADB__ENGINE__REPLICATION__BATCHSIZE: "50" })), {
        path: "INFERADB__ENGINE__REPLICATION__BATCHSIZE",
        value: '"50"',
        expected: "BATCH_SIZE"
      })
      expectError(decodeError(decodeSection(twoRegions(), { INFERADB__REPLICATION__BATCH: "50" })), {
        path: "INFERADB__REPLICATION__BATCH"
      })
    })

    it("two variables that set the same key to different values are an error naming both", () => {
      const error = decodeError(
        decodeSection(twoRegions(), {
          INFERADB__ENGINE__REPLICATION__AGENT__BATCH_SIZE: "50",
          INFERADB__ENGINE__REPLICATION__BATCH_SIZE: "60"
        })
      )
      expect(error.path).toBe("INFERADB__ENGINE__REPLICATION__BATCH_SIZE")
      expect(error.expected).toContain("INFERADB__ENGINE__REPLICATION__AGENT__BATCH_SIZE")
    })

    it("a topology error caused by a variable names the variable", () => {
      expectError(decodeError(decodeSection(twoRegions(), { INFERADB__ENGINE__LOCAL_REGION: "us-east-1" })), {
        path: "INFERADB__ENGINE__LOCAL_REGION",
        value: '"us-east-1"'
      })
    })

    it("environmentVariables lists the long, short, alias and engine forms", () => {
      expect(Environment.environmentVariables).toEqual(
        expect.arrayContaining([
          "INFERADB__ENGINE__NODE_ID",
          "INFERADB__ENGINE__LOCAL_REGION",
          "INFERADB__ENGINE__REPLICATION__AGENT__BATCH_SIZE",
          "INFERADB__ENGINE__REPLICATION__BATCH_SIZE",
          "INFERADB__REPLICATION__BATCH_SIZE",
          "INFERADB__ENGINE__REPLICATION__HEARTBEAT__RECOVER_AFTER"
        ])
      )
    })
  })

  describe("examples/", () => {
    const examplesDir = path.resolve(import.meta.dirname, "../../../examples")
    const exampleFiles = (dir: string): ReadonlyArray<string> =>
      fs
        .readdirSync(dir, { withFileTypes: true })
        .flatMap((entry) =>
          entry.isDirectory() ? exampleFiles(path.join(dir, entry.name)) : entry.name.endsWith(".yaml") ? [path.join(dir, entry.name)] : []
        )
    const load = (relative: string) => decodeOk(Config.parseBytes(fs.readFileSync(path.join(examplesDir, relative))))

    it("contains the deployment patterns and local-cluster variants", () => {
      const names = exampleFiles(examplesDir).map((file) => path.relative(examplesDir, file)).sort()
      expect(names).toEqual(
        expect.arrayContaining([
          "active-active-eu-central-1.yaml",
          "active-active-us-west-1.yaml",
          "multi-master.yaml",
          "primary-replica.yaml",
          path.join("three-region", "ap-southeast-1.yaml"),
          path.join("three-region", "eu-central-1.yaml"),
          path.join("three-region", "us-west-1.yaml")
        ])
      )
    })

    it.each(exampleFiles(examplesDir).map((file) => [path.relative(examplesDir, file)]))("%s parses into an enabled configuration", (relative) => {
      expect(load(relative).enabled).toBe(true)
    })

    it("the two active-active files differ only in the local region", () => {
      const west = load("active-active-us-west-1.yaml")
      const east = load("active-active-eu-central-1.yaml")
      expect(east.localRegion).toBe("eu-central-1")
      expect({ ...east, localRegion: west.localRegion, topology: { ...east.topology, localRegion: west.topology.localRegion } }).toEqual(west)
      expect(Topology.regionNodes(west.topology.regions[1]!)[0]?.endpoint).toBe("127.0.0.1:50052")
    })

    it("primary-replica has us-west-1 as primary and failover priorities 1, 2, 3", () => {
      const config = load("primary-replica.yaml")
      expect(config.strategy).toBe("PrimaryReplica")
      expect(Topology.primaryRegion(config.topology)?.id).toBe("us-west-1")
      expect(config.topology.regions.map((region) => region.failoverPriority)).toEqual([1, 2, 3])
    })

    it("multi-master ranks every region and keeps the EU vault in eu-central-1 only", () => {
      const config = load("multi-master.yaml")
      expect(config.conflictResolution).toBe("SourcePriority")
      expect(config.regionPriorities).toEqual(["us-west-1", "eu-central-1", "ap-southeast-1"])
      expect(Topology.vaultPlacement(config.topology, "eu-bank")).toEqual({
        vault: "eu-bank",
        homeRegion: "eu-central-1",
        allowedRegions: ["eu-central-1"]
      })
      expect(Topology.vaultAllowedIn(config.topology, "eu-bank", "us-west-1")).toBe(false)
    })

    it("the three-region files form a full mesh on ports 50081..50083 and differ only in the local region", () => {
      const configs = ["us-west-1", "eu-central-1", "ap-southeast-1"].map((region) => load(path.join("three-region", `${region}.yaml`)))
      expect(configs.map((config) => config.localRegion)).toEqual(["us-west-1", "eu-central-1", "ap-southeast-1"])
      for (const config of configs) {
        expect(config.topology.regions).toEqual(configs[0]!.topology.regions)
        for (const region of config.topology.regions) expect(Topology.targetsOf(config.topology, region.id)).toHaveLength(2)
      }
      expect(configs[0]!.topology.regions.flatMap(Topology.regionNodes).map((node) => node.endpoint)).toEqual([
        "127.0.0.1:50081",
        "127.0.0.1:50082",
        "127.0.0.1:50083"
      ])
    })
  })
})

describe("Config: runtime sections (security, grpc, http, store)", () => {
  const withSections = (sections: Record<string, unknown>): Record<string, any> => ({ ...twoRegions(), ...sections })

  it("without the sections a node runs insecure, listens on its own endpoint and on 127.0.0.1:8080, and keeps lmdb under .data", () => {
    const config = decodeOk(decodeSection(twoRegions()))
    expect(config.security).toEqual(Config.defaults.security)
    expect(config.security.mode).toBe("insecure")
    expect(config.grpc).toEqual({ listen: undefined, inFlightPerTargetMax: 8, messageBytesMax: 16_777_216, replicationStream: true, writeOperationsMax: 5_000 })
    expect(config.http).toEqual({ listen: "127.0.0.1:8080" })
    expect(config.store).toEqual({ kind: "lmdb", path: undefined, clusterFile: undefined, prefix: undefined, minFreeMb: 64 })
    expect(config.process).toEqual({ idleGc: true })
    expect(Config.grpcListen(config)).toBe("127.0.0.1:50051")
    expect(Config.storePath(config)).toBe(".data/us-west-1-node1")
    expect(Config.storePrefix(config)).toBe("inferadb/us-west-1")
  })

  it("every key of the sections decodes to its setting", () => {
    const config = decodeOk(
      decodeSection(
        withSections({
          security: { mode: "mtls", token: "s3cret", ca_file: "ca.pem", cert_file: "node.pem", key_file: "node-key.pem", server_name_override: "engine" },
          grpc: { listen: "0.0.0.0:9000", max_in_flight_per_target: 4, max_message_bytes: 1_048_576, replication_stream: false, max_write_operations: 100 },
          http: { listen: "[::1]:9100" },
          store: { kind: "foundationdb", path: "/var/lib/inferadb", cluster_file: "/etc/fdb.cluster", prefix: "inferadb/prod", min_free_mb: 0 }
        })
      )
    )
    expect(config.security).toEqual({
      mode: "mtls",
      token: "s3cret",
      tokenFile: undefined,
      caFile: "ca.pem",
      certFile: "node.pem",
      keyFile: "node-key.pem",
      serverNameOverride: "engine"
    })
    expect(config.grpc).toEqual({ listen: "0.0.0.0:9000", inFlightPerTargetMax: 4, messageBytesMax: 1_048_576, replicationStream: false, writeOperationsMax: 100 })
    expect(config.http.listen).toBe("[::1]:9100")
    expect(config.store).toEqual({ kind: "foundationdb", path: "/var/lib/inferadb", clusterFile: "/etc/fdb.cluster", prefix: "inferadb/prod", minFreeMb: 0 })
    expect(Config.grpcListen(config)).toBe("0.0.0.0:9000")
    expect(Config.storePrefix(config)).toBe("inferadb/prod")
  })

  it("the default gRPC address and lmdb directory follow a local region overridden from the environment", () => {
    const config = decodeOk(decodeSection(twoRegions(), { INFERADB__ENGINE__LOCAL_REGION: "eu-central-1" }))
    expect(Config.localNode(config)?.id).toBe("node2")
    expect(Config.grpcListen(config)).toBe("127.0.0.1:50052")
    expect(Config.storePath(config)).toBe(".data/eu-central-1-node2")
  })

  it("the default gRPC address drops a URL scheme from the endpoint", () => {
    const section = twoRegions()
    section.regions[0].zones[0].nodes[0].endpoint = "grpc://engine-us-west.internal:50051/"
    expect(Config.grpcListen(decodeOk(decodeSection(section)))).toBe("engine-us-west.internal:50051")
  })

  it("token mode without a token names security.token", () => {
    expectError(decodeError(decodeSection(withSections({ security: { mode: "token" } }))), {
      path: "replication.security.token",
      value: "(missing)",
      expected: "a bearer token (or token_file) when security.mode is token"
    })
  })

  it("a token given while the mode is insecure is an error, and the error does not print the token", () => {
    const error = decodeError(decodeSection(withSections({ security: { token: "hunter2-secret" } })))
    expectError(error, { path: "replication.security.token", expected: "no value while security.mode is insecure" })
    expect(error.message).not.toContain("hunter2-secret")
    expect(error.value).toBe("(redacted, 14 characters)")
  })

  it("a token with surrounding spaces is rejected without printing it", () => {
    const error = decodeError(decodeSection(withSections({ security: { mode: "token", token: " hunter2 " } })))
    expectError(error, { path: "replication.security.token", expected: "a non-empty token without surrounding spaces" })
    expect(error.message).not.toContain("hunter2")
  })

  it("token and token_file together is an error at token_file", () => {
    expectError(decodeError(decodeSection(withSections({ security: { mode: "token", token: "a", token_file: "/run/token" } }))), {
      path: "replication.security.token_file",
      value: '"/run/token"',
      expected: "give the token one way only"
    })
  })

  it("mtls names the first missing PEM file", () => {
    expectError(decodeError(decodeSection(withSections({ security: { mode: "mtls", ca_file: "ca.pem", key_file: "k.pem" } }))), {
      path: "replication.security.cert_file",
      value: "(missing)",
      expected: "a PEM file path when security.mode is mtls"
    })
  })

  it("certificate settings under token mode are an error naming the key", () => {
    expectError(decodeError(decodeSection(withSections({ security: { mode: "token", token: "a", ca_file: "ca.pem" } }))), {
      path: "replication.security.ca_file",
      expected: "use mode: mtls"
    })
  })

  it("an unknown security mode lists the three modes", () => {
    expectError(decodeError(decodeSection(withSections({ security: { mode: "tls" } }))), {
      path: "replication.security.mode",
      value: '"tls"',
      expected: "one of insecure, token, mtls"
    })
  })

  it("an unknown key in a runtime section lists the section's keys", () => {
    expectError(decodeError(decodeSection(withSections({ store: { kind: "lmdb", dir: "/tmp" } }))), {
      path: "replication.store.dir",
      expected: "one of the keys kind, path, cluster_file, prefix, min_free_mb"
    })
  })

  it("store.min_free_mb is a whole number of MiB from 0", () => {
    expectError(decodeError(decodeSection(withSections({ store: { min_free_mb: -1 } }))), { path: "replication.store.min_free_mb", value: "-1" })
    expectError(decodeError(decodeSection(withSections({ store: { min_free_mb: 1.5 } }))), { path: "replication.store.min_free_mb", value: "1.5" })
  })

  it("grpc.replication_stream is true by default, true or false from the file or INFERADB__ENGINE__REPLICATION__GRPC__REPLICATION_STREAM", () => {
    expect(decodeOk(decodeSection(twoRegions())).grpc.replicationStream).toBe(true)
    expect(decodeOk(decodeSection(withSections({ grpc: { replication_stream: false } }))).grpc.replicationStream).toBe(false)
    expect(decodeOk(decodeSection(twoRegions(), { INFERADB__ENGINE__REPLICATION__GRPC__REPLICATION_STREAM: "false" })).grpc.replicationStream).toBe(false)
    expectError(decodeError(decodeSection(withSections({ grpc: { replication_stream: "no" } }))), {
      path: "replication.grpc.replication_stream",
      value: '"no"',
      expected: "true or false"
    })
  })

  it("process.idle_gc is true or false, from the file or INFERADB__ENGINE__REPLICATION__PROCESS__IDLE_GC", () => {
    expect(decodeOk(decodeSection(withSections({ process: { idle_gc: false } }))).process).toEqual({ idleGc: false })
    expect(decodeOk(decodeSection(withSections({ process: { idle_gc: false } }), { INFERADB__ENGINE__REPLICATION__PROCESS__IDLE_GC: "TRUE" })).process).toEqual({ idleGc: true })
    expectError(decodeError(decodeSection(withSections({ process: { idle_gc: "yes" } }))), {
      path: "replication.process.idle_gc",
      value: '"yes"',
      expected: "true or false"
    })
    expectError(decodeError(decodeSection(twoRegions(), { INFERADB__ENGINE__REPLICATION__PROCESS__IDLE_GC: "1" })), {
      path: "INFERADB__ENGINE__REPLICATION__PROCESS__IDLE_GC",
      expected: "true or false"
    })
    expectError(decodeError(decodeSection(withSections({ process: { idle: true } }))), {
      path: "replication.process.idle",
      expected: "one of the keys idle_gc"
    })
  })

  it("listen addresses must be host:port with a port up to 65535", () => {
    expectError(decodeError(decodeSection(withSections({ grpc: { listen: "localhost" } }))), {
      path: "replication.grpc.listen",
      value: '"localhost"',
      expected: "host:port with a port from 0 to 65535"
    })
    expectError(decodeError(decodeSection(withSections({ http: { listen: "127.0.0.1:70000" } }))), { path: "replication.http.listen" })
    expect(FileSchema.isListenAddress("127.0.0.1:0")).toBe(true)
    expect(FileSchema.isListenAddress("[::]:8080")).toBe(true)
  })

  it("bounds of the gRPC settings are enforced", () => {
    expectError(decodeError(decodeSection(withSections({ grpc: { max_in_flight_per_target: 0 } }))), {
      path: "replication.grpc.max_in_flight_per_target",
      expected: "an integer from 1 to 1024"
    })
    expectError(decodeError(decodeSection(withSections({ grpc: { max_message_bytes: 100 } }))), {
      path: "replication.grpc.max_message_bytes",
      expected: "an integer from 1024 to 2147483647"
    })
    expectError(decodeError(decodeSection(withSections({ grpc: { max_write_operations: 0 } }))), {
      path: "replication.grpc.max_write_operations",
      expected: "an integer from 1 to 1000000"
    })
  })

  it("an unknown store kind lists the three kinds", () => {
    expectError(decodeError(decodeSection(withSections({ store: { kind: "rocksdb" } }))), {
      path: "replication.store.kind",
      value: '"rocksdb"',
      expected: "one of lmdb, foundationdb, memory"
    })
  })

  it("every key of the sections is overridden by INFERADB__ENGINE__REPLICATION__<SECTION>__<KEY>", () => {
    const config = decodeOk(
      decodeSection(twoRegions(), {
        INFERADB__ENGINE__REPLICATION__SECURITY__MODE: "token",
        INFERADB__ENGINE__REPLICATION__SECURITY__TOKEN_FILE: "/run/secrets/token",
        INFERADB__ENGINE__REPLICATION__GRPC__LISTEN: "127.0.0.1:7000",
        INFERADB__ENGINE__REPLICATION__GRPC__MAX_IN_FLIGHT_PER_TARGET: "2",
        INFERADB__ENGINE__REPLICATION__GRPC__MAX_MESSAGE_BYTES: "65536",
        INFERADB__ENGINE__REPLICATION__GRPC__REPLICATION_STREAM: "false",
        INFERADB__ENGINE__REPLICATION__GRPC__MAX_WRITE_OPERATIONS: "10",
        INFERADB__ENGINE__REPLICATION__HTTP__LISTEN: "127.0.0.1:7001",
        INFERADB__ENGINE__REPLICATION__STORE__KIND: "memory",
        INFERADB__ENGINE__REPLICATION__STORE__PATH: "/srv/data",
        INFERADB__REPLICATION__STORE__PREFIX: "inferadb/x",
        INFERADB__ENGINE__REPLICATION__STORE__MIN_FREE_MB: "128"
      })
    )
    expect(config.security).toMatchObject({ mode: "token", token: undefined, tokenFile: "/run/secrets/token" })
    expect(config.grpc).toEqual({ listen: "127.0.0.1:7000", inFlightPerTargetMax: 2, messageBytesMax: 65_536, replicationStream: false, writeOperationsMax: 10 })
    expect(config.http.listen).toBe("127.0.0.1:7001")
    expect(config.store).toMatchObject({ kind: "memory", path: "/srv/data", prefix: "inferadb/x", minFreeMb: 128 })
  })

  it("an environment variable overrides the file's security mode, and a bad one names the variable", () => {
    const file = withSections({ security: { mode: "insecure" } })
    expect(decodeOk(decodeSection(file, { INFERADB__ENGINE__REPLICATION__SECURITY__MODE: "token", INFERADB__ENGINE__REPLICATION__SECURITY__TOKEN: "t" })).security.mode).toBe(
      "token"
    )
    expectError(decodeError(decodeSection(file, { INFERADB__ENGINE__REPLICATION__SECURITY__MODE: "open" })), {
      path: "INFERADB__ENGINE__REPLICATION__SECURITY__MODE",
      value: '"open"',
      expected: "one of insecure, token, mtls"
    })
  })

  it("two variables that set the token to different values are an error that prints neither", () => {
    const error = decodeError(
      decodeSection(withSections({ security: { mode: "token" } }), {
        INFERADB__ENGINE__REPLICATION__SECURITY__TOKEN: "first-secret",
        INFERADB__REPLICATION__SECURITY__TOKEN: "second-secret"
      })
    )
    expect(error.message).not.toContain("first-secret")
    expect(error.message).not.toContain("second-secret")
  })

  it("the local examples authenticate regions with a development token", () => {
    const examplesDir = path.resolve(import.meta.dirname, "../../../examples")
    for (const file of ["active-active-us-west-1.yaml", "active-active-eu-central-1.yaml", "primary-replica.yaml", "multi-master.yaml"]) {
      const config = decodeOk(Config.parse(fs.readFileSync(path.join(examplesDir, file), "utf8")))
      expect(config.security.mode, file).toBe("token")
      expect(config.security.token, file).toBe("dev-token-change-me")
    }
  })
})

describe("Config: configurations that cannot work are refused, naming the key path", () => {
  const WEST = "us-west-1"
  const EUROPE = "eu-central-1"
  const ASIA = "ap-southeast-1"
  const withTargets = (targets: Record<string, ReadonlyArray<string>>, extra: Record<string, unknown> = {}): Record<string, any> => ({
    ...threeRegions(),
    replication_targets: targets,
    ...extra
  })

  describe("regions and replication targets", () => {
    it("a peer region whose zone declares no nodes is refused at that zone's nodes", () => {
      const section = twoRegions()
      section.regions[1].zones[0].nodes = []
      expectError(decodeError(decodeSection(section)), {
        path: "replication.regions[1].zones[0].nodes",
        value: "[]",
        expected: "at least one node"
      })
    })

    it("a peer region without zones is refused at its zones, while the local region may leave its nodes to grpc.listen", () => {
      const peerless = twoRegions()
      delete peerless.regions[1].zones
      expectError(decodeError(decodeSection(peerless)), { path: "replication.regions[1].zones", value: "(missing)", expected: "a zone with at least one node" })
      const localless = twoRegions()
      localless.regions[0].zones[0].nodes = []
      expect(decodeOk(decodeSection({ ...localless, grpc: { listen: "127.0.0.1:50051" } })).localRegion).toBe(WEST)
    })

    it("a region whose targets are empty or left out of replication_targets is refused: its writes would reach nobody", () => {
      expectError(decodeError(decodeSection({ ...twoRegions(), replication_targets: { [WEST]: [EUROPE], [EUROPE]: [] } })), {
        path: `replication.replication_targets.${EUROPE}`,
        value: "[]",
        expected: "at least one target region"
      })
      expectError(decodeError(decodeSection({ ...twoRegions(), replication_targets: { [WEST]: [EUROPE] } })), {
        path: `replication.replication_targets.${EUROPE}`,
        value: "(missing)"
      })
    })

    it("a single region needs no replication targets", () => {
      const section = twoRegions()
      section.regions.pop()
      expect(Topology.targetsOf(decodeOk(decodeSection(section)).topology, WEST)).toEqual([])
    })

    it("a replication graph that is not strongly connected is refused at the region that cannot reach another", () => {
      const section = withTargets({ [WEST]: [EUROPE], [EUROPE]: [WEST], [ASIA]: [WEST] })
      const error = decodeError(decodeSection(section))
      expectError(error, {
        path: `replication.replication_targets.${WEST}`,
        value: JSON.stringify([EUROPE]),
        expected: `it cannot reach '${ASIA}'`
      })
      expect(error.expected).toContain("strongly connected")
    })

    it("a one-way PrimaryReplica graph is refused too: a promoted replica could not reach the others", () => {
      const section = withTargets({ [WEST]: [EUROPE, ASIA], [EUROPE]: [ASIA], [ASIA]: [EUROPE] }, { strategy: "PrimaryReplica" })
      section.regions[0].is_primary = true
      expectError(decodeError(decodeSection(section)), { path: `replication.replication_targets.${EUROPE}`, expected: `cannot reach '${WEST}'` })
    })

    it("a ring and a star are strongly connected and accepted", () => {
      expect(decodeOk(decodeSection(withTargets({ [WEST]: [EUROPE], [EUROPE]: [ASIA], [ASIA]: [WEST] }))).enabled).toBe(true)
      expect(decodeOk(decodeSection(withTargets({ [WEST]: [EUROPE, ASIA], [EUROPE]: [WEST], [ASIA]: [WEST] }))).enabled).toBe(true)
    })
  })

  describe("residency sets", () => {
    const star = { [WEST]: [EUROPE, ASIA], [EUROPE]: [WEST], [ASIA]: [WEST] }
    const placed = (allowed: ReadonlyArray<string>, home = EUROPE) =>
      withTargets(star, { strategy: "MultiMaster", vaults: [{ id: "acme", home_region: home, allowed_regions: allowed }] })

    it("a residency set whose regions connect only through a region outside it is refused at its allowed regions", () => {
      // Europe reaches Asia only through us-west-1, where the vault may not be stored.
      const error = decodeError(decodeSection(placed([EUROPE, ASIA])))
      expectError(error, {
        path: "replication.vaults[0].allowed_regions",
        value: JSON.stringify([EUROPE, ASIA]),
        expected: `'${EUROPE}' cannot reach '${ASIA}'`
      })
    })

    it("an allowed region that cannot reach the home region is refused even when the home reaches it", () => {
      const section = withTargets(
        { [WEST]: [EUROPE], [EUROPE]: [ASIA], [ASIA]: [WEST] },
        { strategy: "MultiMaster", vaults: [{ id: "acme", home_region: WEST, allowed_regions: [WEST, EUROPE] }] }
      )
      expectError(decodeError(decodeSection(section)), {
        path: "replication.vaults[0].allowed_regions",
        expected: `'${EUROPE}' cannot reach '${WEST}'`
      })
    })

    it("residency sets the graph connects inside themselves are accepted, a single region included", () => {
      expect(decodeOk(decodeSection(placed([EUROPE, WEST]))).topology.vaults).toHaveLength(1)
      expect(decodeOk(decodeSection(placed([ASIA], ASIA)))).toBeDefined()
    })
  })

  describe("timers", () => {
    const overflow = 2 ** 31

    it.each([
      ["agent", "retry_delay_ms"],
      ["agent", "retry_delay_max_ms"],
      ["agent", "flush_delay_ms"],
      ["health", "lag_ms_max"],
      ["heartbeat", "interval_ms"],
      ["heartbeat", "timeout_ms"],
      ["failover", "detect_after_ms"],
      ["failover", "confirm_after_ms"]
    ])("%s.%s above 2^31-1 ms is refused: Node timers overflow", (sectionName, key) => {
      expectError(decodeError(decodeSection({ ...twoRegions(), [sectionName]: { [key]: overflow } })), {
        path: `replication.${sectionName}.${key}`,
        value: String(overflow),
        expected: "<= 2147483647 (milliseconds"
      })
    })

    it("a request timeout whose milliseconds exceed 2^31-1 is refused, and the largest one that fits is accepted", () => {
      expectError(decodeError(decodeSection({ ...twoRegions(), agent: { request_timeout_secs: 2_147_484 } })), {
        path: "replication.agent.request_timeout_secs",
        expected: "<= 2147483 (seconds"
      })
      expect(decodeOk(decodeSection({ ...twoRegions(), agent: { request_timeout_secs: 2_147_483 } })).agent.requestTimeoutMs).toBe(2_147_483_000)
    })

    it("2^31-1 ms itself is accepted, and an overflowing variable is refused naming the variable", () => {
      expect(decodeOk(decodeSection({ ...twoRegions(), heartbeat: { timeout_ms: FileSchema.timerMsMax } })).heartbeat.timeoutMs).toBe(2 ** 31 - 1)
      expectError(decodeError(decodeSection(twoRegions(), { INFERADB__ENGINE__REPLICATION__HEARTBEAT__TIMEOUT_MS: String(overflow) })), {
        path: "INFERADB__ENGINE__REPLICATION__HEARTBEAT__TIMEOUT_MS",
        expected: "<= 2147483647"
      })
    })
  })

  describe("file bytes", () => {
    const bytesOf = (text: string) => new TextEncoder().encode(text)
    /** The seed's quick start with `bad` in place of the space in "US West" (line 9). */
    const corrupted = (bad: ReadonlyArray<number>) => {
      const text = bytesOf(seedQuickStart)
      const at = seedQuickStart.indexOf("US West") + 2
      return { offset: at, bytes: new Uint8Array([...text.subarray(0, at), ...bad, ...text.subarray(at + 1)]) }
    }

    it("valid UTF-8 bytes, with or without a byte order mark, decode as the text does", () => {
      const expected = decodeOk(Config.parse(seedQuickStart))
      expect(decodeOk(Config.parseBytes(bytesOf(seedQuickStart)))).toEqual(expected)
      expect(decodeOk(Config.parseBytes(new Uint8Array([0xef, 0xbb, 0xbf, ...bytesOf(seedQuickStart)])))).toEqual(expected)
      expect(decodeOk(Config.parseBytes(bytesOf(seedQuickStart.replace("US West", "US Wést ✓ 🌍"))))).toBeDefined()
    })

    it.each([
      ["a stray continuation byte", [0x80]],
      ["an invalid byte", [0xff]],
      ["an overlong encoding of '/'", [0xc0, 0xaf]],
      ["an encoded surrogate", [0xed, 0xa0, 0x80]],
      ["a code point above U+10FFFF", [0xf4, 0x90, 0x80, 0x80]],
      ["a truncated sequence", [0xe2, 0x82]]
    ])("%s is refused naming its byte offset and line", (_name, bad) => {
      const { offset, bytes } = corrupted(bad)
      const line = seedQuickStart.slice(0, offset).split("\n").length
      const column = offset - seedQuickStart.lastIndexOf("\n", offset - 1)
      const error = decodeError(Config.parseBytes(bytes))
      expectError(error, { path: `yaml:${line}:${column}`, expected: "UTF-8 text" })
      expect(error.value).toContain(`0x${bad[0]!.toString(16)}`)
      expect(error.message).toContain(`byte offset ${offset}, line ${line}`)
    })

    it("a truncated sequence at the very end of the file is refused at its lead byte", () => {
      const text = bytesOf(seedQuickStart)
      const error = decodeError(Config.parseBytes(new Uint8Array([...text, 0xf0, 0x9f])))
      expect(error.message).toContain(`byte offset ${text.length}`)
    })
  })
})

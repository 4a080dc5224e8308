/**
 * The Store contract, run over every backend available here. Runtime backends (embedded,
 * FoundationDB) add themselves to `backends` in `test/runtime/Store.contract.test.ts` by
 * calling `contract` with their layer.
 */
import { describe } from "@effect/vitest"
import * as KvDriver from "../../src/replication/KvDriver.js"
import * as Store from "../../src/replication/Store.js"
import { contract } from "./fixtures/storeContract.js"

describe("Store over the memory driver", () => {
  contract(() => {
    const disk = KvDriver.makeMemoryDisk()
    return { layer: Store.layerMemory(disk), reopen: () => Store.layerMemory(disk) }
  })
})

/**
 * Bootstrap: a node whose disk is new or was wiped pages every peer's durable log with the
 * `CatchUp` protocol message and applies each page through `Replica.applyBatch`, so it gets
 * back the history its peers' agents will never resend (their cursors towards it moved on).
 * It runs over the abstract Network like every other exchange, so the simulator runs it
 * under faults and the determinism lint covers it.
 *
 * Sources: every other region (through the first of its nodes that answers) and, on per-node
 * stores, every sibling node of the region. Each page is applied as a batch from its source,
 * so entries keep the right `receivedFrom` and the agent forwards what it should.
 *
 * Applying is the ordinary merge (idempotent, commutative, causal per tuple), so it is safe
 * while peers' agents replicate to this node at the same time and safe to repeat. Progress per
 * source node is kept in the store as a pseudo cursor, so a bootstrap cut short resumes; a
 * source whose log is shorter than what was paged before lost its disk and is paged again
 * from the start. Completion is recorded once every source was paged to its log end; until
 * then the bootstrap keeps retrying the missing sources, backing off from `retryDelayMs` to `retryDelayMaxMs`. A node takes
 * client writes once it completed or `timeoutMs` passed (see `Engine.run`): a write before
 * that would not see the tuple's history, and so would be concurrent with it, not after it.
 */
import { Data, Duration, Effect, Either, Fiber, Stream } from "effect"
import type * as Agent from "./Agent.js"
import type { NetworkError, StoreError } from "./Errors.js"
import type * as Message from "./Message.js"
import * as Handoff from "./Handoff.js"
import * as Network from "./Network.js"
import * as Relay from "./Relay.js"
import * as Replica from "./Replica.js"
import * as Store from "./Store.js"
import * as Topology from "./Topology.js"
import * as TopologyManager from "./TopologyManager.js"

/** Bootstrap settings of one node. */
export interface Settings {
  readonly regionId: Topology.RegionId
  readonly nodeId: Topology.NodeId
  readonly storeShape: Agent.StoreShape
  /** Log positions asked for per page (the server caps it at `Replica.catchUpPageSizeMax`). */
  readonly pageSize: number
  /** Deadline of one CatchUp request. */
  readonly requestTimeoutMs: number
  /**
   * The longest deadline a pass grows to while its source has not answered yet (doubling from
   * `requestTimeoutMs` at each timeout); `requestTimeoutMs` when absent.
   */
  readonly requestTimeoutMaxMs?: number
  /** Pause before sources that did not answer are asked again; doubles each round up to `retryDelayMaxMs`. */
  readonly retryDelayMs: number
  readonly retryDelayMaxMs: number
}

/** The pseudo cursor that records a completed bootstrap (NUL never starts a target name). */
export const completionMarker = "\u0000bootstrap-complete"

/** The pseudo cursor that remembers how far a source node's log was paged. */
export const progressKey = (region: string, node: string): string => `\u0000bootstrap/${region}/${node}`

/**
 * The orphan tail pages a source slowly: at most `orphanPageSize` positions a page and
 * `orphanPageGapMs` between pages, up to 25,000 positions a second. The source reads and decodes
 * every position a page covers to find the few orphans, and the tail pages everything added since
 * its last round. Paged back to back in pages of 1,000, that was a burst every round: about
 * 175,000 positions 50 s into `bench:repl` with 30 s lag phases, which held the source's event
 * loop in 3-5 ms pieces for about a second and showed in the replication lag. Now a page holds it
 * for about a millisecond.
 */
export const orphanPageSize = 250
export const orphanPageGapMs = 10

/**
 * How many times a page is asked again after its request or answer was lost (it timed out), once
 * the node has answered a page of this pass. A lost message ended the whole pass over a source,
 * and the source then waited for the round's slowest source before it was asked again: a wiped
 * node paging four or five entries a page (a 2 KiB message bound) over links losing 1.2% of
 * messages lost a pass over most of its sources and paged them one after another for 20 s
 * (swarm seed 134001289: not converged 30 s after the heal). A node that never answered this
 * pass still fails at its first timeout, so an unreachable one holds the pass up no longer.
 */
export const pageRetriesMax = 2

/** The pseudo cursor of the orphan tail (see `tailOrphans`) per source node. */
const tailKey = (region: string, node: string): string => `\u0000orphans/${region}/${node}`

/**
 * Set when a bootstrap ran (this disk started empty) or a region paged later brought history:
 * its region may have had older disks whose stragglers are still on their way. Whether the
 * bootstrap received history does not tell: a disk wiped right after its first writes
 * bootstraps from peers whose logs are still empty while those writes are in flight to them
 * (swarm seed 400800), and it cannot tell itself from a brand-new cluster's disk. So every
 * bootstrapped disk runs the orphan tail; its answers are small and usually empty.
 */
export const rebuiltMarker = "\u0000rebuilt-disk"

/** One source: a region (any of its nodes) or a sibling node. */
interface Source {
  readonly key: string
  readonly region: Topology.RegionId
  readonly nodes: ReadonlyArray<Topology.Node>
}

/** What the bootstrap did, for the node's log. */
export interface Outcome {
  /** False when an earlier bootstrap completed: nothing was asked. */
  readonly ran: boolean
  /** Entries received and how many of them were new here. */
  readonly entries: number
  readonly applied: number
  /** Rounds it took until every source answered to its end. */
  readonly rounds: number
}

/**
 * The sources a disk pages: every other region of the topology, and under per-node stores every
 * sibling node. A region with no node known yet is a source not paged yet, not no source: under
 * DNS discovery a node whose first round failed knows no node at all, and its bootstrap completed
 * at once without paging anyone, which opened the writes of a fresh two-region primary disk in
 * its old epoch after the other region had been promoted (swarm seed 88000030 over
 * two-region-handback-pause.yaml with discovery: us-west-1 wiped during a DNS outage wrote in
 * epoch 0 after eu-central-1's epoch 1). It is paged once discovery brings its nodes.
 */
const sourcesOf = (topology: Topology.Topology, settings: Settings): ReadonlyArray<Source> => {
  const regions = topology.regions
    .filter((region) => region.id !== settings.regionId)
    .map((region) => ({ key: region.id, region: region.id, nodes: Topology.regionNodes(region) }))
  if (settings.storeShape === "shared") return regions
  const own = Topology.findRegion(topology, settings.regionId)
  const siblings = own === undefined ? [] : Topology.regionNodes(own).filter((node) => node.id !== settings.nodeId)
  return [...regions, ...siblings.map((node) => ({ key: Relay.siblingKey(settings.regionId, node.id), region: settings.regionId, nodes: [node] }))]
}

/** The gate a source's next heartbeat opens: any node of a region, or the sibling node itself. */
const heardFromSource = (topologies: TopologyManager.TopologyManager["Type"], source: Source) =>
  source.key === source.region || source.nodes.length !== 1 ? topologies.heardFrom(source.region) : topologies.heardFromNode(source.region, source.nodes[0]!.id)

/** Whether this node still has to bootstrap. */
export const needed: Effect.Effect<boolean, StoreError, Store.Store> = Effect.flatMap(Store.Store, (store) =>
  Effect.map(store.getCursor(completionMarker), (marker) => marker === 0)
)

/**
 * CatchUp pages a bootstrap keeps in flight to one source node. One page at a time, a wiped node
 * paging a few entries a page (a 2 KiB message bound) over 140-430 ms links paged 276 of a
 * 328-entry log in 30 s (swarm seed 143001247: not converged by the end of its budget). The pages
 * of a window ask consecutive ranges; a page the bound cuts short leaves a gap that the next window
 * asks first, and the progress cursor only moves over what was paged without a gap. The orphan
 * tail pages one at a time: it is meant to be slow.
 */
export const pagesInFlightMax = 4

/** Where the paging of one source node stands. */
interface Paging {
  /** The last log position paged without a gap before it (the progress cursor). */
  after: number
  /** Pages applied beyond a gap: first position asked after → last position covered. */
  readonly ahead: Map<number, number>
  /**
   * Positions asked per page. In a bootstrap it follows what pages within the bound cover: after a
   * window where the bound cut pages short, the fewest positions one of them covered, so that the
   * next pages come back whole (a page cut short leaves a gap that costs the next window a request
   * of its own); half as many again, up to the request limit, after a window whose pages all came
   * back whole, as entries differ in size.
   */
  span: number
  /** The request limit, halved below a page that came back too large for this node (it never grows back). */
  spanMax: number
  /** The source's log end at its last answer; undefined before its first. */
  logEnd: number | undefined
  answered: boolean
  /** Windows in a row that lost a page and moved nothing. */
  retries: number
  done: boolean
  /** The deadline of this pass's requests: doubled at each timeout before the source's first answer, up to `deadlineMaxMs`. */
  deadlineMs: number
  readonly deadlineMaxMs: number
}

/** The CatchUp requests of the next window: the gaps first, one request until the log end is known, at most `pagesInFlightMax`. */
const windowOf = (settings: Settings, paging: Paging, mode: Mode, origin: string): ReadonlyArray<Message.CatchUp> => {
  const count = mode._tag === "Orphans" || paging.logEnd === undefined ? 1 : pagesInFlightMax
  const requests: Array<Message.CatchUp> = []
  let from = paging.after
  while (requests.length < count && (requests.length === 0 || from < paging.logEnd!)) {
    const received = paging.ahead.get(from)
    if (received !== undefined) {
      from = received
      continue
    }
    const nextReceived = Math.min(...[...paging.ahead.keys()].filter((start) => start > from))
    const limit = Math.min(paging.span, nextReceived - from)
    requests.push({
      _tag: "CatchUp",
      fromRegion: settings.regionId,
      fromNode: settings.nodeId,
      afterPosition: from,
      limit,
      ...(mode._tag === "Orphans" ? { ownRegionOrphansOnly: true, knownOrigins: [origin] } : {})
    })
    from += limit
  }
  return requests
}

/**
 * Pages one source node's log to its end from the remembered position, applying each page.
 * Fails with a reason when the node does not answer or refuses: `Unreached` when it could not
 * be reached at all.
 */
const pageNode = (settings: Settings, region: string, node: Topology.Node, totals: Totals, mode: Mode = { _tag: "Bootstrap" }) =>
  Effect.gen(function* () {
    const network = yield* Network.Network
    const replica = yield* Replica.Replica
    const store = yield* Store.Store
    const progress = mode._tag === "Bootstrap" ? progressKey(region, node.id) : tailKey(region, node.id)
    let after = yield* Effect.mapError(store.getCursor(progress), (error) => error.message)
    // The tail starts where the bootstrap of that source ended.
    if (mode._tag === "Orphans" && after === 0) after = yield* Effect.mapError(store.getCursor(progressKey(region, node.id)), (error) => error.message)
    const peer = { regionId: region, nodeId: node.id, endpoint: node.endpoint }
    const span = mode._tag === "Orphans" ? Math.min(settings.pageSize, orphanPageSize) : settings.pageSize
    const deadlines = { deadlineMs: settings.requestTimeoutMs, deadlineMaxMs: Math.max(settings.requestTimeoutMs, settings.requestTimeoutMaxMs ?? 0) }
    const paging: Paging = { after, ahead: new Map(), span, spanMax: span, logEnd: undefined, answered: false, retries: 0, done: false, ...deadlines }
    const page = applyPage(region, node, totals)
    const ask = (requests: ReadonlyArray<Message.CatchUp>) =>
      Effect.map(Effect.forEach(requests, (request) => Effect.either(network.send(peer, request, paging.deadlineMs)), { concurrency: "unbounded" }), (answers) => ({ requests, answers }))
    let window = yield* ask(windowOf(settings, paging, mode, replica.origin))
    while (true) {
      const before = paging.after
      const taken = takeWindow(mode, paging, window.requests, window.answers)
      // The next window goes out before this one's pages are applied, so the source reads it
      // while this node applies (one window after another, each waited for both in turn). Not
      // in the orphan tail, which pages one page at a time, spaced.
      const next = paging.done || taken.failure !== undefined || mode._tag === "Orphans" ? undefined : yield* Effect.fork(ask(windowOf(settings, paging, mode, replica.origin)))
      const applied = yield* Effect.either(
        Effect.gen(function* () {
          yield* Effect.forEach(taken.pages, ({ asked, response }) => page(asked, response), { concurrency: "unbounded", discard: true })
          if (taken.failure !== undefined) return yield* Effect.fail(taken.failure)
          if (paging.after > before) yield* Effect.mapError(store.advanceCursor(progress, paging.after), (error) => error.message)
        })
      )
      if (Either.isLeft(applied)) {
        // The pass ends here; its next window's requests are abandoned, not left running beside the next source's.
        if (next !== undefined) yield* Fiber.interrupt(next)
        return yield* Effect.fail(applied.left)
      }
      if (paging.done) return
      if (next !== undefined) window = yield* Fiber.join(next)
      else {
        yield* Effect.sleep(Duration.millis(orphanPageGapMs))
        window = yield* ask(windowOf(settings, paging, mode, replica.origin))
      }
    }
  })

/**
 * Takes a window's answers in log order: the pages to apply, and the progress moved over what
 * was paged without a gap (the caller persists it once the pages are applied). A page that was
 * lost is asked again in the next window, up to `pageRetriesMax` windows in a row that move
 * nothing, once the node answered in this pass (one that never answered fails at its first
 * timeout, so an unreachable node holds the pass up no longer). Any other failure or refusal
 * fails the source, once the pages before it are applied.
 *
 * The pages of a window are applied together, started in log order, not one after another: each
 * apply waits for its commit to be durable, and one after another the window took a commit (an
 * fsync) per page while the source sat idle. Started together their transactions share group
 * commits. Applying is the ordinary merge (idempotent, commutative, causal per tuple), as for
 * batches an agent has in flight, so the order in which they finish does not matter.
 */
const takeWindow = (
  mode: Mode,
  paging: Paging,
  requests: ReadonlyArray<Message.CatchUp>,
  answers: ReadonlyArray<Either.Either<Message.Response, NetworkError>>
): { readonly pages: SortedWindow["pages"]; readonly failure?: string | Unreached } => {
  const before = paging.after
  const sorted = sortWindow(paging, requests, answers)
  if (sorted.failed !== undefined) return { pages: sorted.pages, failure: sorted.failed }
  if (sorted.restarted) {
    // A source whose log is shorter than what was paged before lost its disk: start it over.
    paging.after = 0
    paging.ahead.clear()
    return { pages: sorted.pages }
  }
  for (const { asked, response } of sorted.pages) paging.ahead.set(asked.afterPosition, response.endPosition)
  for (let next = paging.ahead.get(paging.after); next !== undefined; next = paging.ahead.get(paging.after)) {
    paging.ahead.delete(paging.after)
    paging.after = next
  }
  if (sorted.ended) paging.done = true
  if (paging.logEnd !== undefined && paging.after >= paging.logEnd) paging.done = true
  paging.span = nextSpan(mode, paging, sorted.covered)
  paging.retries = paging.after > before || sorted.lost === undefined ? 0 : paging.retries + 1
  if (sorted.lost !== undefined && paging.retries > pageRetriesMax) return { pages: sorted.pages, failure: `${sorted.lost.reason}: ${sorted.lost.message}` }
  return { pages: sorted.pages }
}

/** A window's answers sorted out: the pages to apply (in log order) and what the others say. */
interface SortedWindow {
  readonly pages: Array<{ readonly asked: Message.CatchUp; readonly response: Message.LogPage }>
  /** Pages that ended below the source's log end: how many positions each covered, and whether it was all that was asked. */
  readonly covered: Array<{ readonly positions: number; readonly whole: boolean }>
  /** A page lost on the way (a timeout once the node answered). */
  lost: NetworkError | undefined
  /** Why the source fails, after the pages before it are applied. */
  failed: string | Unreached | undefined
  /** The source's log is shorter than what was paged before. */
  restarted: boolean
  /** The page asked from the progress covered nothing: the source has nothing after it. */
  ended: boolean
}

/** Sorts a window's answers in log order, up to the first that fails the source or restarts it; updates what the node said of itself. */
const sortWindow = (paging: Paging, requests: ReadonlyArray<Message.CatchUp>, answers: ReadonlyArray<Either.Either<Message.Response, NetworkError>>): SortedWindow => {
  const sorted: SortedWindow = { pages: [], covered: [], lost: undefined, failed: undefined, restarted: false, ended: false }
  for (const [index, sent] of answers.entries()) {
    const asked = requests[index]!
    if (Either.isLeft(sent)) {
      // A page above the message bound (`grpc.max_message_bytes` of either end) is asked again
      // half as long, down to one entry: asked again as it was, it failed again, and a wiped
      // node never finished its bootstrap once one page of its source's log was too large.
      if (sent.left.reason === "TooLarge" && asked.limit > 1) paging.spanMax = Math.min(paging.spanMax, Math.ceil(asked.limit / 2))
      else if (sent.left.reason === "Timeout" && paging.answered) sorted.lost = sent.left
      else if (sent.left.reason === "Timeout" && paging.deadlineMs < paging.deadlineMaxMs) {
        // No answer yet: asked again with twice the deadline, as the heartbeater does. With a
        // fixed deadline a source whose round trip (a new connection's handshake included) was
        // just above it timed out on every pass, for good (swarm seed 198000000 over
        // graceful-stop-late-ack.yaml: 300 ms links, a 1 s deadline, a rebuilt disk never paged).
        paging.deadlineMs = Math.min(2 * paging.deadlineMs, paging.deadlineMaxMs)
        sorted.lost = sent.left
      }
      else sorted.failed = sent.left.reason === "Unreachable" ? new Unreached({ message: `${sent.left.reason}: ${sent.left.message}` }) : `${sent.left.reason}: ${sent.left.message}`
    } else if (sent.right._tag === "Refused") sorted.failed = `refused (${sent.right.reason}): ${sent.right.message}`
    else if (sent.right._tag !== "LogPage") sorted.failed = `unexpected answer ${sent.right._tag}`
    else {
      const response = sent.right
      paging.answered = true
      paging.logEnd = response.logEnd
      if (response.logEnd < paging.after) sorted.restarted = true
      else if (response.endPosition > asked.afterPosition) sorted.pages.push({ asked, response })
      else if (asked.afterPosition === paging.after) sorted.ended = true
      if (response.endPosition < response.logEnd) sorted.covered.push({ positions: response.endPosition - asked.afterPosition, whole: response.endPosition - asked.afterPosition >= asked.limit })
    }
    if (sorted.failed !== undefined || sorted.restarted) break
  }
  return sorted
}

/**
 * The span of the next window of a bootstrap. Not in the orphan tail: there the bound counts only
 * the few orphans a page holds, so a page cut short says nothing of the next one, and a narrowed
 * span paged a 310-entry log one position a page (swarm seed 145000478: not converged).
 */
const nextSpan = (mode: Mode, paging: Paging, covered: ReadonlyArray<{ readonly positions: number; readonly whole: boolean }>): number => {
  if (mode._tag === "Orphans" || covered.length === 0) return Math.min(paging.span, paging.spanMax)
  const cut = covered.filter((page) => !page.whole)
  if (cut.length > 0) return Math.min(paging.spanMax, Math.max(1, Math.min(...cut.map((page) => page.positions))))
  return Math.min(paging.spanMax, paging.span + Math.ceil(paging.span / 2))
}

/** Applies one page as a batch from its source. */
const applyPage = (region: string, node: Topology.Node, totals: Totals) => (asked: Message.CatchUp, response: Message.LogPage) =>
  Effect.gen(function* () {
    if (response.entries.length === 0) return
    const replica = yield* Replica.Replica
    const batch = {
      _tag: "ReplicateBatch",
      batchId: `bootstrap:${region}/${node.id}:${asked.afterPosition + 1}-${response.endPosition}`,
      fromRegion: region,
      fromNode: node.id,
      changes: response.entries.map((entry) => entry.change)
    } as const
    const ack = yield* Effect.mapError(replica.applyBatch(batch), (error) => `applying a page failed: ${error.message}`)
    totals.entries += response.entries.length
    totals.applied += ack.applied
  })

/** What was received so far. */
interface Totals {
  entries: number
  applied: number
}

/** A bootstrap pages whole logs; the orphan tail only asks for the region's changes under unknown origins. */
type Mode = { readonly _tag: "Bootstrap" } | { readonly _tag: "Orphans" }

/** A source node that could not be reached at all (nothing listening, no route): its next heartbeat is the cue to ask again. */
class Unreached extends Data.TaggedClass("Unreached")<{ readonly message: string }> {}

/**
 * Pages a source through the first of its nodes that answers to the end: "paged", or
 * "unreached" when none of its nodes could be reached at all, or "failed".
 */
const pageSource = (settings: Settings, source: Source, totals: Totals, mode: Mode = { _tag: "Bootstrap" }) =>
  Effect.gen(function* () {
    let unreached = true
    for (const node of source.nodes) {
      const outcome = yield* Effect.either(pageNode(settings, source.region, node, totals, mode))
      if (Either.isRight(outcome)) return "paged" as const
      unreached &&= typeof outcome.left !== "string"
      yield* Effect.logDebug(`bootstrap from ${source.region}/${node.id} stopped: ${typeof outcome.left === "string" ? outcome.left : outcome.left.message}`)
    }
    return unreached ? ("unreached" as const) : ("failed" as const)
  })

/** The pseudo cursor that records that a source was paged to its end by this disk's bootstrap. */
const pagedKey = (source: string): string => `\u0000bootstrap-paged/${source}`

/** Set once this disk records paged sources (disks bootstrapped before it recorded none). */
const pagedRecordedMarker = "\u0000bootstrap-paged-recorded"

/** How many times a bootstrap of this disk has started (each start of a node whose bootstrap had not completed). */
const attemptKey = "\u0000bootstrap-attempt"

/**
 * Pages the sources of the current topology that this disk has not paged in attempt `attempt`
 * or later, all at once, in rounds `retryDelayMs` apart (backing off), until each answered to
 * its end; each is recorded as paged in `attempt`. Returns what was received and the rounds it
 * took.
 */
const pageMissingSources = (settings: Settings, attempt: number) =>
  Effect.gen(function* () {
    const store = yield* Store.Store
    const topologies = yield* TopologyManager.TopologyManager
    const totals: Totals = { entries: 0, applied: 0 }
    const missing = Effect.flatMap(topologies.current, (topology) =>
      Effect.filter(sourcesOf(topology, settings), (source) => Effect.map(store.getCursor(pagedKey(source.key)), (paged) => paged < attempt))
    )
    // Rounds in a row that received nothing: the backoff grows with them only. Grown with every
    // round, a bootstrap that paged a little each round before a lost message cut it short
    // waited ever longer between rounds that made progress (swarm seed 129000865: a wiped node
    // paging four entries a page under a 2 KiB bound over links losing 4% of messages converged
    // 35 s after the heal, past the seed's budget; 9 s without the bound).
    let idleRounds = 0
    for (let round = 1; ; round++) {
      const entriesBefore = totals.entries
      const pending = yield* missing
      // All at once: one after another, a source that does not answer held up the rest for its
      // request timeout. Swarm seed 72000107 over `chaos-primary-pause.yaml`: the acting primary's
      // disk was wiped 690 ms after its promotion; its bootstrap asked the cut-off old primary
      // first and the third region, which held the promotion record, only after that region had
      // crashed, so the old primary, which never heard of the promotion, came back with the
      // wiped node's vote in its old epoch while the record sat on a crashed disk.
      const unreached = new Set<string>()
      yield* Effect.forEach(
        pending,
        (source) =>
          Effect.flatMap(pageSource(settings, source, totals), (outcome) =>
            outcome === "paged" ? store.advanceCursor(pagedKey(source.key), attempt) : Effect.sync(() => void (outcome === "unreached" && unreached.add(source.key)))
          ),
        { concurrency: "unbounded", discard: true }
      )
      const left = yield* missing
      if (left.length === 0) return { totals, rounds: round }
      idleRounds = totals.entries > entriesBefore ? 0 : idleRounds + 1
      const waitMs = Math.min(settings.retryDelayMs * 2 ** Math.min(Math.max(idleRounds - 1, 0), 20), settings.retryDelayMaxMs)
      if (round === 1) yield* Effect.logInfo(`bootstrap: ${left.map((source) => source.key).join(", ")} did not answer to the end yet; retrying`)
      // A source that could not be reached is asked again at its first heartbeat (its own or its
      // answer to ours), not after the rest of the backoff: a source back from an outage was
      // paged up to `retryDelayMaxMs` (10 s) later, all that while a fresh primary disk of two
      // regions took no write and a wiped node answered heartbeats without the epochs that
      // source holds. A source that answered and refused waits the backoff: its heartbeats would
      // only repeat the refusal.
      const cued = left.filter((source) => unreached.has(source.key))
      yield* Effect.flatMap(Effect.forEach(cued, (source) => heardFromSource(topologies, source)), (gates) => Handoff.awaitAny(gates, waitMs))
    }
  })

/**
 * Runs the bootstrap to completion unless an earlier one completed: rounds over the sources
 * that have not answered to their end yet, `retryDelayMs` apart. Fails only on a store failure
 * (the Engine runs it again: it resumes from the progress it recorded).
 */
export const run = (
  settings: Settings
): Effect.Effect<Outcome, StoreError, Replica.Replica | Store.Store | Network.Network | TopologyManager.TopologyManager> =>
  Effect.gen(function* () {
    if (!(yield* needed)) return { ran: false, entries: 0, applied: 0, rounds: 0 }
    const store = yield* Store.Store
    yield* store.advanceCursor(pagedRecordedMarker, 1)
    // Every start of an unfinished bootstrap pages every source again (from where its page
    // cursor stopped, so only what is new): a source paged to its end before this node went down
    // may hold more now. In a two-region deployment a fresh primary disk takes writes only once
    // its bootstrap has paged the other region, which brings any newer epoch record; a source
    // counted as paged from before a crash let it take writes in its old epoch after the other
    // region was promoted meanwhile (swarm seed 26000758).
    const attempt = (yield* store.getCursor(attemptKey)) + 1
    yield* store.advanceCursor(attemptKey, attempt)
    const { rounds, totals } = yield* pageMissingSources(settings, attempt)
    yield* store.advanceCursor(rebuiltMarker, 1)
    yield* store.advanceCursor(completionMarker, 1)
    yield* Effect.logInfo(`bootstrap complete after ${rounds} round(s): ${totals.entries} entries received, ${totals.applied} new`)
    return { ran: true, entries: totals.entries, applied: totals.applied, rounds }
  })

/**
 * After the bootstrap: pages every region that joins this node's topology later and that this
 * disk never paged. A region removed from the deployment (a `topology` fault, a config reload)
 * is no bootstrap source, so a disk rebuilt while it was away completes without its log; when
 * it is added back, its agents resume from cursors that moved past everything the lost disk
 * had acknowledged, and relay never sends a change back to its origin region, so without this
 * the rebuilt disk would miss that history for good. A disk that paged the region before (or
 * a never-wiped disk, which paged it at its start) does nothing. Disks bootstrapped before the
 * paged sources were recorded count their current sources as paged. `onRebuilt` runs (forked)
 * when such a page first marks the disk as rebuilt: the caller starts the orphan tail then.
 */
export const followSources = <R>(
  settings: Settings,
  onRebuilt: Effect.Effect<void, never, R>
): Effect.Effect<void, StoreError, Replica.Replica | Store.Store | Network.Network | TopologyManager.TopologyManager | R> =>
  Effect.gen(function* () {
    const store = yield* Store.Store
    const topologies = yield* TopologyManager.TopologyManager
    if ((yield* store.getCursor(pagedRecordedMarker)) === 0) {
      for (const source of sourcesOf(yield* topologies.current, settings)) yield* store.advanceCursor(pagedKey(source.key), 1)
      yield* store.advanceCursor(pagedRecordedMarker, 1)
    }
    yield* Stream.runForEach(topologies.changes, () =>
      Effect.gen(function* () {
        // Sources this disk never paged in any attempt.
        const { totals } = yield* pageMissingSources(settings, 1)
        if (totals.entries === 0) return
        // History that reached this disk only now: its region may have had older disks, as after a bootstrap.
        if (totals.applied > 0 && (yield* store.getCursor(rebuiltMarker)) === 0) {
          yield* store.advanceCursor(rebuiltMarker, 1)
          yield* Effect.fork(onRebuilt)
        }
        yield* Effect.logInfo(`bootstrap of a region that joined later: ${totals.entries} entries received, ${totals.applied} new`)
      })
    )
  })

/**
 * The orphan tail of a rebuilt disk: a change its region's old disk sent out just before it
 * was lost can reach a peer after this node's bootstrap paged that peer (a batch a paused peer
 * commits late, or a peer that was down during the bootstrap and held the only copy), and relay
 * never sends a change back to its origin region. So a node whose disk bootstrapped keeps
 * asking every peer, every `intervalMs`, for changes of its region under origins it does not
 * know, from where its bootstrap ended. Each answer is small (usually empty); a disk whose
 * bootstrap completed under an older version (which marked only bootstraps that found
 * history) asks only once a region paged later brings history (`followSources`).
 */
export const tailOrphans = (
  settings: Settings & { readonly intervalMs: number }
): Effect.Effect<void, StoreError, Replica.Replica | Store.Store | Network.Network | TopologyManager.TopologyManager> =>
  Effect.gen(function* () {
    const store = yield* Store.Store
    if ((yield* store.getCursor(rebuiltMarker)) === 0) return
    const topologies = yield* TopologyManager.TopologyManager
    const totals: Totals = { entries: 0, applied: 0 }
    while (true) {
      yield* Effect.sleep(Duration.millis(settings.intervalMs))
      const before = totals.applied
      for (const source of sourcesOf(yield* topologies.current, settings)) yield* pageSource(settings, source, totals, { _tag: "Orphans" })
      if (totals.applied > before) yield* Effect.logInfo(`orphan tail: ${totals.applied - before} change(s) of this region's earlier disks arrived late and were applied`)
    }
  })

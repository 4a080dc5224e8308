/**
 * The world's building blocks: the event queue orders by (time, sequence) and forgets
 * cancelled events; the trace hash is 64-bit FNV-1a; a node program runs on its scheduler
 * with virtual time, and interrupting a sleeping fiber removes its timer.
 */
import { Deferred, Effect, Either, Fiber, FiberId } from "effect"
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import type * as Message from "../../src/replication/Message.js"
import type * as Network from "../../src/replication/Network.js"
import * as Random from "../../src/replication/Random.js"
import { EventQueue, type Event } from "../../src/sim/EventQueue.js"
import { NodeScheduler } from "../../src/sim/Scheduler.js"
import * as SimClock from "../../src/sim/SimClock.js"
import * as SimNetwork from "../../src/sim/SimNetwork.js"
import { TraceHash } from "../../src/sim/TraceHash.js"
import { World } from "../../src/sim/World.js"

const event = (timeMs: number, sequence: number): Event => ({ timeMs, sequence, kind: "k", node: "n", detail: "", run: () => {}, cancelled: false })

/** FNV-1a 64 with BigInt, as a reference. */
const referenceFnv = (bytes: ReadonlyArray<number>): string => {
  let hash = 0xcbf29ce484222325n
  for (const byte of bytes) hash = ((hash ^ BigInt(byte)) * 0x100000001b3n) & 0xffffffffffffffffn
  return hash.toString(16).padStart(16, "0")
}

describe("EventQueue", () => {
  it("pops live events by time, then by scheduling order", () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 20 }), fc.boolean()), { maxLength: 200 }), (entries) => {
        const queue = new EventQueue()
        const events = entries.map(([time], index) => event(time, index))
        for (const each of events) queue.push(each)
        entries.forEach(([, cancel], index) => cancel && queue.cancel(events[index]!))
        const popped: Array<Event> = []
        for (let next = queue.pop(); next !== undefined; next = queue.pop()) popped.push(next)
        const expected = events.filter((each) => !each.cancelled).sort((a, b) => a.timeMs - b.timeMs || a.sequence - b.sequence)
        expect(popped).toEqual(expected)
      })
    )
  })

  it("interleaved pushes, cancels and pops give what a sorted list of the live events gives", () => {
    const step = fc.oneof(
      fc.record({ push: fc.integer({ min: 0, max: 30 }) }),
      fc.record({ cancel: fc.nat() }),
      fc.constant({ pop: true as const })
    )
    fc.assert(
      fc.property(fc.array(step, { maxLength: 300 }), (steps) => {
        const queue = new EventQueue()
        const live: Array<Event> = []
        let sequence = 0
        for (const each of steps) {
          if ("push" in each) {
            const pushed = event(each.push, sequence++)
            queue.push(pushed)
            live.push(pushed)
          } else if ("cancel" in each) {
            const cancelled = live.splice(each.cancel % Math.max(1, live.length), 1)[0]
            if (cancelled !== undefined) queue.cancel(cancelled)
          } else {
            live.sort((a, b) => a.timeMs - b.timeMs || a.sequence - b.sequence)
            expect(queue.pop()).toBe(live.shift())
          }
          expect(queue.size).toBe(live.length)
        }
      })
    )
  })
})

describe("TraceHash", () => {
  it("is 64-bit FNV-1a over the bytes of each part and a separator", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 64 }), (bytes) => {
        expect(new TraceHash().bytes(Uint8Array.from(bytes)).hex()).toBe(referenceFnv([...bytes, 0x1f]))
      })
    )
    expect(new TraceHash().hex()).toBe("cbf29ce484222325")
  })

  it("folds strings two bytes per code unit above 0xff and integers as four bytes, chained, as the reference does", () => {
    const stringBytes = (text: string): Array<number> => {
      const out: Array<number> = []
      for (let index = 0; index < text.length; index++) {
        const code = text.charCodeAt(index)
        out.push(code & 0xff)
        if (code > 0xff) out.push((code >>> 8) & 0xff)
      }
      return [...out, 0x1f]
    }
    const integerBytes = (value: number): Array<number> => [value & 0xff, (value >>> 8) & 0xff, (value >>> 16) & 0xff, (value >>> 24) & 0xff]
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.string({ unit: "binary" }), fc.nat()), { maxLength: 12 }), (parts) => {
        const hash = new TraceHash()
        const bytes: Array<number> = []
        for (const part of parts) {
          if (typeof part === "string") {
            hash.string(part)
            bytes.push(...stringBytes(part))
          } else {
            hash.integer(part)
            bytes.push(...integerBytes(part))
          }
        }
        expect(hash.hex()).toBe(referenceFnv(bytes))
      })
    )
    // Every bit of the state reaches the output: a long run of 0xff bytes wraps every limb.
    expect(new TraceHash().bytes(new Uint8Array(1000).fill(0xff)).hex()).toBe(referenceFnv([...new Array<number>(1000).fill(0xff), 0x1f]))
  })
})

describe("World", () => {
  const setup = () => {
    const world = new World({ random: Random.make(1).derive("scheduler") })
    const scheduler = new NodeScheduler("n1", 0, Random.make(1).derive("yield"))
    world.attach(scheduler)
    const clock = SimClock.make(world, { name: "n1", alive: () => !scheduler.dead, whenRunning: (kind, callback) => scheduler.whenRunning(kind, callback) })
    const fork = <A, E>(program: Effect.Effect<A, E>) => Effect.runFork(program.pipe(Effect.withClock(clock), Effect.withScheduler(scheduler)), { scheduler, immediate: false })
    return { world, scheduler, clock, fork }
  }

  it("a node's direct monotonic reading is the one its nanosecond clock gives, at any time and drift", () => {
    // `Clock.monotonicMs` reads `unsafeMonotonicMs` where a clock has it: it must give the same number.
    fc.assert(
      fc.property(fc.double({ min: 0, max: 1e7, noNaN: true }), fc.integer({ min: -2_000, max: 2_000 }), (nowMs, driftPpm) => {
        const world = new World({ random: Random.make(1).derive("scheduler") })
        world.nowMs = nowMs
        const clock = SimClock.make(world, { name: "n1", alive: () => true }, new SimClock.PhysicalClock(0, driftPpm))
        expect(clock.unsafeMonotonicMs()).toBe(Number(clock.unsafeCurrentTimeNanos() / 1_000n) / 1_000)
      }),
      { numRuns: 2_000 }
    )
  })

  it("a node program sleeps in virtual time and its forked children run on the same scheduler", () => {
    const { world, scheduler, fork } = setup()
    const seen: Array<number> = []
    const fiber = fork(
      Effect.gen(function* () {
        const child = yield* Effect.fork(Effect.zipRight(Effect.sleep(100), Effect.sync(() => seen.push(world.nowMs))))
        yield* Effect.sleep(250)
        seen.push(world.nowMs)
        yield* Fiber.join(child)
        return "done"
      })
    )
    expect(world.run(10_000)).toBe("idle")
    expect(seen).toEqual([100, 250])
    expect(fiber.unsafePoll()).toEqual(expect.objectContaining({ _tag: "Success", value: "done" }))
    expect(scheduler.ran).toBe(world.tasks)
  })

  it("a timeout cancels the slower sleep, so no timer is left behind", () => {
    const { world, fork } = setup()
    fork(Effect.timeout(Effect.sleep(10_000), "50 millis"))
    expect(world.run(100_000)).toBe("idle")
    expect(world.nowMs).toBe(50)
    expect(world.queued).toBe(0)
  })

  it("a paused scheduler runs nothing until it resumes; a crashed one interrupts its fibers", () => {
    const { world, scheduler, fork } = setup()
    const fiber = fork(Effect.forever(Effect.sleep(10)))
    scheduler.pause()
    expect(world.run(1_000)).toBe("idle")
    expect(world.tasks).toBe(0)
    scheduler.resume()
    world.run(1_000)
    expect(world.tasks).toBeGreaterThan(0)
    scheduler.crash()
    expect(fiber.unsafePoll()?._tag).toBe("Failure")
  })

  // A fiber that waits, uninterruptibly, for one that a crash ended never finishes its
  // interruption. Effect kept such fibers among its roots for ever, and with them the world
  // they ran in: a swarm process grew by about a megabyte per seed.
  it("a crash lets go of the fibers whose interruption cannot finish, so nothing keeps its world alive", () => {
    const { world, scheduler, fork } = setup()
    const never = Deferred.unsafeMake<void>(FiberId.none)
    const stuck = fork(Effect.uninterruptible(Deferred.await(never)))
    const sleeper = fork(Effect.forever(Effect.sleep(10)))
    world.run(100)
    expect(Fiber.unsafeRoots()).toEqual(expect.arrayContaining([stuck, sleeper]))
    scheduler.crash()
    expect(sleeper.unsafePoll()?._tag).toBe("Failure")
    expect(stuck.unsafePoll()).toBeNull()
    expect(Fiber.unsafeRoots()).not.toContain(stuck)
    expect(Fiber.unsafeRoots()).not.toContain(sleeper)
  })
  // A Node process continued after SIGSTOP runs its expired timers before it reads its sockets
  // (libuv's poll, cut short by the stop, finds its timeout passed). The simulator used to take
  // in, at resume, an answer that came before its request's deadline though the deadline had
  // passed too; on real processes that request fails.
  it("a paused node's timers that expired fire at resume, before the messages that arrived are handed back, whatever their order", () => {
    const { world, scheduler, clock } = setup()
    const order: Array<string> = []
    scheduler.pause()
    clock.schedule(300, () => order.push(`timer at ${world.nowMs}`))
    world.schedule(100, "deliver", "n1", "", () => scheduler.whenRunning("message", () => order.push(`message at ${world.nowMs}`)))
    world.schedule(500, "resume", "world", "", () => {
      for (const message of scheduler.resume()) message()
    })
    expect(world.run(10_000)).toBe("idle")
    expect(order).toEqual(["timer at 500", "message at 500"])
  })

  it("a request whose answer and deadline both came while its sender was paused times out at resume, as on a real process", () => {
    const world = new World({ random: Random.make("pause").derive("scheduler") })
    const link: SimNetwork.Link = { latency: { kind: "fixed", ms: 10 }, loss: 0, duplicate: 0 }
    const network = new SimNetwork.SimNetwork(world, Random.make("pause").derive("network"), { remote: link, local: link, links: [] })
    const caller = new NodeScheduler("us-1", 0, Random.make(1).derive("yield"))
    world.attach(caller)
    const callerHost: SimNetwork.Host = { name: "us-1", alive: () => !caller.dead, whenRunning: (kind, callback) => caller.whenRunning(kind, callback), fork: () => undefined }
    const calleeHost: SimNetwork.Host = { name: "eu-1", alive: () => true, whenRunning: (_kind, callback) => callback(), fork: (effect, onExit) => onExit(Effect.runSyncExit(effect)) }
    const sender: Network.Peer = { regionId: "us", nodeId: "us-1", endpoint: "us-1:1" }
    const receiver: Network.Peer = { regionId: "eu", nodeId: "eu-1", endpoint: "eu-1:1" }
    const unavailable: Message.Response = { _tag: "Refused", reason: "Unavailable", message: "" }
    network.register(receiver, calleeHost, () => Effect.succeed(unavailable))
    const outcomes = (pausedUntilMs: number | undefined): Array<string> => {
      const seen: Array<string> = []
      const startMs = world.nowMs
      network.call(sender, callerHost, receiver, unavailable as unknown as Message.Request, 200, (answer) => seen.push(Either.isRight(answer) ? `answer at ${world.nowMs - startMs}` : "malformed"), () => seen.push(`timeout at ${world.nowMs - startMs}`))
      if (pausedUntilMs !== undefined) {
        world.schedule(startMs + 1, "pause", "world", "", () => caller.pause())
        world.schedule(startMs + pausedUntilMs, "resume", "world", "", () => {
          for (const message of caller.resume()) message()
        })
      }
      world.run(startMs + 5_000)
      return seen
    }
    // Connecting takes one round trip (20 ms), the request and its answer another.
    expect(outcomes(undefined)).toEqual(["answer at 40"])
    // Connected now. Resumed before the deadline: the answer that came at 20 ms is taken in then.
    expect(outcomes(150)).toEqual(["answer at 150"])
    // Paused past the deadline: the answer came at 20 ms, the deadline at 200 ms; the deadline wins.
    expect(outcomes(1_000)).toEqual(["timeout at 1000"])
  })
})

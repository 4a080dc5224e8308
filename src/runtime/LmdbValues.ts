/**
 * The bytes of the values one group commit hands to lmdb, written into one reused buffer.
 *
 * lmdb-js turns a string value into a Buffer of its own on every `put` (`Buffer.from`: a typed
 * array on the heap and a slice of an 8 KiB pool off it), and keeps it until its writer thread
 * has copied the bytes into the LMDB transaction. Two puts per change made that about a sixth of
 * what the origin allocated per change in `bench:repl` (a sampling allocation profile, December
 * 2026). Here each value is written as UTF-8 into a buffer that lives as long as the store, and
 * lmdb is given the buffer itself with the value's `start` and `end` in it: lmdb-js reads a
 * value from a buffer with those two properties without copying it (the path msgpackr's reused
 * buffers take, in lmdb-js 3.5.6's `writeInstructions`; `test/runtime/Store.contract.test.ts` reads
 * every value back, so a version that ignored them would fail there, not silently).
 *
 * Safe because `GroupCommit` has one LMDB transaction in flight at a time: its values are never
 * overwritten before lmdb has committed it (`reset` is called only when the next group is handed
 * over, after that). A group that does not fit moves on to a larger buffer; the smaller one stays
 * with lmdb, which holds every value's buffer until it has written it. After a failed commit the
 * buffer is replaced rather than reused, since lmdb's state after a failure is not ours to know.
 */
import { asBinary } from "lmdb"

/** The first buffer's size: a group of 16 client writes of 100 changes takes about 800 KB. */
const initialBytes = 1 << 20
/** A buffer grown beyond this by one large group is given back at the next hand-over. */
const keptBytesMax = 8 << 20

/** A Buffer as lmdb-js reads a reused one: the value is `[start, end)`. */
type Region = Buffer & { start: number; end: number }

const allocate = (bytes: number): Region => Object.assign(Buffer.allocUnsafeSlow(bytes), { start: 0, end: 0 })

export class LmdbValues {
  private region = allocate(initialBytes)
  private wrapped = asBinary(this.region)
  private used = 0

  /** Starts a group: the previous group is committed, so its bytes may be written over. */
  reset(): void {
    if (this.region.length > keptBytesMax) this.replace(initialBytes)
    this.used = 0
  }

  /** After a failed commit: a buffer lmdb can no longer be reading. */
  discard(): void {
    this.replace(initialBytes)
  }

  /** The value to give lmdb's `put` for `text`: its UTF-8 bytes, valid until the next `reset`. */
  bytesOf(text: string): ReturnType<typeof asBinary> {
    // A UTF-16 code unit takes at most three bytes in UTF-8, so most values need no exact count.
    if (this.used + text.length * 3 > this.region.length) {
      const bytes = Buffer.byteLength(text, "utf8")
      if (this.used + bytes > this.region.length) this.replace(Math.max(this.region.length * 2, bytes))
    }
    const region = this.region
    const written = region.write(text, this.used, "utf8")
    region.start = this.used
    region.end = this.used + written
    this.used += written
    return this.wrapped
  }

  private replace(bytes: number): void {
    this.region = allocate(bytes)
    this.wrapped = asBinary(this.region)
    this.used = 0
  }
}

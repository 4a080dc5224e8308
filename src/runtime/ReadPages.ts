/**
 * Pages of the public Read API. A resource may hold more tuples than one message may carry (the
 * server's `grpc.max_message_bytes`, 16 MiB by default, as low as 1 KiB), and a Read that
 * answered them all at once failed RESOURCE_EXHAUSTED for good. So a Read looks at most
 * `page_size` stored tuples after its `page_token`, keeps those that exist, stops before the
 * answer would pass the bound, and names where to go on (`next_page_token`).
 */
import * as Tuple from "../replication/Tuple.js"
import * as WireCodec from "../replication/WireCodec.js"

/** Stored tuples a page looks at when the request names no page size. */
export const pageSizeDefault = 1_000
/** The most a request may ask a page to look at. */
export const pageSizeMax = 10_000

/** The page size a request gets: its own within the cap, or the default. */
export const pageSizeOf = (requested: number): number => (requested === 0 ? pageSizeDefault : Math.min(requested, pageSizeMax))

/** The token that goes on after `tuple`: its key, base64url (opaque to clients). */
export const tokenOf = (tuple: Tuple.Tuple): string => Buffer.from(Tuple.key(tuple), "utf8").toString("base64url")

/** The tuple a token goes on after, or undefined when the token is not one `tokenOf` made. */
export const afterToken = (token: string): Tuple.Tuple | undefined => {
  if (!/^[A-Za-z0-9_-]+$/.test(token)) return undefined
  const parts = Buffer.from(token, "base64url").toString("utf8").split("\u0000")
  const [vault, resource, relation, subject] = parts
  if (parts.length !== 4 || vault === undefined || resource === undefined || relation === undefined || subject === undefined) return undefined
  return { vault, resource, relation, subject }
}

/** An upper bound of one tuple's bytes in a ReadResponse: four strings and the message's own tag and length. */
const tupleBytes = (tuple: Tuple.Tuple): number =>
  6 + [tuple.vault, tuple.resource, tuple.relation, tuple.subject].reduce((sum, part) => sum + 6 + Buffer.byteLength(part, "utf8"), 0)

/**
 * The leading tuples whose answer stays within `bytesMax` (with room for the token and
 * `WireCodec.messageReserveBytes`; at least one, so a read never stalls), and the last one kept
 * when some had to wait for the next page.
 */
export const fitting = (tuples: ReadonlyArray<Tuple.Tuple>, bytesMax: number): { readonly kept: ReadonlyArray<Tuple.Tuple>; readonly endsAt: Tuple.Tuple | undefined } => {
  let bytes = WireCodec.messageReserveBytes
  for (let index = 0; index < tuples.length; index++) {
    const tuple = tuples[index]!
    bytes += tupleBytes(tuple)
    // The token that would name this tuple: base64 of its key, a third longer.
    const tokenBytes = 6 + Math.ceil((Buffer.byteLength(Tuple.key(tuple), "utf8") * 4) / 3)
    if (index > 0 && bytes + tokenBytes > bytesMax) return { kept: tuples.slice(0, index), endsAt: tuples[index - 1] }
  }
  return { kept: tuples, endsAt: undefined }
}

/**
 * The canonical order of a protocol map (`messages.proto`'s `map<string, uint64>` fields): a
 * record with its keys put in sorted order. Both encoders of the wire take a map's entries in
 * the order of such a record (the generated ones through `Object.entries`, `BatchEncoder`
 * through `Object.keys`), so one message always has one byte form.
 */

/** A copy of a string-keyed record with its keys in sorted order; the record itself when they already are. */
export const sortedRecord = (record: Readonly<Record<string, number>>): Readonly<Record<string, number>> => {
  const keys = Object.keys(record)
  // Usually already in order (one or two origins): no copy then, for every change encoded.
  let sorted = true
  for (let index = 1; index < keys.length && sorted; index++) sorted = keys[index - 1]! < keys[index]!
  if (sorted) return record
  const out: Record<string, number> = {}
  for (const key of keys.sort()) out[key] = record[key]!
  return out
}

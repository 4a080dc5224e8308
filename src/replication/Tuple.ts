/**
 * The relationship tuple: the unit of authorization data that regions replicate.
 *
 * A tuple says "subject has relation on resource" inside one tenant (vault). Its key is the
 * identity conflicts are decided on: two changes conflict only if they touch the same key.
 */
import { Schema } from "effect"

const Part = Schema.NonEmptyString.pipe(
  Schema.filter((value) => !value.includes("\u0000"), { message: () => "must not contain NUL characters" })
)

const ObjectRef = Part.pipe(
  Schema.filter((value) => value.indexOf(":") > 0, { message: () => "expected 'type:id', e.g. 'document:readme'" })
)

/** A relationship tuple, e.g. vault `acme`, `document:readme#viewer@user:alice`. */
export const Tuple = Schema.Struct({
  vault: Part,
  resource: ObjectRef,
  relation: Part,
  subject: ObjectRef
})
export type Tuple = typeof Tuple.Type

/** The resource type: the part of the resource before the first `:`. */
export const resourceType = (tuple: Tuple): string => tuple.resource.slice(0, tuple.resource.indexOf(":"))

/**
 * A stable string key for a tuple. NUL never occurs inside a part (the schema forbids it),
 * so joining on NUL is unambiguous and sorts by vault, then resource, then relation.
 */
export const key = (tuple: Tuple): string =>
  `${tuple.vault}\u0000${tuple.resource}\u0000${tuple.relation}\u0000${tuple.subject}`

/** Human-readable form used in logs and reports. */
export const format = (tuple: Tuple): string => `${tuple.vault}/${tuple.resource}#${tuple.relation}@${tuple.subject}`

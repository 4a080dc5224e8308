/** Pages of the public Read API (`ReadPages`): tokens, page sizes and the message bound. */
import { describe, expect, it } from "vitest"
import * as ReadPages from "../../src/runtime/ReadPages.js"

const tuple = (subject: string) => ({ vault: "acme", resource: "document:big", relation: "viewer", subject })

describe("ReadPages", () => {
  it("a token names the tuple a page ended at and nothing else; anything else is no token", () => {
    const last = tuple("user:ünïcode/+=")
    expect(ReadPages.afterToken(ReadPages.tokenOf(last))).toEqual(last)
    for (const bad of ["", "not a token!", Buffer.from("acme\u0000document:big").toString("base64url"), Buffer.from("a\u0000b\u0000c\u0000d\u0000e").toString("base64url")]) {
      expect(ReadPages.afterToken(bad), bad).toBeUndefined()
    }
  })

  it("a page looks at the requested number of tuples within the cap, or the default", () => {
    expect(ReadPages.pageSizeOf(0)).toBe(ReadPages.pageSizeDefault)
    expect(ReadPages.pageSizeOf(7)).toBe(7)
    expect(ReadPages.pageSizeOf(1_000_000)).toBe(ReadPages.pageSizeMax)
  })

  it("a page keeps the tuples that fit the bound with its token, at least one, and ends at the last it kept", () => {
    const tuples = Array.from({ length: 50 }, (_, index) => tuple(`user:${"x".repeat(40)}-${index}`))
    const all = ReadPages.fitting(tuples, 1_000_000)
    expect(all).toEqual({ kept: tuples, endsAt: undefined })
    const some = ReadPages.fitting(tuples, 2_048)
    expect(some.kept.length).toBeGreaterThan(5)
    expect(some.kept.length).toBeLessThan(50)
    expect(some.endsAt).toEqual(some.kept[some.kept.length - 1])
    const one = ReadPages.fitting(tuples, 10)
    expect(one.kept).toEqual([tuples[0]])
    expect(one.endsAt).toEqual(tuples[0])
  })
})

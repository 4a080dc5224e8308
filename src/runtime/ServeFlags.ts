/**
 * The flags node is started with to run `serve`, wherever this repository starts it: the
 * container image (`deploy/Dockerfile`, whose ENTRYPOINT a test holds to this list), `npm start`,
 * the chaos harness, the end-to-end tests and `bench:repl`. They are fixed when node starts, so
 * `serve` cannot set them on itself; a process started without them runs with node's defaults.
 *
 * - `--v8-pool-size=1`: one V8 helper thread instead of node's four. The replicator's work is
 *   one JavaScript thread; V8's helpers compile and collect garbage beside it, and four of them
 *   on a small machine take cores from the main threads of the very processes they serve (in
 *   `bench:repl` on the 2-core test machine they used about half as much CPU as the origin's
 *   main thread). With one helper, `bench:repl` alternated against node's default, 6 pairs at
 *   loads 0.96-2.4 (December 1, 2026): end to end 29,180-31,407 against 27,824-30,600 changes/s
 *   (5 of 6 pairs faster), the drain 62,775-69,541 against 57,720-66,269 changes/s (6 of 6), lag
 *   p99 at 1,000/s 8-11 against 9-22 ms, at 5,000/s 10-11 against 10-19 ms, and the target's
 *   peak RSS about 20 MB lower. Measured on 2 cores only. A flag given after these on node's
 *   command line wins (`BENCH_NODE_ARGS` does that); `NODE_OPTIONS` does not, as node's command
 *   line takes precedence over it.
 */
export const serveNodeFlags: ReadonlyArray<string> = ["--v8-pool-size=1"]

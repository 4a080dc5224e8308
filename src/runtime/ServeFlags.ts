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
 * - `--max-old-space-size=2000`: a heap that grows to at most twice what the last full
 *   collection kept, wherever `serve` runs. V8 lets the heap grow to four times that when its
 *   limit is 2 GiB or more, which node picks on a machine of 8 GiB or more (4,144 MB on the
 *   24 GiB test machine), and scales the factor down linearly below (V8's `--trace-gc-verbose`:
 *   "factor 4.0" by default, 2.0 with this flag, 1.6 with 1,024 and 1.4 with 512). In a
 *   container node sizes the heap from the memory limit, 512 MB in the shipped manifests' 1 GiB
 *   (measured in a 1 GiB memory cgroup: `heap_size_limit` 524 MB): there the replicator spent a
 *   third more CPU than on a large machine. The replicator keeps 50-70 MB alive, so 2,000 MB is
 *   still far above what it needs. `bench:repl` alternated (December 6, 2026, loads 0.4-1.9,
 *   100,000-change phases, no bootstrap), against node's default in 7 runs: peak RSS 311-315
 *   against 388-406 MB (origin) and 236-246 against 323-331 (target), anonymous memory in the
 *   drain 129-133 against 220-228 MB; CPU seconds per run 16.5-21.6 (median 18.6) against
 *   15.7-19.8 (median 17.3) at the origin and 15.8-19.8 (17.5) against 15.0-18.8 (16.6) at the
 *   target, about 5-8% more. With 1,000, three runs: 297-300 and 223-229 MB, 6-12% more CPU;
 *   with 512 (node's choice in the manifests' container), two runs: 291-294 and 217-225 MB,
 *   27-39% more.
 */
export const serveNodeFlags: ReadonlyArray<string> = ["--v8-pool-size=1", "--max-old-space-size=2000"]

/**
 * The real network of a chaos run: one Linux network namespace per node, each with a veth pair
 * whose outer end is a port of one bridge the run creates in the host namespace, and private
 * addresses in one /24 (the harness talks to every node through the bridge's own address).
 * Links are cut and made lossy with nftables rules inside the namespaces, never on the host, so
 * nothing outside the run is touched; `remove` deletes the namespaces (and with them the veths
 * and rules) and the bridge.
 *
 * A namespace per node rather than per region: the scenario format's `bridge` fault names one
 * node that still sees both sides, and a node's outgoing connections carry its namespace's
 * address, so only a per-node address lets a rule tell two nodes of one region apart. The nodes
 * of a region are still one region to every rule (the scenario cuts regions, not nodes).
 *
 * Building and removing the network shells out to `ip` and `nft` synchronously; a fault's rules
 * go in through child processes the run awaits (`applyInBackground`), so it is in place before
 * the run records it as applied, and the harness goes on meanwhile.
 */
import { execFile, execFileSync } from "node:child_process"

/** One node's place on the run's network. */
export interface NodeAddress {
  readonly nodeId: string
  readonly regionId: string
  readonly namespace: string
  readonly address: string
}

/** The run's network. */
export interface Network {
  readonly tag: string
  readonly bridge: string
  /** The host's address on the bridge: where the harness's connections come from. */
  readonly hostAddress: string
  readonly nodes: ReadonlyArray<NodeAddress>
}

/** Which region pairs are cut, which nodes bridge a split, and each directed link's loss. */
export interface LinkState {
  /** `from -> to` region pairs whose packets are dropped (one entry per direction). */
  readonly blocked: ReadonlySet<string>
  /** Nodes that still reach (and are reached from) every region while regions are split. */
  readonly bridges: ReadonlySet<string>
  /** Share of packets dropped from a node of region `from` to one of region `to` (0..1). */
  readonly lossOf: (from: string, to: string) => number
}

/** The key of a directed region pair in `LinkState.blocked`. */
export const linkKey = (from: string, to: string): string => `${from}->${to}`

const run = (command: string, args: ReadonlyArray<string>, input?: string): string =>
  execFileSync(command, args, { encoding: "utf8", stdio: ["pipe", "pipe", "pipe"], ...(input === undefined ? {} : { input }) })

const attempt = (command: string, args: ReadonlyArray<string>): void => {
  try {
    run(command, args)
  } catch {
    // Cleanup is best-effort: the thing may already be gone.
  }
}

/** Why this machine cannot build the run's network, or undefined when it can. */
export const unavailable = (): string | undefined => {
  if (process.platform !== "linux") return "network namespaces need Linux"
  if (typeof process.getuid === "function" && process.getuid() !== 0) return "creating network namespaces and nftables rules needs root"
  for (const [tool, args] of [
    ["ip", ["-V"]],
    ["nft", ["--version"]]
  ] as const) {
    try {
      run(tool, args)
    } catch {
      return `'${tool}' is not installed (apt-get install -y ${tool === "ip" ? "iproute2" : "nftables"})`
    }
  }
  const probe = `${namespacePrefix}probe-${process.pid}`
  try {
    run("ip", ["netns", "add", probe])
    run("ip", ["netns", "exec", probe, "nft", "add", "table", "inet", "probe"])
    return undefined
  } catch (error) {
    return `cannot create a network namespace with an nftables table: ${firstLine(error)}`
  } finally {
    attempt("ip", ["netns", "del", probe])
  }
}

const firstLine = (error: unknown): string => {
  const text = error instanceof Error ? ((error as { stderr?: string }).stderr || error.message) : String(error)
  return text.trim().split("\n")[0] ?? ""
}

/**
 * Names every interface and namespace after `tag` (4 hex digits), so concurrent runs do not
 * collide, and takes a /24 under 10.231.0.0/16 that nothing on the host routes yet (`claimSubnet`).
 */
export const create = (tag: string, nodes: ReadonlyArray<{ readonly nodeId: string; readonly regionId: string }>): Network => {
  if (nodes.length > 200) throw new Error(`a chaos run supports at most 200 nodes (got ${nodes.length})`)
  const bridge = `chb${tag}`
  const named = nodes.map((node, index) => ({ ...node, namespace: `${namespacePrefix}${tag}-${index + 1}`, address: "" }))
  let network: Network = { tag, bridge, hostAddress: "", nodes: named }
  try {
    run("ip", ["link", "add", bridge, "type", "bridge"])
    const subnet = `10.231.${claimSubnet(tag, bridge)}`
    network = { tag, bridge, hostAddress: `${subnet}.254`, nodes: named.map((node, index) => ({ ...node, address: `${subnet}.${index + 1}` })) }
    run("ip", ["link", "set", bridge, "up"])
    network.nodes.forEach((node, index) => {
      const outer = `chv${tag}n${index + 1}`
      run("ip", ["netns", "add", node.namespace])
      run("ip", ["link", "add", outer, "type", "veth", "peer", "name", "eth0", "netns", node.namespace])
      run("ip", ["link", "set", outer, "master", bridge, "up"])
      run("ip", ["-n", node.namespace, "addr", "add", `${node.address}/24`, "dev", "eth0"])
      run("ip", ["-n", node.namespace, "link", "set", "eth0", "up"])
      run("ip", ["-n", node.namespace, "link", "set", "lo", "up"])
    })
    apply(network, { blocked: new Set(), bridges: new Set(), lossOf: () => 0 })
    return network
  } catch (error) {
    remove(network)
    throw new Error(`could not build the run's network: ${firstLine(error)}`)
  }
}

/**
 * The third octet of the run's subnet: the tag's, or the next one that no address or route on
 * the host uses. A bridge left by a killed run keeps its address and route though its ports are
 * gone; a second route to the same /24 loses to the older one, so the harness's packets to the
 * nodes would go into the dead bridge and the run would wait for nodes it cannot reach (seen in
 * CI on December 4, 2026). `inUse` holds the octets taken.
 */
export const octetFor = (tag: string, inUse: ReadonlySet<number>): number | undefined => {
  const first = Number.parseInt(tag, 16) % subnets
  for (let step = 0; step < subnets; step++) {
    const octet = ((first + step) % subnets) + 20
    if (!inUse.has(octet)) return octet
  }
  return undefined
}

/** How many /24s runs choose from: 10.231.20.0 to 10.231.219.0. */
const subnets = 200

/** The octets of the 10.231.x.0/24 subnets the host's addresses and routes use. */
const octetsInUse = (): Set<number> => {
  const text = run("ip", ["-4", "-o", "addr", "show"]) + run("ip", ["-4", "route", "show"])
  return new Set([...text.matchAll(/\b10\.231\.(\d{1,3})\./g)].map((match) => Number(match[1])))
}

/** The interfaces other than `bridge` holding an address in 10.231.`octet`.0/24. */
const holders = (octet: number, bridge: string): ReadonlyArray<string> =>
  run("ip", ["-4", "-o", "addr", "show"])
    .split("\n")
    .filter((line) => line.includes(` 10.231.${octet}.`))
    .map((line) => line.split(/\s+/)[1] ?? "")
    .filter((name) => name !== bridge)

/**
 * Gives `bridge` the host's address in a free subnet and returns the subnet's octet. Two runs
 * starting at once may both find one octet free: the bridge whose name sorts first keeps it and
 * the other moves on.
 */
const claimSubnet = (tag: string, bridge: string): number => {
  const taken = octetsInUse()
  for (;;) {
    const octet = octetFor(tag, taken)
    if (octet === undefined) throw new Error(`every subnet of 10.231.0.0/16 a run may use is taken (\`inferadb-repl chaos clean\` removes what killed runs left)`)
    run("ip", ["addr", "add", `10.231.${octet}.254/24`, "dev", bridge])
    if (holders(octet, bridge).every((other) => other > bridge)) return octet
    run("ip", ["addr", "del", `10.231.${octet}.254/24`, "dev", bridge])
    taken.add(octet)
  }
}

/** Deletes every namespace (their veths and rules go with them) and the bridge. Safe to call twice. */
export const remove = (network: Network): void => {
  for (const node of network.nodes) attempt("ip", ["netns", "del", node.namespace])
  network.nodes.forEach((_, index) => attempt("ip", ["link", "del", `chv${network.tag}n${index + 1}`]))
  attempt("ip", ["link", "del", network.bridge])
}

/** The prefix of every namespace a run creates. */
export const namespacePrefix = "inferadb-chaos-"

/**
 * Removes what runs left behind when the harness itself was killed (kill -9 skips its
 * cleanup): every process inside a chaos namespace, the namespaces and the run bridges. It
 * would also tear down a run in progress, so it is only for when none is. Returns what it removed.
 */
export const removeLeftovers = (): ReadonlyArray<string> => {
  const removed: Array<string> = []
  const namespaces = run("ip", ["netns", "list"])
    .split("\n")
    .map((line) => line.split(" ")[0] ?? "")
    .filter((name) => name.startsWith(namespacePrefix) && !name.startsWith(`${namespacePrefix}probe`))
  for (const namespace of namespaces) {
    for (const pid of run("ip", ["netns", "pids", namespace]).split("\n").filter((line) => /^\d+$/.test(line))) attempt("kill", ["-9", pid])
    attempt("ip", ["netns", "del", namespace])
    removed.push(`namespace ${namespace}`)
  }
  for (const bridge of runBridges()) {
    attempt("ip", ["link", "del", bridge])
    removed.push(`bridge ${bridge}`)
  }
  return removed
}

/** The bridges runs create (`chb` and the tag). */
const runBridges = (): ReadonlyArray<string> =>
  run("ip", ["-o", "link", "show", "type", "bridge"])
    .split("\n")
    .map((line) => /^\d+: ([^:@]+)/.exec(line)?.[1] ?? "")
    .filter((name) => /^chb[0-9a-f]{4}$/.test(name))

/**
 * Run bridges without a port: a killed run's, whose namespaces (and with them the veths) went
 * but whose bridge did not; deleting the namespaces by hand does that too. A run no longer
 * collides with them, but they keep their subnets; `removeLeftovers` removes them.
 */
export const deadBridges = (): ReadonlyArray<string> => {
  const withPorts = new Set([...run("ip", ["-o", "link", "show"]).matchAll(/ master (chb[0-9a-f]{4}) /g)].map((match) => match[1]))
  return runBridges().filter((bridge) => !withPorts.has(bridge))
}

/** Whether packets from node `from` to node `to` are dropped under `state`. */
export const cut = (state: LinkState, from: NodeAddress, to: NodeAddress): boolean =>
  from.regionId !== to.regionId && !state.bridges.has(from.nodeId) && !state.bridges.has(to.nodeId) && state.blocked.has(linkKey(from.regionId, to.regionId))

/**
 * The nftables ruleset of one node's namespace: drop what arrives from a node it is cut from
 * and what it sends to one (a cut enforced at both ends, so neither side's packets leak), and
 * drop a random share of what arrives from each peer with a lossy link. The harness's address
 * is never matched: clients and the final reads always get through, as a region's own clients
 * would.
 */
export const rulesetOf = (network: Network, state: LinkState, self: NodeAddress): string => {
  const input: Array<string> = []
  const output: Array<string> = []
  for (const peer of network.nodes) {
    if (peer.nodeId === self.nodeId) continue
    if (cut(state, peer, self)) input.push(`ip saddr ${peer.address} drop`)
    if (cut(state, self, peer)) output.push(`ip daddr ${peer.address} drop`)
    const loss = state.lossOf(peer.regionId, self.regionId)
    if (loss > 0) input.push(`ip saddr ${peer.address} numgen random mod 10000 < ${Math.round(loss * 10_000)} drop`)
  }
  const chain = (name: string, hook: string, rules: ReadonlyArray<string>) =>
    [`  chain ${name} {`, `    type filter hook ${hook} priority 0; policy accept;`, ...rules.map((rule) => `    ${rule}`), "  }"].join("\n")
  // Declaring, deleting and re-declaring the table in one transaction replaces it atomically.
  return ["table inet inferadb_chaos {}", "delete table inet inferadb_chaos", "table inet inferadb_chaos {", chain("input", "input", input), chain("output", "output", output), "}", ""].join("\n")
}

/** Installs `state` in every namespace. */
export const apply = (network: Network, state: LinkState): void => {
  for (const node of network.nodes) run("ip", ["netns", "exec", node.namespace, "nft", "-f", "-"], rulesetOf(network, state, node))
}

/**
 * Installs `state` in every namespace at once, in child processes: resolves when every
 * namespace has it. A fault is a `nft` per node, about 25 ms each on a quiet machine and several
 * times that with nine nodes on two cores; `apply` blocked the harness for all of them, and with
 * it the run's writes, their deadlines and the feeds.
 */
export const applyInBackground = (network: Network, state: LinkState): Promise<void> =>
  Promise.all(network.nodes.map((node) => runInBackground("ip", ["netns", "exec", node.namespace, "nft", "-f", "-"], rulesetOf(network, state, node)))).then(() => undefined)

const runInBackground = (command: string, args: ReadonlyArray<string>, input: string): Promise<void> =>
  new Promise((resolve, reject) => {
    const child = execFile(command, args, { encoding: "utf8" }, (error, _stdout, stderr) =>
      error === null ? resolve() : reject(new Error(`${command} ${args.join(" ")}: ${stderr.trim() || error.message}`))
    )
    // A command that fails at once (a bad ruleset, a namespace gone) may exit before it reads
    // its input: the write then fails with EPIPE, which unheard would end the harness. The exit
    // status above says what went wrong.
    child.stdin?.on("error", () => {})
    child.stdin?.end(input)
  })

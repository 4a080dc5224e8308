/**
 * The Kubernetes manifests in deploy/kubernetes/, checked offline: every object validates
 * against the Kubernetes OpenAPI schemas (kubernetes-models), and what `serve` needs from them
 * holds for every pod the StatefulSet makes: the configuration decodes and plans with the
 * pod's environment, the node listens on 0.0.0.0 on the container ports, the probes reach
 * `/readyz` and `/livez` on the HTTP port, the store, configuration and token files lie on
 * mounted volumes, and DNS discovery of the headless Service (its SRV answer simulated) yields
 * every pod under the node id that pod runs as (`<region>/<pod name>`), dialled by its pod
 * name. Then `serve` is started with the
 * container's own arguments and environment (ports, data directory and token file moved to
 * this machine) and must become ready and answer the gRPC health check.
 */
import { ConfigMap, Service } from "kubernetes-models/v1"
import { StatefulSet } from "kubernetes-models/apps/v1"
import * as fs from "node:fs"
import * as path from "node:path"
import { Effect, Either, Layer } from "effect"
import { afterAll, describe, expect, it } from "vitest"
import * as YAML from "yaml"
import * as Config from "../../src/runtime/config/Config.js"
import * as Discovery from "../../src/replication/Discovery.js"
import * as Serve from "../../src/runtime/Serve.js"
import * as ServeFlags from "../../src/runtime/ServeFlags.js"
import * as ServeProcess from "../runtime/fixtures/serveProcess.js"

const deployDir = path.join(ServeProcess.root, "deploy")
const manifestFiles = fs.readdirSync(path.join(deployDir, "kubernetes")).filter((file) => file.endsWith(".yaml"))

type Manifest = { readonly kind: string; readonly metadata: { readonly name: string; readonly namespace?: string } } & Record<string, unknown>

const load = (file: string): ReadonlyArray<Manifest> =>
  YAML.parseAllDocuments(fs.readFileSync(path.join(deployDir, "kubernetes", file), "utf8")).map((document) => document.toJS() as Manifest)

const one = <K extends string>(manifests: ReadonlyArray<Manifest>, kind: K, predicate: (manifest: Manifest) => boolean = () => true) => {
  const found = manifests.filter((manifest) => manifest.kind === kind && predicate(manifest))
  expect(found, `one ${kind}`).toHaveLength(1)
  return found[0]!
}

/** Everything the checks read from one region's manifests. */
const parts = (manifests: ReadonlyArray<Manifest>) => {
  const statefulSet = new StatefulSet(one(manifests, "StatefulSet") as never)
  const headless = new Service(one(manifests, "Service", (manifest) => (manifest as { spec?: { clusterIP?: string } }).spec?.clusterIP === "None") as never)
  const configMap = new ConfigMap(one(manifests, "ConfigMap") as never)
  const pod = statefulSet.spec!.template
  const container = pod.spec!.containers[0]!
  const port = (name: string) => container.ports!.find((entry) => entry.name === name)!.containerPort
  const mountOf = (volume: string) => container.volumeMounts!.find((mount) => mount.name === volume)!.mountPath
  const args = container.args!
  const configPath = args[args.indexOf("--config") + 1]!
  return { statefulSet, headless, configMap, pod, container, port, mountOf, args, configPath }
}

const podEnv = (container: ReturnType<typeof parts>["container"], podName: string): Record<string, string> =>
  Object.fromEntries(
    container.env!.map((variable) => {
      if (variable.value !== undefined) return [variable.name, variable.value]
      expect(variable.valueFrom?.fieldRef?.fieldPath, `${variable.name} comes from the pod's name`).toBe("metadata.name")
      return [variable.name, podName]
    })
  )

const isUnder = (file: string, directory: string): boolean => !path.relative(directory, file).startsWith("..")

describe.each(manifestFiles)("deploy/kubernetes/%s", (file) => {
  const manifests = load(file)

  it("validates against the Kubernetes schemas", () => {
    expect(manifests.map((manifest) => manifest.kind).sort()).toEqual(["ConfigMap", "Service", "Service", "StatefulSet"])
    for (const manifest of manifests) {
      const model = manifest.kind === "StatefulSet" ? new StatefulSet(manifest as never) : manifest.kind === "ConfigMap" ? new ConfigMap(manifest as never) : new Service(manifest as never)
      expect(() => model.validate(), `${manifest.kind} ${manifest.metadata.name}`).not.toThrow()
    }
  })

  it("starts serve on every pod the StatefulSet makes, listening on 0.0.0.0 where the ports and probes point", () => {
    const { statefulSet, headless, configMap, pod, container, port, mountOf, configPath } = parts(manifests)
    const namespace = statefulSet.metadata!.namespace!
    expect(statefulSet.spec!.serviceName).toBe(headless.metadata!.name)
    expect(headless.spec!.selector).toEqual(expect.objectContaining(statefulSet.spec!.selector.matchLabels))
    expect(pod.metadata!.labels).toEqual(expect.objectContaining(headless.spec!.selector))
    expect(container.readinessProbe!.httpGet).toMatchObject({ path: "/readyz", port: "http" })
    expect(container.livenessProbe!.httpGet).toMatchObject({ path: "/livez", port: "http" })
    expect(path.dirname(configPath)).toBe(mountOf("config"))
    expect(pod.spec!.volumes!.find((volume) => volume.name === "config")!.configMap!.name).toBe(configMap.metadata!.name)
    expect(statefulSet.spec!.volumeClaimTemplates!.map((claim) => claim.metadata!.name)).toContain("data")
    const yamlText = configMap.data![path.basename(configPath)]!
    expect(yamlText, `the ConfigMap holds ${path.basename(configPath)}`).toBeDefined()

    const replicas = statefulSet.spec!.replicas!
    for (let index = 0; index < replicas; index++) {
      const podName = `${statefulSet.metadata!.name}-${index}`
      const config = Config.parseBytes(new TextEncoder().encode(yamlText), podEnv(container, podName))
      if (Either.isLeft(config)) throw new Error(`${podName}: ${config.left.message}`)
      const plan = Serve.plan(config.right, {}, { seed: 1, version: "test" })
      if (Either.isLeft(plan)) throw new Error(`${podName}: ${plan.left.message}`)
      // Discovery names the pod <region>/<pod name>; serve qualifies the pod name alike.
      expect(plan.right.settings.nodeId).toBe(`${config.right.localRegion}/${podName}`)
      expect(plan.right.grpcListen).toBe(`0.0.0.0:${port("grpc")}`)
      expect({ host: plan.right.httpHost, port: plan.right.httpPort }).toEqual({ host: "0.0.0.0", port: port("http") })
      expect(plan.right.store.kind).toBe("lmdb")
      expect(isUnder((plan.right.store as { path: string }).path, mountOf("data")), "the store is on the persistent volume").toBe(true)
      expect(isUnder(config.right.security.tokenFile!, mountOf("token")), "the token file is on the secret volume").toBe(true)
    }

    const config = Config.parseBytes(new TextEncoder().encode(yamlText), podEnv(container, `${statefulSet.metadata!.name}-0`))
    if (Either.isLeft(config)) throw new Error(config.left.message)
    expect(config.right.discovery.mode).toBe("dns")
    // What the headless Service answers (one SRV record per pod) is what discovery makes the
    // local nodes of: every pod the StatefulSet makes, under the id that pod runs as.
    const service = `${headless.metadata!.name}.${namespace}.svc.cluster.local`
    const local = config.right.discovery.targets.filter((target) => target.regionId === config.right.localRegion)
    expect(local.map((target) => `${target.hostname}:${target.port}`)).toEqual([`${service}:${port("grpc")}`])
    const pods = Array.from({ length: replicas }, (_, index) => `${statefulSet.metadata!.name}-${index}`)
    const resolver = Layer.succeed(Discovery.DnsResolver, {
      resolve: (hostname) => Effect.succeed(hostname === service ? pods.map((pod, index) => ({ address: `10.0.0.${index + 1}`, hostname: `${pod}.${service}` })) : [])
    })
    const discovered = Effect.runSync(
      Effect.flatMap(Discovery.EndpointSource, (source) => source.discover).pipe(Effect.provide(Discovery.layerDns({ targets: local })), Effect.provide(resolver))
    )
    expect(discovered.map((endpoint) => endpoint.nodeId)).toEqual(pods.map((pod) => `${config.right.localRegion}/${pod}`))
    for (const endpoint of discovered) expect(endpoint.endpoint).toMatch(new RegExp(`^http://${statefulSet.metadata!.name}-\\d+\\.${service.replaceAll(".", "\\.")}:${port("grpc")}$`))
    // Every peer region is resolved too; its names' first labels are its pods' names.
    for (const region of config.right.topology.regions.filter((candidate) => candidate.id !== config.right.localRegion)) {
      const names = config.right.discovery.targets.filter((target) => target.regionId === region.id).map((target) => target.hostname.split(".")[0])
      expect(names, `the names of region ${region.id}`).toEqual(Array.from({ length: replicas }, (_, index) => `inferadb-engine-${region.id}-${index}`))
    }
  })
})

describe("the container's own command line", () => {
  const dir = ServeProcess.tempDir("deploy")
  let serve: ServeProcess.ServeProcess | undefined

  afterAll(async () => {
    if (serve !== undefined) await ServeProcess.stop(serve, 5_000)
    fs.rmSync(dir, { recursive: true, force: true })
  }, 15_000)

  it("the Dockerfile runs the bundle, and serve becomes ready with the StatefulSet's arguments, environment and ConfigMap", async () => {
    const dockerfile = fs.readFileSync(path.join(deployDir, "Dockerfile"), "utf8")
    // serve runs in the image with the flags every other start of it uses (`ServeFlags`).
    const entrypoint = ["node", ...ServeFlags.serveNodeFlags, "/app/dist/cli.cjs"].map((part) => JSON.stringify(part)).join(", ")
    expect(dockerfile.split("\n")).toContain(`ENTRYPOINT [${entrypoint}]`)
    expect(dockerfile).toMatch(/^RUN npm ci /m)
    const { container, configMap, configPath, args } = parts(load(manifestFiles[0]!))
    const configFile = path.join(dir, path.basename(configPath))
    fs.writeFileSync(configFile, configMap.data![path.basename(configPath)]!)
    const tokenFile = path.join(dir, "token")
    fs.writeFileSync(tokenFile, "deploy-test-token\n")
    const [httpPort, grpcPort] = (await ServeProcess.freePorts(2)) as [number, number]
    expect(args[0]).toBe("serve")
    const moved = args.slice(1).map((arg) => (arg === configPath ? configFile : arg))
    serve = ServeProcess.spawnServe([...moved, "--http-port", String(httpPort), "--grpc-port", String(grpcPort), "--data-dir", path.join(dir, "data")], {
      ...podEnv(container, `${parts(load(manifestFiles[0]!)).statefulSet.metadata!.name}-0`),
      INFERADB__ENGINE__REPLICATION__SECURITY__TOKEN_FILE: tokenFile
    })
    // Listening on 0.0.0.0, so loopback reaches it as kubelet reaches the pod's address.
    await ServeProcess.awaitReady(serve, httpPort, 30_000)
    const lines = serve.output().trim().split("\n").map((line) => JSON.parse(line) as { readonly message: string })
    expect(lines.some((line) => line.message.startsWith("gRPC: 0.0.0.0:"))).toBe(true)
  }, 45_000)
})

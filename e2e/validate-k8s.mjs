// Validates deploy/kubernetes/*.yaml offline against the Kubernetes OpenAPI
// schemas shipped in the npm package kubernetes-models (no cluster, no
// network), strictly (an unknown field is an error, as for kubectl apply's
// default --validate=strict), then checks what the objects promise each other
// and the operator's guide: ports and names that resolve, variables the proxy
// reads, a grace period that covers the drain.
// Usage: node e2e/validate-k8s.mjs [dir]   (exit 1 on any problem)
import { readFileSync, readdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseAllDocuments } from "yaml";

const dir = resolve(process.argv[2] ?? new URL("../deploy/kubernetes", import.meta.url).pathname);
const configGo = new URL("../internal/config/config.go", import.meta.url).pathname;

// kind -> [module of kubernetes-models holding its class, its schema module].
const modules = {
  Deployment: ["kubernetes-models/apps/v1/Deployment", "IoK8sApiAppsV1Deployment"],
  Service: ["kubernetes-models/v1/Service", "IoK8sApiCoreV1Service"],
  ConfigMap: ["kubernetes-models/v1/ConfigMap", "IoK8sApiCoreV1ConfigMap"],
  Secret: ["kubernetes-models/v1/Secret", "IoK8sApiCoreV1Secret"],
  PodDisruptionBudget: ["kubernetes-models/policy/v1/PodDisruptionBudget", "IoK8sApiPolicyV1PodDisruptionBudget"],
};

// unknownFields runs the kind's compiled schema validator on a copy of obj
// whose objects record which keys the validator reads. The validator reads
// every property its schema declares (and every key of a free-form map), so
// a key nobody read is a field the schema does not know: a typo such as
// `readinessProbes` that the schema check alone lets through, and that the
// API server would refuse or silently drop.
function unknownFields(validate, obj) {
  const watched = [];
  const watch = (value, path) => {
    if (value === null || typeof value !== "object") return value;
    if (Array.isArray(value)) return value.map((v, i) => watch(v, `${path}/${i}`));
    const read = new Set();
    const copy = Object.fromEntries(Object.entries(value).map(([k, v]) => [k, watch(v, `${path}/${k}`)]));
    watched.push({ path, keys: Object.keys(value), read });
    return new Proxy(copy, {
      get(target, key, receiver) {
        if (typeof key === "string") read.add(key);
        return Reflect.get(target, key, receiver);
      },
    });
  };
  validate(watch(obj, ""));
  const unknown = watched.flatMap(({ path, keys, read }) => keys.filter((k) => !read.has(k)).map((k) => `${path}/${k}`));
  // Report the outermost unknown field only, not everything under it.
  return unknown.filter((p) => !unknown.some((u) => p.startsWith(`${u}/`)));
}

const problems = [];
const objects = [];
for (const file of readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)).sort()) {
  for (const doc of parseAllDocuments(readFileSync(join(dir, file), "utf8"))) {
    if (doc.errors.length) {
      problems.push(`${file}: YAML: ${doc.errors[0].message}`);
      continue;
    }
    const obj = doc.toJS();
    if (!obj) continue;
    const mod = modules[obj.kind];
    if (!mod) {
      problems.push(`${file}: no schema known for kind ${obj.kind}`);
      continue;
    }
    const { [obj.kind]: Model } = await import(mod[0]);
    const { validate } = await import(`kubernetes-models/_schemas/${mod[1]}`);
    try {
      new Model(obj).validate();
    } catch (e) {
      problems.push(`${file}: ${obj.kind}: ${e.message}`);
      continue;
    }
    const unknown = unknownFields(validate, obj);
    for (const u of unknown) problems.push(`${file}: ${obj.kind}: unknown field ${u}`);
    // Object names are DNS subdomains (RFC 1123); the API server refuses others.
    const name = obj.metadata?.name ?? "";
    if (!/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/.test(name)) problems.push(`${file}: ${obj.kind}: bad metadata.name ${JSON.stringify(name)}`);
    if (unknown.length === 0) {
      objects.push({ file, obj });
      console.log(`ok   ${file}: ${obj.apiVersion} ${obj.kind} ${name}`);
    }
  }
}

// The variables clerk-mcp-proxy reads (internal/config's loader calls): a
// ConfigMap or Secret key outside this set is a misspelt setting the proxy
// would silently ignore.
const known = new Set([...readFileSync(configGo, "utf8").matchAll(/l\.\w+\("([A-Z][A-Z0-9_]*)"/g)].map((m) => m[1]));
if (known.size < 20) problems.push(`read only ${known.size} variable names from ${configGo}`);

const seconds = (d) => {
  const m = /^(\d+)(s|m)?$/.exec(d ?? "");
  return m ? Number(m[1]) * (m[2] === "m" ? 60 : 1) : NaN;
};
const find = (kind, name) => objects.find((o) => o.obj.kind === kind && o.obj.metadata?.name === name)?.obj;

// What the README and the issue promise of the Deployment.
const dep = objects.find((o) => o.obj.kind === "Deployment")?.obj;
const expect = (cond, what) => cond || problems.push(`Deployment: ${what}`);
if (!dep) problems.push("no Deployment found");
else {
  const pod = dep.spec.template.spec;
  const c = pod.containers[0];
  expect(dep.spec.replicas === 3, "want 3 replicas");
  expect(c.readinessProbe?.httpGet?.path === "/readyz", "readiness probe must be /readyz");
  expect(c.livenessProbe?.httpGet?.path === "/healthz", "liveness probe must be /healthz");
  expect(c.resources?.requests && c.resources?.limits, "resource requests and limits");
  expect(pod.securityContext?.runAsNonRoot === true && c.securityContext?.runAsNonRoot === true, "non-root");
  expect(c.securityContext?.readOnlyRootFilesystem === true, "read-only root filesystem");
  expect(c.securityContext?.allowPrivilegeEscalation === false, "no privilege escalation");
  const sel = dep.spec.selector.matchLabels;
  for (const [k, v] of Object.entries(sel)) expect(dep.spec.template.metadata?.labels?.[k] === v, `pod template lacks selector label ${k}=${v}`);
  for (const o of objects) {
    const s = o.obj.kind === "Service" ? o.obj.spec.selector : o.obj.kind === "PodDisruptionBudget" ? o.obj.spec.selector.matchLabels : null;
    if (s) expect(JSON.stringify(s) === JSON.stringify(sel), `${o.obj.kind} selector must match the Deployment's`);
  }

  // Named ports resolve: a probe on a port the container does not declare
  // never passes, and a Service targetPort that names none gets no traffic.
  const portNames = new Set((c.ports ?? []).map((p) => p.name).filter(Boolean));
  for (const probe of ["readinessProbe", "livenessProbe", "startupProbe"]) {
    const port = c[probe]?.httpGet?.port;
    if (typeof port === "string") expect(portNames.has(port), `${probe} port "${port}" is not a container port name`);
  }
  for (const svc of objects.filter((o) => o.obj.kind === "Service")) {
    for (const p of svc.obj.spec.ports ?? []) {
      if (typeof p.targetPort === "string") expect(portNames.has(p.targetPort), `Service targetPort "${p.targetPort}" is not a container port name`);
    }
  }

  // envFrom names objects that exist here, whose keys the proxy reads.
  for (const from of c.envFrom ?? []) {
    const [kind, ref] = from.configMapRef ? ["ConfigMap", from.configMapRef] : ["Secret", from.secretRef];
    const obj = find(kind, ref?.name);
    if (!obj) {
      expect(ref?.optional, `envFrom ${kind} "${ref?.name}" is not among the manifests`);
      continue;
    }
    for (const key of Object.keys({ ...obj.data, ...obj.stringData })) {
      if (!known.has(key)) problems.push(`${kind} ${ref.name}: ${key} is not a variable clerk-mcp-proxy reads`);
    }
  }

  // The kubelet kills the pod terminationGracePeriodSeconds after it starts
  // stopping: that must cover the preStop pause and the SHUTDOWN_TIMEOUT drain.
  const cm = (c.envFrom ?? []).map((f) => find("ConfigMap", f.configMapRef?.name)).find(Boolean);
  const drain = seconds(cm?.data?.SHUTDOWN_TIMEOUT ?? "20s");
  const pause = c.lifecycle?.preStop?.sleep?.seconds ?? 0;
  const grace = pod.terminationGracePeriodSeconds ?? 30;
  expect(!Number.isNaN(drain), `SHUTDOWN_TIMEOUT ${cm?.data?.SHUTDOWN_TIMEOUT} is not whole seconds or minutes`);
  expect(grace > pause + drain, `terminationGracePeriodSeconds ${grace} must exceed preStop sleep ${pause}s + SHUTDOWN_TIMEOUT ${drain}s`);
}

if (problems.length) {
  for (const p of problems) console.error(`FAIL ${p}`);
  process.exit(1);
}
console.log(`kubernetes manifests: ${objects.length} objects valid`);

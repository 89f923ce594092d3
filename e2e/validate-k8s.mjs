// Validates deploy/kubernetes/*.yaml offline against the Kubernetes OpenAPI
// schemas shipped in the npm package kubernetes-models (no cluster, no
// network), then checks the properties the operator's guide promises.
// Usage: node e2e/validate-k8s.mjs [dir]   (exit 1 on any problem)
import { readFileSync, readdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseAllDocuments } from "yaml";

const dir = resolve(process.argv[2] ?? new URL("../deploy/kubernetes", import.meta.url).pathname);

// kind -> module of kubernetes-models holding its class.
const modules = {
  Deployment: "kubernetes-models/apps/v1/Deployment",
  Service: "kubernetes-models/v1/Service",
  ConfigMap: "kubernetes-models/v1/ConfigMap",
  Secret: "kubernetes-models/v1/Secret",
  PodDisruptionBudget: "kubernetes-models/policy/v1/PodDisruptionBudget",
};

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
    const { [obj.kind]: Model } = await import(mod);
    try {
      new Model(obj).validate();
      objects.push({ file, obj });
      console.log(`ok   ${file}: ${obj.apiVersion} ${obj.kind} ${obj.metadata?.name}`);
    } catch (e) {
      problems.push(`${file}: ${obj.kind}: ${e.message}`);
    }
  }
}

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
  for (const o of objects) {
    const s = o.obj.kind === "Service" ? o.obj.spec.selector : o.obj.kind === "PodDisruptionBudget" ? o.obj.spec.selector.matchLabels : null;
    if (s) expect(JSON.stringify(s) === JSON.stringify(sel), `${o.obj.kind} selector must match the Deployment's`);
  }
}

if (problems.length) {
  for (const p of problems) console.error(`FAIL ${p}`);
  process.exit(1);
}
console.log(`kubernetes manifests: ${objects.length} objects valid`);

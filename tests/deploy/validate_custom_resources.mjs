// Validates custom resources against their CRD schemas, as the pinned @kubernetes-models packages compile
// them: reads a JSON array of resources on stdin, prints one line per invalid resource, exits 1 if any.
import { PrometheusRule, ServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1";
import { Certificate } from "@kubernetes-models/cert-manager/cert-manager.io/v1";

const models = [PrometheusRule, ServiceMonitor, Certificate];
const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
let failed = false;
for (const resource of JSON.parse(Buffer.concat(chunks).toString())) {
  const name = `${resource.kind}/${resource.metadata?.name}`;
  const model = models.find((m) => m.apiVersion === resource.apiVersion && m.kind === resource.kind);
  if (!model) {
    console.log(`${name}: no schema for ${resource.apiVersion}`);
    failed = true;
    continue;
  }
  try {
    new model(resource).validate();
  } catch (error) {
    console.log(`${name}: ${error.message}`);
    failed = true;
  }
}
process.exit(failed ? 1 : 0);

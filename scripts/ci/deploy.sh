#!/usr/bin/env bash
# Deploys one image digest to one environment: sets the digest in a copy of the
# environment's overlay (kustomize edit set image), renders it, then, in this
# order: applies everything but the migration Job and the API's workloads;
# runs the migration Job (`api migrate up` with this digest, once) and waits
# for it to complete; only then applies the Deployment and waits for the
# rollout. A failed migration stops the deploy before any new pod starts.
# cd.yml (dev) and release.yml (staging, production, and rollbacks, which are
# the same run with an older digest) call it; the checkout is never modified.
#
#   scripts/ci/deploy.sh ENVIRONMENT IMAGE@sha256:DIGEST
#
# KUBECONFIG must point at the environment's cluster. RENDER_ONLY=FILE writes
# the manifests to FILE and stops before kubectl (check-delivery.sh uses it).
set -euo pipefail

usage() {
	echo "usage: $0 dev|staging|production IMAGE@sha256:<64 hex digits>" >&2
	exit 2
}
[ $# -eq 2 ] || usage
env=$1 image=$2
case $env in dev | staging | production) ;; *) usage ;; esac
# Only a digest: a tag can move between staging and production, a digest cannot.
[[ $image =~ ^[a-z0-9][a-z0-9._/-]*(:[0-9]+)?[a-z0-9._/-]*@sha256:[0-9a-f]{64}$ ]] || usage

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
KUSTOMIZE=${KUSTOMIZE:-$ROOT/.tools/kustomize}
[ -x "$KUSTOMIZE" ] || KUSTOMIZE=$(command -v kustomize) || {
	echo "deploy.sh: kustomize not found: run scripts/ci/install-tools.sh kustomize" >&2
	exit 1
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# All of deploy/ (overlays may include components from beside kubernetes/)
# and the backup scripts, which the backup Component's ConfigMap is generated
# from at render time: the one copy, outside deploy/, hence the load restrictor off.
mkdir -p "$work/scripts"
cp -R "$ROOT/deploy" "$work/"
cp -R "$ROOT/scripts/backup" "$work/scripts/"
overlay="$work/deploy/kubernetes/overlays/$env"
(cd "$overlay" && "$KUSTOMIZE" edit set image "notes-api=$image")
"$KUSTOMIZE" build --load-restrictor LoadRestrictionsNone "$overlay" >"$work/manifests.yaml"

# Every container of the service runs exactly this image (other images, such
# as a backup job's, are the overlay's business), and none is left unresolved.
repo=${image%@*}
ours=$(grep -E "^ *(- )?image: ($repo([:@].*)?|notes-api)$" "$work/manifests.yaml" | sed -E 's/^ *(- )?image: //' | sort -u)
if [ "$ours" != "$image" ]; then
	echo "deploy.sh: the render's service containers run [$ours], not just $image" >&2
	exit 1
fi

if [ -n "${RENDER_ONLY:-}" ]; then
	cp "$work/manifests.yaml" "$RENDER_ONLY"
	echo "deploy.sh: rendered $env with $image into $RENDER_ONLY"
	exit 0
fi

namespace=$(sed -n 's/^namespace: *//p' "$overlay/kustomization.yaml")
echo "deploy.sh: applying $image to $env (namespace $namespace)"
kubectl version --client
# kubectl apply -l filters the render's objects by label; an object without
# the component label (the ConfigMap, the NetworkPolicies) counts as neither.
job=notes-api-migrate

# 1. Everything the migration needs and nothing that runs the new version:
#    namespace, ConfigMap, NetworkPolicies, ServiceAccount, backup CronJobs.
kubectl apply -f "$work/manifests.yaml" -l 'app.kubernetes.io/component notin (api,migrate)'

# 2. The migration, once for this release. A Job's pod template is
#    immutable, so the previous run is deleted first (its logs with it).
kubectl -n "$namespace" delete job "$job" --ignore-not-found --cascade=foreground --wait=true
kubectl apply -f "$work/manifests.yaml" -l app.kubernetes.io/component=migrate
echo "deploy.sh: waiting for job/$job (api migrate up with $image)"
deadline=$((SECONDS + ${MIGRATE_TIMEOUT:-600}))
state=
while [ -z "$state" ]; do
	state=$(kubectl -n "$namespace" get job "$job" \
		-o jsonpath='{range .status.conditions[?(@.status=="True")]}{.type}{" "}{end}' | grep -Eo 'Complete|Failed' | head -n 1 || true)
	if [ -z "$state" ] && [ $SECONDS -ge $deadline ]; then state=Timeout; fi
	[ -n "$state" ] || sleep 5
done
kubectl -n "$namespace" logs "job/$job" --all-containers --tail=200 || true
if [ "$state" != Complete ]; then
	kubectl -n "$namespace" describe job "$job" >&2 || true
	echo "deploy.sh: the migration job did not complete ($state); nothing of $image was rolled out, the previous pods keep serving" >&2
	exit 1
fi
echo "deploy.sh: migrations applied"

# 3. The new version, on the schema it needs.
kubectl apply -f "$work/manifests.yaml" -l app.kubernetes.io/component=api
if ! kubectl -n "$namespace" rollout status deployment/notes-api --timeout=10m; then
	kubectl -n "$namespace" get pods -l app.kubernetes.io/name=notes-api -o wide >&2 || true
	kubectl -n "$namespace" describe deployment/notes-api >&2 || true
	echo "deploy.sh: the rollout did not complete; the previous pods keep serving (maxUnavailable 0)" >&2
	exit 1
fi
echo "deploy.sh: $env runs $image"

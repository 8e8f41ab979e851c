#!/usr/bin/env bash
# Offline checks of everything that delivers the service, each shown to bite:
# every check also runs on a deliberately broken copy, and this script fails
# if the broken copy passes.
#
#   1. actionlint on every workflow (and on a broken one)
#   2. kustomize build of every kustomization under deploy/ (overlays, base,
#      examples, components); kubectl-validate of each render against the Kubernetes
#      1.30 schemas built into it (and of a broken render)
#   3. scripts/ci/deploy.sh renders staging and production with one digest,
#      as a promotion does, and the renders validate
#   4. the sign-off gates (signoff.sh) on good and broken API records, and
#      release.yml's order (attestation verified before each deploy, sign-off
#      before production) on release.yml and on broken copies
#   5. the admission policy (Kyverno: only images signed by cd.yml on main in
#      staging and production), read by a Go test (and broken copies); the
#      deploy/ Go tests: staging and production differ only in allowed fields
#      and run the same digest; each platform's configuration loads;
#      deploy.sh runs the migration Job and waits for it before the rollout
#   6. the compose file against the Compose Specification (and a broken copy)
#   7. shellcheck on every shell script in the repository (and a broken one)
#   8. systemd-analyze verify and security of the unit, where systemd exists
#
# Installs the pinned tools it needs first (scripts/ci/install-tools.sh, which
# `make tools` runs too; nothing to do when they are there). After that: no
# network, no Docker engine, no cluster.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
TOOLS="$ROOT/.tools"
# Kubernetes version whose schemas the manifests are validated against: the
# oldest the manifests support (lifecycle.preStop.sleep is on by default from 1.30).
KUBE_VERSION=1.30
# systemd-analyze security exposure, in tenths: 20 is "2.0", well inside "OK".
SYSTEMD_MAX_EXPOSURE=20

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
start=$SECONDS
step() { printf '\n== %s\n' "$*"; }
die() {
	echo "check-delivery: $*" >&2
	exit 1
}

# A fresh clone has no .tools/: install what is missing (a few minutes cold,
# instant when every pinned version is there).
bash "$ROOT/scripts/ci/install-tools.sh" >&2 || die "installing the pinned tools failed (scripts/ci/install-tools.sh, or make tools)"
for tool in actionlint kustomize kubectl-validate composecheck; do
	[ -x "$TOOLS/$tool" ] || die "$TOOLS/$tool is missing: run make tools (scripts/ci/install-tools.sh)"
done
command -v shellcheck >/dev/null || die "shellcheck is missing: run make tools (scripts/ci/install-tools.sh)"

# must_fail WHAT COMMAND...: the command must exit non-zero on a broken input.
must_fail() {
	local what=$1
	shift
	if "$@" >"$work/bite.out" 2>&1; then
		cat "$work/bite.out" >&2
		die "the check passed $what: it does not bite"
	fi
	echo "rejected as it should be, $what:"
	sed -n '1,5s/^/    /p' "$work/bite.out" # not sed | head: head's early exit would SIGPIPE sed under pipefail
}

step "actionlint $("$TOOLS/actionlint" -version | head -1)"
workflows=(.github/workflows/*.yml)
"$TOOLS/actionlint" "${workflows[@]}"
echo "ok: ${workflows[*]}"
# A bad permission level and a job needing one that does not exist.
mkdir -p "$work/bad/.github/workflows"
sed -e '0,/contents: read/s//contents: reed/' \
	-e '0,/    runs-on: /s//    needs: no-such-job\n    runs-on: /' \
	.github/workflows/ci.yml >"$work/bad/.github/workflows/ci.yml"
must_fail "a workflow with a bad permission and an unknown needs" \
	"$TOOLS/actionlint" "$work/bad/.github/workflows/ci.yml"

step "kustomize $("$TOOLS/kustomize" version) build, kubectl-validate --version $KUBE_VERSION"
# --version selects built-in schemas; no kubeconfig is read, no cluster asked.
validate() { env -u KUBECONFIG "$TOOLS/kubectl-validate" --version "$KUBE_VERSION" "$@"; }
# Every kustomization under deploy/: the overlays, the base, the examples,
# and each component, either where an overlay or example includes it (a
# component that patches the base's Deployment cannot render alone) or, if
# nothing includes it, on its own.
included=$(find deploy -name kustomization.yaml | while IFS= read -r k; do
	sed -n '/^components:/,/^[^ -]/s/^ *- *//p' "$k" | while IFS= read -r c; do
		realpath -m --relative-to=. "$(dirname "$k")/$c"
	done
done | sort -u)
while IFS= read -r dir; do
	if grep -q '^kind: Component' "$dir/kustomization.yaml" && grep -qx "$dir" <<<"$included"; then
		echo "ok: $dir is a component, rendered and validated where it is included"
		continue
	fi
	render="$work/render-${dir//\//-}.yaml"
	# The load restrictor is off because the backup Component generates its
	# ConfigMap from scripts/backup/, the scripts' one home (deploy.sh does the same).
	"$TOOLS/kustomize" build --load-restrictor LoadRestrictionsNone "$dir" >"$render"
	validate "$render" >/dev/null || { validate "$render" || true; die "the render of $dir is invalid"; }
	echo "ok: $dir renders and validates ($(grep -c '^kind:' "$render") objects)"
done < <(find deploy -name kustomization.yaml -exec dirname {} \; | sort)
# A string where a port number belongs, and a misspelt probe.
sed -e 's/containerPort: 8080/containerPort: "8080"/' -e 's/readinessProbe:/readynessProbe:/' \
	"$work/render-deploy-kubernetes-overlays-production.yaml" >"$work/broken.yaml"
must_fail "a render with a string port and an unknown field" validate "$work/broken.yaml"

step "promotion: scripts/ci/deploy.sh sets one digest in staging and production"
digest=sha256:$(printf 'check-delivery' | sha256sum | cut -c1-64)
for env in staging production; do
	RENDER_ONLY="$work/promoted-$env.yaml" KUSTOMIZE="$TOOLS/kustomize" \
		bash scripts/ci/deploy.sh "$env" "ghcr.io/prodready/service@$digest"
	validate "$work/promoted-$env.yaml" >/dev/null || die "the promoted $env render is invalid"
done
must_fail "a tag instead of a digest" env RENDER_ONLY="$work/x.yaml" \
	bash scripts/ci/deploy.sh production ghcr.io/prodready/service:latest

step "sign-off fails closed (scripts/ci/signoff.sh) and release.yml verifies before every deploy"
cat >"$work/env-good.json" <<'JSON'
{"name":"production","can_admins_bypass":false,"protection_rules":[{"type":"required_reviewers","prevent_self_review":true,"reviewers":[{"type":"Team","reviewer":{"slug":"release-approvers"}}]}]}
JSON
bash scripts/ci/signoff.sh rules "$work/env-good.json"
jq '.protection_rules[0].prevent_self_review = false' "$work/env-good.json" >"$work/env-self.json"
must_fail "a production environment that allows self-review" bash scripts/ci/signoff.sh rules "$work/env-self.json"
jq '.protection_rules = [{"type":"wait_timer","wait_timer":5}]' "$work/env-good.json" >"$work/env-none.json"
must_fail "a production environment without required reviewers" bash scripts/ci/signoff.sh rules "$work/env-none.json"
cat >"$work/approvals.json" <<'JSON'
[{"state":"approved","comment":"staging looks good","environments":[{"name":"production"}],"user":{"login":"reviewer"}}]
JSON
bash scripts/ci/signoff.sh approval "$work/approvals.json" releaser
echo '[]' >"$work/approvals-none.json"
must_fail "a release without an approval record" bash scripts/ci/signoff.sh approval "$work/approvals-none.json" releaser
must_fail "a release approved only by the person who started it" bash scripts/ci/signoff.sh approval "$work/approvals.json" reviewer
# The structural test, on release.yml and on broken copies of it.
go test -count=1 -run '^TestReleaseVerifiesBeforeEveryDeploy$' ./deploy/
grep -v 'gh attestation verify' .github/workflows/release.yml >"$work/release-unverified.yml"
must_fail "a release.yml deploying a digest without verifying its attestation" \
	env RELEASE_WORKFLOW="$work/release-unverified.yml" go test -count=1 -run '^TestReleaseVerifiesBeforeEveryDeploy$' ./deploy/
grep -v 'signoff.sh approval' .github/workflows/release.yml >"$work/release-unapproved.yml"
must_fail "a release.yml deploying to production without checking the approval" \
	env RELEASE_WORKFLOW="$work/release-unapproved.yml" go test -count=1 -run '^TestReleaseVerifiesBeforeEveryDeploy$' ./deploy/

step "admission policy: only images signed by cd.yml on main in staging and production"
# A custom resource: kubectl-validate has no schema for it without Kyverno's
# CRDs, so the Go test reads it as Kyverno would (see deploy/deploy_test.go).
go test -count=1 -run '^TestAdmissionPolicyRefusesUnsignedImages$' ./deploy/
sed '0,/failureAction: Enforce/s//failureAction: Audit/' deploy/kubernetes/cluster/signed-images.yaml >"$work/policy-audit.yaml"
must_fail "an admission policy that only audits unsigned images" \
	env ADMISSION_POLICY="$work/policy-audit.yaml" go test -count=1 -run '^TestAdmissionPolicyRefusesUnsignedImages$' ./deploy/
sed 's|cd.yml@refs/heads/main|cd.yml@refs/heads/*|' deploy/kubernetes/cluster/signed-images.yaml >"$work/policy-anybranch.yaml"
must_fail "an admission policy accepting signatures from any branch" \
	env ADMISSION_POLICY="$work/policy-anybranch.yaml" go test -count=1 -run '^TestAdmissionPolicyRefusesUnsignedImages$' ./deploy/

step "go test ./deploy/ (staging = production but for allowed fields; configurations load; migrations run once, before the rollout)"
REQUIRE_SERVICES=1 go test -count=1 ./deploy/

step "compose file (compose-go: schema, interpolation, consistency)"
"$TOOLS/composecheck" deploy/compose/compose.yaml
# Broken copies beside the original, so relative paths resolve the same way.
broken=deploy/compose/.broken-compose.yaml
trap 'rm -rf "$work" "$ROOT/$broken"' EXIT
sed 's/condition: service_healthy/condition: service_happy/' deploy/compose/compose.yaml >"$broken"
must_fail "a compose file with an unknown depends_on condition" "$TOOLS/composecheck" "$broken"
sed 's/^      mailpit:$/      mailpot:/' deploy/compose/compose.yaml >"$broken"
must_fail "a compose file depending on an undefined service" "$TOOLS/composecheck" "$broken"
rm -f "$broken"

step "shellcheck $(shellcheck --version | sed -n 's/^version: //p')"
# Every shell script: *.sh, and files whose first line names sh or bash.
scripts=()
while IFS= read -r -d '' f; do
	case $f in
	*.sh) scripts+=("$f") ;;
	*) head -n1 "$f" | grep -Eq '^#!.*\b(ba)?sh\b' && scripts+=("$f") ;;
	esac
done < <(find . \( -path ./.git -o -path ./.tools -o -path ./node_modules -o -path ./bin \) -prune \
	-o -type f \( -name '*.sh' -o -path './.ci/*' -o -path './scripts/*' -o -path './deploy/*' \) -print0)
[ ${#scripts[@]} -gt 0 ] || die "found no shell scripts"
shellcheck "${scripts[@]}"
printf 'ok: %s\n' "${scripts[@]}"
cat >"$work/broken.sh" <<'SCRIPT'
#!/usr/bin/env bash
dir=$1
rm -rf $dir/*
SCRIPT
must_fail "a script that deletes an unquoted path" shellcheck "$work/broken.sh"

step "systemd unit"
if command -v systemd-analyze >/dev/null; then
	# verify wants the binary to exist: check a copy that starts /bin/true.
	mkdir -p "$work/systemd"
	sed 's|^ExecStart=[^ ]*|ExecStart=/bin/true|' deploy/systemd/notes-api.service >"$work/systemd/notes-api.service"
	cp deploy/systemd/notes-api.socket "$work/systemd/"
	systemd-analyze verify "$work/systemd/notes-api.socket" "$work/systemd/notes-api.service"
	systemd-analyze security --offline=yes --threshold="$SYSTEMD_MAX_EXPOSURE" "$work/systemd/notes-api.service" | tail -n 1
	# Without its hardening the unit must exceed the threshold.
	mkdir -p "$work/soft"
	sed '/^NoNewPrivileges=/,/^SystemCallErrorNumber=/d' "$work/systemd/notes-api.service" >"$work/soft/notes-api.service"
	must_fail "the unit without its hardening" \
		systemd-analyze security --offline=yes --threshold="$SYSTEMD_MAX_EXPOSURE" "$work/soft/notes-api.service"
else
	echo "SKIPPED: systemd-analyze is not installed here; the unit is checked where systemd exists (CI runners)"
fi

printf '\ncheck-delivery: all checks passed in %ds\n' $((SECONDS - start))

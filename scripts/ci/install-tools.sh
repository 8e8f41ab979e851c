#!/usr/bin/env bash
# Installs the delivery tools at pinned versions into .tools/ (the Makefile's
# golangci-lint lives there too). Idempotent: a tool whose pinned version is
# already there costs nothing, so CI and `make` can call this every time.
#
#   scripts/ci/install-tools.sh                 # every tool
#   scripts/ci/install-tools.sh kustomize       # only the ones named
#
# Go tools are built from source with `go install` (the Go module proxy is the
# only download); shellcheck comes from the distribution's packages.
set -euo pipefail

# Bump a version here and the next run installs it beside the old one
# (Renovate proposes bumps: renovate.json reads the "# renovate:" comments).
# renovate: datasource=go depName=github.com/rhysd/actionlint
ACTIONLINT_VERSION=v1.7.12
# renovate: datasource=go depName=sigs.k8s.io/kustomize/kustomize/v5
KUSTOMIZE_VERSION=v5.8.2
# v0.0.4 embeds the OpenAPI schemas of Kubernetes 1.26 to 1.30, so it
# validates offline; check-delivery.sh passes --version 1.30.
# renovate: datasource=go depName=sigs.k8s.io/kubectl-validate
KUBECTL_VALIDATE_VERSION=v0.0.4
# The image builder (.ko.yaml, scripts/ci/image.sh) and go-containerregistry's
# crane (a loopback registry here, image inspection here and in cd.yml).
# renovate: datasource=go depName=github.com/google/ko
KO_VERSION=v0.19.1
# renovate: datasource=go depName=github.com/google/go-containerregistry
CRANE_VERSION=v0.22.1
# The version in Debian 12 and Ubuntu 24.04; a different one may report differently.
SHELLCHECK_VERSION=0.9.0

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TOOLS="$ROOT/.tools"
mkdir -p "$TOOLS"

log() { printf '== %s\n' "$*"; }

# go_tool NAME VERSION PACKAGE [BUILT_NAME]: build PACKAGE@VERSION into
# .tools/NAME-VERSION and point the plain name .tools/NAME at it.
go_tool() {
	local name=$1 version=$2 pkg=$3 built=${4:-$1}
	local target="$TOOLS/$name-$version"
	if [ ! -x "$target" ]; then
		log "installing $name $version"
		local tmp
		tmp=$(mktemp -d)
		GOBIN="$tmp" GOFLAGS=-buildvcs=false go install "$pkg@$version"
		mv "$tmp/$built" "$target"
		rm -rf "$tmp"
	fi
	ln -sfn "$name-$version" "$TOOLS/$name"
}

# composecheck is this repository's own small module (scripts/ci/composecheck,
# compose-go pinned in its go.mod), rebuilt whenever its source changes.
composecheck_tool() {
	local src="$ROOT/scripts/ci/composecheck" sum
	sum=$(cat "$src/go.mod" "$src/go.sum" "$src/main.go" | sha256sum | cut -c1-12)
	local target="$TOOLS/composecheck-$sum"
	if [ ! -x "$target" ]; then
		log "building composecheck ($sum)"
		rm -f "$TOOLS"/composecheck-*
		GOFLAGS=-buildvcs=false go -C "$src" build -trimpath -o "$target" .
	fi
	ln -sfn "composecheck-$sum" "$TOOLS/composecheck"
}

shellcheck_tool() {
	if command -v shellcheck >/dev/null 2>&1 &&
		shellcheck --version | grep -qx "version: $SHELLCHECK_VERSION"; then
		return
	fi
	log "installing shellcheck $SHELLCHECK_VERSION (distribution package)"
	local sudo=()
	if [ "$(id -u)" -ne 0 ]; then sudo=(sudo); fi
	"${sudo[@]}" apt-get update -qq
	DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq shellcheck >/dev/null
	if ! shellcheck --version | grep -qx "version: $SHELLCHECK_VERSION"; then
		echo "warning: shellcheck is $(shellcheck --version | sed -n 's/^version: //p'), not the pinned $SHELLCHECK_VERSION" >&2
	fi
}

install() {
	case $1 in
	actionlint) go_tool actionlint "$ACTIONLINT_VERSION" github.com/rhysd/actionlint/cmd/actionlint ;;
	kustomize) go_tool kustomize "$KUSTOMIZE_VERSION" sigs.k8s.io/kustomize/kustomize/v5 ;;
	kubectl-validate) go_tool kubectl-validate "$KUBECTL_VALIDATE_VERSION" sigs.k8s.io/kubectl-validate ;;
	ko) go_tool ko "$KO_VERSION" github.com/google/ko ;;
	crane) go_tool crane "$CRANE_VERSION" github.com/google/go-containerregistry/cmd/crane ;;
	composecheck) composecheck_tool ;;
	shellcheck) shellcheck_tool ;;
	*)
		echo "install-tools.sh: unknown tool $1 (known: actionlint kustomize kubectl-validate ko crane composecheck shellcheck)" >&2
		exit 2
		;;
	esac
}

if [ $# -eq 0 ]; then
	set -- actionlint kustomize kubectl-validate ko crane composecheck shellcheck
fi
for tool in "$@"; do
	install "$tool"
done

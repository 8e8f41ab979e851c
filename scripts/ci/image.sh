#!/usr/bin/env bash
# Builds the container image with ko (.ko.yaml) without a Docker engine,
# twice, into a registry on loopback, and checks what an operator relies on:
#
#   1. both builds have the same digest (SOURCE_DATE_EPOCH is the commit's
#      time; nothing reads the clock)
#   2. the image runs as user 65532 and has no shell
#   3. entrypoint /ko-app/api, the OCI labels (version, revision, source)
#   4. the binary inside reports the version and commit it was stamped with
#   5. ko wrote an SPDX SBOM of the image
#
#   scripts/ci/image.sh [OUT_DIR]     # OUT_DIR default: bin/image
#
# OUT_DIR gets the SBOM (sbom/), the image's config and digest. The base:
# .ko.yaml names distroless static (nonroot) pinned by digest, which cd.yml
# uses. This machine reaches no image registry, so here the base is made
# from scratch with the same contract (user nonroot 65532 in /etc/passwd, CA
# certificates, /tmp, no shell) and passed as KO_DEFAULTBASEIMAGE; the checks
# below are the same ones cd.yml runs on the pushed image (IMAGE_CHECK_ONLY).
#
# IMAGE_CHECK_ONLY=REF skips the builds and checks an existing image REF
# (cd.yml: the digest it has just pushed to ghcr.io).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
TOOLS="$ROOT/.tools"
OUT=${1:-$ROOT/bin/image}
mkdir -p "$OUT"
bash scripts/ci/install-tools.sh ko crane >&2
KO="$TOOLS/ko"
CRANE="$TOOLS/crane"

work=$(mktemp -d)
registry_pid=
cleanup() {
	if [ -n "$registry_pid" ]; then kill "$registry_pid" 2>/dev/null || true; fi
	rm -rf "$work"
}
trap cleanup EXIT
die() {
	echo "image: $*" >&2
	exit 1
}

# The stamps, all from git: the same commit gives the same bytes.
VERSION=$(git describe --tags --always 2>/dev/null || echo dev)
COMMIT=$(git rev-parse HEAD)
COMMIT_TIME=$(TZ=UTC git log -1 --format=%cd --date=format-local:%Y-%m-%dT%H:%M:%SZ)
SOURCE_DATE_EPOCH=$(git log -1 --format=%ct)
export VERSION COMMIT COMMIT_TIME SOURCE_DATE_EPOCH
SOURCE_URL=https://github.com/prodready/service

# check_image REF: the checks of the header, on one image.
check_image() {
	local ref=$1
	"$CRANE" config "$ref" >"$OUT/config.json"
	local user entrypoint
	user=$(jq -r '.config.User // ""' "$OUT/config.json")
	entrypoint=$(jq -c '.config.Entrypoint' "$OUT/config.json")
	[ "${user%%:*}" = 65532 ] || die "$ref runs as user '$user', want 65532 (nonroot)"
	[ "$entrypoint" = '["/ko-app/api"]' ] || die "$ref entrypoint $entrypoint, want [\"/ko-app/api\"]"
	local label want
	for label in "org.opencontainers.image.version=$VERSION" "org.opencontainers.image.revision=$COMMIT" \
		"org.opencontainers.image.source=$SOURCE_URL"; do
		want=${label#*=}
		[ "$(jq -r --arg k "${label%%=*}" '.config.Labels[$k] // ""' "$OUT/config.json")" = "$want" ] ||
			die "$ref label ${label%%=*} is not '$want'"
	done
	"$CRANE" export "$ref" "$work/fs.tar"
	tar -tf "$work/fs.tar" | sed -E 's#^\.?/##' | sort >"$OUT/files.txt"
	if grep -E '(^|/)(sh|bash|dash|ash|busybox)$' "$OUT/files.txt"; then
		die "$ref has a shell (above)"
	fi
	mkdir -p "$work/fs"
	tar -xf "$work/fs.tar" -C "$work/fs" --wildcards '*ko-app/api' 2>/dev/null
	local reported
	reported=$("$work/fs/ko-app/api" version)
	[[ $reported == "api $VERSION (commit $COMMIT, committed $COMMIT_TIME, "* ]] ||
		die "the binary reports '$reported', want version $VERSION, commit $COMMIT, committed $COMMIT_TIME"
	echo "ok: $ref: user $user, entrypoint $entrypoint, no shell, labels, and the binary says: $reported"
}

if [ -n "${IMAGE_CHECK_ONLY:-}" ]; then
	check_image "$IMAGE_CHECK_ONLY"
	exit 0
fi

# A registry on loopback (crane's, in memory), on a free port.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
registry=127.0.0.1:$port
"$CRANE" registry serve --address "$registry" >"$work/registry.log" 2>&1 &
registry_pid=$!
for _ in $(seq 1 50); do
	"$CRANE" catalog "$registry" >/dev/null 2>&1 && break
	sleep 0.2
done
"$CRANE" catalog "$registry" >/dev/null || { cat "$work/registry.log" >&2; die "the loopback registry did not start"; }

# The stand-in base: distroless static's contract, made from files, with
# fixed owners and times so it is itself reproducible.
root="$work/base"
mkdir -p "$root/etc/ssl/certs" "$root/tmp" "$root/home/nonroot"
printf '%s\n' 'root:x:0:0:root:/root:/sbin/nologin' 'nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin' \
	'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin' >"$root/etc/passwd"
printf '%s\n' 'root:x:0:' 'nobody:x:65534:' 'nonroot:x:65532:' >"$root/etc/group"
cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
chmod 1777 "$root/tmp"
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=gnu -C "$root" -cf "$work/base.tar" .
base="$registry/distroless-static-nonroot-standin:latest"
"$CRANE" append --oci-empty-base -f "$work/base.tar" -t "$base" >/dev/null 2>"$work/crane.log" ||
	{ cat "$work/crane.log" >&2; die "pushing the stand-in base failed"; }
base=$("$CRANE" mutate "$base" --user 65532:65532 --workdir /home/nonroot \
	--env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
	--env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt 2>"$work/crane.log") ||
	{ cat "$work/crane.log" >&2; die "configuring the stand-in base failed"; }
echo "base (stand-in for distroless static nonroot): $base"

# build N: one ko build into the loopback registry; prints the image ref.
build() {
	local n=$1
	rm -rf "$OUT/sbom-$n"
	env -u KOCACHE KO_DOCKER_REPO="$registry/notes-api" KO_DEFAULTBASEIMAGE="$base" \
		"$KO" build --bare --tags "build-$n" --sbom spdx --sbom-dir "$OUT/sbom-$n" \
		--image-label "org.opencontainers.image.title=notes-api" \
		--image-label "org.opencontainers.image.version=$VERSION" \
		--image-label "org.opencontainers.image.revision=$COMMIT" \
		--image-label "org.opencontainers.image.source=$SOURCE_URL" \
		--image-refs "$work/ref-$n" ./cmd/api >"$work/build-$n.log" 2>&1 ||
		{ cat "$work/build-$n.log" >&2; die "ko build $n failed"; }
	cat "$work/ref-$n"
}
start=$SECONDS
first=$(build 1)
second=$(build 2)
echo "build 1: $first"
echo "build 2: $second"
[ "${first#*@}" = "${second#*@}" ] || die "two builds of $COMMIT gave different digests: not reproducible"
echo "ok: two builds, one digest ${first#*@} (SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH, $((SECONDS - start))s)"
echo "${first#*@}" >"$OUT/digest"

sboms=("$OUT"/sbom-1/*)
[ -s "${sboms[0]}" ] || die "ko wrote no SBOM into $OUT/sbom-1"
jq -e '.spdxVersion | startswith("SPDX-")' "${sboms[0]}" >/dev/null || die "${sboms[0]} is not an SPDX document"
echo "ok: SPDX SBOM $(basename "${sboms[0]}") ($(jq '.packages | length' "${sboms[0]}") packages)"

check_image "$first"

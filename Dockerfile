# syntax=docker/dockerfile:1
# The notes API as a container image: a static binary on distroless, non-root.
#
#   docker build --build-arg VERSION=v1.2.3 --build-arg COMMIT=$(git rev-parse HEAD) \
#     --build-arg BUILD_TIME=$(date -u +%Y-%m-%dT%H:%M:%SZ) -t notes-api .
#
# Building needs a Docker engine (CI has one; cd.yml builds each commit on main
# once and every environment runs that same digest).

# ---- build: the same flags as `make build`
# The builder is pinned by tag to the Go release in go.mod; what ships is only
# the static binary it produces.
FROM golang:1.26.8 AS build
WORKDIR /src
# Dependencies first: this layer is reused until go.mod or go.sum change.
COPY go.mod go.sum ./
RUN go mod download && go mod verify
COPY . .
ARG VERSION=dev
ARG COMMIT=unknown
ARG BUILD_TIME=unknown
RUN --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -buildvcs=false \
      -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT} -X main.buildTime=${BUILD_TIME}" \
      -o /out/api ./cmd/api \
 && /out/api version

# ---- run: no shell, no package manager; CA certificates and time zones included.
# gcr.io/distroless/static-debian12:nonroot, pinned by digest so a rebuild of an
# old commit gets the same base (update: crane digest gcr.io/distroless/static-debian12:nonroot).
FROM gcr.io/distroless/static-debian12:nonroot@sha256:afa5c872c891853ca7fcf1f12c3edb23f7eeef36189728842dd51042ff57f7ab
ARG VERSION=dev
ARG COMMIT=unknown
ARG BUILD_TIME=unknown
LABEL org.opencontainers.image.title="notes-api" \
      org.opencontainers.image.description="Notes API: a reference service for production readiness" \
      org.opencontainers.image.source="https://github.com/prodready/service" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${COMMIT}" \
      org.opencontainers.image.created="${BUILD_TIME}"
COPY --from=build /out/api /api
# The image's "nonroot" user; Kubernetes pins the same IDs (runAsUser 65532).
USER 65532:65532
EXPOSE 8080
# Readiness through the binary itself (the image has no curl): exit 0 on 200.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["/api", "healthcheck", "--url", "http://127.0.0.1:8080/readyz"]
# Production settings come from the environment (DATABASE_URL, STATUS_TOKENS,
# ...) or a file named by APP_CONFIG; see docs/CONFIGURATION.md.
ENTRYPOINT ["/api"]
CMD ["serve"]

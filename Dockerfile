# syntax=docker/dockerfile:1
#
# One build, one small image per binary. Pick the binary with --target (docker-compose.yml does):
#   docker build --target worker      -t cartflow-worker .
#   docker build --target api         -t cartflow-api .
#   docker build --target stripefake  -t cartflow-stripefake .
#   docker build --target web         -t cartflow-web .
# Without --target the last stage (api) is built.

# The build runs on the builder's own platform and cross-compiles, so a multi-platform build
# (--platform linux/amd64,linux/arm64) needs no emulation. The tag floats over 1.26 patch
# releases so that it always satisfies go.mod's go line.
FROM --platform=$BUILDPLATFORM golang:1.26-bookworm AS build
ARG TARGETOS
ARG TARGETARCH
WORKDIR /src

# Modules first: this layer, and the cache mount, survive edits to the source.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download

COPY . .
# CGO off: the binaries are static and run on distroless/static, which has no libc.
# -trimpath and -buildvcs=false keep build paths and the (absent) .git out of the binaries,
# so the same source gives the same bytes; -s -w drops the symbol tables.
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -buildvcs=false -ldflags="-s -w" -o /out/ \
        ./worker ./api ./internal/dev/cmd/stripefake

# distroless/static has CA certificates (the worker calls Stripe over TLS) and tzdata, but no
# shell, so containers built from it cannot run shell health checks. :nonroot runs as uid 65532.

# The Stripe test-mode layer in front of stripe-mock. It listens on loopback by default, which
# is unreachable from other containers, so the image default binds every interface.
FROM gcr.io/distroless/static-debian12:nonroot AS stripefake
COPY --from=build /out/stripefake /stripefake
USER nonroot:nonroot
EXPOSE 12113
ENTRYPOINT ["/stripefake"]
CMD ["-listen", "0.0.0.0:12113", "-upstream", "http://stripe-mock:12111"]

# The Temporal worker. Configured entirely by environment (docs/configuration.md).
FROM gcr.io/distroless/static-debian12:nonroot AS worker
COPY --from=build /out/worker /worker
USER nonroot:nonroot
ENTRYPOINT ["/worker"]

# The storefront (web/, Next.js), served by `next start` on :3000. It calls the BFF from its
# server (CARTFLOW_API_URL) and names the shopper in X-Forwarded-For; the browser never calls
# the BFF. Dependencies first, so that the npm ci layer survives edits to the pages.
FROM node:20-bookworm-slim AS web
ENV NEXT_TELEMETRY_DISABLED=1
WORKDIR /web
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY web/ ./
RUN npm run build
ENV NODE_ENV=production HOSTNAME=0.0.0.0 PORT=3000
USER node
EXPOSE 3000
CMD ["npm", "run", "start"]

# The BFF. HTTP_ADDR defaults to :8080. Its internal listener (/readyz, /metrics) defaults to
# 127.0.0.1:9091, which only the container itself reaches: set INTERNAL_HTTP_ADDR=:9091 on a
# private network, as docker-compose.yml does, and never publish it.
FROM gcr.io/distroless/static-debian12:nonroot AS api
COPY --from=build /out/api /api
USER nonroot:nonroot
EXPOSE 8080 9091
ENTRYPOINT ["/api"]

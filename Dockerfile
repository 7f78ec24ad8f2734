# Builds the offering-operator manager image:
#   make docker-build IMG=offering-operator:dev
# The binary is built exactly like `make build` (CGO_ENABLED=0 and the
# Makefile's GO_BUILD_FLAGS: -trimpath -ldflags "-s -w"); keep them in sync.

FROM golang:1.26 AS builder
# Set by BuildKit (docker buildx --platform); empty means the builder's arch.
ARG TARGETARCH

WORKDIR /workspace
# Dependencies first, so this layer is cached until go.mod/go.sum change.
COPY go.mod go.sum ./
RUN go mod download

# The sources (main.go, api/, controllers/, internal/, pkg/, ...); what is not
# needed is kept out by .dockerignore.
COPY . .

RUN CGO_ENABLED=0 GOOS=linux GOARCH=${TARGETARCH} \
    go build -trimpath -ldflags "-s -w" -o manager .

# A minimal, shell-less base that runs as the nonroot user (65532).
FROM gcr.io/distroless/static:nonroot
WORKDIR /
COPY --from=builder /workspace/manager /manager
USER 65532:65532

ENTRYPOINT ["/manager"]

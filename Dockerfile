# pgrules and its Go teacher plugins in a small image (distroless, no
# shell, non-root). Build: docker build -t pgrules . ; the Kubernetes
# manifests are in deploy/kubernetes.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
# Pure Go (the cache is modernc.org/sqlite): a static binary each.
ENV CGO_ENABLED=0
RUN make build VERSION=$VERSION BIN=/out

FROM gcr.io/distroless/static-debian12:nonroot
# pgrules finds plugins next to its own binary.
COPY --from=build /out/ /usr/local/bin/
# The default gates, word lists, schemas and prompts are built into the
# binary; mount your own and pass --rules / --template to use them.
WORKDIR /work
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/pgrules"]
CMD ["--help"]

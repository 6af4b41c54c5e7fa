#!/usr/bin/env bash
# Regenerates provider.pb.go and provider_grpc.pb.go. Needs protoc (Debian:
# apt-get install protobuf-compiler) and the Go generators pinned in
# tools/go.mod (installed below). No network plugins: everything is local.
set -euo pipefail
cd "$(dirname "$0")"
(cd ../../tools && go install google.golang.org/protobuf/cmd/protoc-gen-go google.golang.org/grpc/cmd/protoc-gen-go-grpc)
PATH="$(go env GOPATH)/bin:$PATH" protoc --go_out=. --go_opt=paths=source_relative \
  --go-grpc_out=. --go-grpc_opt=paths=source_relative provider.proto
# The Python template plugin generates its stubs from its own copy.
cp provider.proto ../../plugins/python-example/proto/provider.proto

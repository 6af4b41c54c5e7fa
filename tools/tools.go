//go:build tools

// Package tools pins the protobuf code generators outside the main go.mod:
// `go install` them from here (see providers/proto/gen.sh).
package tools

import (
	_ "google.golang.org/grpc/cmd/protoc-gen-go-grpc"
	_ "google.golang.org/protobuf/cmd/protoc-gen-go"
)

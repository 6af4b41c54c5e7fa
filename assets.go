// Package pgrules holds the files pgrules ships besides its code: the
// default gates, word lists, JSON Schemas and prompt template. They are
// embedded so a pgrules binary works on its own; files on disk, when given,
// always win.
package pgrules

import "embed"

// Defaults is the built-in copy of gates.yaml, keywords/, schemas/ and
// prompts/ as they are in this repository.
//
//go:embed gates.yaml keywords schemas prompts
var Defaults embed.FS

// PluginTemplate is plugins/example (a teacher plugin and its tests) with
// this module's go.mod and go.sum: what `pgrules plugin new` writes out.
//
//go:embed plugins/example/main.go plugins/example/main_test.go go.mod go.sum
var PluginTemplate embed.FS

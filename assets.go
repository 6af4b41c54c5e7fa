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

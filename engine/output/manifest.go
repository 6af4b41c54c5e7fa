package output

import "encoding/json"

// ManifestView is dataset_v1_manifest.json as the commands that read it
// back see it (previous outputs, changes, export's card, merge): one
// reading of the file the run writes (engine.Manifest), so a field renamed
// there is renamed for every reader at once.
type ManifestView struct {
	PgrulesVersion string                   `json:"pgrules_version"`
	RunID          string                   `json:"run_id"`
	CreatedAt      string                   `json:"created_at"`
	GatingMode     string                   `json:"gating_mode"`
	Inputs         map[string]ManifestInput `json:"inputs"`
	Rules          struct {
		Files []ManifestFileView `json:"files"`
	} `json:"rules"`
	Template     ManifestFileView `json:"template"`
	SystemSHA256 string           `json:"system_message_sha256"`
	Provider     struct {
		Name     string          `json:"name"`
		Version  string          `json:"version"`
		Path     string          `json:"path"`
		SHA256   string          `json:"sha256"`
		Identity json.RawMessage `json:"identity"`
	} `json:"provider"`
	Counts  map[string]int      `json:"counts"`
	Outputs map[string]FileInfo `json:"outputs"`
	Health  struct {
		// Healthy is nil in a manifest written before runs had a
		// health verdict.
		Healthy *bool `json:"healthy"`
	} `json:"health"`
}

// ManifestInput is one input file as the manifest records it.
type ManifestInput struct {
	Path    string `json:"path"`
	AbsPath string `json:"abs_path"`
	SHA256  string `json:"sha256"`
	Bytes   int64  `json:"bytes"`
	Records int    `json:"records"`
}

// ManifestFileView is a rules file, template or plugin and its digest.
type ManifestFileView struct {
	Path    string `json:"path"`
	Kind    string `json:"kind,omitempty"`
	SHA256  string `json:"sha256"`
	Builtin bool   `json:"builtin,omitempty"`
}

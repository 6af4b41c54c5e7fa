package inputs

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/pgrules/pgrules/rules"
)

// PlanFacts finds the plan fields of ids in the prompt plan a run read,
// for tools that look at a run afterwards (explain, eval, report): rejected
// records do not carry them. The plan is used only while it is the file
// the run read — its sha256 as the manifest recorded it — so a tool never
// judges a sample with another plan's facts; otherwise the error says why.
func PlanFacts(manifestInputs json.RawMessage, ids map[string]bool) (map[string]rules.Sample, error) {
	var in struct {
		Plan struct {
			Path    string `json:"path"`
			AbsPath string `json:"abs_path"`
			SHA256  string `json:"sha256"`
		} `json:"prompt_plan"`
	}
	if json.Unmarshal(manifestInputs, &in) != nil || in.Plan.Path == "" {
		return nil, fmt.Errorf("the manifest names no prompt plan")
	}
	f, err := os.Open(in.Plan.Path)
	if err != nil && in.Plan.AbsPath != "" {
		f, err = os.Open(in.Plan.AbsPath)
	}
	if err != nil {
		return nil, fmt.Errorf("the prompt plan %s is not readable from here (%v)", in.Plan.Path, err)
	}
	defer f.Close()
	h := sha256.New()
	found := map[string]rules.Sample{}
	r := bufio.NewReaderSize(io.TeeReader(f, h), 1<<20)
	for {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 {
			var p rules.Sample
			if json.Unmarshal(line, &p) == nil && ids[p.ID] {
				if _, dup := found[p.ID]; !dup {
					found[p.ID] = p
				}
			}
		}
		if err != nil {
			break
		}
	}
	if hex.EncodeToString(h.Sum(nil)) != in.Plan.SHA256 {
		return nil, fmt.Errorf("the prompt plan %s changed since the run", in.Plan.Path)
	}
	return found, nil
}

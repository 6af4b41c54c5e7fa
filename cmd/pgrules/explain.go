package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/pgrules/pgrules/engine/inputs"
	"github.com/pgrules/pgrules/engine/output"
	"github.com/pgrules/pgrules/rules"
)

func newExplainCmd() *cobra.Command {
	var rawPath, payloadType string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "explain ID",
		Short: "Why a sample is accepted or rejected: variables, gates, every term hit with its JSON path",
		Long: `Evaluates one sample's teacher answer with the current rules (so it also
answers "what would my edited gate say?"). The answer is read from the
run's outputs in --out-dir (the accepted response, or the rejected record's
raw_refined_text), or from a file with --raw.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			l, err := loadFor(cmd)
			if err != nil {
				return usageErr(err)
			}
			outDir, rulesPath, mode := l.cfg.OutDir, l.cfg.Rules, l.cfg.GatingMode
			rs, err := loadRules(rulesPath)
			if err != nil {
				return usageErr(err)
			}
			raw, where, sample, err := findAnswer(id, outDir, rawPath)
			if err != nil {
				return usageErr(err)
			}
			if payloadType != "" {
				sample.PayloadType = payloadType
			}
			d := rs.Evaluate(sample, raw, rules.Mode(mode))
			out := cmd.OutOrStdout()
			if asJSON {
				return writeExplainJSON(out, id, where, d)
			}
			verdict := "ACCEPT"
			if !d.OverallOK {
				verdict = "REJECT " + strings.Join(d.ReasonCodes, ", ")
			}
			fmt.Fprintf(out, "sample %s (answer from %s)\nwith %s, %s mode: %s\n", id, where, rs.Path(), mode, verdict)
			c := d.Contract
			fmt.Fprintf(out, "\ncontract: parse_mode=%q strict_json_ok=%v envelope_ok=%v payload_ok=%v payload_type=%q\n", c.ParseMode, c.StrictJSONOK, c.EnvelopeOK, c.PayloadOK, c.PayloadType)
			for _, e := range c.Errors {
				fmt.Fprintf(out, "  error: %s\n", e)
			}
			fmt.Fprintln(out, "\nvariables:")
			for _, v := range d.Variables {
				b, _ := json.Marshal(v.Value)
				fmt.Fprintf(out, "  %s = %s\n", v.Key, b)
			}
			fmt.Fprintln(out, "\ngates:")
			for _, g := range d.Gates {
				state := "SKIP"
				if g.Passed != nil {
					state = map[bool]string{true: "PASS", false: "FAIL"}[*g.Passed]
				}
				b, _ := json.Marshal(g.Details)
				fmt.Fprintf(out, "  %s %-28s %-8s reason=%s\n       details: %s\n", state, g.Name, g.Action, g.ReasonCode, b)
			}
			if d.ByContract {
				fmt.Fprintf(out, "  (no reject gate failed: the answer is rejected %s because the contract does not hold, which pgrules never accepts, whatever the gates say)\n", d.ReasonCodes[0])
			}
			fmt.Fprintln(out, "\nterm hits:")
			if len(d.Hits()) == 0 {
				fmt.Fprintln(out, "  (none)")
			}
			for _, h := range d.Hits() {
				fmt.Fprintf(out, "  %-16s %-24q at %s: %s\n", h.List, h.Term, h.Path, h.Text)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.String("out-dir", "out", "the run's out dir (default: out_dir of the config)")
	f.String("rules", "gates.yaml", "the gates file to evaluate with (default: rules of the config)")
	f.StringVar(&rawPath, "raw", "", "read the teacher's answer from this file instead of the outputs")
	f.String("gating-mode", "lenient", "strict or lenient (default: gating_mode of the config)")
	f.StringVar(&payloadType, "payload-type", "", "the payload type the plan asked for (default: from the record)")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// findAnswer locates a sample's teacher text: a file given with --raw, the
// accepted record's response, or the rejected record's raw_refined_text.
func findAnswer(id, outDir, rawPath string) (string, string, rules.Sample, error) {
	s := rules.Sample{ID: id}
	if rawPath != "" {
		b, err := os.ReadFile(rawPath)
		if err != nil {
			return "", "", s, fmt.Errorf("--raw: %w", err)
		}
		return string(b), rawPath, s, nil
	}
	// Through the committed snapshot: a commit a killed run left half done
	// is finished first, so the record is read from one whole run.
	snap, err := output.OpenCommitted(outDir)
	if err != nil {
		return "", "", s, err
	}
	defer snap.Close()
	if snap.Files[output.DatasetFile] == nil && snap.Files[output.RejectedFile] == nil {
		return "", "", s, fmt.Errorf("%s holds no committed pgrules outputs: name the out dir of a run with --out-dir, or pass the answer with --raw FILE", outDir)
	}
	for _, name := range []string{output.DatasetFile, output.RejectedFile} {
		path := filepath.Join(outDir, name)
		f := snap.Files[name]
		if f == nil {
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<26)
		for line := 1; sc.Scan(); line++ {
			// The id is compared decoded: ids holding quotes, tabs or
			// newlines are escaped in the file.
			var head struct {
				ID string `json:"id"`
			}
			if json.Unmarshal(sc.Bytes(), &head) != nil || head.ID != id {
				continue
			}
			var rec struct {
				rules.Sample
				Response       json.RawMessage `json:"response"`
				RawRefinedText *string         `json:"raw_refined_text"`
				Contract       *struct {
					PayloadType string `json:"payload_type"`
					Error       string `json:"error"`
				} `json:"contract"`
			}
			if json.Unmarshal(sc.Bytes(), &rec) != nil {
				continue
			}
			where := fmt.Sprintf("%s:%d", path, line)
			s = rec.Sample
			if name == output.RejectedFile {
				// Rejected records do not carry the plan's fields; gates
				// that read sample.* must see what the run saw.
				s, where = withPlanFacts(snap, s, where)
			}
			switch {
			case len(rec.Response) > 0:
				return string(rec.Response), where, s, nil
			case rec.RawRefinedText != nil:
				if rec.Contract != nil {
					s.PayloadType = rec.Contract.PayloadType
				}
				return *rec.RawRefinedText, where, s, nil
			default:
				why := "no teacher answer"
				if rec.Contract != nil && rec.Contract.Error != "" {
					why = rec.Contract.Error
				}
				return "", "", s, fmt.Errorf("%s: sample %s was rejected before the gates ran: %s", where, id, why)
			}
		}
		if err := sc.Err(); err != nil {
			return "", "", s, fmt.Errorf("reading %s: %w", path, err)
		}
	}
	return "", "", s, fmt.Errorf("sample %s is not in %s or %s: check the id and --out-dir, or pass the answer with --raw FILE", id, filepath.Join(outDir, output.DatasetFile), filepath.Join(outDir, output.RejectedFile))
}

func writeExplainJSON(w io.Writer, id, where string, d *rules.Decision) error {
	vars := map[string]any{}
	for _, v := range d.Variables {
		vars[v.Key] = v.Value
	}
	return writeJSON(w, map[string]any{
		"id": id, "source": where, "overall_ok": d.OverallOK, "reason_codes": d.ReasonCodes,
		"warnings": d.Warnings, "contract": d.Contract, "variables": vars,
		"gates": json.RawMessage(d.GatesJSON()), "hits": d.Hits(), "rejected_by_contract": d.ByContract,
	})
}

// withPlanFacts fills a rejected sample's plan fields from the prompt plan
// of the run, when that file is unchanged; the source line says which.
func withPlanFacts(snap *output.Committed, s rules.Sample, where string) (rules.Sample, string) {
	man, err := snap.ReadDocument(output.ManifestFile)
	if err != nil || man == nil {
		return s, where + " (sample fields unknown: no manifest)"
	}
	var m struct {
		Inputs json.RawMessage `json:"inputs"`
	}
	_ = json.Unmarshal(man, &m)
	found, err := inputs.PlanFacts(m.Inputs, map[string]bool{s.ID: true})
	if err != nil {
		return s, where + " (sample fields unknown: " + err.Error() + ")"
	}
	p, ok := found[s.ID]
	if !ok {
		return s, where + " (sample fields unknown: the id is not in the prompt plan)"
	}
	payloadType := s.PayloadType
	s = p
	if payloadType != "" {
		s.PayloadType = payloadType
	}
	return s, where + " (sample fields from the prompt plan)"
}

package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pgrules/pgrules/engine"
)

// Shards run as separate local processes at once, then merged: with
// SOURCE_DATE_EPOCH, records and stats are byte for byte one unsharded
// run's, for N = 1, 3 and 4.
func TestShardedRunsMergeToTheUnshardedRun(t *testing.T) {
	bin := buildPgrules(t)
	work := t.TempDir()
	sample, _ := filepath.Abs("../../testdata/sample")
	env := append(os.Environ(), "SOURCE_DATE_EPOCH=1769849398")
	run := func(args ...string) (string, error) {
		cmd := exec.Command(bin, args...)
		cmd.Dir, cmd.Env = work, env
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	// A shard of a few samples may hold the sample run's one teacher
	// failure: more than 10 % of it.
	args := func(out, cache string, extra ...string) []string {
		return append([]string{"run", "--provider", "dryrun", "--log-format", "json", "--out-dir", out, "--cache-path", cache,
			"--plan", filepath.Join(sample, "prompt_plan_v1.jsonl"), "--drafts", filepath.Join(sample, "drafts_v1.jsonl"),
			"--critiques", filepath.Join(sample, "critiques_v1.jsonl"), "--max-teacher-failure-rate", "1"}, extra...)
	}
	if out, err := run(args("full", "full.db")...); err != nil {
		t.Fatalf("unsharded run: %v\n%s", err, out)
	}
	for _, n := range []int{1, 3, 4} {
		t.Run(fmt.Sprint("N=", n), func(t *testing.T) {
			var wg sync.WaitGroup
			errs := make([]string, n)
			var dirs []string
			for k := range n {
				dir := fmt.Sprintf("n%d/shard-%d", n, k)
				dirs = append(dirs, dir)
				wg.Add(1)
				go func() {
					defer wg.Done()
					// One fresh cache shared by the N processes.
					if out, err := run(args(dir, fmt.Sprintf("n%d.db", n), "--shard", fmt.Sprintf("%d/%d", k, n))...); err != nil {
						errs[k] = fmt.Sprintf("shard %d/%d: %v\n%s", k, n, err, out)
					}
				}()
			}
			wg.Wait()
			for _, e := range errs {
				if e != "" {
					t.Fatal(e)
				}
			}
			// Each shard holds exactly its ids.
			total := 0
			for k, dir := range dirs {
				for _, f := range []string{"dataset_v1.jsonl", "dataset_v1_rejected.jsonl"} {
					for _, l := range strings.Split(strings.TrimSpace(string(must(os.ReadFile(filepath.Join(work, dir, f))))), "\n") {
						if l == "" {
							continue
						}
						id := l[len(`{"id": "`):strings.Index(l, `", `)]
						if engine.ShardOf(id, n) != k {
							t.Errorf("%s holds %s, whose shard is %d", dir, id, engine.ShardOf(id, n))
						}
						total++
					}
				}
			}
			if total != 37 {
				t.Errorf("the shards hold %d records, the run 37", total)
			}
			// Every shard reads every input line, so each reports every
			// bad line, as the whole run does.
			full := must(os.ReadFile(filepath.Join(work, "full", "dataset_v1_stats.json")))
			wantSkipped := regexp.MustCompile(`"input_problems": \d+`).Find(full)
			for _, dir := range dirs {
				st := must(os.ReadFile(filepath.Join(work, dir, "dataset_v1_stats.json")))
				if got := regexp.MustCompile(`"input_problems": \d+`).Find(st); !bytes.Equal(got, wantSkipped) {
					t.Errorf("%s: %s, the whole run: %s", dir, got, wantSkipped)
				}
			}
			merged := fmt.Sprintf("n%d/merged", n)
			mergeArgs := append([]string{"merge", "-o", merged}, dirs...)
			if n == 1 {
				// The shards used the built-in gates; the same file at
				// another path is the same rules (compared by content).
				mergeArgs = append(mergeArgs, "--rules", filepath.Join(sample, "..", "..", "gates.yaml"))
			}
			if out, err := run(mergeArgs...); err != nil {
				t.Fatalf("merge: %v\n%s", err, out)
			}
			for _, f := range []string{"dataset_v1.jsonl", "dataset_v1_rejected.jsonl", "dataset_v1_stats.json"} {
				a := must(os.ReadFile(filepath.Join(work, "full", f)))
				b := must(os.ReadFile(filepath.Join(work, merged, f)))
				if !bytes.Equal(a, b) {
					t.Errorf("%s: merged differs from the unsharded run", f)
				}
			}
			man := string(must(os.ReadFile(filepath.Join(work, merged, "dataset_v1_manifest.json"))))
			for _, d := range dirs {
				if !strings.Contains(man, `"dir": "`+d+`"`) {
					t.Errorf("the merged manifest does not list %s", d)
				}
			}
		})
	}

	// A set that does not fit is refused, nothing written, the error says
	// which shard and what.
	edited := filepath.Join(work, "plan.jsonl")
	plan := must(os.ReadFile(filepath.Join(sample, "prompt_plan_v1.jsonl")))
	if err := os.WriteFile(edited, append(plan, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := run(append(args("other/shard-1", "other.db", "--shard", "1/3"), "--plan", edited)...); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"n3/shard-0", "n3/shard-1"}, "shard(s) 2/3 missing: a merge needs all 3"},
		{[]string{"n3/shard-0", "n3/shard-1", "n3/shard-2", "n3/shard-1"}, "shard 1/3 is given twice: n3/shard-1 and n3/shard-1"},
		{[]string{"n3/shard-0", "n4/shard-1", "n3/shard-2"}, "n4/shard-1 is shard 1/4 but n3/shard-0 is shard 0/3"},
		{[]string{"n3/shard-0", "other/shard-1", "n3/shard-2"}, "input prompt_plan differs between n3/shard-0 and other/shard-1"},
		{[]string{"n3/shard-0", "full", "n3/shard-2"}, "full is not a shard run (its manifest has no shard: run it with --shard K/N)"},
		{[]string{"n3/shard-0", "nowhere"}, "nowhere holds no committed pgrules outputs"},
		{[]string{"n3/shard-0", "n3/shard-1", "n3/shard-2", "--rules", "edited-gates.yaml"}, "are not the ones the shards used"},
		{[]string{"n3/shard-0", "n3/shard-1", "n3/shard-2", "--plan", edited}, "input prompt_plan " + edited + " has sha256"},
		{[]string{"n3/shard-0", "n3/shard-1", "n3/shard-2", "--drafts", "gone.jsonl"}, "input drafts: stat gone.jsonl: no such file or directory (pass its path with --drafts)"},
	} {
		if c.args[len(c.args)-1] == "edited-gates.yaml" {
			g := string(must(os.ReadFile("../../gates.yaml")))
			if err := os.WriteFile(filepath.Join(work, "edited-gates.yaml"), []byte(strings.Replace(g, "action: reject", "action: warn", 1)+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		out, err := run(append([]string{"merge", "-o", "refused"}, c.args...)...)
		if err == nil || !strings.Contains(out, c.want) {
			t.Errorf("merge %v: %v\n%s\nwant %q", c.args, err, out, c.want)
		}
		if _, err := os.Stat(filepath.Join(work, "refused")); err == nil {
			t.Fatalf("merge %v wrote refused/", c.args)
		}
	}
	// Ctrl-C while the merge waits on an input (a pipe nobody writes yet):
	// exit 130, nothing committed.
	fifo := filepath.Join(work, "plan.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "merge", "-o", "interrupted", "n3/shard-0", "n3/shard-1", "n3/shard-2", "--plan", fifo)
	cmd.Dir, cmd.Env = work, env
	var stderr bytes.Buffer
	var err error
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	_ = cmd.Process.Signal(os.Interrupt)
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 || !strings.Contains(stderr.String(), "merge interrupted: nothing was committed") {
		t.Errorf("interrupted merge: %v\n%s", err, stderr.String())
	}
	if _, err := os.Stat(filepath.Join(work, "interrupted", "dataset_v1.jsonl")); err == nil {
		t.Error("an interrupted merge committed outputs")
	}

	// A shard's records edited after its run.
	f := filepath.Join(work, "n3/shard-0/dataset_v1.jsonl")
	if err := os.WriteFile(f, append(must(os.ReadFile(f)), ' '), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := run("merge", "-o", "refused", "n3/shard-0", "n3/shard-1", "n3/shard-2")
	if err == nil || !strings.Contains(out, "does not match the sha256 in dataset_v1_manifest.json") {
		t.Errorf("merge of an edited shard: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(work, "refused", "dataset_v1.jsonl")); err == nil {
		t.Error("merge of an edited shard wrote outputs")
	}
}

func TestShardFlag(t *testing.T) {
	env := func(k string) string {
		if k == engine.JobIndexEnv {
			return "2"
		}
		return ""
	}
	for in, want := range map[string]string{"0/1": "0/1", "3/4": "3/4", "auto/4": "2/4"} {
		if s, err := engine.ParseShard(in, env); err != nil || s.String() != want {
			t.Errorf("ParseShard(%q) = %v, %v; want %s", in, s, err, want)
		}
	}
	for in, want := range map[string]string{
		"4/4": "0 ≤ K < 4", "-1/4": "0 ≤ K < 4", "1/0": "N must be", "x": "is not K/N", "auto/2": "0 ≤ K < 2",
	} {
		if _, err := engine.ParseShard(in, env); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseShard(%q) = %v, want %q", in, err, want)
		}
	}
	if _, err := engine.ParseShard("auto/4", func(string) string { return "" }); err == nil || !strings.Contains(err.Error(), "JOB_COMPLETION_INDEX is not set") {
		t.Errorf("auto without the Job's index: %v", err)
	}
	// Shares are even over many ids.
	counts := make([]int, 4)
	for i := range 40000 {
		counts[engine.ShardOf(fmt.Sprintf("v1_checklist_budgeting_%06d", i), 4)]++
	}
	for k, c := range counts {
		if c < 9600 || c > 10400 {
			t.Errorf("shard %d/4 has %d of 40000 ids", k, c)
		}
	}
}

func TestRateLimitOfAShard(t *testing.T) {
	four := engine.Shard{K: 1, N: 4}
	for _, c := range []struct {
		own, total float64
		shard      engine.Shard
		want       float64
	}{
		{60, 0, four, 60},             // --rpm applies to each shard as it is
		{0, 600, four, 150},           // --rpm-total is divided by N
		{100, 600, four, 100},         // both: the lower
		{200, 600, four, 150},         //
		{0, 600, engine.Shard{}, 600}, // not sharded: the total is the run's
	} {
		if got := effectiveLimit(c.own, c.total, c.shard); got != c.want {
			t.Errorf("effectiveLimit(%v, %v, %v) = %v, want %v", c.own, c.total, c.shard, got, c.want)
		}
	}
}

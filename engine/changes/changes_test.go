package changes

import (
	"reflect"
	"testing"
)

func TestTrackerGroupsWhatMoved(t *testing.T) {
	prev := map[string]Record{
		"a":    {Accepted: true},
		"b":    {Reasons: []string{"parse_failed"}},
		"c":    {Reasons: []string{"x", "y"}},
		"d":    {Reasons: []string{"x"}},
		"e":    {Accepted: true},
		"gone": {Accepted: true},
	}
	ids := []string{"a", "b", "c", "d", "e", "gone"}
	index := map[string]int{}
	for i, id := range ids {
		index[id] = i
	}
	tr := NewTracker(Previous{N: len(ids), Lookup: func(id string) (Record, int, bool) { r, ok := prev[id]; return r, index[id], ok }, ID: func(i int) string { return ids[i] }})
	tr.Observe("a", Record{Reasons: []string{"overconfident", "gate_x"}})
	tr.Observe("b", Record{Accepted: true})
	tr.Observe("c", Record{Reasons: []string{"y", "x"}}) // same set, other order
	tr.Observe("d", Record{Reasons: []string{"z"}})
	tr.Observe("e", Record{Accepted: true})
	tr.Observe("new", Record{Accepted: true})
	c := tr.Finish()
	if !reflect.DeepEqual(c.NewlyRejected, map[string][]string{"overconfident": {"a"}, "gate_x": {"a"}}) || c.Moved() != 2 {
		t.Errorf("newly rejected %v, moved %d", c.NewlyRejected, c.Moved())
	}
	if !reflect.DeepEqual(c.NewlyAccepted, map[string][]string{"parse_failed": {"b"}}) {
		t.Errorf("newly accepted %v", c.NewlyAccepted)
	}
	if len(c.ReasonChanged) != 1 || c.ReasonChanged[0].ID != "d" || c.Unchanged != 2 {
		t.Errorf("reason changed %+v, unchanged %d", c.ReasonChanged, c.Unchanged)
	}
	if !reflect.DeepEqual(c.New, []string{"new"}) || !reflect.DeepEqual(c.Gone, []string{"gone"}) || c.Identical() {
		t.Errorf("new %v gone %v", c.New, c.Gone)
	}
}

func TestCompareFilesNamesWhatDiffers(t *testing.T) {
	a := []byte(`{"inputs": {"prompt_plan": {"path": "p.jsonl", "sha256": "1"}, "drafts": {"path": "d", "sha256": "2"}},
		"rules": {"files": [{"path": "gates.yaml", "kind": "gates", "sha256": "g1"}, {"path": "keywords/x.txt", "kind": "wordlist", "sha256": "w"}]},
		"template": {"path": "t", "sha256": "t1"}, "system_message_sha256": "s", "provider": {"name": "dryrun", "sha256": "p", "identity": {"mix": 1}}}`)
	b := []byte(`{"inputs": {"prompt_plan": {"path": "other/p.jsonl", "sha256": "1"}, "drafts": {"path": "d", "sha256": "3"}},
		"rules": {"files": [{"path": "/tmp/my-gates.yaml", "kind": "gates", "sha256": "g2"}, {"path": "keywords/x.txt", "kind": "wordlist", "sha256": "w"}]},
		"template": {"path": "t", "sha256": "t1"}, "system_message_sha256": "s", "provider": {"name": "dryrun", "sha256": "p", "identity": {"mix": 2}}}`)
	got := CompareFiles(a, b)
	var names []string
	for _, f := range got {
		names = append(names, f.Kind+":"+f.Name)
	}
	want := []string{"gates:gates file", "input:drafts", "provider_settings:answer-changing settings of provider dryrun"}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("changed files %v, want %v (a moved plan with the same bytes is no change)", names, want)
	}
}

// The same settings written indented (a committed manifest) and compact (a
// run's draft) are no change.
func TestCompareFilesIgnoresLayout(t *testing.T) {
	a := []byte(`{"template": {"path": "t", "sha256": "t1"}, "provider": {"name": "dryrun", "sha256": "p", "identity": {
  "model": "dryrun-v1",
  "mix": {"error": 2, "valid": 88}
 }}}`)
	b := []byte(`{"template":{"path":"t","sha256":"t1"},"provider":{"name":"dryrun","sha256":"p","identity":{"model":"dryrun-v1","mix":{"error":2,"valid":88}}}}`)
	if got := CompareFiles(a, b); len(got) != 0 {
		t.Errorf("changes %+v between the same manifest indented and compact", got)
	}
}

// The gating mode decides as much as a rules file does: a change of it is
// named, with the two modes; a manifest that does not record one (an old
// pgrules) is no change.
func TestCompareFilesNamesTheGatingMode(t *testing.T) {
	base := `"template": {"path": "t", "sha256": "t1"}, "provider": {"name": "dryrun", "sha256": "p"}`
	lenient := []byte(`{"gating_mode": "lenient", ` + base + `}`)
	strict := []byte(`{"gating_mode": "strict", ` + base + `}`)
	none := []byte(`{` + base + `}`)
	got := CompareFiles(lenient, strict)
	if len(got) != 1 || got[0] != (FileChange{Kind: "gating_mode", Name: "gating mode", Before: "lenient", After: "strict"}) {
		t.Errorf("lenient → strict: %+v", got)
	}
	if got := CompareFiles(none, strict); len(got) != 0 {
		t.Errorf("a manifest without a mode: %+v", got)
	}
}

// Another pgrules version is named, so that ids an upgrade moves have a
// reason shown; alone it is no difference between two out dirs.
func TestCompareFilesNamesThePgrulesVersion(t *testing.T) {
	base := `"template": {"path": "t", "sha256": "t1"}, "provider": {"name": "dryrun", "sha256": "p"}`
	got := CompareFiles([]byte(`{"pgrules_version": "v1.2.0", `+base+`}`), []byte(`{"pgrules_version": "v1.3.0", `+base+`}`))
	if len(got) != 1 || got[0] != (FileChange{Kind: "pgrules", Name: "pgrules version", Before: "v1.2.0", After: "v1.3.0"}) {
		t.Errorf("v1.2.0 → v1.3.0: %+v", got)
	}
}

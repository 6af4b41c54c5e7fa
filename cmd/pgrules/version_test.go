package main

import (
	"runtime/debug"
	"testing"
)

// A pgrules built without make's -ldflags still says which build it is:
// the manifest records the version and a rerun names a change of it.
func TestVersionOfABuild(t *testing.T) {
	vcs := func(rev, modified string) []debug.BuildSetting {
		return []debug.BuildSetting{{Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: modified}}
	}
	for _, c := range []struct {
		name string
		bi   *debug.BuildInfo
		want string
	}{
		{"no build info", nil, "dev"},
		{"go install of a tag", &debug.BuildInfo{Main: debug.Module{Version: "v1.4.0"}}, "v1.4.0"},
		{"go build in a clean checkout", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs("dab553cf24e4a1b2", "false")}, "dab553c"},
		{"go build with local changes", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs("dab553cf24e4a1b2", "true")}, "dab553c-dirty"},
		{"no VCS stamp (-buildvcs=false)", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "dev"},
	} {
		if got := versionOf(c.bi, "dev"); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}

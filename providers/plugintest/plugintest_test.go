package plugintest

import (
	"os"
	"path/filepath"
	"testing"
)

// Cleanup removes the plugins Build wrote (over 100 MB a test package, and
// test runs are many), and Build works again after it.
func TestCleanupRemovesWhatBuildWrote(t *testing.T) {
	dir := Build(t, "example")
	if _, err := os.Stat(filepath.Join(dir, "pgrules-provider-example")); err != nil {
		t.Fatal(err)
	}
	Cleanup()
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s is still there: %v", dir, err)
	}
	again := Build(t, "example")
	defer Cleanup()
	if _, err := os.Stat(filepath.Join(again, "pgrules-provider-example")); err != nil {
		t.Errorf("Build after Cleanup: %v", err)
	}
}

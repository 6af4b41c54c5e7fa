package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/spf13/cobra"

	pgrules "github.com/pgrules/pgrules"
	"github.com/pgrules/pgrules/providers"
)

const modulePath = "github.com/pgrules/pgrules"

func newPluginCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "plugin",
		Short: "Write a new teacher provider plugin from the template",
	}
	cmd.AddCommand(newPluginNewCmd())
	return cmd
}

var pluginName = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,39}$`)

func newPluginNewCmd() *cobra.Command {
	var module, src string
	cmd := &cobra.Command{
		Use:   "new NAME [DIR]",
		Short: "Write a teacher plugin that builds and passes its tests (DIR: ./pgrules-provider-NAME)",
		Long: `Writes a Go module with a working teacher plugin — plugins/example of the
pgrules source: it answers with the draft — its tests (one starts it as a
subprocess the way pgrules does) and a README. Edit Generate to call your
model, then:

  go test ./... && go build -o ~/.local/bin/pgrules-provider-NAME .
  pgrules providers            # lists it
  pgrules run --provider NAME

The module needs the pgrules source for the providers package: --pgrules-src
(default: the pgrules checkout the current directory is in, if any) adds a
replace directive to it. providers/README.md is the plugin author's guide.`,
		Example: `  pgrules plugin new acme
  pgrules plugin new acme ../acme-teacher --module github.com/you/acme-teacher --pgrules-src ~/src/pgrules`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if !pluginName.MatchString(name) {
				return usageErr(fmt.Errorf("plugin name %q: use lowercase letters, digits, - and _, starting with a letter (it becomes --provider %s and the binary %s%s)", name, name, providers.BinaryPrefix, name))
			}
			dir := providers.BinaryPrefix + name
			if len(args) == 2 {
				dir = args[1]
			}
			if module == "" {
				module = "example.com/" + providers.BinaryPrefix + name
			}
			if src == "" {
				src = findPgrulesSource()
			}
			if src != "" {
				abs, err := filepath.Abs(src)
				if err != nil {
					return usageErr(err)
				}
				if b, err := os.ReadFile(filepath.Join(abs, "go.mod")); err != nil || !strings.Contains(string(b), "module "+modulePath+"\n") {
					return usageErr(fmt.Errorf("--pgrules-src %s: not a pgrules source checkout (no go.mod of %s there)", src, modulePath))
				}
				src = abs
			}
			if err := writePlugin(dir, name, module, src); err != nil {
				return usageErr(err)
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "wrote %s: plugin %q (module %s)\n", dir, name, module)
			if src == "" {
				fmt.Fprintf(out, "the module needs the pgrules source: add to %s/go.mod\n  replace %s => /path/to/pgrules\nthen run `go mod tidy` there\n", dir, modulePath)
				return nil
			}
			tidy := exec.Command("go", "mod", "tidy")
			tidy.Dir = dir
			if b, err := tidy.CombinedOutput(); err != nil {
				return fmt.Errorf("`go mod tidy` in %s failed (the files are written; run it again once the module proxy is reachable): %v\n%s", dir, err, b)
			}
			fmt.Fprintf(out, "next:\n  cd %s\n  go test ./...\n  go build -o ~/.local/bin/%s%s .   # any directory on $PATH, or pass --plugin-dir\n  pgrules run --provider %s\n", dir, providers.BinaryPrefix, name, name)
			return nil
		},
	}
	cmd.Flags().StringVar(&module, "module", "", "Go module path of the plugin (default example.com/pgrules-provider-NAME)")
	cmd.Flags().StringVar(&src, "pgrules-src", "", "pgrules source checkout the plugin builds against (default: the one the current directory is in)")
	return cmd
}

// findPgrulesSource is the pgrules checkout the current directory is in.
func findPgrulesSource() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil {
			if strings.Contains(string(b), "module "+modulePath+"\n") {
				return dir
			}
			return ""
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

func writePlugin(dir, name, module, src string) error {
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return fmt.Errorf("%s exists and is not empty: pick another DIR", dir)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	read := func(p string) string {
		b, err := pgrules.PluginTemplate.ReadFile(p)
		if err != nil {
			panic(err) // embedded at build time
		}
		return string(b)
	}
	rename := strings.NewReplacer(
		`const name = "example"`, fmt.Sprintf("const name = %q", name),
		"pgrules-provider-example", providers.BinaryPrefix+name,
		"--provider example", "--provider "+name,
	)
	goVersion := "1.26"
	for _, l := range strings.Split(read("go.mod"), "\n") {
		if v, ok := strings.CutPrefix(l, "go "); ok {
			goVersion = strings.TrimSpace(v)
		}
	}
	gomod := fmt.Sprintf("module %s\n\ngo %s\n\nrequire %s v0.0.0-00010101000000-000000000000\n", module, goVersion, modulePath)
	if src != "" {
		gomod += fmt.Sprintf("\n// Until pgrules is published, the plugin builds against a checkout.\nreplace %s => %s\n", modulePath, src)
	}
	files := map[string]string{
		"main.go":      rename.Replace(read("plugins/example/main.go")),
		"main_test.go": read("plugins/example/main_test.go"),
		"go.mod":       gomod,
		// pgrules' own sums cover every module the plugin can need.
		"go.sum": read("go.sum"),
		"README.md": fmt.Sprintf("# %s%s\n\nA teacher provider plugin for pgrules, from `pgrules plugin new`.\n\n"+
			"```sh\ngo test ./...\ngo build -o ~/.local/bin/%s%s .\npgrules providers\npgrules run --provider %s\n```\n\n"+
			"Settings go under `providers.%s` in pgrules.yaml (see `config` in main.go). The contract — requests, answers,\n"+
			"errors by kind, identity, logging, versions, checksum pinning — is in pgrules' providers/README.md.\n",
			providers.BinaryPrefix, name, providers.BinaryPrefix, name, name, name),
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for f, body := range files {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(body), 0o644); err != nil {
			return err
		}
	}
	return nil
}

package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/pgrules/pgrules/providers"
)

func newProvidersCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "providers",
		Short: "List the teacher provider plugins pgrules can find, with version, path and sha256",
		Long: `Lists every pgrules-provider-<name> binary found in --plugin-dir,
$PGRULES_PLUGIN_DIR, the directory of the pgrules executable and $PATH (the
first one found for a name wins, as in a run). Each is started and asked to
describe itself; pin one in pgrules.yaml with plugins.<name>.sha256.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := loadFor(cmd)
			if err != nil {
				return usageErr(err)
			}
			found := providers.List(providers.SearchDirs(l.cfg.PluginDir))
			if asJSON {
				type row struct {
					Name    string `json:"name"`
					Version string `json:"version"`
					Path    string `json:"path"`
					SHA256  string `json:"sha256"`
					Error   string `json:"error,omitempty"`
				}
				rows := []row{}
				for _, f := range found {
					r := row{Name: f.Name, Version: f.Version, Path: f.Path, SHA256: f.SHA256}
					if f.Err != nil {
						r.Error = f.Err.Error()
					}
					rows = append(rows, r)
				}
				return writeJSON(cmd.OutOrStdout(), rows)
			}
			if len(found) == 0 {
				return fmt.Errorf("no pgrules-provider-* plugin found in %v: build them with `make plugins` or pass --plugin-dir", providers.SearchDirs(l.cfg.PluginDir))
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tVERSION\tSHA256\tPATH")
			for _, f := range found {
				v := f.Version
				if f.Err != nil {
					v = "error: " + f.Err.Error()
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", f.Name, v, f.SHA256, f.Path)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().String("plugin-dir", "", "directory searched first (default: plugin_dir of the config)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// Command pgrules-provider-dryrun is the free teacher: no network, and an
// answer chosen deterministically per sample id from a configurable mix of
// outcomes, so the whole pipeline (every gate, every reason code) can be
// exercised without paying for a call.
package main

import "github.com/pgrules/pgrules/providers"

func main() {
	providers.Serve(&dryrun{})
}

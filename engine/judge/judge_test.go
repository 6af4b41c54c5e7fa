package judge

import (
	"testing"

	"github.com/pgrules/pgrules/rules"
)

// The codes the judge writes are reserved in the rules, so that no gate
// can give one of them (the stats, the health check and --resume read
// them as what the judge means).
func TestTheJudgesCodesAreReservedForIt(t *testing.T) {
	for _, code := range []string{ReasonMissingInputs, ReasonInvalidInput, ReasonCritiqueReject, ReasonTeacherError, ReasonNoCachedAnswer} {
		if rules.Reserved[code] == "" {
			t.Errorf("%s is not in rules.Reserved", code)
		}
	}
}

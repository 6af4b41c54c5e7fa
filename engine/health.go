package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/pgrules/pgrules/engine/judge"
	"github.com/pgrules/pgrules/engine/teacher"
	"github.com/pgrules/pgrules/rules"
)

// DefaultMaxTeacherFailureRate is the share of answered-or-failed samples
// that may end in a teacher failure before a run is unhealthy.
const DefaultMaxTeacherFailureRate = 0.1

// Health is whether a run may replace the committed outputs. A run is
// unhealthy when any gate failed to evaluate, when more than
// MaxTeacherFailureRate of the samples that needed an answer got a
// teacher failure instead, or when it stopped early (the first calls all
// failed the same way, fatal or with their retries spent, or the plugin kept
// crashing).
type Health struct {
	Healthy bool `json:"healthy"`
	// Asked counts samples of this run that needed a teacher answer.
	Asked int `json:"asked"`
	// KeptAnswered counts the records kept by --resume that hold a
	// teacher answer. The failure rate is over Asked + KeptAnswered: the
	// answers the committed outputs would hold. Over Asked alone, a
	// resume that asked again for the 50 failures of 10,000 samples, 6 of
	// which failed again, was "12% failed" and never committed.
	KeptAnswered int `json:"kept_answered,omitempty"`
	// StaleOffline counts the samples of an --offline run with no cached
	// answer whose committed record was decided from other inputs or
	// under other rules: they cannot be judged again offline, and their
	// records would lose their decision (rejected no_cached_answer).
	StaleOffline    int     `json:"stale_offline,omitempty"`
	TeacherFailures int     `json:"teacher_failures"`
	FailureRate     float64 `json:"teacher_failure_rate"`
	MaxFailureRate  float64 `json:"max_teacher_failure_rate"`
	GateErrors      int     `json:"gate_errors"`
	// Failures counts teacher failures by error code, with one message
	// each, so the cause is visible without opening the rejected file.
	Failures []FailureCount `json:"teacher_failures_by_code,omitempty"`
	// GateErrorSample is one gate error message.
	GateErrorSample string `json:"gate_error_sample,omitempty"`
	// DetailErrors counts samples on which a details expression failed at
	// run time: the decision stands (details do not decide), and the
	// record reads "error: …" in that detail, so the run commits but
	// says so; DetailErrorSample is the first, with its position.
	DetailErrors      int    `json:"detail_errors,omitempty"`
	DetailErrorSample string `json:"detail_error_sample,omitempty"`
	// Stopped is why the run stopped before the last sample, if it did.
	Stopped string `json:"stopped,omitempty"`
	// MaxCallsReached: it stopped because it needed more teacher calls
	// than max_calls allows.
	MaxCallsReached bool `json:"max_calls_reached,omitempty"`
	// Reasons says in a few words why the run is unhealthy.
	Reasons []string `json:"reasons,omitempty"`
}

// FailureCount is one teacher error code.
type FailureCount struct {
	Code    string `json:"code"`
	Count   int    `json:"count"`
	Message string `json:"message"`
}

type healthTally struct {
	asked, failures, gateErrors int
	keptAnswered                int
	// staleOffline counts the samples of an offline run without a cached
	// answer whose committed record is stale; staleWhy says why.
	staleOffline int
	staleWhy     string
	// detailErrors counts samples on which a details expression failed;
	// detailErrorMsg is the first such failure.
	detailErrors   int
	detailErrorMsg string
	byCode         map[string]*FailureCount
	gateErrorMsg   string
}

func newHealthTally() *healthTally { return &healthTally{byCode: map[string]*FailureCount{}} }

// observe counts one fresh record of this run; records kept from a
// previous run were judged healthy when they were committed.
func (h *healthTally) observe(r *result) {
	if r.asked {
		h.asked++
	}
	if r.staleOffline {
		h.staleOffline++
	}
	if r.detailError != "" {
		h.detailErrors++
		if h.detailErrorMsg == "" {
			h.detailErrorMsg = r.detailError
		}
	}
	v := r.verdict
	if v.Rejected != nil {
		for _, rc := range v.Rejected.ReasonCodes {
			if rc == judge.ReasonTeacherError {
				h.failures++
				code, msg := "error", ""
				if t := v.Rejected.Teacher; t != nil && t.Error != nil {
					code, msg = t.Error.Code, t.Error.Message
				}
				fc := h.byCode[code]
				if fc == nil {
					fc = &FailureCount{Code: code, Message: msg}
					h.byCode[code] = fc
				}
				fc.Count++
			}
		}
	}
	if gateErr := gateError(v); gateErr != "" {
		h.gateErrors++
		if h.gateErrorMsg == "" {
			h.gateErrorMsg = gateErr
		}
	}
}

// gateError returns the message of the first gate that failed to
// evaluate, in any action (a broken shadow gate is broken too).
func gateError(v judge.Verdict) string {
	var codes, warns []string
	var gates json.RawMessage
	if v.Accepted != nil {
		warns, gates = v.Accepted.Quality.Warnings, v.Accepted.Quality.Gates
	} else if v.Rejected != nil {
		codes, warns, gates = v.Rejected.ReasonCodes, v.Rejected.Warnings, v.Rejected.Gates
	}
	if !slices.Contains(codes, rules.ReasonGateError) && !slices.Contains(warns, rules.ReasonGateError) {
		return ""
	}
	var byName map[string]struct {
		ReasonCode string `json:"reason_code"`
		Details    struct {
			Error string `json:"error"`
		} `json:"details"`
	}
	_ = json.Unmarshal(gates, &byName)
	for name, g := range byName {
		if g.ReasonCode == rules.ReasonGateError {
			return "gate " + name + ": " + g.Details.Error
		}
	}
	return "a gate failed to evaluate"
}

// kept counts a record kept from the committed run (--resume): one that
// holds a teacher answer adds to the answers the failure rate is over.
// (Teacher failures are never kept: they are asked again.)
func (h *healthTally) kept(v judge.Verdict) {
	if v.Accepted != nil || v.Rejected != nil && v.Rejected.Teacher != nil && v.Rejected.Teacher.Error == nil {
		h.keptAnswered++
	}
}

func (h *healthTally) verdict(maxRate float64, stopped error) Health {
	hl := Health{Asked: h.asked, KeptAnswered: h.keptAnswered, StaleOffline: h.staleOffline, TeacherFailures: h.failures, GateErrors: h.gateErrors, MaxFailureRate: maxRate, GateErrorSample: h.gateErrorMsg,
		DetailErrors: h.detailErrors, DetailErrorSample: h.detailErrorMsg}
	if answers := h.asked + h.keptAnswered; answers > 0 {
		hl.FailureRate = float64(h.failures) / float64(answers)
	}
	for _, fc := range h.byCode {
		hl.Failures = append(hl.Failures, *fc)
	}
	sort.Slice(hl.Failures, func(i, j int) bool {
		a, b := hl.Failures[i], hl.Failures[j]
		return a.Count > b.Count || a.Count == b.Count && a.Code < b.Code
	})
	if stopped != nil {
		hl.Stopped = strings.TrimPrefix(stopped.Error(), teacher.ErrStopRun.Error()+": ")
		hl.Reasons = append(hl.Reasons, "the run stopped early: "+hl.Stopped)
		hl.MaxCallsReached = errors.Is(stopped, teacher.ErrMaxCalls)
	}
	if h.gateErrors > 0 {
		hl.Reasons = append(hl.Reasons, fmt.Sprintf("%d sample(s) ended in gate_error (%s)", h.gateErrors, h.gateErrorMsg))
	}
	if h.staleOffline > 0 {
		hl.Reasons = append(hl.Reasons, fmt.Sprintf("%d sample(s) have no cached answer, and their committed records cannot be kept: since they were decided, %s", h.staleOffline, h.staleWhy))
	}
	if hl.FailureRate > maxRate && stopped == nil {
		kept := ""
		if h.keptAnswered > 0 {
			kept = fmt.Sprintf("%d asked this run, %d kept; ", h.asked, h.keptAnswered)
		}
		why := fmt.Sprintf("%d of %d teacher answers failed (%s%.1f%% > max_teacher_failure_rate %.1f%%)", h.failures, h.asked+h.keptAnswered, kept, 100*hl.FailureRate, 100*maxRate)
		if len(hl.Failures) > 0 {
			top := hl.Failures[0]
			why += fmt.Sprintf("; most common: %s ×%d: %s", top.Code, top.Count, clip(top.Message, 200))
		}
		hl.Reasons = append(hl.Reasons, why)
	}
	hl.Healthy = len(hl.Reasons) == 0
	return hl
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// ErrUnhealthy is wrapped by UnhealthyError.
var ErrUnhealthy = errors.New("unhealthy run")

// UnhealthyError reports a run that was not committed because it is
// unhealthy; its outputs were kept in StashDir.
type UnhealthyError struct {
	Health   Health
	StashDir string
}

func (e *UnhealthyError) Error() string {
	return "unhealthy run: " + strings.Join(e.Health.Reasons, "; ")
}

func (e *UnhealthyError) Unwrap() error { return ErrUnhealthy }

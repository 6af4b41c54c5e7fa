package main

import (
	"encoding/json"
	"fmt"
)

var cities = []struct{ city, country, tz, currency string }{
	{"Lisbon", "Portugal", "Europe/Lisbon", "EUR"},
	{"Kyoto", "Japan", "Asia/Tokyo", "JPY"},
	{"Mexico City", "Mexico", "America/Mexico_City", "MXN"},
	{"Cape Town", "South Africa", "Africa/Johannesburg", "ZAR"},
	{"Hanoi", "Vietnam", "Asia/Ho_Chi_Minh", "VND"},
	{"Reykjavík", "Iceland", "Atlantic/Reykjavik", "ISK"},
}

// answer renders one dryrun answer. Every "valid"-family answer is valid
// against the envelope v0 and the payload v1 schema of payloadType; the
// test suite checks that for all four payload types.
func answer(payloadType, outcome string, variant uint64) string {
	c := cities[variant%uint64(len(cities))]
	days := 1 + int(variant>>8%3)
	// Half the answers touch time-sensitive facts (visas, fees), so the
	// verification and overconfidence gates have work to do.
	timeSensitive := variant>>16%2 == 0 || outcome == "missing_verification" || outcome == "overconfident"

	env := envelope{
		Summary:           fmt.Sprintf("A %d-day plan for %s, %s, with practical tips.", days, c.city, c.country),
		Assumptions:       []string{"Travelling in shoulder season", fmt.Sprintf("Budget in %s", c.currency)},
		UncertaintyNotes:  "Details can change; confirm before you go.",
		NextSteps:         []string{"Pick travel dates", "Book the first night's stay"},
		VerificationSteps: []string{fmt.Sprintf("Check the official %s tourism site for updates", c.country)},
		PayloadType:       payloadType,
	}
	if timeSensitive {
		env.Summary = fmt.Sprintf("Visa and entry requirements for %s, %s, plus a %d-day plan; fees may change.", c.city, c.country, days)
		env.UncertaintyNotes = "Visa rules, entry requirements and fees change; verify them with official sources shortly before travel."
		env.VerificationSteps = []string{
			fmt.Sprintf("Check the %s embassy or consulate website for current visa rules", c.country),
			"Confirm entrance fees on the attractions' official sites",
		}
	}
	switch outcome {
	case "missing_verification":
		env.VerificationSteps = []string{}
		env.UncertaintyNotes = ""
	case "overconfident":
		env.Summary = fmt.Sprintf("You definitely do not need a visa for %s; entry is guaranteed for every traveller.", c.country)
	}
	env.Payload = payload(payloadType, c.city, c.tz, c.currency, days, outcome == "schema_invalid")

	b, _ := json.Marshal(env)
	switch outcome {
	case "fenced":
		return "Here is the refined answer:\n```json\n" + string(b) + "\n```\n"
	case "invalid_json":
		return string(b[:len(b)*2/3])
	}
	return string(b)
}

type envelope struct {
	Summary           string   `json:"summary"`
	Assumptions       []string `json:"assumptions"`
	UncertaintyNotes  string   `json:"uncertainty_notes"`
	NextSteps         []string `json:"next_steps"`
	VerificationSteps []string `json:"verification_steps"`
	PayloadType       string   `json:"payload_type"`
	Payload           any      `json:"payload"`
}

// payload builds a payload of the given type; broken=true violates its
// schema in a way a real teacher might (a missing required field, a wrong
// type).
func payload(payloadType, city, tz, currency string, days int, broken bool) any {
	switch payloadType {
	case "itinerary":
		var tripDays []map[string]any
		for d := 1; d <= days; d++ {
			tripDays = append(tripDays, map[string]any{
				"day": d, "summary": fmt.Sprintf("Day %d in %s", d, city),
				"items": []map[string]any{
					{"time_block": "09:00-12:00", "activity": "Walk the historic centre", "location": city + " old town",
						"transport": map[string]any{"mode": "walk"}},
					{"time_block": "afternoon", "activity": "Visit a local market", "booking_needed": false,
						"cost_estimate": map[string]any{"currency": currency, "amount": 20 * d}},
				},
			})
		}
		p := map[string]any{"title": fmt.Sprintf("%d days in %s", days, city), "trip_days": tripDays, "timezone": tz}
		if broken {
			tripDays[0]["day"] = "one"
		}
		return p
	case "decision_tree":
		p := map[string]any{
			"title": "Do I need a visa for " + city + "?",
			"nodes": []map[string]any{
				{"id": "start", "type": "question", "text": "Which passport do you hold?", "options": []string{"Visa-exempt", "Visa required"}},
				{"id": "exempt", "type": "outcome", "text": "Travel visa-free", "action": "Carry a passport valid for the whole stay"},
				{"id": "apply", "type": "decision", "text": "Apply before travel", "action": "Book an appointment with the consulate"},
			},
			"edges": []map[string]any{{"from": "start", "to": "exempt", "condition": "Visa-exempt"}, {"from": "start", "to": "apply", "condition": "Visa required"}},
		}
		if broken {
			delete(p, "nodes")
		}
		return p
	case "procedure":
		steps := []map[string]any{
			{"step": 1, "instruction": "Gather your passport and two photos", "why": "Every application needs them"},
			{"step": 2, "instruction": "Fill in the application form online", "requires": []string{"passport", "photos"}},
			{"step": 3, "instruction": "Pay the fee and book an appointment", "warning": "Fees change; check them first"},
		}
		p := map[string]any{"title": "Apply for a visitor visa for " + city, "steps": steps[:min(days+1, 3)], "estimated_time": "2 hours", "preconditions": []string{"A valid passport"}}
		if broken {
			p["steps"] = []map[string]any{}
		}
		return p
	default: // checklist, and any type the dryrun does not know
		p := map[string]any{
			"title": "Before you fly to " + city,
			"groups": []map[string]any{
				{"name": "Documents", "items": []map[string]any{{"text": "Passport valid for six months", "priority": "must"}, {"text": "Travel insurance details", "priority": "should", "when": "before departure"}}},
				{"name": "Money", "items": []map[string]any{{"text": "Some cash in " + currency, "priority": "nice_to_have", "done": false}}},
			},
		}
		if broken {
			p["groups"] = []map[string]any{{"name": "Documents", "items": []map[string]any{{"text": "Passport", "priority": "urgent"}}}}
		}
		return p
	}
}

package rules

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"path"
	"slices"
	"sort"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Contract is what parsing and schema checks found.
type Contract struct {
	OverallOK    bool     `json:"overall_ok"`
	ParseMode    string   `json:"parse_mode"`
	PayloadType  string   `json:"payload_type"`
	StrictJSONOK bool     `json:"strict_json_ok"`
	EnvelopeOK   bool     `json:"envelope_ok"`
	PayloadOK    bool     `json:"payload_ok"`
	Errors       []string `json:"errors,omitempty"`
}

// Reason is the reason code of a broken contract, as the shipped
// contract_ok gate gives it: parse_failed, envelope_invalid or
// payload_invalid.
func (c *Contract) Reason() string {
	switch {
	case c.ParseMode == "":
		return "parse_failed"
	case !c.EnvelopeOK:
		return "envelope_invalid"
	}
	return "payload_invalid"
}

// schemaSet holds the envelope schema and one payload schema per payload
// type. A new payload type is a new <type>.payload.schema.json file.
type schemaSet struct {
	envelope *jsonschema.Schema
	payloads map[string]*jsonschema.Schema
	// fastEnvelope and fastPayloads tell most valid answers from the
	// rest without the validator; nil where a schema uses a keyword they
	// do not know (see fastSchema).
	fastEnvelope *fastSchema
	fastPayloads map[string]*fastSchema
	// streamed holds, by payload type, the envelope with that type's
	// payload schema in place of its payload member and that type alone
	// for payload_type: an answer that surely meets it passes check with
	// that payload type, so the parser can check it as it reads it and
	// build only what the gates read (see streamedSchema).
	streamed       map[string]*fastSchema
	files          []File
	envelopeFields map[string]bool
	versions       map[string]string
	// shape is what an answer may hold, from the envelope and every
	// payload schema: gates naming another field do not compile.
	shape *shape
	// digest identifies the schemas by content and payload type, for
	// remembered verdicts (see Rules.SchemaDigest).
	digest []byte
}

const payloadSuffix = ".payload.schema.json"

// loadSchemas compiles the envelope schema file and every
// *.payload.schema.json in payloadDir.
func loadSchemas(src source, envelopePath, payloadDir string) (*schemaSet, error) {
	s := &schemaSet{payloads: map[string]*jsonschema.Schema{}, fastPayloads: map[string]*fastSchema{}, envelopeFields: map[string]bool{}, versions: map[string]string{}}
	c := jsonschema.NewCompiler()
	var payloadShapes *shape
	digest := sha256.New()
	sources := map[string]schemaSource{}
	add := func(p string) (schemaSource, error) {
		data, where, builtin, err := src.read(p)
		if err != nil {
			return schemaSource{}, err
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
		if err != nil {
			return schemaSource{}, schemaJSONError(where, data, err)
		}
		url := "file:///pgrules/" + strings.TrimPrefix(path.Clean(p), "/")
		ss := schemaSource{url: url, where: where, data: data}
		sources[url] = ss
		if err := c.AddResource(url, doc); err != nil {
			return schemaSource{}, fmt.Errorf("%s: %w", where, err)
		}
		sum := sha256.Sum256(data)
		fmt.Fprintf(digest, "%s\x00%x\n", path.Base(p), sum)
		s.files = append(s.files, File{Path: where, Kind: "schema", SHA256: hex.EncodeToString(sum[:]), Builtin: builtin})
		if strings.HasSuffix(p, payloadSuffix) {
			payloadShapes = union(payloadShapes, shapeOf(doc))
		} else {
			s.shape = shapeOf(doc)
		}
		if m, ok := doc.(map[string]any); ok && strings.Contains(p, "envelope") {
			if props, ok := m["properties"].(map[string]any); ok {
				for k := range props {
					s.envelopeFields[k] = true
				}
			}
		}
		return ss, nil
	}
	env, err := add(envelopePath)
	if err != nil {
		return nil, err
	}
	if s.envelope, err = c.Compile(env.url); err != nil {
		return nil, schemaCompileError(env, sources, err)
	}
	s.fastEnvelope, _ = compileFast(s.envelope)
	s.versions["envelope"] = path.Base(path.Dir(envelopePath))
	names, err := src.list(payloadDir, payloadSuffix)
	if err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("%s: no *%s files: every payload type needs a schema", payloadDir, payloadSuffix)
	}
	for _, n := range names {
		p := path.Join(payloadDir, n)
		ps, err := add(p)
		if err != nil {
			return nil, err
		}
		sch, err := c.Compile(ps.url)
		if err != nil {
			return nil, schemaCompileError(ps, sources, err)
		}
		s.payloads[strings.TrimSuffix(n, payloadSuffix)] = sch
		if f, ok := compileFast(sch); ok {
			s.fastPayloads[strings.TrimSuffix(n, payloadSuffix)] = f
		}
	}
	s.versions["payload"] = path.Base(payloadDir)
	s.digest = digest.Sum(nil)
	s.streamed = map[string]*fastSchema{}
	for pt, f := range s.fastPayloads {
		if st := streamedSchema(s.fastEnvelope, f, pt); st != nil {
			s.streamed[pt] = st
		}
	}
	// The envelope's payload holds what any payload schema allows.
	if s.shape != nil && s.shape.props != nil {
		s.shape.props["payload"] = union(s.shape.props["payload"], payloadShapes)
		if p := s.shape.props["payload"]; p != nil && payloadShapes != nil {
			p.closed = payloadShapes.closed
		}
	}
	return s, nil
}

// check validates a parsed answer object against the envelope and its
// payload type's schema.
func (s *schemaSet) check(doc map[string]any, want string, c *Contract) {
	if doc == nil {
		c.Errors = append(c.Errors, "answer: not a JSON object")
		return
	}
	stage := "envelope"
	defer func() {
		// One answer the validator cannot take must not end the run (and
		// every rerun, its answer being cached): it is rejected, never
		// trusted.
		if r := recover(); r != nil {
			c.EnvelopeOK = c.EnvelopeOK && stage == "payload"
			c.PayloadOK = false
			c.Errors = append(c.Errors, fmt.Sprintf("%s: the JSON Schema validator failed on this answer (%v); it is rejected, not trusted", stage, r))
		}
	}()
	if s.fastEnvelope != nil && s.fastEnvelope.valid(doc) {
		c.EnvelopeOK = true
	} else if err := s.envelope.Validate(doc); err != nil {
		c.Errors = append(c.Errors, schemaErrors("envelope", err)...)
	} else {
		c.EnvelopeOK = true
	}
	pt, _ := doc["payload_type"].(string)
	c.PayloadType = pt
	sch := s.payloads[pt]
	switch {
	case sch == nil:
		c.Errors = append(c.Errors, fmt.Sprintf("payload: no schema for payload_type %q (known: %s)", pt, strings.Join(s.payloadTypes(), ", ")))
	case want != "" && pt != want:
		c.Errors = append(c.Errors, fmt.Sprintf("payload: payload_type is %q but the prompt plan asked for %q", pt, want))
	default:
		stage = "payload"
		if f := s.fastPayloads[pt]; f != nil && f.valid(doc["payload"]) {
			c.PayloadOK = true
		} else if err := sch.Validate(doc["payload"]); err != nil {
			c.Errors = append(c.Errors, schemaErrors("payload", err)...)
		} else {
			c.PayloadOK = true
		}
	}
}

// streamedSchema is env with payload in place of its payload member and
// payloadType the one payload_type it allows: nil unless meeting it
// surely means meeting env, with that payload type, and payload, as
// check asks. So env must require both members, resolve-free, and its
// own payload member ask only for a type that payload implies.
func streamedSchema(env, payload *fastSchema, payloadType string) *fastSchema {
	if env == nil || payload == nil || !env.applies() ||
		!slices.Contains(env.required, "payload") || !slices.Contains(env.required, "payload_type") {
		return nil
	}
	envPayload, envType := env.props["payload"], env.props["payload_type"]
	if envPayload == nil || envType == nil {
		return nil
	}
	// envPayload may ask for a type, and nothing else.
	untyped := *envPayload
	untyped.types = 0
	if !envPayload.applies() || !untyped.isBare() ||
		payload.types == 0 || envPayload.types != 0 && payload.types&^envPayload.types != 0 {
		return nil
	}
	if envType.hasEnum && !slices.Contains(envType.enum, payloadType) {
		return nil
	}
	oneType := *envType
	oneType.hasEnum, oneType.enum = true, []string{payloadType}
	st := *env
	st.props = maps.Clone(env.props)
	st.props["payload"], st.props["payload_type"] = payload, &oneType
	return &st
}

func (s *schemaSet) payloadTypes() []string {
	var out []string
	for k := range s.payloads {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// schemaErrors flattens a validation error to one line per failing
// keyword, prefixed with where in the answer it failed.
func schemaErrors(prefix string, err error) []string {
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return []string{prefix + ": " + err.Error()}
	}
	var out []string
	var walk func(u []jsonschema.OutputUnit)
	walk = func(units []jsonschema.OutputUnit) {
		for _, u := range units {
			if u.Error != nil {
				loc := u.InstanceLocation
				if loc == "" {
					loc = "/"
				}
				out = append(out, fmt.Sprintf("%s: %s: %s", prefix, loc, u.Error.String()))
			}
			walk(u.Errors)
		}
	}
	bo := ve.BasicOutput()
	walk(bo.Errors)
	if len(out) == 0 {
		out = append(out, prefix+": "+strings.ReplaceAll(ve.Error(), "\n", "; "))
	}
	return out
}

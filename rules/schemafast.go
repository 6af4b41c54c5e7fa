package rules

import (
	"encoding/json"
	"math/big"
	"reflect"
	"strings"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// A fastSchema answers one question of a compiled schema — is this value
// valid? — for schemas whose keywords it knows, without the validator's
// error tree and its per-node bookkeeping of evaluated properties. Most
// answers are valid, and the validator took 44 µs an answer, 12 % of a
// first run's CPU (pprof, 20k samples).
//
// valid is one-sided: true means the validator would find no error;
// false means invalid or not sure (a number only big.Rat can tell, a
// schema nested past maxFastDepth), and the caller then runs the
// validator, whose verdict and messages are the ones that count. So a bug
// here can cost time, and a test (TestFastSchemaAgreesWithTheValidator)
// holds it to never saying true where the validator says false.
type fastSchema struct {
	draft int
	// always is a boolean schema's verdict (true, false); nil otherwise.
	always *bool
	types  jsonTypes
	// enum holds the allowed strings; hasEnum says there is an enum.
	enum    []string
	hasEnum bool
	ref     *fastSchema
	allOf   []*fastSchema
	anyOf   []*fastSchema

	minProps, maxProps int // -1: none
	required           []string
	props              map[string]*fastSchema
	// additional applies to properties not in props: nil allows them.
	additional     *fastSchema
	noneAdditional bool

	minItems, maxItems int // -1: none
	items              *fastSchema

	minLen, maxLen int // -1: none
	pattern        jsonschema.Regexp

	minimum, maximum, exclMin, exclMax, multipleOf *big.Rat
	// ints holds the bounds above as int64s when all the set ones are
	// integers that fit: an integer answer is then compared without
	// big.Rat, which allocates.
	ints *[5]int64
}

// jsonTypes is a set of the JSON Schema type names.
type jsonTypes uint8

const (
	tNull jsonTypes = 1 << iota
	tBoolean
	tNumber
	tInteger
	tString
	tArray
	tObject
)

var typeBits = map[string]jsonTypes{"null": tNull, "boolean": tBoolean, "number": tNumber, "integer": tInteger, "string": tString, "array": tArray, "object": tObject}

// fastFields are the fields of jsonschema.Schema that fastSchema carries
// out or that do not bear on validity. A schema with any other field set
// gets no fastSchema: a keyword a later version of the library adds is
// thus one it does not know, not one it ignores.
var fastFields = map[string]bool{
	// how the schema is identified and which rules of which draft apply
	"DraftVersion": true, "Location": true, "ID": true, "Anchor": true,
	// anchors only matter to $recursiveRef/$dynamicRef, which are not known
	"DynamicAnchor": true, "RecursiveAnchor": true,
	// annotations
	"Title": true, "Description": true, "Default": true, "Comment": true,
	"ReadOnly": true, "WriteOnly": true, "Examples": true, "Deprecated": true,
	// what valid carries out
	"Bool": true, "Ref": true, "Types": true, "Enum": true, "AllOf": true, "AnyOf": true,
	"MinProperties": true, "MaxProperties": true, "Required": true, "Properties": true, "AdditionalProperties": true,
	"MinItems": true, "MaxItems": true, "Items": true, "Items2020": true,
	"MinLength": true, "MaxLength": true, "Pattern": true,
	"Minimum": true, "Maximum": true, "ExclusiveMinimum": true, "ExclusiveMaximum": true, "MultipleOf": true,
}

// compileFast returns the fastSchema of sch, or false when sch or a
// schema it leads to uses a keyword fastSchema does not know.
func compileFast(sch *jsonschema.Schema) (*fastSchema, bool) {
	done := map[*jsonschema.Schema]*fastSchema{}
	var walk func(*jsonschema.Schema) (*fastSchema, bool)
	walk = func(s *jsonschema.Schema) (*fastSchema, bool) {
		if f, ok := done[s]; ok {
			return f, true // a $ref cycle: filled in by the walk that got here first
		}
		if !knownFields(s) {
			return nil, false
		}
		f := &fastSchema{draft: s.DraftVersion, always: s.Bool, minProps: -1, maxProps: -1, minItems: -1, maxItems: -1, minLen: -1, maxLen: -1}
		done[s] = f
		ok := true
		sub := func(s *jsonschema.Schema) *fastSchema {
			if s == nil || !ok {
				return nil
			}
			g, good := walk(s)
			ok = ok && good
			return g
		}
		if s.Types != nil {
			for _, t := range s.Types.ToStrings() {
				f.types |= typeBits[t]
			}
		}
		if s.Enum != nil {
			f.hasEnum = true
			for _, v := range s.Enum.Values {
				str, isStr := v.(string)
				if !isStr {
					return nil, false
				}
				f.enum = append(f.enum, str)
			}
		}
		f.ref = sub(s.Ref)
		for _, a := range s.AllOf {
			f.allOf = append(f.allOf, sub(a))
		}
		for _, a := range s.AnyOf {
			f.anyOf = append(f.anyOf, sub(a))
		}
		f.minProps, f.maxProps = intOr(s.MinProperties), intOr(s.MaxProperties)
		f.required = s.Required
		if len(s.Properties) > 0 {
			f.props = make(map[string]*fastSchema, len(s.Properties))
			for k, p := range s.Properties {
				f.props[k] = sub(p)
			}
		}
		switch a := s.AdditionalProperties.(type) {
		case nil:
		case bool:
			f.noneAdditional = !a
		case *jsonschema.Schema:
			f.additional = sub(a)
		default:
			return nil, false
		}
		f.minItems, f.maxItems = intOr(s.MinItems), intOr(s.MaxItems)
		if s.DraftVersion < 2020 {
			switch it := s.Items.(type) {
			case nil:
			case *jsonschema.Schema:
				f.items = sub(it)
			default: // a tuple
				return nil, false
			}
		} else {
			f.items = sub(s.Items2020)
		}
		f.minLen, f.maxLen, f.pattern = intOr(s.MinLength), intOr(s.MaxLength), s.Pattern
		f.minimum, f.maximum, f.exclMin, f.exclMax, f.multipleOf = s.Minimum, s.Maximum, s.ExclusiveMinimum, s.ExclusiveMaximum, s.MultipleOf
		f.ints = intBounds(f.minimum, f.maximum, f.exclMin, f.exclMax, f.multipleOf)
		if !ok {
			return nil, false
		}
		return f, true
	}
	return walk(sch)
}

// knownFields is false when s sets a field outside fastFields.
func knownFields(s *jsonschema.Schema) bool {
	v := reflect.ValueOf(s).Elem()
	t := v.Type()
	for i := range t.NumField() {
		if fl := t.Field(i); fl.IsExported() && !fastFields[fl.Name] && !v.Field(i).IsZero() {
			return false
		}
	}
	return true
}

func intOr(p *int) int {
	if p == nil {
		return -1
	}
	return *p
}

// maxFastDepth bounds how deep valid follows a value: the parser's
// depth limit is far below it.
const maxFastDepth = 256

// same lists the schemas applied to one value through $ref, allOf and
// anyOf, innermost first: the validator reports a schema met again
// before any input is consumed as a $ref cycle, an error.
type same struct {
	f  *fastSchema
	up *same
}

// valid reports whether the validator would find v valid (false: it
// would not, or fastSchema cannot tell). v is a value as parseAnswer
// gives it: numbers are json.Number.
func (f *fastSchema) valid(v any) bool { return f.check(v, 0, nil) }

func (f *fastSchema) check(v any, depth int, up *same) bool {
	if f.always != nil {
		return *f.always
	}
	if depth > maxFastDepth {
		return false
	}
	for s := up; s != nil; s = s.up {
		if s.f == f {
			return false
		}
	}
	var here *same // made only where a schema applies to this very value
	if f.ref != nil || len(f.allOf) > 0 || len(f.anyOf) > 0 {
		here = &same{f, up}
	}
	// The validator's order: type, enum, $ref (alone before 2019-09),
	// then the keywords of the value's type, then allOf/anyOf.
	var t jsonTypes
	switch v.(type) {
	case nil:
		t = tNull
	case bool:
		t = tBoolean
	case json.Number:
		t = tNumber
	case string:
		t = tString
	case []any:
		t = tArray
	case map[string]any:
		t = tObject
	default:
		return false
	}
	if n, _ := v.(json.Number); !f.typeAllows(t, n) {
		return false
	}
	if f.hasEnum && !f.inEnum(v) {
		return false
	}
	if f.ref != nil {
		if !f.ref.check(v, depth, here) {
			return false
		}
		if f.draft < 2019 {
			return true
		}
	}
	switch v := v.(type) {
	case map[string]any:
		if !f.object(v, depth) {
			return false
		}
	case []any:
		if f.minItems >= 0 && len(v) < f.minItems || f.maxItems >= 0 && len(v) > f.maxItems {
			return false
		}
		if f.items != nil {
			for _, it := range v {
				if !f.items.check(it, depth+1, nil) {
					return false
				}
			}
		}
	case string:
		if !f.stringOK(v) {
			return false
		}
	case json.Number:
		if !f.number(v) {
			return false
		}
	}
	for _, a := range f.allOf {
		if !a.check(v, depth, here) {
			return false
		}
	}
	if len(f.anyOf) > 0 {
		for _, a := range f.anyOf {
			if a.check(v, depth, here) {
				return true
			}
		}
		return false
	}
	return true
}

// isBare reports that f has no keyword but the applicators ($ref,
// allOf, anyOf) and a boolean schema's verdict: a value meets f exactly
// when it meets what they apply.
func (f *fastSchema) isBare() bool {
	return f.types == 0 && !f.hasEnum && f.minProps < 0 && f.maxProps < 0 && len(f.required) == 0 && f.props == nil &&
		f.additional == nil && !f.noneAdditional && f.minItems < 0 && f.maxItems < 0 && f.items == nil &&
		f.minLen < 0 && f.maxLen < 0 && f.pattern == nil &&
		f.minimum == nil && f.maximum == nil && f.exclMin == nil && f.exclMax == nil && f.multipleOf == nil
}

// typeAllows says whether f's type keyword admits a value of type t
// (n: the number, when t is tNumber).
func (f *fastSchema) typeAllows(t jsonTypes, n json.Number) bool {
	return f.types == 0 || f.types&t != 0 || f.types&tInteger != 0 && t == tNumber && isInteger(n)
}

// stringOK checks a string's length and pattern.
func (f *fastSchema) stringOK(v string) bool {
	if f.minLen >= 0 || f.maxLen >= 0 {
		n := utf8.RuneCountInString(v)
		if f.minLen >= 0 && n < f.minLen || f.maxLen >= 0 && n > f.maxLen {
			return false
		}
	}
	return f.pattern == nil || f.pattern.MatchString(v)
}

// applies reports that f has no applicator ($ref, allOf, anyOf) and is
// no boolean schema: its own keywords are all there is to it.
func (f *fastSchema) applies() bool {
	return f.always == nil && f.ref == nil && len(f.allOf)+len(f.anyOf) == 0
}

func (f *fastSchema) inEnum(v any) bool {
	s, ok := v.(string)
	return ok && f.enumHas(s)
}

// enumHas reports that s is one of f's enum strings.
func (f *fastSchema) enumHas(s string) bool {
	for _, e := range f.enum {
		if s == e {
			return true
		}
	}
	return false
}

func (f *fastSchema) object(obj map[string]any, depth int) bool {
	if f.minProps >= 0 && len(obj) < f.minProps || f.maxProps >= 0 && len(obj) > f.maxProps {
		return false
	}
	for _, r := range f.required {
		if _, ok := obj[r]; !ok {
			return false
		}
	}
	for k, pv := range obj {
		if p, ok := f.props[k]; ok {
			if !p.check(pv, depth+1, nil) {
				return false
			}
			continue
		}
		if f.noneAdditional || f.additional != nil && !f.additional.check(pv, depth+1, nil) {
			return false
		}
	}
	return true
}

func (f *fastSchema) number(n json.Number) bool {
	if f.minimum == nil && f.maximum == nil && f.exclMin == nil && f.exclMax == nil && f.multipleOf == nil {
		return true
	}
	if i, ok := plainInt(string(n)); ok && f.ints != nil {
		b := f.ints
		switch {
		case f.minimum != nil && i < b[0],
			f.maximum != nil && i > b[1],
			f.exclMin != nil && i <= b[2],
			f.exclMax != nil && i >= b[3]:
			return false
		case f.multipleOf != nil:
			return b[4] != 0 && i%b[4] == 0
		}
		return true
	}
	r, ok := new(big.Rat).SetString(string(n))
	if !ok {
		return false
	}
	switch {
	case f.minimum != nil && r.Cmp(f.minimum) < 0,
		f.maximum != nil && r.Cmp(f.maximum) > 0,
		f.exclMin != nil && r.Cmp(f.exclMin) <= 0,
		f.exclMax != nil && r.Cmp(f.exclMax) >= 0:
		return false
	case f.multipleOf != nil:
		return f.multipleOf.Sign() != 0 && new(big.Rat).Quo(r, f.multipleOf).IsInt()
	}
	return true
}

// intBounds is the bounds as int64s, nil unless every one set is an
// integer that fits.
func intBounds(rs ...*big.Rat) *[5]int64 {
	var out [5]int64
	for i, r := range rs {
		if r == nil {
			continue
		}
		if !r.IsInt() || !r.Num().IsInt64() {
			return nil
		}
		out[i] = r.Num().Int64()
	}
	return &out
}

// plainInt parses a number written as an integer of at most 18 digits,
// which an int64 holds.
func plainInt(s string) (int64, bool) {
	digits := strings.TrimPrefix(s, "-")
	if digits == "" || len(digits) > 18 {
		return 0, false
	}
	var i int64
	for j := range len(digits) {
		c := digits[j]
		if c < '0' || c > '9' {
			return 0, false
		}
		i = i*10 + int64(c-'0')
	}
	if len(digits) < len(s) {
		i = -i
	}
	return i, true
}

// isInteger is the validator's test of an integer: the number's exact
// value has no fraction (1.0 and 1e2 are integers).
func isInteger(n json.Number) bool {
	s := string(n)
	digits := strings.TrimPrefix(s, "-")
	if digits != "" && strings.Trim(digits, "0123456789") == "" {
		return true
	}
	r, ok := new(big.Rat).SetString(s)
	return ok && r.IsInt()
}

// A schema can also be checked as the parser reads the value (see
// fastParser.value), so that a first run need not build the value tree
// that check walks: the parser asks resolve for the one schema a value
// must meet, then the same assertions as check (typeAllows, inEnum,
// stringOK, number, and the object and array keywords in fastParser).
// Where one schema a value is not enough (allOf, a $ref or anyOf beside
// other keywords, anyOf branches the value's first byte does not tell
// apart, a $ref chain too long) it says it cannot tell, and the caller
// builds the tree for check and the validator. Like check, it may only
// say valid where the validator does (TestStreamedSchemaAgreesWithTheValidator).

// maxFastHops bounds the $ref and anyOf steps resolve takes for one
// value: a $ref cycle, which the validator refuses, ends there.
const maxFastHops = 32

// resolve returns the schema without applicators that a value starting
// with byte c must meet to meet f: nil when any value does. ok is false
// when the value cannot meet f, or resolve cannot tell.
func (f *fastSchema) resolve(c byte) (g *fastSchema, ok bool) {
	for range maxFastHops {
		switch {
		case f.always != nil:
			return nil, *f.always
		case f.applies():
			return f, true
		case len(f.allOf) > 0 || f.ref != nil && len(f.anyOf) > 0 || !f.isBare():
			return nil, false
		case f.ref != nil:
			f = f.ref
		default:
			// anyOf alone. The one branch whose type admits the value,
			// when the others' types exclude it: the value meets f
			// exactly when it meets that branch.
			var one *fastSchema
			for _, b := range f.anyOf {
				if b.types == 0 || !b.applies() {
					return nil, false
				}
				switch admits(b.types, c) {
				case admitMaybe:
					return nil, false
				case admitYes:
					if one != nil {
						return nil, false
					}
					one = b
				}
			}
			if one == nil {
				return nil, false
			}
			return one, true
		}
	}
	return nil, false
}

type admission uint8

const (
	admitNo admission = iota
	admitYes
	admitMaybe // a number where only integers are admitted
)

// admits says whether types admit a value whose first byte is c.
func admits(types jsonTypes, c byte) admission {
	var t jsonTypes
	switch {
	case c == '"':
		t = tString
	case c == '{':
		t = tObject
	case c == '[':
		t = tArray
	case c == 't' || c == 'f':
		t = tBoolean
	case c == 'n':
		t = tNull
	default:
		switch {
		case types&tNumber != 0:
			return admitYes
		case types&tInteger != 0:
			return admitMaybe
		}
		return admitNo
	}
	if types&t != 0 {
		return admitYes
	}
	return admitNo
}

// scalarOK checks a string, number, boolean or null value of type t
// against f, a schema resolve returned.
func (f *fastSchema) scalarOK(t jsonTypes, s string, n json.Number) bool {
	if !f.typeAllows(t, n) {
		return false
	}
	if f.hasEnum && (t != tString || !f.enumHas(s)) {
		return false
	}
	switch t {
	case tString:
		return f.stringOK(s)
	case tNumber:
		return f.number(n)
	}
	return true
}

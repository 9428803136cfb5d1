package policies

import (
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// The form of a module label, as a launch gives one (`launch --label
// k=v`, daemon.CheckLabel): a rule's module and to blocks can match only
// labels of this form, so the policy holds its labels to it too.
const (
	MaxLabelKey    = 63
	MaxLabelValue  = 255
	labelKeyMarks  = "-_./"
	labelKeyFormat = "1 to 63 ASCII letters, digits and - _ . /, starting with a letter or digit"
)

// CheckLabel reports what is wrong with one label, or nil. A key is 1 to
// MaxLabelKey ASCII letters, digits and "-_./", starting with a letter or
// digit; a value is at most MaxLabelValue bytes of UTF-8 without control
// characters (empty is allowed).
func CheckLabel(key, value string) error {
	if key == "" || len(key) > MaxLabelKey || !isAlnum(rune(key[0])) {
		return fmt.Errorf("label key %q: want %s", key, labelKeyFormat)
	}
	for _, r := range key {
		if !isAlnum(r) && !strings.ContainsRune(labelKeyMarks, r) {
			return fmt.Errorf("label key %q: %q is not allowed: want %s", key, r, labelKeyFormat)
		}
	}
	if len(value) > MaxLabelValue || !utf8.ValidString(value) {
		return fmt.Errorf("label %s: the value must be UTF-8 of at most %d bytes", key, MaxLabelValue)
	}
	if strings.IndexFunc(value, unicode.IsControl) >= 0 {
		return fmt.Errorf("label %s: the value contains a control character", key)
	}
	return nil
}

func isAlnum(r rune) bool {
	return r < utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r))
}

// checkLabels adds an error at the labels attribute for each label no
// launch could give, in key order.
func checkLabels(labels map[string]string, at hcl.Range, el *errList) {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if err := CheckLabel(k, labels[k]); err != nil {
			el.add(at, "labels: %v", err)
		}
	}
}

// checkKeysOnce adds an error for each key that the map attribute name of
// body gives a second time: HCL keeps the last value of a key without a
// word, and a rule would then match what its first line does not say.
func checkKeysOnce(body hcl.Body, name string, el *errList) {
	b, ok := body.(*hclsyntax.Body)
	if !ok || b.Attributes[name] == nil {
		return
	}
	obj, ok := b.Attributes[name].Expr.(*hclsyntax.ObjectConsExpr)
	if !ok {
		return
	}
	first := map[string]hcl.Range{}
	for _, item := range obj.Items {
		v, diags := item.KeyExpr.Value(nil)
		if diags.HasErrors() || !v.IsKnown() || v.IsNull() || v.Type() != cty.String {
			continue // the decoder reports it
		}
		k := v.AsString()
		if at, seen := first[k]; seen {
			el.add(item.KeyExpr.Range(), "%s: label %s is given twice (first at %s): give each key once", name, k, posOf(at))
			continue
		}
		first[k] = item.KeyExpr.Range()
	}
}

package policies

import (
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
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

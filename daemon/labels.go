package daemon

import (
	"fmt"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits on launch labels (LaunchSpec.Labels, `launch --label k=v`).
const (
	MaxLabels      = 32
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

// ParseLabel reads one "KEY=VALUE" label and checks it (CheckLabel).
func ParseLabel(text string) (key, value string, err error) {
	key, value, ok := strings.Cut(text, "=")
	if !ok {
		return "", "", fmt.Errorf("label %q: want KEY=VALUE", text)
	}
	return key, value, CheckLabel(key, value)
}

// checkLabels checks every label of a launch.
func checkLabels(labels map[string]string) error {
	if len(labels) > MaxLabels {
		return specError("%d labels: at most %d are allowed", len(labels), MaxLabels)
	}
	for k, v := range labels {
		if err := CheckLabel(k, v); err != nil {
			return &SpecError{msg: err.Error()}
		}
	}
	return nil
}

// Labels returns the guest's launch labels as sorted "KEY=VALUE" strings.
func (g *Guest) Labels() []string {
	out := make([]string, 0, len(g.labels))
	for k, v := range g.labels {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

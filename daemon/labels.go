package daemon

import (
	"fmt"
	"sort"
	"strings"

	"github.com/sandboxd/sandboxd/policies"
)

// Limits on launch labels (LaunchSpec.Labels, `launch --label k=v`).
// A label's form is the policy language's (policies.CheckLabel), so that
// a rule's module and to blocks name only labels a launch can give.
const (
	MaxLabels     = 32
	MaxLabelKey   = policies.MaxLabelKey
	MaxLabelValue = policies.MaxLabelValue
)

// CheckLabel reports what is wrong with one label, or nil: the form
// policies.CheckLabel says, which the policy language's rules use too.
func CheckLabel(key, value string) error { return policies.CheckLabel(key, value) }

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

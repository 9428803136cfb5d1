package policies

import (
	"strings"
	"testing"
)

// A resource whose name holds a "*" is refused at its block: rules select
// resources by KIND:GLOB, where "*" matches any name, so no rule could
// name that resource alone; a grant of chan:a*b also gave chan:aXb,
// declared beside it.
func TestAResourceNameWithAStarIsRefused(t *testing.T) {
	_, err := Parse("p.hcl", []byte(`
resource "chan" "a*b" {}
resource "chan" "aXb" {}
grant "literal" {
  resources = ["chan:a*b"]
}
`))
	if err == nil || !strings.Contains(err.Error(), `p.hcl:2:`) || !strings.Contains(err.Error(), `"*"`) || !strings.Contains(err.Error(), "rename it") {
		t.Fatalf("Parse: %v, want the resource a*b refused at its line, saying to rename it", err)
	}
}

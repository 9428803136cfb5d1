package abi_test

import (
	"testing"

	"github.com/sandboxd/sandboxd/abi/abitest"
)

// The C header's structures must have CloudABI's wasm32 layouts: the guest
// is a list of static assertions, so a wrong offset fails to compile.
func TestCHeaderLayoutsMatchCloudABI(t *testing.T) {
	h := newHarness(t)
	st := h.run(t, abitest.C(t, "abi/testdata/guests/layout.c"), h.table("layout"))
	if st.Err() != nil || st.Code != 0 {
		t.Fatalf("layout guest: %+v", st)
	}
}

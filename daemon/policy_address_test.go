package daemon

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// Under a policy, an address is granted by the name of a resource that
// declares it: a listen resource at port 0 binds a free port, as
// listen:127.0.0.1:0 does inline, and an abstract unix address (@NAME) is
// bound and reached as sock:unix:@NAME and listen:unix:@NAME reach it.
func TestAPolicyGrantsAListenerOnAnyPortAndAbstractAddresses(t *testing.T) {
	name := fmt.Sprintf("@sandboxd-policy-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	s := newSupervisor(t)
	s.SetPolicy(mustPolicy(t, fmt.Sprintf(`
resource "listen" "any" {
  tcp = "127.0.0.1:0"
}
resource "listen" "abs" {
  unix = "%[1]s"
}
resource "sock" "abs" {
  unix = "%[1]s"
}
grant "all" {
  resources = ["listen:*", "sock:*"]
}
`, name)))
	g, err := launchSpin(t, s, nil, "listen:any", "listen:abs=l", "sock:abs=c")
	if err != nil {
		t.Fatal(err)
	}
	if addr := listenAddr(t, g, "any"); strings.HasSuffix(addr, ":0") {
		t.Errorf("listen:any is bound at %s, want a free port", addr)
	}
	if res := handle(t, g, "l").Info().Resource; res != "listen unix "+name {
		t.Errorf("listen:abs is %q, want listen unix %s", res, name)
	}
	if res := handle(t, g, "c").Info().Resource; res != "sock unix "+name {
		t.Errorf("sock:abs is %q, want sock unix %s", res, name)
	}
}

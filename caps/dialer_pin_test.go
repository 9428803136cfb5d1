package caps

import (
	"testing"
	"time"
)

// A tcp dialer takes IP addresses only: a host name would be looked up
// again on every Accept, and a dialer could reach whatever the name
// resolves to later, not what it resolved to when it was granted.
func TestNewDialerRefusesAHostName(t *testing.T) {
	for _, a := range []string{"localhost:6379", "db.internal:5432", "6379", "127.0.0.1", "127.0.0.1:http"} {
		if d, err := NewDialer("tcp", []string{"127.0.0.1:1", a}, time.Second, "x"); err == nil {
			d.Close()
			t.Errorf("NewDialer accepted the tcp address %q", a)
		}
	}
	for _, a := range []string{"127.0.0.1:6379", "[::1]:6379", "[fe80::1%lo]:80"} {
		d, err := NewDialer("tcp", []string{a}, time.Second, "x")
		if err != nil {
			t.Fatalf("NewDialer of %q: %v", a, err)
		}
		d.Close()
	}
}

// Command confcount reads `go test -json` output on stdin and prints, per
// package, how many top-level tests passed, failed and were skipped, and
// the package's own result: "PKG PASS FAIL SKIP RESULT".
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
)

type event struct {
	Action  string
	Package string
	Test    string
}

type counts struct {
	pass, fail, skip int
	result           string
}

func main() {
	per := map[string]*counts{}
	get := func(p string) *counts {
		if per[p] == nil {
			per[p] = &counts{result: "none"}
		}
		return per[p]
	}
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var e event
		if json.Unmarshal(sc.Bytes(), &e) != nil || e.Package == "" {
			continue
		}
		c := get(e.Package)
		if e.Test == "" {
			switch e.Action {
			case "pass", "fail", "skip":
				c.result = e.Action
			}
			continue
		}
		if strings.Contains(e.Test, "/") {
			continue // subtests count through their parent
		}
		switch e.Action {
		case "pass":
			c.pass++
		case "fail":
			c.fail++
		case "skip":
			c.skip++
		}
	}
	pkgs := make([]string, 0, len(per))
	for p := range per {
		pkgs = append(pkgs, p)
	}
	sort.Strings(pkgs)
	for _, p := range pkgs {
		c := per[p]
		fmt.Printf("%s %d %d %d %s\n", p, c.pass, c.fail, c.skip, c.result)
	}
}

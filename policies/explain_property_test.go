package policies

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/sandboxd/sandboxd/caps"
)

// The property tests below build small random policies and requests, and
// hold Evaluate to a model of docs/POLICY.md written apart from it (the
// rules are tried one by one, with no index), and Explain and JSON to
// Evaluate: what `policy explain` prints is the decision the daemon makes.

// randPolicy is a random policy: its text and what the model needs.
type randPolicy struct {
	src string
	// resources by kind and name, as declared.
	res map[resourceKey]*Resource
	// links is the host's symbolic links, each path to where it leads
	// (WithRealPaths), or nil for none.
	links map[string]string
}

// randLinks are the sets of links a random policy's host may have.
var randLinks = []map[string]string{
	nil,
	{"/s/b": "/s/a/b"},
	{"/t": "/s/a", "/s/a/b": "/u"},
}

// real is where path p leads on rp's host: each link at or above it
// replaced by where it leads, as caps.RealPath resolves.
func (rp randPolicy) real(p string) string {
	for i := 0; i < 8; i++ {
		moved := false
		for link, to := range rp.links {
			if pathUnder(p, link) {
				p, moved = path.Join(to, strings.TrimPrefix(p, link)), true
			}
		}
		if !moved {
			break
		}
	}
	return p
}

var (
	randChanNames = []string{"a", "ab", "ba", "stage-1", "stage-10", "éa", "Ab"}
	randChanGlobs = []string{"*", "a*", "*b", "a*b", "*a*", "stage-*", "stage-1*", "é*", "*a", "A*", "**"}
	randDirs      = map[string]string{"d1": "/s/a", "d2": "/s/a/b", "d3": "/s/b", "rd": "/s"}
	randFiles     = map[string]string{"f1": "/s/a/f", "f2": "/t/f"}
	randHostGlobs = []string{"*", "d*", "*1", "f*", "r*"}
	randPrefixes  = []string{"/", "/s", "/s/a", "/s/a/b", "/s/b", "/t", "/s/a/f"}
	randSockNames = []string{"db", "us", "ab"}
	randSockGlobs = []string{"*", "d*", "*s", "a*"}
	randRights    = []string{"fd_read", "fd_write", "sock_accept", "poll_fd_readwrite"}
	randUsers     = []string{"u1", "u2"}
	randReqUsers  = []string{"u1", "u2", "", "U1"}
	randHashes    = []string{hashA, hashB}
	randLabels    = []map[string]string{{"app": "x"}, {"app": "y"}, {"role": "r"}, {"app": "x", "role": "r"}}
	randReqPaths  = []string{"/s/a/b/c", "/s/a", "/s", "/", "/s/ab", "/t/f", "/s/a/../b", "/s/a/", "/s/a/f", "/s/b/x", "/u"}
)

// pick is one element of xs.
func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

// some is a random, possibly empty, subset of xs.
func some[T any](r *rand.Rand, xs []T) []T {
	var out []T
	for _, x := range xs {
		if r.IntN(2) == 0 {
			out = append(out, x)
		}
	}
	return out
}

func hclList[T any](xs []T) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		switch v := any(x).(type) {
		case string:
			parts[i] = strconv.Quote(v)
		default:
			parts[i] = fmt.Sprint(v)
		}
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func hclLabels(m map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}) {
		parts = append(parts, strconv.Quote(k)+" = "+strconv.Quote(m[k]))
	}
	return "{ " + strings.Join(parts, ", ") + " }"
}

// genPolicy writes a random policy of a few rules over a fixed set of
// resources.
func genPolicy(r *rand.Rand) randPolicy {
	rp := randPolicy{res: map[resourceKey]*Resource{}}
	var b strings.Builder
	rp.declareResources(r, &b)
	n := 1 + r.IntN(5)
	for i := range n {
		b.WriteString(genRule(r, i))
	}
	rp.src = b.String()
	rp.links = pick(r, randLinks)
	return rp
}

// declareResources declares the fixed resources, each dir and file read
// only or not at random, in rp and in b.
func (rp *randPolicy) declareResources(r *rand.Rand, b *strings.Builder) {
	for _, n := range randChanNames {
		rp.declare(b, &Resource{Kind: "chan", Name: n})
	}
	for _, n := range slices.Sorted(mapKeys(randDirs)) {
		rp.declare(b, &Resource{Kind: "dir", Name: n, Path: randDirs[n], ReadOnly: r.IntN(3) == 0})
	}
	for _, n := range slices.Sorted(mapKeys(randFiles)) {
		rp.declare(b, &Resource{Kind: "file", Name: n, Path: randFiles[n], ReadOnly: r.IntN(3) == 0})
	}
	rp.declare(b, &Resource{Kind: "sock", Name: "db", TCP: "127.0.0.1:5432"})
	rp.declare(b, &Resource{Kind: "sock", Name: "us", Unix: "/s/a/us.sock"})
	rp.declare(b, &Resource{Kind: "sock", Name: "ab", Unix: "@ab"})
}

// declare records res in rp and writes its resource block to b.
func (rp *randPolicy) declare(b *strings.Builder, res *Resource) {
	rp.res[resourceKey{res.Kind, res.Name}] = res
	fmt.Fprintf(b, "resource %q %q {\n", res.Kind, res.Name)
	switch {
	case res.Path != "":
		fmt.Fprintf(b, "  path = %q\n", res.Path)
		if res.ReadOnly {
			b.WriteString("  read_only = true\n")
		}
	case res.TCP != "":
		fmt.Fprintf(b, "  tcp = %q\n", res.TCP)
	case res.Unix != "":
		fmt.Fprintf(b, "  unix = %q\n", res.Unix)
	}
	b.WriteString("}\n")
}

// genRule writes the i-th rule of a random policy: a grant, delegate or
// deny with the attributes and blocks its type may carry.
func genRule(r *rand.Rand, i int) string {
	var b strings.Builder
	typ := pick(r, []RuleType{TypeGrant, TypeGrant, TypeDelegate, TypeDelegate, TypeDeny})
	fmt.Fprintf(&b, "%s \"r%d\" {\n", typ, i)
	b.WriteString(genResources(r))
	if typ != TypeDeny {
		b.WriteString(genAllowTerms(r))
	}
	if typ == TypeDelegate {
		b.WriteString(genDelegateLimits(r))
	}
	if typ == TypeDeny && r.IntN(2) == 0 {
		fmt.Fprintf(&b, "  on = %s\n", hclList([]string{pick(r, []string{"grant", "delegate"})}))
	}
	if typ != TypeDelegate && r.IntN(2) == 0 {
		b.WriteString(genSubject(r))
	}
	if r.IntN(2) == 0 {
		b.WriteString(genModule(r, "module"))
	}
	if typ != TypeGrant && r.IntN(3) == 0 {
		b.WriteString(genModule(r, "to"))
	}
	b.WriteString("}\n")
	return b.String()
}

// genResources writes a rule's resources attribute of one or two
// selectors.
func genResources(r *rand.Rand) string {
	var sels []string
	for range 1 + r.IntN(2) {
		sels = append(sels, genSelector(r))
	}
	return fmt.Sprintf("  resources = %s\n", hclList(sels))
}

// genAllowTerms writes what a grant or delegate may give: rights,
// read_only and a lease, each present or not.
func genAllowTerms(r *rand.Rand) string {
	var b strings.Builder
	if r.IntN(2) == 0 {
		if rights := some(r, randRights); len(rights) > 0 {
			fmt.Fprintf(&b, "  rights = %s\n", hclList(rights))
		}
	}
	if r.IntN(4) == 0 {
		b.WriteString("  read_only = true\n")
	}
	if r.IntN(3) == 0 {
		fmt.Fprintf(&b, "  ttl = %q\n", pick(r, []string{"90s", "1h"}))
	}
	return b.String()
}

// genDelegateLimits writes a delegate's max_depth and, or not, its
// max_copies.
func genDelegateLimits(r *rand.Rand) string {
	s := fmt.Sprintf("  max_depth = %d\n", 1+r.IntN(3))
	if r.IntN(2) == 0 {
		s += fmt.Sprintf("  max_copies = %d\n", 1+r.IntN(2))
	}
	return s
}

func mapKeys[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func genSelector(r *rand.Rand) string {
	switch kind := pick(r, []string{"chan", "chan", "dir", "dir", "file", "sock"}); kind {
	case "chan":
		if r.IntN(2) == 0 {
			return "chan:" + pick(r, randChanNames)
		}
		return "chan:" + pick(r, randChanGlobs)
	case "sock":
		if r.IntN(2) == 0 {
			return "sock:" + pick(r, randSockNames)
		}
		return "sock:" + pick(r, randSockGlobs)
	default:
		names := randDirs
		if kind == "file" {
			names = randFiles
		}
		switch r.IntN(3) {
		case 0:
			return kind + ":" + pick(r, slices.Sorted(mapKeys(names)))
		case 1:
			return kind + ":" + pick(r, randHostGlobs)
		}
		return kind + ":" + pick(r, randPrefixes)
	}
}

func genSubject(r *rand.Rand) string {
	var b strings.Builder
	b.WriteString("  subject {\n")
	any := false
	if r.IntN(2) == 0 {
		fmt.Fprintf(&b, "    uids = %s\n", hclList([]int{1 + r.IntN(2)}))
		any = true
	}
	if r.IntN(3) == 0 {
		fmt.Fprintf(&b, "    gids = %s\n", hclList([]int{10 + r.IntN(2)}))
		any = true
	}
	if r.IntN(3) == 0 || !any {
		fmt.Fprintf(&b, "    users = %s\n", hclList([]string{pick(r, randUsers)}))
	}
	b.WriteString("  }\n")
	return b.String()
}

func genModule(r *rand.Rand, block string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "  %s {\n", block)
	hash := r.IntN(2) == 0
	if hash {
		fmt.Fprintf(&b, "    sha256 = %s\n", hclList([]string{pick(r, randHashes)}))
	}
	if r.IntN(2) == 0 || !hash {
		fmt.Fprintf(&b, "    labels = %s\n", hclLabels(pick(r, randLabels)))
	}
	b.WriteString("  }\n")
	return b.String()
}

func genModuleValue(r *rand.Rand) Module {
	m := Module{SHA256: pick(r, randHashes)}
	if r.IntN(4) > 0 {
		m.Labels = pick(r, randLabels)
	}
	return m
}

// genRequest is a random, well formed request about rp's resources.
func genRequest(r *rand.Rand, rp randPolicy) Request {
	req := Request{Op: pick(r, []Op{OpGrant, OpDelegate})}
	switch r.IntN(4) {
	case 0:
		req.Kind, req.Name = "chan", pick(r, randChanNames)
	case 1:
		req.Kind, req.Name = "sock", pick(r, randSockNames)
	case 2:
		req.Kind = pick(r, []string{"dir", "file"})
		names := randDirs
		if req.Kind == "file" {
			names = randFiles
		}
		req.Name = pick(r, slices.Sorted(mapKeys(names)))
	default:
		req.Kind, req.Path = pick(r, []string{"dir", "file"}), pick(r, randReqPaths)
	}
	if r.IntN(2) == 0 {
		req.Rights = caps.Rights(0)
		for _, n := range some(r, randRights) {
			bit, _ := caps.ParseRight(n)
			req.Rights |= bit
		}
	}
	req.Subject = Subject{UID: uint32(1 + r.IntN(3)), User: pick(r, randReqUsers)}
	for _, g := range []uint32{10, 11, 12} {
		if r.IntN(2) == 0 {
			req.Subject.GIDs = append(req.Subject.GIDs, g)
		}
	}
	req.Module = genModuleValue(r)
	if req.Op == OpDelegate {
		req.Depth, req.Copies = 1+r.IntN(3), r.IntN(3)
		if r.IntN(4) == 0 {
			req.ToUnknown = true
		} else {
			req.To = genModuleValue(r)
		}
	}
	return req
}

// modelRank is a selector's specificity as docs/POLICY.md orders them:
// an exact name, then globs by their number of literal characters, then
// KIND:* (or any glob of stars alone); host paths by their number of
// elements.
func modelRank(s Selector) int {
	switch {
	case s.Path == "/":
		return 1
	case s.Path != "":
		return 1 + strings.Count(s.Path, "/")
	case !strings.Contains(s.Name, "*"):
		return 1 << 20
	}
	if n := utf8.RuneCountInString(strings.ReplaceAll(s.Name, "*", "")); n > 0 {
		return 1 + n
	}
	return 0
}

// modelCovers reports whether an allow rule's selector covers req.
func modelCovers(s Selector, req Request) bool {
	if s.Kind != req.Kind {
		return false
	}
	if req.Name != "" {
		return s.Path == "" && globMatch(s.Name, req.Name)
	}
	return s.Path != "" && pathUnder(req.Path, s.Path)
}

// modelDenyCovers reports whether a deny rule's selector covers req:
// by name, or on the host, where a path prefix, or a declared dir or
// file that it names, lies at or above the request's host path, or
// beneath it when that is a directory. With links, a deny's host path
// covers where it leads too, and a named resource is judged at its
// declared path and where that leads; an inline path is asked as the
// daemon resolved it.
func modelDenyCovers(s Selector, req Request, rp randPolicy) bool {
	if req.Name != "" && s.Path == "" && s.Kind == req.Kind && globMatch(s.Name, req.Name) {
		return true
	}
	hosts, isDir := []string{req.Path}, req.Kind == "dir"
	if req.Name != "" {
		r := rp.res[resourceKey{req.Kind, req.Name}]
		hosts = []string{r.hostPath(), rp.real(r.hostPath())}
		isDir = r.Kind == "dir"
	}
	if hosts[0] == "" || (s.Kind != "dir" && s.Kind != "file") {
		return false
	}
	var prefixes []string
	if s.Path != "" {
		prefixes = append(prefixes, s.Path, rp.real(s.Path))
	} else {
		for k, r := range rp.res {
			if k.kind == s.Kind && globMatch(s.Name, k.name) {
				prefixes = append(prefixes, r.Path, rp.real(r.Path))
			}
		}
	}
	for _, host := range hosts {
		for _, p := range prefixes {
			if pathUnder(host, p) || (isDir && pathUnder(p, host)) {
				return true
			}
		}
	}
	return false
}

// modelUnmet counts the blocks of rule r that req does not meet.
func modelUnmet(r *Rule, req Request) int {
	n := 0
	if s := r.Subject; s != nil {
		ok := (len(s.UIDs) == 0 || slices.Contains(s.UIDs, req.Subject.UID)) &&
			(len(s.Users) == 0 || slices.Contains(s.Users, req.Subject.User)) &&
			(len(s.GIDs) == 0 || slices.ContainsFunc(req.Subject.GIDs, func(g uint32) bool { return slices.Contains(s.GIDs, g) }))
		n += btoi(!ok)
	}
	moduleOK := func(m *ModuleMatch, mod Module) bool {
		if len(m.SHA256) > 0 && !slices.Contains(m.SHA256, mod.SHA256) {
			return false
		}
		for k, v := range m.Labels {
			if w, ok := mod.Labels[k]; !ok || w != v {
				return false
			}
		}
		return true
	}
	if r.Module != nil {
		n += btoi(!moduleOK(r.Module, req.Module))
	}
	if r.To != nil {
		var ok bool
		switch {
		case req.Op != OpDelegate:
		case req.ToUnknown:
			ok = r.Type == TypeDeny
		default:
			ok = moduleOK(r.To, req.To)
		}
		n += btoi(!ok)
	}
	return n
}

// modelDecision is what docs/POLICY.md says of req under p: the deny
// rules that deny it, the allow rules that would decide it (more than one
// only if the policy holds a tie), the covering allow rules with the
// fewest unmet blocks, and, when allowed, rights and lease.
type modelDecision struct {
	denies   []*Rule
	deciders []*Rule
	nearest  []*Rule
	limited  bool // the decider denies: past a limit, or no right left
	rights   caps.Rights
	ttl      time.Duration
}

func model(p *Policy, rp randPolicy, req Request) modelDecision {
	var m modelDecision
	if req.Path != "" {
		req.Path = path.Clean(req.Path)
	}
	allowType := TypeGrant
	if req.Op == OpDelegate {
		allowType = TypeDelegate
	}
	ranking := modelRanking{best: -1, fewest: -1}
	for _, r := range p.Rules() {
		switch r.Type {
		case TypeDeny:
			if modelDenies(r, req, rp) {
				m.denies = append(m.denies, r)
			}
		case allowType:
			if rank := modelCoverRank(r, req); rank >= 0 {
				ranking.add(r, rank, modelUnmet(r, req))
			}
		}
	}
	m.deciders, m.nearest = ranking.deciders, ranking.nearest
	if len(m.deciders) == 1 {
		m.decideTerms(m.deciders[0], rp, req)
	}
	return m
}

// modelDenies reports whether deny rule r denies req: it is on req's
// operation, req meets all its blocks, and one of its selectors covers
// req.
func modelDenies(r *Rule, req Request, rp randPolicy) bool {
	if !slices.Contains(r.On, req.Op) || modelUnmet(r, req) > 0 {
		return false
	}
	return slices.ContainsFunc(r.Selectors, func(s Selector) bool { return modelDenyCovers(s, req, rp) })
}

// modelCoverRank is the rank of the most specific of allow rule r's
// selectors that covers req, or -1 if none does.
func modelCoverRank(r *Rule, req Request) int {
	rank := -1
	for _, s := range r.Selectors {
		if modelCovers(s, req) {
			rank = max(rank, modelRank(s))
		}
	}
	return rank
}

// modelRanking gathers, over the allow rules that cover a request, those
// with the fewest unmet blocks (nearest) and, of those that meet them
// all, those of the highest rank (deciders).
type modelRanking struct {
	best, fewest int // -1 until a rule sets them
	deciders     []*Rule
	nearest      []*Rule
}

// add counts covering rule r, of rank and with unmet blocks unmet.
func (k *modelRanking) add(r *Rule, rank, unmet int) {
	switch {
	case k.fewest < 0 || unmet < k.fewest:
		k.fewest, k.nearest = unmet, []*Rule{r}
	case unmet == k.fewest:
		k.nearest = append(k.nearest, r)
	}
	if unmet > 0 {
		return
	}
	switch {
	case rank > k.best:
		k.best, k.deciders = rank, []*Rule{r}
	case rank == k.best:
		k.deciders = append(k.deciders, r)
	}
}

// decideTerms sets what the sole decider r gives req: its rights, less
// writes on a read-only resource and cut to those asked, its lease, and
// whether it denies instead (past a limit, or no right left).
func (m *modelDecision) decideTerms(r *Rule, rp randPolicy, req Request) {
	m.limited = r.Type == TypeDelegate && (req.Depth > r.MaxDepth || (r.MaxCopies > 0 && req.Copies >= r.MaxCopies))
	m.rights, m.ttl = r.Rights, r.TTL
	if req.Name != "" && rp.res[resourceKey{req.Kind, req.Name}].ReadOnly {
		m.rights &^= caps.RightsWriteMask
	}
	if req.Rights != 0 {
		m.rights &= req.Rights
		// A rule that leaves none of the rights asked denies.
		m.limited = m.limited || m.rights == 0
	}
}

func names(rules []*Rule) []string {
	out := make([]string, len(rules))
	for i, r := range rules {
		out[i] = r.Name
	}
	return out
}

// checkAgainstModel holds d, Evaluate's decision on req, to the model.
func checkAgainstModel(p *Policy, rp randPolicy, req Request, d Decision) error {
	m := model(p, rp, req)
	if len(m.deciders) > 1 {
		return fmt.Errorf("rules %v could both decide at the same specificity, yet the policy loaded", names(m.deciders))
	}
	var decider *Rule
	if len(m.deciders) == 1 {
		decider = m.deciders[0]
	}
	switch {
	case len(m.denies) > 0:
		return checkDeniedByDeny(m, decider, d)
	case decider == nil:
		return checkDefaultDeny(m, d)
	case m.limited:
		return checkDeniedByLimits(decider, d)
	default:
		return checkAllowed(m, decider, d)
	}
}

// checkDeniedByDeny holds d to a deny of the model's: denied by one of
// them, the closest rule the one that would have allowed it otherwise.
func checkDeniedByDeny(m modelDecision, decider *Rule, d Decision) error {
	if d.Allowed || d.Rule == nil || d.Rule.Type != TypeDeny || !slices.Contains(names(m.denies), d.Rule.Name) {
		return fmt.Errorf("want denied by one of deny %v", names(m.denies))
	}
	if (decider == nil) != (d.Closest == nil) || (decider != nil && d.Closest.Name != decider.Name) {
		return fmt.Errorf("closest %v, want the rule that would have allowed it: %v", d.Closest, decider.Ref())
	}
	return nil
}

// checkDefaultDeny holds d to a default deny, the closest rule one of
// the model's nearest.
func checkDefaultDeny(m modelDecision, d Decision) error {
	if d.Allowed || d.Rule != nil {
		return fmt.Errorf("want a default deny")
	}
	if (len(m.nearest) == 0) != (d.Closest == nil) || (d.Closest != nil && !slices.Contains(names(m.nearest), d.Closest.Name)) {
		return fmt.Errorf("closest %v, want one of %v", d.Closest, names(m.nearest))
	}
	return nil
}

// checkDeniedByLimits holds d to a deny by the decider's own limits.
func checkDeniedByLimits(decider *Rule, d Decision) error {
	if d.Allowed || d.Rule == nil || d.Rule.Name != decider.Name {
		return fmt.Errorf("want denied by the limits of %s", decider.Name)
	}
	return nil
}

// checkAllowed holds d to an allow by the decider, with the model's
// rights and lease.
func checkAllowed(m modelDecision, decider *Rule, d Decision) error {
	if !d.Allowed || d.Rule == nil || d.Rule.Name != decider.Name || d.Rights != m.rights || d.TTL != m.ttl {
		return fmt.Errorf("want allowed by %s with %v, lease %v", decider.Name, m.rights, m.ttl)
	}
	return nil
}

var explainHead = regexp.MustCompile(`^(allowed|denied) by (grant|delegate|deny) "([^"]*)" \(([^:]*):(\d+)\)$`)

// checkRenderings holds Explain's text and JSON's to d: the verdict, the
// deciding and closest rules, the rights and the lease, read back from
// what a person or a tool reads.
func checkRenderings(d Decision) error {
	if err := checkExplainText(d); err != nil {
		return err
	}
	return checkJSONText(d)
}

// checkExplainText holds what Explain prints to d.
func checkExplainText(d Decision) error {
	lines := strings.Split(strings.TrimSuffix(d.Explain(), "\n"), "\n")
	fields, err := explainFields(lines[1:])
	if err != nil {
		return err
	}
	allowed, rule, err := parseExplainHead(lines[0])
	if err != nil {
		return err
	}
	if allowed != d.Allowed || !sameRef(rule, d.Rule) {
		return fmt.Errorf("explain says %q, the decision is allowed=%v by %v", lines[0], d.Allowed, d.Rule)
	}
	if fields["reason"] != d.Reason {
		return fmt.Errorf("explain's reason %q, the decision's %q", fields["reason"], d.Reason)
	}
	if d.Allowed {
		return checkExplainGrant(d, fields)
	}
	if c := fields["closest"]; (c == "") != (d.Closest == nil) || (c != "" && c != d.Closest.String()) {
		return fmt.Errorf("explain's closest %q, the decision's %v", c, d.Closest)
	}
	return nil
}

// explainFields reads the KEY: VALUE lines below Explain's first.
func explainFields(lines []string) (map[string]string, error) {
	fields := map[string]string{}
	for _, l := range lines {
		k, v, ok := strings.Cut(strings.TrimSpace(l), ":")
		if !ok {
			return nil, fmt.Errorf("line %q is not KEY: VALUE", l)
		}
		fields[k] = strings.TrimSpace(v)
	}
	return fields, nil
}

// parseExplainHead reads Explain's first line: the verdict and the rule
// that decided it, nil for a default deny.
func parseExplainHead(line string) (allowed bool, rule *RuleRef, err error) {
	if m := explainHead.FindStringSubmatch(line); m != nil {
		n, _ := strconv.Atoi(m[5])
		return m[1] == "allowed", &RuleRef{Type: RuleType(m[2]), Name: m[3], File: m[4], Line: n}, nil
	}
	if line != "denied: no rule matches (default deny)" {
		return false, nil, fmt.Errorf("first line %q", line)
	}
	return false, nil, nil
}

// checkExplainGrant holds the rights and lease Explain prints of an
// allowed d to d's.
func checkExplainGrant(d Decision, fields map[string]string) error {
	rights, err := parseRightsText(fields["rights"])
	if err != nil || rights != d.Rights {
		return fmt.Errorf("explain's rights %q, the decision's %v (%v)", fields["rights"], d.Rights, err)
	}
	if lease := fields["lease"]; (lease == "") != (d.TTL == 0) || (lease != "" && lease != d.TTL.String()) {
		return fmt.Errorf("explain's lease %q, the decision's %v", lease, d.TTL)
	}
	return nil
}

// decisionAsRead is what a tool reads of Decision.JSON, declared apart
// from the type that writes it.
type decisionAsRead struct {
	Allowed bool
	Rule    *struct {
		Type, Name, File string
		Line             int
	}
	Closest *struct{ Name string }
	Reason  string
	Rights  []string
	TTL     string
}

// checkJSONText holds what Decision.JSON writes to d.
func checkJSONText(d Decision) error {
	text, err := d.JSON()
	if err != nil {
		return err
	}
	var j decisionAsRead
	if err := json.Unmarshal(text, &j); err != nil {
		return err
	}
	var jrule *RuleRef
	if j.Rule != nil {
		jrule = &RuleRef{Type: RuleType(j.Rule.Type), Name: j.Rule.Name, File: j.Rule.File, Line: j.Rule.Line}
	}
	if j.Allowed != d.Allowed || !sameRef(jrule, d.Rule) || j.Reason != d.Reason || (j.Closest == nil) != (d.Closest == nil) {
		return fmt.Errorf("JSON %s does not say what the decision does", text)
	}
	rights, err := parseRightNames(j.Rights)
	if err != nil {
		return err
	}
	if d.Allowed && rights != d.Rights || !d.Allowed && j.Rights != nil {
		return fmt.Errorf("JSON's rights %v, the decision's %v", j.Rights, d.Rights)
	}
	if ttl, _ := time.ParseDuration(cmpOr(j.TTL, "0")); ttl != d.TTL {
		return fmt.Errorf("JSON's ttl %q, the decision's %v", j.TTL, d.TTL)
	}
	return nil
}

// parseRightNames reads the rights JSON lists by name.
func parseRightNames(names []string) (caps.Rights, error) {
	var rights caps.Rights
	for _, n := range names {
		bit, ok := caps.ParseRight(n)
		if !ok {
			return 0, fmt.Errorf("JSON right %q is no right's name", n)
		}
		rights |= bit
	}
	return rights, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func sameRef(a, b *RuleRef) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// parseRightsText reads the rights line of Explain: "all", "none" or
// names joined by "|".
func parseRightsText(s string) (caps.Rights, error) {
	switch s {
	case "all":
		return caps.RightsAll, nil
	case "none":
		return 0, nil
	}
	var r caps.Rights
	for _, n := range strings.Split(s, "|") {
		bit, ok := caps.ParseRight(n)
		if !ok {
			return 0, fmt.Errorf("%q is no right's name", n)
		}
		r |= bit
	}
	return r, nil
}

// checkRandomPolicy evaluates requests against one random policy from
// seed and reports whether it loaded.
func checkRandomPolicy(t *testing.T, seed uint64, requests int) bool {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, seed>>32|1))
	rp := genPolicy(r)
	p, err := Parse("rand.hcl", []byte(rp.src))
	if err != nil {
		return false
	}
	if rp.links != nil {
		p = p.WithRealPaths(rp.real)
	}
	for range requests {
		req := genRequest(r, rp)
		asked := req
		d := Evaluate(p, req)
		if err := checkAgainstModel(p, rp, asked, d); err != nil {
			t.Fatalf("seed %d: %v\nrequest %+v\ndecision:\n%s\npolicy:\n%s", seed, err, asked, d.Explain(), rp.src)
		}
		if err := checkRenderings(d); err != nil {
			t.Fatalf("seed %d: %v\nrequest %+v\ndecision:\n%s\npolicy:\n%s", seed, err, asked, d.Explain(), rp.src)
		}
	}
	return true
}

// Evaluate decides as docs/POLICY.md says, and Explain and JSON render
// its decision as it is, on a few thousand small random policies.
func TestExplainAgreesWithEvaluateOnRandomPolicies(t *testing.T) {
	loaded := 0
	const policies = 3000
	for seed := range uint64(policies) {
		if checkRandomPolicy(t, seed, 60) {
			loaded++
		}
	}
	// Random rules often tie and do not load; enough must, for the test
	// to say anything.
	if loaded < policies/4 {
		t.Fatalf("only %d of %d random policies loaded", loaded, policies)
	}
}

// FuzzExplainAgreesWithEvaluate is the property test above from seeds
// the fuzzer chooses.
func FuzzExplainAgreesWithEvaluate(f *testing.F) {
	for _, s := range []uint64{1, 2, 3, 17, 1 << 40} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, seed uint64) {
		checkRandomPolicy(t, seed, 60)
	})
}

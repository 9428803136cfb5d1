package audit

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// GraphDoc is a graph's JSON form (`sandboxd audit graph --format json`).
type GraphDoc struct {
	// At is the time of the last record replayed; absent for a live
	// graph.
	At      *time.Time   `json:"at,omitempty"`
	Holders []HolderInfo `json:"holders"`
	Caps    []*Node      `json:"caps"`
	// Named is, for each declared resource granted by name (dir:reports),
	// the resources its grants opened, those that have ended too.
	Named map[string][]string `json:"named,omitempty"`
}

// Doc returns the graph's JSON form.
func (g *Graph) Doc() GraphDoc {
	d := GraphDoc{Holders: g.Holders(), Caps: g.Nodes()}
	if !g.Last.IsZero() {
		at := g.Last
		d.At = &at
	}
	if d.Caps == nil {
		d.Caps = []*Node{}
	}
	for src, rs := range g.named {
		if d.Named == nil {
			d.Named = map[string][]string{}
		}
		d.Named[src] = sortedKeys(rs)
	}
	return d
}

// Render writes the graph in format "text", "json" or "dot" (Graphviz).
func (g *Graph) Render(w io.Writer, format string) error {
	switch format {
	case "text":
		return g.renderText(w)
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(g.Doc())
	case "dot":
		return g.renderDot(w)
	}
	return fmt.Errorf("unknown graph format %q: use text, json or dot", format)
}

// renderText writes one capability a line, indented under its parent.
func (g *Graph) renderText(w io.Writer) error {
	var err error
	ends := g.receivers()
	for _, r := range g.roots() {
		walkDown(r, func(path []*Node) bool {
			if err == nil {
				_, err = fmt.Fprintf(w, "%s%s\n", indent(len(path)-1), lineBreaks.Replace(g.describe(path[len(path)-1], ends)))
			}
			return err == nil
		})
	}
	return err
}

// lineBreaks escapes the line breaks a host path or a module's name may
// hold, so that each stays on its capability's line rather than starting
// one that reads as another capability.
var lineBreaks = strings.NewReplacer("\n", `\n`, "\r", `\r`)

// maxIndent is the deepest level renderText indents to; a deeper line
// says its depth instead, so that a long chain is not a long line each.
const maxIndent = 32

func indent(depth int) string {
	if depth <= maxIndent {
		return strings.Repeat("  ", depth)
	}
	return strings.Repeat("  ", maxIndent) + fmt.Sprintf("[depth %d] ", depth)
}

// describe is one capability in a line: "ID EDGE KIND NAME holder H
// (MODULE) rights R [resource] [origin] [by USER (uid N)]
// [revoked|closed]"; one in flight is held by where it will arrive
// (InFlightText), its receivers found in ends.
func (g *Graph) describe(n *Node, ends map[ChanEnd][]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s", n.ID, n.Edge, n.Kind)
	if n.Name != "" {
		fmt.Fprintf(&b, " %q", n.Name)
	}
	if n.Holder == "" {
		fmt.Fprintf(&b, " held by %s", InFlightText(n.InFlight, g.receiversIn(n, ends)))
	} else {
		fmt.Fprintf(&b, " held by %s", g.holderText(n.Holder))
	}
	fmt.Fprintf(&b, " rights %s", n.Base)
	if n.Removed != "" {
		fmt.Fprintf(&b, " (removed %s)", n.Removed)
	}
	if n.Resource != "" {
		fmt.Fprintf(&b, " [%s]", n.Resource)
	}
	if n.Origin != "" {
		fmt.Fprintf(&b, " from %q", n.Origin)
	}
	b.WriteString(ByLine(n.By, n.ByUID))
	if n.Revoked {
		b.WriteString(" REVOKED")
	}
	if n.Closed {
		b.WriteString(" closed")
	}
	return b.String()
}

// InFlightText says where a capability in flight is, for people:
// "(in flight on channel N, sent through VIA: to be received by H
// (MODULE), …)", "(in flight)" where the log does not say (a log from
// before it did).
func InFlightText(at *ChanEnd, receivers []Receiver) string {
	if at == nil {
		return InFlight
	}
	t := fmt.Sprintf("(in flight on channel %d, sent through %s: ", at.Chan, at.Via)
	if len(receivers) == 0 {
		return t + "no holder of its other end to receive it)"
	}
	names := make([]string, len(receivers))
	for i, r := range receivers {
		names[i] = r.Holder
		if r.Module != "" {
			names[i] += " (" + r.Module + ")"
		}
	}
	return t + "to be received by " + strings.Join(names, ", ") + ")"
}

func (g *Graph) holderText(id string) string {
	if id == "" {
		return InFlight
	}
	if h := g.holders[id]; h != nil && h.Module != "" {
		return id + " (" + h.Module + ")"
	}
	return id
}

// renderDot writes a Graphviz digraph: one cluster per holder, one box
// per capability, an arrow from each capability to those derived from it,
// labelled with the edge and the rights it removed.
func (g *Graph) renderDot(w io.Writer) error {
	var b strings.Builder
	b.WriteString("digraph sandboxd {\n  rankdir=LR;\n  node [shape=box, fontname=\"monospace\", fontsize=10];\n  edge [fontname=\"monospace\", fontsize=9];\n")
	// A cluster per holder, and per place capabilities are in flight:
	// each labelled as the text form's "held by" says.
	byHolder := map[string][]*Node{}
	ends := g.receivers()
	nodes := g.Nodes()
	for _, n := range nodes {
		h := g.holderText(n.Holder)
		if n.Holder == "" {
			h = InFlightText(n.InFlight, g.receiversIn(n, ends))
		}
		byHolder[h] = append(byHolder[h], n)
	}
	holders := make([]string, 0, len(byHolder))
	for h := range byHolder {
		holders = append(holders, h)
	}
	sort.Strings(holders)
	for i, h := range holders {
		fmt.Fprintf(&b, "  subgraph cluster_%d {\n    label=%s;\n", i, dotQuote(h))
		for _, n := range byHolder[h] {
			label := dotLabel(n)
			style := ""
			if n.Revoked {
				style = ", style=dashed, color=red"
			} else if n.Closed {
				style = ", style=dotted"
			}
			fmt.Fprintf(&b, "    %s [label=%s%s];\n", dotQuote(n.ID), dotQuote(label), style)
		}
		b.WriteString("  }\n")
	}
	for _, n := range nodes {
		if n.parent == nil || g.nodes[n.parent.ID] != n.parent {
			continue
		}
		label := n.Edge
		if n.Removed != "" {
			label += "\n-" + strings.ReplaceAll(n.Removed, "|", "\n-")
		}
		fmt.Fprintf(&b, "  %s -> %s [label=%s];\n", dotQuote(n.parent.ID), dotQuote(n.ID), dotQuote(label))
	}
	b.WriteString("}\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// dotLabel is one capability's box: its id, kind and name, its resource,
// where it came from (a grant's text, a delegation's call) and, for a
// grant, who made it: what the text form's line says.
func dotLabel(n *Node) string {
	label := fmt.Sprintf("%s\n%s %s\n%s", n.ID, n.Kind, n.Name, n.Resource)
	if n.Origin != "" {
		label += fmt.Sprintf("\nfrom %q", n.Origin)
	}
	if by := ByLine(n.By, n.ByUID); by != "" {
		label += "\n" + strings.TrimPrefix(by, " ")
	}
	return label
}

// dotQuote quotes s as a Graphviz string, newlines as \n.
func dotQuote(s string) string {
	s = strings.ReplaceAll(s, `\`, `\\`)
	s = strings.ReplaceAll(s, `"`, `\"`)
	s = strings.ReplaceAll(s, "\n", `\n`)
	return `"` + s + `"`
}

package policies

import (
	"fmt"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/gocty"
)

// The file grammar is decoded with hcl's own schema API (Body.Content),
// one schema per block type, rather than with gohcl: gohcl imports
// hclwrite and through it go-cmp, whose package initialisation (regular
// expressions, reflection tables) every run of the CLI paid for, whichever
// verb it ran. The diagnostics are gohcl's: "Unsupported block type",
// "Unsupported argument" and "Missing required argument" come from
// Content itself, and "Unsuitable value type" is worded as gohcl words it.

var (
	fileSchema = &hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{
		{Type: "delegate", LabelNames: []string{"name"}},
		{Type: "deny", LabelNames: []string{"name"}},
		{Type: "grant", LabelNames: []string{"name"}},
		{Type: "resource", LabelNames: []string{"kind", "name"}},
	}}
	resourceSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "path"}, {Name: "read_only"}, {Name: "tcp"}, {Name: "unix"},
	}}
	subjectSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "gids"}, {Name: "uids"}, {Name: "users"},
	}}
	moduleSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "labels"}, {Name: "sha256"},
	}}
	grantSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{
			{Name: "read_only"}, {Name: "resources", Required: true}, {Name: "rights"}, {Name: "ttl"},
		},
		Blocks: []hcl.BlockHeaderSchema{{Type: "module"}, {Type: "subject"}},
	}
	delegateSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{
			{Name: "max_copies"}, {Name: "max_depth", Required: true}, {Name: "read_only"},
			{Name: "resources", Required: true}, {Name: "rights"}, {Name: "ttl"},
		},
		Blocks: []hcl.BlockHeaderSchema{{Type: "module"}, {Type: "to"}},
	}
	denySchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{{Name: "on"}, {Name: "resources", Required: true}},
		Blocks:     []hcl.BlockHeaderSchema{{Type: "module"}, {Type: "subject"}, {Type: "to"}},
	}
)

// decoder collects the diagnostics of one file's decoding; it goes on
// after a problem, so that every problem is reported at once.
type decoder struct{ diags hcl.Diagnostics }

// content is body's attributes and blocks under schema. hcl returns what
// it could read along with its diagnostics; an absent content is empty.
func (d *decoder) content(body hcl.Body, schema *hcl.BodySchema) *hcl.BodyContent {
	c, diags := body.Content(schema)
	d.diags = append(d.diags, diags...)
	if c == nil {
		c = &hcl.BodyContent{Attributes: hcl.Attributes{}}
	}
	return c
}

// attr decodes attribute name of c, if present, into *dst (a pointer to a
// Go value gocty can fill: string, bool, int64, slices and maps of them,
// or pointers to those) and returns the range of its value. An absent
// attribute leaves *dst as it is and returns the zero range.
func (d *decoder) attr(c *hcl.BodyContent, name string, dst any) hcl.Range {
	a := c.Attributes[name]
	if a == nil {
		return hcl.Range{}
	}
	d.expr(a.Expr, dst)
	return a.Expr.Range()
}

// expr evaluates expr (no variables, no functions) into dst, as
// gohcl.DecodeExpression does.
func (d *decoder) expr(expr hcl.Expression, dst any) {
	v, diags := expr.Value(nil)
	d.diags = append(d.diags, diags...)
	ty, err := gocty.ImpliedType(dst)
	if err != nil {
		panic(fmt.Sprintf("policies: no cty type for %T: %v", dst, err))
	}
	if err = checkNumbers(v); err == nil {
		if v, err = convertValue(v, ty); err == nil {
			err = gocty.FromCtyValue(v, dst)
		}
	}
	if err != nil {
		d.diags = append(d.diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Unsuitable value type",
			Detail:   "Unsuitable value: " + err.Error(),
			Subject:  expr.StartRange().Ptr(),
			Context:  expr.Range().Ptr(),
		})
	}
}

// checkNumbers refuses a number past 2^±1024 (float64's range) anywhere in
// v: no policy value is one, and where a string is wanted cty would write
// out every digit of its decimal text (a hundred million of them for
// 1e100000000, minutes of work).
func checkNumbers(v cty.Value) error {
	return cty.Walk(v, func(_ cty.Path, x cty.Value) (bool, error) {
		if x.Type() != cty.Number || !x.IsKnown() || x.IsNull() {
			return true, nil
		}
		if exp := x.AsBigFloat().MantExp(nil); exp > 1024 || exp < -1024 {
			return false, fmt.Errorf("a number past 2^1024 or below 2^-1024 (exponent 2^%d), which no policy value is", exp)
		}
		return true, nil
	})
}

// convertValue is convert.Convert, except that a tuple for a list is
// converted one element at a time: cty converts a whole tuple by first
// sorting its elements' types, in time that grows with the square of
// their number (minutes for a list of 100,000 strings). When an element
// does not convert, the whole is converted as cty does, for its error.
func convertValue(v cty.Value, ty cty.Type) (cty.Value, error) {
	if !ty.IsListType() || !v.Type().IsTupleType() || !v.IsWhollyKnown() || v.IsNull() || v.LengthInt() == 0 {
		return convert.Convert(v, ty)
	}
	elems := make([]cty.Value, 0, v.LengthInt())
	for it := v.ElementIterator(); it.Next(); {
		_, e := it.Element()
		e, err := convert.Convert(e, ty.ElementType())
		if err != nil {
			return convert.Convert(v, ty)
		}
		elems = append(elems, e)
	}
	return cty.ListVal(elems), nil
}

// oneBlock returns the only block of type typ in c, nil when there is
// none, and reports any second one.
func (d *decoder) oneBlock(c *hcl.BodyContent, typ string) *hcl.Block {
	var first *hcl.Block
	for _, b := range c.Blocks {
		if b.Type != typ {
			continue
		}
		if first != nil {
			d.diags = append(d.diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Duplicate " + typ + " block",
				Detail:   fmt.Sprintf("Only one %s block is allowed. Another was defined at %s.", typ, first.DefRange.String()),
				Subject:  b.DefRange.Ptr(),
			})
			continue
		}
		first = b
	}
	return first
}

// decodeBody reads a whole policy file's body.
func (d *decoder) decodeBody(body hcl.Body) *fileBody {
	c := d.content(body, fileSchema)
	var f fileBody
	for _, b := range c.Blocks {
		switch b.Type {
		case "resource":
			f.Resources = append(f.Resources, d.resource(b))
		case "grant":
			f.Grants = append(f.Grants, d.grant(b))
		case "delegate":
			f.Delegates = append(f.Delegates, d.delegate(b))
		case "deny":
			f.Denies = append(f.Denies, d.deny(b))
		}
	}
	return &f
}

func (d *decoder) resource(b *hcl.Block) rawResource {
	c := d.content(b.Body, resourceSchema)
	r := rawResource{Kind: b.Labels[0], Name: b.Labels[1], DefRange: b.DefRange}
	r.PathRange = d.attr(c, "path", &r.Path)
	d.attr(c, "read_only", &r.ReadOnly)
	r.TCPRange = d.attr(c, "tcp", &r.TCP)
	r.UnixRange = d.attr(c, "unix", &r.Unix)
	return r
}

func (d *decoder) subject(b *hcl.Block) *rawSubject {
	if b == nil {
		return nil
	}
	c := d.content(b.Body, subjectSchema)
	s := &rawSubject{DefRange: b.DefRange, Body: b.Body}
	s.UIDsRange = d.attr(c, "uids", &s.UIDs)
	s.GIDsRange = d.attr(c, "gids", &s.GIDs)
	d.attr(c, "users", &s.Users)
	return s
}

func (d *decoder) module(b *hcl.Block) *rawModule {
	if b == nil {
		return nil
	}
	c := d.content(b.Body, moduleSchema)
	m := &rawModule{DefRange: b.DefRange, Body: b.Body}
	m.SHA256Range = d.attr(c, "sha256", &m.SHA256)
	m.LabelsRange = d.attr(c, "labels", &m.Labels)
	return m
}

func (d *decoder) grant(b *hcl.Block) rawGrant {
	c := d.content(b.Body, grantSchema)
	g := rawGrant{Name: b.Labels[0], DefRange: b.DefRange, Body: b.Body}
	g.ResourcesRange = d.attr(c, "resources", &g.Resources)
	g.RightsRange = d.attr(c, "rights", &g.Rights)
	d.attr(c, "read_only", &g.ReadOnly)
	g.TTLRange = d.attr(c, "ttl", &g.TTL)
	g.Subject = d.subject(d.oneBlock(c, "subject"))
	g.Module = d.module(d.oneBlock(c, "module"))
	return g
}

func (d *decoder) delegate(b *hcl.Block) rawDelegate {
	c := d.content(b.Body, delegateSchema)
	g := rawDelegate{Name: b.Labels[0], DefRange: b.DefRange, Body: b.Body}
	g.ResourcesRange = d.attr(c, "resources", &g.Resources)
	g.DepthRange = d.attr(c, "max_depth", &g.MaxDepth)
	g.CopiesRange = d.attr(c, "max_copies", &g.MaxCopies)
	g.RightsRange = d.attr(c, "rights", &g.Rights)
	d.attr(c, "read_only", &g.ReadOnly)
	g.TTLRange = d.attr(c, "ttl", &g.TTL)
	g.Module = d.module(d.oneBlock(c, "module"))
	g.To = d.module(d.oneBlock(c, "to"))
	return g
}

func (d *decoder) deny(b *hcl.Block) rawDeny {
	c := d.content(b.Body, denySchema)
	g := rawDeny{Name: b.Labels[0], DefRange: b.DefRange, Body: b.Body}
	g.ResourcesRange = d.attr(c, "resources", &g.Resources)
	g.OnRange = d.attr(c, "on", &g.On)
	g.Subject = d.subject(d.oneBlock(c, "subject"))
	g.Module = d.module(d.oneBlock(c, "module"))
	g.To = d.module(d.oneBlock(c, "to"))
	return g
}

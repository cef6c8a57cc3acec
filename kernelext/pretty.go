package kernelext

import "strings"

// prettyPrinter is a port of the part of IPython's pretty printer (IPython/lib/pretty.py,
// itself after Ruby's prettyprint) that Jupyter uses to show lists and tuples, so that
// FormatPredictions breaks lines where a notebook does. Every object printed opens a group;
// when a line overflows, the outermost group that can break breaks all its separators.
type prettyPrinter struct {
	out         strings.Builder
	maxWidth    int
	outputWidth int
	bufferWidth int
	buffer      []printable
	groupStack  []*ppGroup
	queue       [][]*ppGroup // by depth
	indentation int
}

type ppGroup struct {
	depth      int
	breakables []*ppBreakable
	wantBreak  bool
}

type printable interface {
	output(p *prettyPrinter, outputWidth int) int
	width() int
}

type ppText struct {
	objs []string
	w    int
}

func (t *ppText) output(p *prettyPrinter, ow int) int {
	for _, o := range t.objs {
		p.out.WriteString(o)
	}
	return ow + t.w
}
func (t *ppText) width() int { return t.w }

type ppBreakable struct {
	sep         string
	indentation int
	group       *ppGroup
}

func (b *ppBreakable) output(p *prettyPrinter, ow int) int {
	b.group.breakables = b.group.breakables[1:]
	if b.group.wantBreak {
		p.out.WriteString("\n")
		p.out.WriteString(strings.Repeat(" ", b.indentation))
		return b.indentation
	}
	if len(b.group.breakables) == 0 {
		p.removeGroup(b.group)
	}
	p.out.WriteString(b.sep)
	return ow + len(b.sep)
}
func (b *ppBreakable) width() int { return len(b.sep) }

func newPrettyPrinter(maxWidth int) *prettyPrinter {
	p := &prettyPrinter{maxWidth: maxWidth}
	root := &ppGroup{}
	p.groupStack = []*ppGroup{root}
	p.enqueue(root)
	return p
}

func (p *prettyPrinter) enqueue(g *ppGroup) {
	for g.depth > len(p.queue)-1 {
		p.queue = append(p.queue, nil)
	}
	p.queue[g.depth] = append(p.queue[g.depth], g)
}

// dequeue is GroupQueue.deq: the shallowest group with pending separators is marked to break;
// shallower groups without any are marked too (their future separators break at once).
func (p *prettyPrinter) dequeue() *ppGroup {
	for d, stack := range p.queue {
		for i := len(stack) - 1; i >= 0; i-- {
			g := stack[i]
			if len(g.breakables) > 0 {
				// IPython deletes stack[idx] with idx counted on the reversed list — i.e. the
				// element at position len-1-i from the front; reproduce that quirk.
				k := len(stack) - 1 - i
				p.queue[d] = append(stack[:k:k], stack[k+1:]...)
				g.wantBreak = true
				return g
			}
		}
		for _, g := range stack {
			g.wantBreak = true
		}
		p.queue[d] = nil
	}
	return nil
}

func (p *prettyPrinter) removeGroup(g *ppGroup) {
	if g.depth >= len(p.queue) {
		return
	}
	stack := p.queue[g.depth]
	for i, x := range stack {
		if x == g {
			p.queue[g.depth] = append(stack[:i:i], stack[i+1:]...)
			return
		}
	}
}

func (p *prettyPrinter) breakOuterGroups() {
	for p.maxWidth < p.outputWidth+p.bufferWidth {
		g := p.dequeue()
		if g == nil {
			return
		}
		for len(g.breakables) > 0 {
			x := p.buffer[0]
			p.buffer = p.buffer[1:]
			p.outputWidth = x.output(p, p.outputWidth)
			p.bufferWidth -= x.width()
		}
		for len(p.buffer) > 0 {
			t, ok := p.buffer[0].(*ppText)
			if !ok {
				break
			}
			p.buffer = p.buffer[1:]
			p.outputWidth = t.output(p, p.outputWidth)
			p.bufferWidth -= t.w
		}
	}
}

func (p *prettyPrinter) text(s string) {
	if len(p.buffer) > 0 {
		t, ok := p.buffer[len(p.buffer)-1].(*ppText)
		if !ok {
			t = &ppText{}
			p.buffer = append(p.buffer, t)
		}
		t.objs = append(t.objs, s)
		t.w += len(s)
		p.bufferWidth += len(s)
		p.breakOuterGroups()
		return
	}
	p.out.WriteString(s)
	p.outputWidth += len(s)
}

func (p *prettyPrinter) breakable() {
	g := p.groupStack[len(p.groupStack)-1]
	if g.wantBreak {
		p.flush()
		p.out.WriteString("\n")
		p.out.WriteString(strings.Repeat(" ", p.indentation))
		p.outputWidth = p.indentation
		p.bufferWidth = 0
		return
	}
	b := &ppBreakable{sep: " ", indentation: p.indentation, group: g}
	g.breakables = append(g.breakables, b)
	p.buffer = append(p.buffer, b)
	p.bufferWidth++
	p.breakOuterGroups()
}

func (p *prettyPrinter) beginGroup(indent int, open string) {
	if open != "" {
		p.text(open)
	}
	g := &ppGroup{depth: p.groupStack[len(p.groupStack)-1].depth + 1}
	p.groupStack = append(p.groupStack, g)
	p.enqueue(g)
	p.indentation += indent
}

func (p *prettyPrinter) endGroup(dedent int, close string) {
	p.indentation -= dedent
	g := p.groupStack[len(p.groupStack)-1]
	p.groupStack = p.groupStack[:len(p.groupStack)-1]
	if len(g.breakables) == 0 {
		p.removeGroup(g)
	}
	if close != "" {
		p.text(close)
	}
}

func (p *prettyPrinter) flush() {
	for _, x := range p.buffer {
		p.outputWidth += x.output(p, p.outputWidth)
	}
	p.buffer = nil
	p.bufferWidth = 0
}

// pretty wraps one object's printing in the group RepresentationPrinter.pretty opens.
func (p *prettyPrinter) pretty(body func()) {
	p.beginGroup(0, "")
	body()
	p.endGroup(0, "")
}

// reprText prints a one-line repr() the way _repr_pprint does (inside its own group).
func (p *prettyPrinter) reprText(s string) {
	p.beginGroup(0, "")
	p.text(s)
	p.endGroup(0, "")
}

// seq is _seq_pprinter_factory for lists and tuples of n items.
func (p *prettyPrinter) seq(open, close string, n int, item func(i int)) {
	p.beginGroup(len(open), open)
	for i := 0; i < n; i++ {
		if i > 0 {
			p.text(",")
			p.breakable()
		}
		item(i)
	}
	if n == 1 && open == "(" {
		p.text(",")
	}
	p.endGroup(len(open), close)
}

func (p *prettyPrinter) String() string {
	p.flush()
	return p.out.String()
}

package legacyimport

import (
	"bytes"
	"cmp"
	"fmt"
	"go/ast"
	"go/token"
	"go/types"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/tools/go/analysis"
)

// realtimePath is the import path of package realtime, whose FromContext
// returns the provider realtime.Middleware put into an Inngest function's
// context: in an app, its Broadcast.
const realtimePath = "github.com/coursebuilder/realtime-go/realtime"

// checkPublishes reports every call of (*legacyparty.Provider).Publish in
// the pass's files, promoted ones included, with a suggested fix where the
// rewrite keeps what the call evaluates.
func (ck *checker) checkPublishes(pass *analysis.Pass) {
	for _, f := range pass.Files {
		later := make(map[*ast.CallExpr]bool) // calls of go and defer statements
		for n := range ast.Preorder(f) {
			switch n := n.(type) {
			case *ast.GoStmt:
				later[n.Call] = true
			case *ast.DeferStmt:
				later[n.Call] = true
			case *ast.CallExpr:
				sel := legacyPublish(pass.TypesInfo, n)
				if sel == nil {
					continue
				}
				fix, whyNot := publishFix(pass, f, n, sel, later[n])
				d := analysis.Diagnostic{Pos: n.Pos(), End: n.End(), Category: "legacypublish", Message: ck.publishMessage(whyNot)}
				if fix != nil {
					d.SuggestedFixes = []analysis.SuggestedFix{*fix}
				}
				pass.Report(d)
			}
		}
	}
}

// publishMessage says what is wrong with a legacyparty publish, what to do
// instead and, when whyNot is set, why the diagnostic has no fix.
func (ck *checker) publishMessage(whyNot string) string {
	msg := "publish through the deprecated *legacyparty.Provider goes to PartyKit only, whatever the scope's mode flag says, " +
		"so browsers of a scope moved to Inngest Realtime never see it: publish through the app's Broadcast, " +
		"which realtime.Middleware puts in the context, with realtime.FromContext(ctx)"
	if whyNot != "" {
		msg += "; no suggested fix: " + whyNot
	}
	return msg + " (migration guide: " + ck.guide + ")"
}

// legacyPublish returns the selector of call when call is a call of
// legacyparty's (*Provider).Publish method, nil otherwise.
func legacyPublish(info *types.Info, call *ast.CallExpr) *ast.SelectorExpr {
	sel, ok := ast.Unparen(call.Fun).(*ast.SelectorExpr)
	if !ok {
		return nil
	}
	s := info.Selections[sel]
	if s == nil || s.Kind() != types.MethodVal {
		return nil
	}
	fn, ok := s.Obj().(*types.Func)
	if !ok || fn.Name() != "Publish" || fn.Pkg() == nil || fn.Pkg().Path() != LegacyPartyPath {
		return nil
	}
	recv := fn.Signature().Recv().Type()
	if p, ok := recv.(*types.Pointer); ok {
		recv = p.Elem()
	}
	if named, ok := types.Unalias(recv).(*types.Named); !ok || named.Obj().Name() != "Provider" {
		return nil
	}
	return sel
}

// publishFix returns the fix for call, a legacyparty publish through sel,
// or why there is none. The fix replaces the call by a function literal,
// called at once, that publishes through realtime.FromContext(ctx) and
// fails with realtime.ErrNotConfigured when ctx carries no provider;
// FromContext also says whether it found one, so no single expression can
// do it. The receiver is dropped; the message is evaluated before the
// lookup, as before, unless it is a variable or field.
func publishFix(pass *analysis.Pass, f *ast.File, call *ast.CallExpr, sel *ast.SelectorExpr, later bool) (*analysis.SuggestedFix, string) {
	info := pass.TypesInfo
	if later {
		return nil, "a go or defer statement evaluates its arguments at once, a function literal would read them later"
	}
	if len(call.Args) != 2 || call.Ellipsis.IsValid() {
		return nil, "the call does not have the two arguments of Publish"
	}
	ctxArg, msgArg := call.Args[0], call.Args[1]
	if !isRef(info, ctxArg) {
		return nil, "the context argument is not a variable or a field, and the fix would evaluate it twice"
	}
	tf := pass.Fset.File(call.Pos())
	src, err := pass.ReadFile(tf.Name())
	if err != nil || tf.Size() != len(src) {
		return nil, "the source file cannot be read"
	}
	qual, spec := realtimeImport(info, f)
	if qual == "." {
		return nil, "package realtime is dot-imported"
	}
	if obj := lookup(pass.Pkg, qual, call.Pos()); (spec == nil && obj != nil) || (spec != nil && obj != pkgNameOf(info, spec)) {
		return nil, "the name " + qual + " means something else here"
	}

	text := func(e ast.Expr) string { return string(src[tf.Offset(e.Pos()):tf.Offset(e.End())]) }
	used := map[string]bool{qual: true}
	for _, e := range call.Args {
		for n := range ast.Preorder(e) {
			if id, ok := n.(*ast.Ident); ok {
				used[id.Name] = true
			}
		}
	}
	lit := literal{
		indent: lineIndent(tf, src, call.Pos()),
		qual:   qual,
		rt:     fresh("rt", used),
		ok:     fresh("ok", used),
		ctx:    text(ctxArg),
		msg:    text(msgArg),
	}
	if !isRef(info, msgArg) {
		lit.param = fresh("msg", used)
	}
	edits := []analysis.TextEdit{{Pos: call.Pos(), End: call.End(), NewText: []byte(lit.String())}}
	if spec == nil {
		edits = append(edits, addImport(f, tf, src))
	}
	edits = append(edits, dropLegacyImports(info, f, tf, src, sel.X)...)
	slices.SortFunc(edits, func(a, b analysis.TextEdit) int { return cmp.Compare(a.Pos, b.Pos) })
	return &analysis.SuggestedFix{Message: "Publish through realtime.FromContext(ctx)", TextEdits: edits}, ""
}

// literal is the function literal a fix puts in place of a publish.
type literal struct {
	indent   string // of the call's line
	qual     string // package realtime's name in the file
	rt, ok   string // the literal's variables
	ctx, msg string // the call's arguments, as written
	param    string // the literal's parameter, when msg is evaluated before the call
}

func (l literal) String() string {
	var b strings.Builder
	msg, args := l.msg, ""
	if l.param != "" {
		fmt.Fprintf(&b, "func(%s %s.Message) error {\n", l.param, l.qual)
		msg, args = l.param, l.msg
	} else {
		b.WriteString("func() error {\n")
	}
	fmt.Fprintf(&b, "%[1]s\t%[2]s, %[3]s := %[4]s.FromContext(%[5]s)\n"+
		"%[1]s\tif !%[3]s {\n%[1]s\t\treturn %[4]s.ErrNotConfigured\n%[1]s\t}\n"+
		"%[1]s\treturn %[2]s.Publish(%[5]s, %[6]s)\n"+
		"%[1]s}(%[7]s)", l.indent, l.rt, l.ok, l.qual, l.ctx, msg, args)
	return b.String()
}

// isRef reports whether e is a variable or a field of one, possibly
// qualified or parenthesised: an expression that evaluates to the same
// value twice in a row, with no side effect.
func isRef(info *types.Info, e ast.Expr) bool {
	switch e := ast.Unparen(e).(type) {
	case *ast.Ident:
		_, ok := info.Uses[e].(*types.Var)
		return ok
	case *ast.SelectorExpr:
		if s := info.Selections[e]; s != nil {
			return s.Kind() == types.FieldVal && isRef(info, e.X)
		}
		_, ok := info.Uses[e.Sel].(*types.Var) // a package-level variable, pkg.V
		return ok
	}
	return false
}

// realtimeImport returns the name f imports package realtime under, and
// the import; "realtime" and nil when f does not import it (a blank import
// does not count).
func realtimeImport(info *types.Info, f *ast.File) (string, *ast.ImportSpec) {
	for _, spec := range f.Imports {
		if path, err := strconv.Unquote(spec.Path.Value); err != nil || path != realtimePath {
			continue
		}
		if spec.Name != nil && spec.Name.Name == "." {
			return ".", spec
		}
		if pn := pkgNameOf(info, spec); pn != nil && pn.Name() != "_" {
			return pn.Name(), spec
		}
	}
	return "realtime", nil
}

// pkgNameOf returns the package name an import declares.
func pkgNameOf(info *types.Info, spec *ast.ImportSpec) *types.PkgName {
	var obj types.Object
	if spec.Name != nil {
		obj = info.Defs[spec.Name]
	}
	if obj == nil {
		obj = info.Implicits[spec]
	}
	pn, _ := obj.(*types.PkgName)
	return pn
}

// lookup returns what name denotes at pos, or nil.
func lookup(pkg *types.Package, name string, pos token.Pos) types.Object {
	scope := pkg.Scope().Innermost(pos)
	if scope == nil {
		return nil
	}
	_, obj := scope.LookupParent(name, pos)
	return obj
}

// fresh returns base, or base followed by the first number from 2 on that
// makes a name not in used, and adds it to used.
func fresh(base string, used map[string]bool) string {
	name := base
	for i := 2; used[name]; i++ {
		name = base + strconv.Itoa(i)
	}
	used[name] = true
	return name
}

// addImport returns the edit that imports package realtime into f: a spec
// just before the ")" of f's last parenthesised import declaration (when
// that ")" starts its line), else a declaration after the package clause.
// Every fix in a file makes the same edit, so the drivers merge them.
func addImport(f *ast.File, tf *token.File, src []byte) analysis.TextEdit {
	spec := strconv.Quote(realtimePath)
	for _, decl := range slices.Backward(f.Decls) {
		d, ok := decl.(*ast.GenDecl)
		if !ok || d.Tok != token.IMPORT || !d.Rparen.IsValid() {
			continue
		}
		if start, ok := lineStart(tf, src, d.Rparen); ok {
			return analysis.TextEdit{Pos: start, End: start, NewText: []byte("\t" + spec + "\n")}
		}
	}
	end := lineEnd(tf, src, f.Name.End())
	return analysis.TextEdit{Pos: end, End: end, NewText: []byte("\n\nimport " + spec)}
}

// dropLegacyImports returns the edits that delete f's imports of
// legacyparty whose every use lies inside the dropped receiver expression,
// so that the fix alone leaves no unused import. An import that shares its
// line with other code is kept (the -fix drivers remove it anyway).
func dropLegacyImports(info *types.Info, f *ast.File, tf *token.File, src []byte, recv ast.Expr) []analysis.TextEdit {
	var edits []analysis.TextEdit
	for _, decl := range f.Decls {
		d, ok := decl.(*ast.GenDecl)
		if !ok || d.Tok != token.IMPORT {
			continue
		}
		for _, s := range d.Specs {
			spec := s.(*ast.ImportSpec)
			if path, err := strconv.Unquote(spec.Path.Value); err != nil || path != LegacyPartyPath {
				continue
			}
			pn := pkgNameOf(info, spec)
			if pn == nil || pn.Name() == "_" || (spec.Name != nil && spec.Name.Name == ".") || usedOutside(info, f, pn, recv) {
				continue
			}
			var start, end token.Pos = spec.Pos(), spec.End()
			if spec.Doc != nil {
				start = spec.Doc.Pos()
			}
			if !d.Lparen.IsValid() { // import "…/legacyparty": the whole declaration
				start = d.Pos()
				if d.Doc != nil {
					start = d.Doc.Pos()
				}
			}
			if spec.Comment != nil {
				end = spec.Comment.End()
			}
			ls, ok1 := lineStart(tf, src, start)
			le := lineEnd(tf, src, end)
			if !ok1 || len(bytes.TrimSpace(src[tf.Offset(end):tf.Offset(le)])) != 0 {
				continue
			}
			if tf.Offset(le) < len(src) {
				le++ // the newline
			}
			edits = append(edits, analysis.TextEdit{Pos: ls, End: le})
		}
	}
	return edits
}

// usedOutside reports whether f refers to pn outside the expression recv.
func usedOutside(info *types.Info, f *ast.File, pn *types.PkgName, recv ast.Expr) bool {
	for n := range ast.Preorder(f) {
		if id, ok := n.(*ast.Ident); ok && info.Uses[id] == pn && (id.Pos() < recv.Pos() || id.End() > recv.End()) {
			return true
		}
	}
	return false
}

// lineStart returns the start of pos's line, and whether only blanks
// precede pos on it.
func lineStart(tf *token.File, src []byte, pos token.Pos) (token.Pos, bool) {
	start := tf.LineStart(tf.Line(pos))
	return start, len(bytes.Trim(src[tf.Offset(start):tf.Offset(pos)], " \t")) == 0
}

// lineEnd returns the position of the newline that ends pos's line, or of
// the end of the file.
func lineEnd(tf *token.File, src []byte, pos token.Pos) token.Pos {
	off := tf.Offset(pos)
	if i := bytes.IndexByte(src[off:], '\n'); i >= 0 {
		return tf.Pos(off + i)
	}
	return tf.Pos(len(src))
}

// lineIndent returns the blanks that start pos's line.
func lineIndent(tf *token.File, src []byte, pos token.Pos) string {
	line := src[tf.Offset(tf.LineStart(tf.Line(pos))):tf.Offset(pos)]
	return string(line[:len(line)-len(bytes.TrimLeft(line, " \t"))])
}

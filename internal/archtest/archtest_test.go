package archtest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// docPath is the document whose package table this test checks, relative to the module root.
const docPath = "docs/architecture.md"

// buildTags are the tag sets the module is listed with. A package's imports are the union over
// them, so that tests behind the integration and chaos tags are held to the table too.
var buildTags = []string{"", "integration", "chaos"}

// devTree holds the doubles and the dev tooling, which no production package may depend on.
const devTree = "internal/dev"

// testOnly are the packages outside devTree that no binary links: they hold tests and at most a
// doc.go.
var testOnly = []string{"internal/e2e", "internal/chaos", "internal/compose", "internal/archtest"}

// row is one package's row of the table.
type row struct {
	line           int
	mayImport      []string
	testsMayImport []string
}

// pkg is one package of the module, its imports as paths relative to the module root.
type pkg struct {
	imports     []string // in-module imports of its non-test files
	testImports []string // in-module imports of its _test.go files, itself excluded
	deps        []string // in-module transitive dependencies of its non-test files
}

type module struct {
	path  string
	root  string
	pkgs  map[string]*pkg
	table map[string]row
	// testingImporters are the non-test .go files (relative paths) that import "testing".
	testingImporters []string
}

// loadModule lists the module once for all the tests of the package.
var loadModule = sync.OnceValues(func() (*module, error) {
	m := &module{pkgs: map[string]*pkg{}}
	var err error
	if m.path, m.root, err = goModule(); err != nil {
		return nil, err
	}
	for _, tags := range buildTags {
		if err := m.list(tags); err != nil {
			return nil, err
		}
	}
	for _, p := range m.pkgs {
		slices.Sort(p.imports)
		p.imports = slices.Compact(p.imports)
		slices.Sort(p.testImports)
		p.testImports = slices.Compact(p.testImports)
		slices.Sort(p.deps)
		p.deps = slices.Compact(p.deps)
	}
	if m.table, err = readTable(filepath.Join(m.root, docPath)); err != nil {
		return nil, err
	}
	if err := m.readSources(); err != nil {
		return nil, err
	}
	return m, nil
})

func load(t *testing.T) *module {
	t.Helper()
	m, err := loadModule()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// goModule returns the module's path and root directory.
func goModule() (path, root string, err error) {
	out, err := goCmd("", "list", "-m", "-json")
	if err != nil {
		return "", "", err
	}
	var mod struct{ Path, Dir string }
	if err := json.Unmarshal(out, &mod); err != nil {
		return "", "", fmt.Errorf("go list -m -json: %w", err)
	}
	return mod.Path, mod.Dir, nil
}

// list adds what `go list ./...` reports under tags to m.pkgs.
func (m *module) list(tags string) error {
	args := []string{"list", "-e", "-json=ImportPath,Imports,TestImports,XTestImports,Deps,Error"}
	if tags != "" {
		args = append(args, "-tags", tags)
	}
	out, err := goCmd(m.root, append(args, "./...")...)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p struct {
			ImportPath                               string
			Imports, TestImports, XTestImports, Deps []string
			Error                                    *struct{ Err string }
		}
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return fmt.Errorf("go list -json: %w", err)
		}
		if p.Error != nil {
			if strings.Contains(p.Error.Err, "build constraints exclude all Go files") {
				continue // the package exists under the other tag set
			}
			return fmt.Errorf("go list (tags %q): %s: %s", tags, p.ImportPath, p.Error.Err)
		}
		rel, _ := m.rel(p.ImportPath)
		q := m.pkgs[rel]
		if q == nil {
			q = &pkg{}
			m.pkgs[rel] = q
		}
		q.imports = append(q.imports, m.inModule(p.Imports, rel)...)
		q.testImports = append(q.testImports, m.inModule(append(p.TestImports, p.XTestImports...), rel)...)
		q.deps = append(q.deps, m.inModule(p.Deps, rel)...)
	}
}

// rel returns importPath relative to the module root, and whether it is in the module.
func (m *module) rel(importPath string) (string, bool) {
	if importPath == m.path {
		return ".", true
	}
	return strings.CutPrefix(importPath, m.path+"/")
}

// inModule returns the paths of importPaths that are in the module, relative to its root,
// leaving out self.
func (m *module) inModule(importPaths []string, self string) []string {
	var rels []string
	for _, ip := range importPaths {
		if rel, ok := m.rel(ip); ok && rel != self {
			rels = append(rels, rel)
		}
	}
	return rels
}

// readSources parses the imports of every .go file of the module. Besides finding the non-test
// files that import "testing", reading every file lets `go test` cache this package's result
// soundly: the go command it runs reads the sources in another process, which the test cache
// does not see, while files (and directories) this process opens are part of the cache key.
func (m *module) readSources() error {
	if _, err := os.ReadFile(filepath.Join(m.root, "go.mod")); err != nil {
		return err
	}
	fset := token.NewFileSet()
	return filepath.WalkDir(m.root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path == m.root {
				return nil
			}
			// What the go command ignores too: testdata, hidden and _ directories, nested modules.
			if name == "testdata" || name == "vendor" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") {
				return filepath.SkipDir
			}
			if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		if strings.HasSuffix(name, "_test.go") {
			return nil
		}
		for _, imp := range f.Imports {
			if p, _ := strconv.Unquote(imp.Path.Value); p == "testing" {
				rel, _ := filepath.Rel(m.root, path)
				m.testingImporters = append(m.testingImporters, filepath.ToSlash(rel))
			}
		}
		return nil
	})
}

func goCmd(dir string, args ...string) ([]byte, error) {
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, stderr.Bytes())
	}
	return out, nil
}

// readTable parses the package table of the architecture document: the first Markdown table
// whose header is | Package | Job | May import | Its tests may also import |.
func readTable(path string) (map[string]row, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	rows := map[string]row{}
	inTable := false
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "|") {
			if inTable {
				break
			}
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		if !inTable {
			inTable = len(cells) == 4 && cells[0] == "Package"
			continue
		}
		if strings.Trim(cells[0], "-: ") == "" {
			continue // the header's separator
		}
		if len(cells) != 4 {
			return nil, fmt.Errorf("%s:%d: a package row has 4 cells (package, job, may import, its tests may also import), this one %d", docPath, n, len(cells))
		}
		name := strings.Trim(cells[0], "`")
		if _, dup := rows[name]; dup {
			return nil, fmt.Errorf("%s:%d: %s has a second row (the first is on line %d)", docPath, n, name, rows[name].line)
		}
		if cells[1] == "" {
			return nil, fmt.Errorf("%s:%d: %s has no job", docPath, n, name)
		}
		rows[name] = row{line: n, mayImport: splitList(cells[2]), testsMayImport: splitList(cells[3])}
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("%s has no table with the header | Package | Job | May import | Its tests may also import |", docPath)
	}
	return rows, sc.Err()
}

// splitList reads a cell such as "`internal/store`, `workflows`"; "—" is the empty list.
func splitList(cell string) []string {
	if cell == "—" || cell == "-" || cell == "" {
		return nil
	}
	var list []string
	for item := range strings.SplitSeq(cell, ",") {
		list = append(list, strings.Trim(strings.TrimSpace(item), "`"))
	}
	return list
}

// production reports whether rel is production code: neither dev tooling nor a test-only package.
func production(rel string) bool {
	return rel != devTree && !strings.HasPrefix(rel, devTree+"/") && !slices.Contains(testOnly, rel)
}

func TestTableListsEveryPackage(t *testing.T) {
	m := load(t)
	for _, name := range slices.Sorted(maps.Keys(m.pkgs)) {
		if _, ok := m.table[name]; !ok {
			t.Errorf("package %s has no row in %s: add one (its job, what it may import, what its tests may also import)", name, docPath)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(m.table)) {
		if r := m.table[name]; m.pkgs[name] == nil {
			t.Errorf("%s:%d lists %s, which `go list ./...` does not print: remove its row, or fix the path (relative to the module root)", docPath, r.line, name)
		}
	}
}

func TestImportsMatchTheTable(t *testing.T) {
	m := load(t)
	for _, name := range slices.Sorted(maps.Keys(m.pkgs)) {
		p := m.pkgs[name]
		r, ok := m.table[name]
		if !ok {
			continue // TestTableListsEveryPackage reports it
		}
		for _, imp := range p.imports {
			if !slices.Contains(r.mayImport, imp) {
				t.Errorf("%s imports %s, which its row (%s:%d) does not allow: add it to the row's \"may import\" if the dependency is meant, or drop the import", name, imp, docPath, r.line)
			}
		}
		for _, imp := range r.mayImport {
			if !slices.Contains(p.imports, imp) {
				t.Errorf("%s:%d: %s's \"may import\" lists %s, but its non-test files do not import it: remove it from the row", docPath, r.line, name, imp)
			}
		}
		testOnlyImports := slices.DeleteFunc(slices.Clone(p.testImports), func(imp string) bool { return slices.Contains(p.imports, imp) })
		for _, imp := range testOnlyImports {
			if !slices.Contains(r.testsMayImport, imp) {
				t.Errorf("the tests of %s import %s, which its row (%s:%d) does not allow: add it to the row's \"its tests may also import\" if the dependency is meant, or drop the import", name, imp, docPath, r.line)
			}
		}
		for _, imp := range r.testsMayImport {
			if !slices.Contains(testOnlyImports, imp) {
				t.Errorf("%s:%d: %s's \"its tests may also import\" lists %s, but its tests do not import it, or its non-test files already do: remove it from the row", docPath, r.line, name, imp)
			}
		}
	}
}

func TestProductionCodeDoesNotDependOnDev(t *testing.T) {
	m := load(t)
	for _, name := range slices.Sorted(maps.Keys(m.pkgs)) {
		p := m.pkgs[name]
		if !production(name) {
			continue
		}
		for _, dep := range p.deps {
			if !production(dep) {
				t.Errorf("production package %s depends on %s (%s): only tests may use %s/...; move the import into a _test.go file", name, dep, strings.Join(m.importChain(name, dep), " → "), devTree)
			}
		}
		if r, ok := m.table[name]; ok {
			for _, imp := range r.mayImport {
				if !production(imp) {
					t.Errorf("%s:%d: production package %s may not import %s; list it under \"its tests may also import\" instead", docPath, r.line, name, imp)
				}
			}
		}
	}
}

func TestNoNonTestFileImportsTesting(t *testing.T) {
	m := load(t)
	for _, file := range m.testingImporters {
		t.Errorf("%s imports \"testing\", which would link the testing package into every binary that imports it: take %s/tb's T or M instead", file, devTree)
	}
}

// importChain returns a shortest chain of non-test imports from one module package to another,
// so that a failure shows where the dependency comes in.
func (m *module) importChain(from, to string) []string {
	prev := map[string]string{from: ""}
	queue := []string{from}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		if cur == to {
			chain := []string{}
			for p := cur; p != ""; p = prev[p] {
				chain = append(chain, p)
			}
			slices.Reverse(chain)
			return chain
		}
		if p := m.pkgs[cur]; p != nil {
			for _, imp := range p.imports {
				if _, seen := prev[imp]; !seen {
					prev[imp] = cur
					queue = append(queue, imp)
				}
			}
		}
	}
	return []string{from, "…", to}
}

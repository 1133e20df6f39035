package state

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zclconf/go-cty/cty"
	bolt "go.etcd.io/bbolt"

	"github.com/seed-e88ffcd2/berth/resource"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

func addr(s string) resource.Addr {
	a, err := resource.ParseAddr(s)
	if err != nil {
		panic(err)
	}
	return a
}

// openTest opens a store in a fresh directory with a fixed clock and
// lineage, so what it writes is reproducible.
func openTest(t *testing.T) *Store {
	t.Helper()
	return openAt(t, filepath.Join(t.TempDir(), "lib", "state.db"))
}

func openAt(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	clock := time.Date(2026, 11, 27, 21, 0, 0, 0, time.UTC)
	s.now = func() time.Time { clock = clock.Add(time.Second); return clock }
	s.newLineage = func() string { return "00000000-0000-4000-8000-000000000001" }
	return s
}

func webValue(image string) cty.Value {
	return cty.ObjectVal(map[string]cty.Value{
		"name":  cty.StringVal("web"),
		"image": cty.StringVal(image),
		"port": cty.ListVal([]cty.Value{
			cty.ObjectVal(map[string]cty.Value{"host": cty.NumberIntVal(8080), "target": cty.NumberIntVal(80), "protocol": cty.StringVal("tcp")}),
			cty.ObjectVal(map[string]cty.Value{"host": cty.NumberIntVal(8443), "target": cty.NumberIntVal(443), "protocol": cty.NullVal(cty.String)}),
		}),
		"labels":  cty.MapVal(map[string]cty.Value{"app": cty.StringVal("web"), "tier": cty.StringVal("front")}),
		"cpus":    cty.NumberFloatVal(0.5),
		"memory":  cty.NumberIntVal(268435456),
		"command": cty.ListVal([]cty.Value{cty.StringVal("sh"), cty.StringVal("-c"), cty.StringVal("a && b <c>")}),
		"user":    cty.NullVal(cty.String),
		"health":  cty.NullVal(cty.Object(map[string]cty.Type{"interval": cty.String})),
		"env":     cty.MapValEmpty(cty.String),
		"mounts":  cty.ListValEmpty(cty.Object(map[string]cty.Type{"target": cty.String})),
		"aliases": cty.SetVal([]cty.Value{cty.StringVal("www"), cty.StringVal("web")}),
		"extra":   cty.NullVal(cty.DynamicPseudoType),
		"tuple":   cty.TupleVal([]cty.Value{cty.True, cty.NumberIntVal(-3), cty.StringVal("")}),
	})
}

func TestPutSnapshotRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		obj  *resource.Object
	}{
		{"nested container", &resource.Object{Addr: addr("container.web"), Value: webValue("app@sha256:1"), Deps: []resource.Addr{addr("network.lan"), addr("image.app")}}},
		{"counted instance", &resource.Object{Addr: addr("container.worker[2]"), Value: cty.ObjectVal(map[string]cty.Value{"n": cty.NumberIntVal(2)})}},
		{"for_each instance", &resource.Object{Addr: addr(`network.lan["eu"]`), Value: cty.ObjectVal(map[string]cty.Value{"subnet": cty.StringVal("10.89.0.0/24")})}},
		{"big and precise numbers", &resource.Object{Addr: addr("volume.data"), Value: cty.ObjectVal(map[string]cty.Value{
			"big":  cty.MustParseNumberVal("123456789012345678901234567890"),
			"frac": cty.MustParseNumberVal("0.1"),
		})}},
		{"null value", &resource.Object{Addr: addr("image.app"), Value: cty.NullVal(cty.Object(map[string]cty.Type{"ref": cty.String}))}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openTest(t)
			if err := s.Put("hello", tt.obj); err != nil {
				t.Fatal(err)
			}
			snap, err := s.Snapshot("hello")
			if err != nil {
				t.Fatal(err)
			}
			got := snap.Objects[tt.obj.Addr]
			if got == nil {
				t.Fatalf("%s missing from snapshot %v", tt.obj.Addr, snap.Objects)
			}
			if !got.Value.RawEquals(tt.obj.Value) {
				t.Errorf("value:\n got %#v\nwant %#v", got.Value, tt.obj.Value)
			}
			if len(got.Deps) != len(tt.obj.Deps) {
				t.Errorf("deps = %v, want %v in any order", got.Deps, tt.obj.Deps)
			}
			for i := 1; i < len(got.Deps); i++ {
				if !got.Deps[i-1].Less(got.Deps[i]) {
					t.Errorf("deps not sorted: %v", got.Deps)
				}
			}
			if snap.Serial != 1 || snap.Lineage == "" {
				t.Errorf("serial %d lineage %q, want 1 and a lineage", snap.Serial, snap.Lineage)
			}
		})
	}
}

func TestLineageIsRandom(t *testing.T) {
	var lineages []string
	for range 2 {
		s, err := Open(filepath.Join(t.TempDir(), "state.db"))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if err := s.Put("hello", &resource.Object{Addr: addr("volume.data"), Value: cty.EmptyObjectVal}); err != nil {
			t.Fatal(err)
		}
		snap, err := s.Snapshot("hello")
		if err != nil {
			t.Fatal(err)
		}
		lineages = append(lineages, snap.Lineage)
	}
	if lineages[0] == lineages[1] || len(lineages[0]) != 36 {
		t.Errorf("lineages %q: want two distinct UUIDs", lineages)
	}
}

func TestSerial(t *testing.T) {
	web := func(image string, deps ...string) *resource.Object {
		o := &resource.Object{Addr: addr("container.web"), Value: webValue(image)}
		for _, d := range deps {
			o.Deps = append(o.Deps, addr(d))
		}
		return o
	}
	tests := []struct {
		name   string
		steps  []func(*Store) error
		serial uint64
	}{
		{"first put", []func(*Store) error{
			func(s *Store) error { return s.Put("p", web("a", "image.app")) },
		}, 1},
		{"identical put", []func(*Store) error{
			func(s *Store) error { return s.Put("p", web("a", "image.app", "network.lan")) },
			func(s *Store) error { return s.Put("p", web("a", "network.lan", "image.app", "image.app")) },
		}, 1},
		{"changed value", []func(*Store) error{
			func(s *Store) error { return s.Put("p", web("a")) },
			func(s *Store) error { return s.Put("p", web("b")) },
		}, 2},
		{"changed deps", []func(*Store) error{
			func(s *Store) error { return s.Put("p", web("a")) },
			func(s *Store) error { return s.Put("p", web("a", "image.app")) },
		}, 2},
		{"delete", []func(*Store) error{
			func(s *Store) error { return s.Put("p", web("a")) },
			func(s *Store) error { return s.Delete("p", addr("container.web")) },
		}, 2},
		{"delete twice", []func(*Store) error{
			func(s *Store) error { return s.Put("p", web("a")) },
			func(s *Store) error { return s.Delete("p", addr("container.web")) },
			func(s *Store) error { return s.Delete("p", addr("container.web")) },
		}, 2},
		{"delete missing", []func(*Store) error{
			func(s *Store) error { return s.Put("p", web("a")) },
			func(s *Store) error { return s.Delete("p", addr("container.db")) },
			func(s *Store) error { return s.Delete("nowhere", addr("container.db")) },
		}, 1},
		{"recreate after delete", []func(*Store) error{
			func(s *Store) error { return s.Put("p", web("a")) },
			func(s *Store) error { return s.Delete("p", addr("container.web")) },
			func(s *Store) error { return s.Put("p", web("a")) },
		}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openTest(t)
			for i, step := range tt.steps {
				if err := step(s); err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
			}
			snap, err := s.Snapshot("p")
			if err != nil {
				t.Fatal(err)
			}
			if snap.Serial != tt.serial {
				t.Errorf("serial = %d, want %d", snap.Serial, tt.serial)
			}
		})
	}
}

func TestDeleteRemovesRecord(t *testing.T) {
	s := openTest(t)
	for _, a := range []string{"container.web", "container.db"} {
		if err := s.Put("p", &resource.Object{Addr: addr(a), Value: cty.EmptyObjectVal}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Delete("p", addr("container.web")); err != nil {
		t.Fatal(err)
	}
	snap, err := s.Snapshot("p")
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Objects) != 1 || snap.Objects[addr("container.db")] == nil {
		t.Errorf("objects after delete: %v", snap.Objects)
	}
}

func TestProjectIsolation(t *testing.T) {
	s := openTest(t)
	s.newLineage = func() string { return fmt.Sprint(time.Now().UnixNano()) }
	if err := s.Put("alpha", &resource.Object{Addr: addr("container.web"), Value: webValue("a")}); err != nil {
		t.Fatal(err)
	}
	if err := s.Put("alpha", &resource.Object{Addr: addr("container.db"), Value: webValue("a")}); err != nil {
		t.Fatal(err)
	}
	if err := s.Put("beta", &resource.Object{Addr: addr("container.web"), Value: webValue("b")}); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete("beta", addr("container.db")); err != nil {
		t.Fatal(err)
	}
	a, err := s.Snapshot("alpha")
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Snapshot("beta")
	if err != nil {
		t.Fatal(err)
	}
	if a.Serial != 2 || b.Serial != 1 || a.Lineage == b.Lineage {
		t.Errorf("alpha serial %d lineage %s, beta serial %d lineage %s: want 2, 1 and distinct lineages", a.Serial, a.Lineage, b.Serial, b.Lineage)
	}
	if len(a.Objects) != 2 || len(b.Objects) != 1 {
		t.Errorf("alpha has %d objects, beta %d: want 2 and 1", len(a.Objects), len(b.Objects))
	}
	if !b.Objects[addr("container.web")].Value.RawEquals(webValue("b")) {
		t.Error("beta's container.web was overwritten by alpha's")
	}
	names, err := s.Projects()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(names, ",") != "alpha,beta" {
		t.Errorf("projects = %v", names)
	}
	empty, err := s.Snapshot("gamma")
	if err != nil {
		t.Fatal(err)
	}
	if empty.Serial != 0 || empty.Lineage != "" || len(empty.Objects) != 0 {
		t.Errorf("unwritten project reads %+v, want empty", empty)
	}
}

func TestSorted(t *testing.T) {
	s := openTest(t)
	for _, a := range []string{"container.web[10]", "container.web[2]", "image.app", "container.db"} {
		if err := s.Put("p", &resource.Object{Addr: addr(a), Value: cty.EmptyObjectVal}); err != nil {
			t.Fatal(err)
		}
	}
	snap, err := s.Snapshot("p")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range snap.Sorted() {
		got = append(got, o.Addr.String())
	}
	if want := "container.db container.web[2] container.web[10] image.app"; strings.Join(got, " ") != want {
		t.Errorf("sorted = %v, want %s", got, want)
	}
}

func TestInvalidInput(t *testing.T) {
	s := openTest(t)
	tests := []struct {
		name    string
		project string
		obj     *resource.Object
		want    string
	}{
		{"unknown value", "p", &resource.Object{Addr: addr("container.web"), Value: cty.ObjectVal(map[string]cty.Value{"id": cty.UnknownVal(cty.String)})}, "not wholly known"},
		{"nil object", "p", nil, "nil object"},
		{"empty project", "", &resource.Object{Addr: addr("container.web"), Value: cty.EmptyObjectVal}, "invalid project name"},
		{"slash in project", "a/b", &resource.Object{Addr: addr("container.web"), Value: cty.EmptyObjectVal}, "invalid project name"},
		{"dot-dot project", "..", &resource.Object{Addr: addr("container.web"), Value: cty.EmptyObjectVal}, "invalid project name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.Put(tt.project, tt.obj)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Put: %v, want an error containing %q", err, tt.want)
			}
		})
	}
	if names, _ := s.Projects(); len(names) != 0 {
		t.Errorf("failed puts created projects %v", names)
	}
}

// TestSharedStore: two stores on one file (two berth processes, such as a
// plan while an apply runs) both work and see each other's writes, because
// the database is open only for the length of a transaction.
func TestSharedStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	first, second := openAt(t, path), openAt(t, path)
	obj := &resource.Object{
		Addr:  resource.Addr{Kind: resource.KindVolume, Name: "data"},
		Value: cty.ObjectVal(map[string]cty.Value{"name": cty.StringVal("data")}),
	}
	if err := first.Put("p", obj); err != nil {
		t.Fatal(err)
	}
	snap, err := second.Snapshot("p")
	if err != nil {
		t.Fatal(err)
	}
	if snap.Objects[obj.Addr] == nil || snap.Serial != 1 {
		t.Fatalf("second store sees %d objects at serial %d, want the first's write", len(snap.Objects), snap.Serial)
	}
	if err := second.Delete("p", obj.Addr); err != nil {
		t.Fatal(err)
	}
	if snap, _ := first.Snapshot("p"); len(snap.Objects) != 0 {
		t.Fatal("first store still sees the object the second deleted")
	}
}

var holder = LockInfo{ID: "l1", Operation: "apply", Who: "root@host", PID: 4242, Created: time.Date(2026, 11, 27, 21, 0, 0, 0, time.UTC)}

func TestLock(t *testing.T) {
	s := openTest(t)
	unlock, err := s.Lock("hello", holder)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Lock("hello", LockInfo{Operation: "plan"})
	if !errors.Is(err, resource.ErrConflict) {
		t.Fatalf("second Lock: %v, want ErrConflict", err)
	}
	if want := `state of project "hello" is locked by berth apply (pid 4242, root@host) since 2026-11-27T21:00:00Z`; err.Error() != want {
		t.Errorf("error %q\nwant  %q", err, want)
	}
	var lerr *LockError
	if !errors.As(err, &lerr) || lerr.Holder.ID != "l1" {
		t.Errorf("error %#v does not carry the holder", err)
	}
	other, err := s.Lock("other", NewLockInfo("plan"))
	if err != nil {
		t.Fatalf("locking another project: %v", err)
	}
	if err := other(); err != nil {
		t.Fatal(err)
	}
	if err := unlock(); err != nil {
		t.Fatal(err)
	}
	if err := unlock(); err != nil {
		t.Errorf("second unlock: %v", err)
	}
	relock, err := s.Lock("hello", NewLockInfo("destroy"))
	if err != nil {
		t.Fatalf("Lock after unlock: %v", err)
	}
	relock()
}

const helperEnv = "BERTH_STATE_LOCK_HELPER"

// TestLockHelperProcess is not a test: TestLockAcrossProcesses runs the
// test binary again with helperEnv set to a store path, and this takes
// the lock there, says so, and holds it until its stdin closes. It then
// exits without unlocking, as a crashed apply would.
func TestLockHelperProcess(t *testing.T) {
	path := os.Getenv(helperEnv)
	if path == "" {
		t.Skip("helper process for TestLockAcrossProcesses")
	}
	s, err := Open(path)
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	info := holder
	info.PID = os.Getpid()
	if _, err := s.Lock("hello", info); err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	// Let the parent open the store; the lock outlives Close.
	s.Close()
	fmt.Println("locked")
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	os.Exit(0)
}

func TestLockAcrossProcesses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockHelperProcess$")
	cmd.Env = append(os.Environ(), helperEnv+"="+path)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if strings.TrimSpace(line) != "locked" {
		t.Fatalf("helper said %q (%v)", line, err)
	}

	s := openAt(t, path)
	_, err = s.Lock("hello", NewLockInfo("apply"))
	if !errors.Is(err, resource.ErrConflict) {
		t.Fatalf("Lock while another process holds it: %v, want ErrConflict", err)
	}
	if want := "(pid " + strconv.Itoa(cmd.Process.Pid) + ", root@host)"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not name the holder %s", err, want)
	}

	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("helper: %v", err)
	}
	unlock, err := s.Lock("hello", NewLockInfo("apply"))
	if err != nil {
		t.Fatalf("Lock after the holder exited: %v", err)
	}
	unlock()
}

// goldenObjects is the state exported to testdata/hello.export.json.
func goldenObjects() []*resource.Object {
	return []*resource.Object{
		{Addr: addr("image.app"), Value: cty.ObjectVal(map[string]cty.Value{"ref": cty.StringVal("docker.io/library/nginx@sha256:0123")})},
		{Addr: addr("network.lan"), Value: cty.ObjectVal(map[string]cty.Value{"subnet": cty.StringVal("10.89.0.0/24")})},
		{Addr: addr("container.web[10]"), Value: webValue("app"), Deps: []resource.Addr{addr("network.lan"), addr("image.app")}},
		{Addr: addr("container.web[2]"), Value: webValue("app"), Deps: []resource.Addr{addr("image.app")}},
	}
}

func TestExportGolden(t *testing.T) {
	golden := filepath.Join("testdata", "hello.export.json")
	s := openTest(t)
	for _, o := range goldenObjects() {
		if err := s.Put("hello", o); err != nil {
			t.Fatal(err)
		}
	}
	var got bytes.Buffer
	if err := s.Export("hello", &got); err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(golden, got.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Errorf("export differs from %s (run go test -update):\n%s", golden, got.Bytes())
	}

	// Importing the golden file into another store reproduces it exactly.
	restored := openTest(t)
	if err := restored.Import("hello", bytes.NewReader(want)); err != nil {
		t.Fatal(err)
	}
	var again bytes.Buffer
	if err := restored.Export("hello", &again); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again.Bytes(), want) {
		t.Errorf("export after import differs from %s:\n%s", golden, again.Bytes())
	}
	snap, err := restored.Snapshot("hello")
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range goldenObjects() {
		if got := snap.Objects[o.Addr]; got == nil || !got.Value.RawEquals(o.Value) {
			t.Errorf("%s not restored", o.Addr)
		}
	}

	if err := s.Export("nowhere", &got); !errors.Is(err, resource.ErrNotFound) {
		t.Errorf("export of an unwritten project: %v, want ErrNotFound", err)
	}
}

func TestImportRefuses(t *testing.T) {
	export := func(lineage string, serial uint64) string {
		return fmt.Sprintf(`{"format":1,"project":"hello","lineage":%q,"serial":%d,"objects":[]}`, lineage, serial)
	}
	tests := []struct {
		name    string
		doc     string
		want    string
		kind    error
		applied bool
	}{
		{"same lineage newer", export("L", 5), "", nil, true},
		{"same lineage same serial", export("L", 3), "", nil, true},
		{"same lineage older", export("L", 2), "the store is at serial 3, newer than the import's 2", resource.ErrConflict, false},
		{"other lineage", export("M", 9), "the store holds lineage L, the import lineage M", resource.ErrConflict, false},
		{"no lineage", export("", 9), "export has no lineage", nil, false},
		{"newer format", `{"format":2,"lineage":"L","serial":9}`, "state written by a newer berth (format 2); upgrade berth", nil, false},
		{"duplicate object", `{"format":1,"lineage":"L","serial":9,"objects":[` +
			`{"version":1,"addr":"volume.data","deps":[],"value":{"value":{},"type":["object",{}]}},` +
			`{"version":1,"addr":"volume.data","deps":[],"value":{"value":{},"type":["object",{}]}}]}`, "volume.data appears twice", nil, false},
		{"bad value", `{"format":1,"lineage":"L","serial":9,"objects":[{"version":1,"addr":"volume.data","value":{"value":1,"type":"bool"}}]}`, "volume.data: value", nil, false},
		{"bad address", `{"format":1,"lineage":"L","serial":9,"objects":[{"version":1,"addr":"box.data","value":{"value":1,"type":"number"}}]}`, `unknown kind "box"`, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openTest(t)
			s.newLineage = func() string { return "L" }
			for _, a := range []string{"container.web", "container.db", "volume.data"} {
				if err := s.Put("hello", &resource.Object{Addr: addr(a), Value: cty.EmptyObjectVal}); err != nil {
					t.Fatal(err)
				}
			}
			err := s.Import("hello", strings.NewReader(tt.doc))
			if tt.want == "" && err != nil {
				t.Fatalf("Import: %v", err)
			}
			if tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("Import: %v, want an error containing %q", err, tt.want)
			}
			if tt.kind != nil && !errors.Is(err, tt.kind) {
				t.Errorf("error %v does not match %v", err, tt.kind)
			}
			snap, err := s.Snapshot("hello")
			if err != nil {
				t.Fatal(err)
			}
			if applied := len(snap.Objects) == 0; applied != tt.applied {
				t.Errorf("import applied = %v, want %v (%d objects, serial %d)", applied, tt.applied, len(snap.Objects), snap.Serial)
			}
		})
	}
}

// putRaw writes bytes into the store's bbolt file behind its back, as an
// older or newer berth would have.
func putRaw(t *testing.T, path string, buckets []string, key string, val []byte) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte(buckets[0]))
		if err != nil {
			return err
		}
		for _, name := range buckets[1:] {
			if b, err = b.CreateBucketIfNotExists([]byte(name)); err != nil {
				return err
			}
		}
		return b.Put([]byte(key), val)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestFormatVersions(t *testing.T) {
	v0, err := os.ReadFile(filepath.Join("testdata", "record-v0.json"))
	if err != nil {
		t.Fatal(err)
	}
	v2 := []byte(`{"version":2,"addr":"container.web","value":{"value":{},"type":["object",{}]},"how":"new"}`)
	tests := []struct {
		name    string
		buckets []string
		key     string
		val     []byte
		wantErr string // from Open, else from Snapshot
	}{
		{"record format 0 is upgraded", []string{"projects", "hello", "objects"}, "container.web", v0, ""},
		{"record format 2 is refused", []string{"projects", "hello", "objects"}, "container.web", v2, "state written by a newer berth (format 2); upgrade berth"},
		{"store format 2 is refused", []string{"meta"}, "format", []byte("2"), "state written by a newer berth (format 2); upgrade berth"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.db")
			s := openAt(t, path)
			s.Close()
			putRaw(t, path, tt.buckets, tt.key, tt.val)
			if tt.buckets[0] == "meta" {
				_, err := Open(path)
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Open: %v, want %q", err, tt.wantErr)
				}
				return
			}
			s = openAt(t, path)
			snap, err := s.Snapshot("hello")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Snapshot: %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := &resource.Object{Addr: addr("container.web"), Value: webValue("app@sha256:1"), Deps: []resource.Addr{addr("image.app")}}
			got := snap.Objects[want.Addr]
			if got == nil || !got.Value.RawEquals(want.Value) || len(got.Deps) != 1 || got.Deps[0] != want.Deps[0] {
				t.Fatalf("format 0 record read as %#v", got)
			}
			// Recording what the old record says is no change.
			if err := s.Put("hello", want); err != nil {
				t.Fatal(err)
			}
			after, err := s.Snapshot("hello")
			if err != nil {
				t.Fatal(err)
			}
			if after.Serial != snap.Serial {
				t.Errorf("identical put over a format 0 record bumped the serial to %d", after.Serial)
			}
		})
	}
}

func TestOutputsAndClaim(t *testing.T) {
	s := openAt(t, filepath.Join(t.TempDir(), "state.db"))
	if err := s.SetOutputs("p", map[string]cty.Value{
		"url":     cty.StringVal("http://127.0.0.1:8080/"),
		"pending": cty.UnknownVal(cty.String),
	}); err != nil {
		t.Fatal(err)
	}
	snap, err := s.Snapshot("p")
	if err != nil {
		t.Fatal(err)
	}
	if got := snap.Outputs["url"]; got.AsString() != "http://127.0.0.1:8080/" {
		t.Errorf("url = %#v", got)
	}
	if _, ok := snap.Outputs["pending"]; ok {
		t.Error("an unknown output was recorded")
	}
	if snap.Serial != 0 {
		t.Errorf("recording outputs bumped the serial to %d", snap.Serial)
	}

	if err := s.Claim("p", "/srv/a/app", false); err != nil {
		t.Fatal(err)
	}
	if err := s.Claim("p", "/srv/a/app", false); err != nil {
		t.Fatalf("the same directory again: %v", err)
	}
	err = s.Claim("p", "/srv/b/app", false)
	if !errors.Is(err, resource.ErrConflict) || !strings.Contains(err.Error(), `project "p" belongs to the configuration in /srv/a/app`) {
		t.Fatalf("another directory: %v", err)
	}
	if err := s.Claim("p", "/srv/b/app", true); err != nil {
		t.Fatalf("forced: %v", err)
	}
	if snap, _ := s.Snapshot("p"); snap.Dir != "/srv/b/app" || snap.Outputs["url"].IsNull() {
		t.Errorf("after the move: dir %q, outputs %v", snap.Dir, snap.Outputs)
	}
}

func TestImportRefusesAnotherProject(t *testing.T) {
	s := openAt(t, filepath.Join(t.TempDir(), "state.db"))
	obj := &resource.Object{Addr: resource.Addr{Kind: resource.KindVolume, Name: "v"}, Value: cty.ObjectVal(map[string]cty.Value{"name": cty.StringVal("v")})}
	if err := s.Put("alpha", obj); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := s.Export("alpha", &buf); err != nil {
		t.Fatal(err)
	}
	err := s.Import("beta", bytes.NewReader(buf.Bytes()))
	if !errors.Is(err, resource.ErrConflict) || !strings.Contains(err.Error(), `the export is of project "alpha"`) {
		t.Fatalf("importing alpha's export as beta: %v", err)
	}
}

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/seed-e88ffcd2/berth/resource"
	"github.com/seed-e88ffcd2/berth/state"
	"github.com/zclconf/go-cty/cty"
)

// TestVolumeDataNeverDeletedUnseen: -refresh=false and saved plans do not
// get around the rule that a volume holding data is deleted only with
// -delete-volume-data.
func TestVolumeDataNeverDeletedUnseen(t *testing.T) {
	h := newHost(t, "clivol")
	h.write("main.hcl", "volume \"v\" {}\n\noutput \"path\" {\n  value = volume.v.path\n}\n")
	h.must("apply", "-auto-approve")
	path := strings.TrimSpace(h.must("output", "-raw", "path"))
	if err := os.WriteFile(filepath.Join(path, "precious"), []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out := h.berth("destroy", "-auto-approve", "-refresh=false")
	if code == 0 || !strings.Contains(out, "volume.v holds 4 B of data") {
		t.Fatalf("destroy -refresh=false of a volume with data: exit %d\n%s", code, out)
	}
	// A saved plan made while the volume was empty is refused once it
	// holds data; apply's last look refuses it too.
	if err := os.Remove(filepath.Join(path, "precious")); err != nil {
		t.Fatal(err)
	}
	planFile := filepath.Join(t.TempDir(), "destroy.plan")
	h.must("plan", "-destroy", "-out", planFile)
	if err := os.WriteFile(filepath.Join(path, "precious"), []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out = h.berth("apply", planFile)
	if code == 0 || !strings.Contains(out, "volume.v holds 4 B of data") {
		t.Fatalf("a saved destroy plan after the volume got data: exit %d\n%s", code, out)
	}
	if _, err := os.Stat(filepath.Join(path, "precious")); err != nil {
		t.Fatalf("the data is gone: %v", err)
	}
	if fi, err := os.Stat(planFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("plan file mode %v, %v: want 0600, plans may hold secrets", fi.Mode().Perm(), err)
	}
}

// TestOutputsComeFromTheState: berth output prints what the last apply
// recorded, whatever the variables say now, and needs no configuration.
func TestOutputsComeFromTheState(t *testing.T) {
	h := newHost(t, "cliout")
	h.write("main.hcl", "variable \"n\" {\n  default = 1\n}\n\nvolume \"v\" {}\n\noutput \"n\" {\n  value = var.n\n}\n")
	if code, out := h.berth("output"); code == 0 || !strings.Contains(out, "no recorded outputs: run berth apply first") {
		t.Fatalf("output before any apply: exit %d\n%s", code, out)
	}
	h.must("apply", "-auto-approve", "-var", "n=7")
	t.Setenv("BERTH_VAR_n", "9")
	if out := h.must("output", "n"); strings.TrimSpace(out) != `"7"` {
		t.Errorf("output n = %q, want the applied 7", out)
	}
	if code, out := h.berth("output", "nope"); code == 0 || !strings.Contains(out, `no output named "nope"`) {
		t.Errorf("output of an unknown name: exit %d\n%s", code, out)
	}
}

// TestProjectsAndArguments: two directories with one name are not one
// project; an empty directory is an error, not "destroy everything"; a
// destroy works after the configuration is gone; flags may follow
// arguments and stray arguments are refused.
func TestProjectsAndArguments(t *testing.T) {
	h := newHost(t, "cliproj")
	h.write("main.hcl", "volume \"v\" {}\n")
	h.must("apply", "-auto-approve")

	other := elsewhere(t, "cliproj", "volume \"w\" {}\n")
	code, out := other.berth("plan")
	if code == 0 || !strings.Contains(out, `project "cliproj" belongs to the configuration in `+h.dir) {
		t.Fatalf("plan of a same-named directory: exit %d\n%s", code, out)
	}

	empty := &host{t: t, dir: t.TempDir()}
	if code, out := empty.berth("plan"); code == 0 || !strings.Contains(out, "holds no *.hcl files") {
		t.Errorf("plan of an empty directory: exit %d\n%s", code, out)
	}
	if code, out := h.berth("plan", "extra"); code == 0 || !strings.Contains(out, "plan takes no arguments") {
		t.Errorf("plan with a stray argument: exit %d\n%s", code, out)
	}
	if out := h.must("state", "show", "volume.v", "-json"); !strings.Contains(out, `"address": "volume.v"`) {
		t.Errorf("state show ADDR -json:\n%s", out)
	}

	// The configuration is deleted; destroy still cleans up.
	if err := os.Remove(filepath.Join(h.dir, "main.hcl")); err != nil {
		t.Fatal(err)
	}
	if out := h.must("destroy", "-auto-approve"); !strings.Contains(out, "Destroy complete! 1 destroyed.") {
		t.Errorf("destroy without a configuration:\n%s", out)
	}
	if out := h.must("state", "list"); out != "" {
		t.Errorf("state after destroy:\n%s", out)
	}
	h.write("main.hcl", "volume \"v\" {}\n") // for the cleanup's destroy
}

func TestValidateFindsConflictsWithoutTheHost(t *testing.T) {
	dir := t.TempDir()
	cfg := `
container "a" {
  image = "img"
  name  = "same"
}

container "b" {
  image = "img"
  name  = "same"
}
`
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	c := &CLI{Stdout: &out, Stderr: &out}
	if code := c.Run(t.Context(), []string{"validate", "-dir", dir}); code != 1 || !strings.Contains(out.String(), `Duplicate container name "same"`) {
		t.Fatalf("validate of two containers with one name: exit %d\n%s", code, out.String())
	}
}

func TestApplyWithoutTerminalRefusesEarly(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte("volume \"v\" {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	c := &CLI{Stdin: strings.NewReader("yes\n"), Stdout: &out, Stderr: &out}
	code := c.Run(t.Context(), []string{"apply", "-dir", dir})
	if code != 1 || !strings.Contains(out.String(), "pass -auto-approve") || strings.Contains(out.String(), "will be created") {
		t.Fatalf("apply without a terminal: exit %d\n%s", code, out.String())
	}
}

// TestRenamedBlockKeepsItsName: renaming a block while keeping the
// host-wide name deletes the old instance and makes the new one, instead
// of tripping over its own project's object.
func TestRenamedBlockKeepsItsName(t *testing.T) {
	h := newHost(t, "clirename")
	h.write("main.hcl", "volume \"old\" {\n  name = \"clirename-data\"\n}\n")
	h.must("apply", "-auto-approve")
	h.write("main.hcl", "volume \"new\" {\n  name = \"clirename-data\"\n}\n")
	out := h.must("apply", "-auto-approve")
	if !strings.Contains(out, "1 added, 0 changed, 0 replaced, 1 destroyed") {
		t.Fatalf("apply of the renamed block:\n%s", out)
	}
	if list := h.must("state", "list"); strings.TrimSpace(list) != "volume.new" {
		t.Errorf("state after the rename:\n%s", list)
	}
}

// TestChangedSubnetChoosesNewGateway: the gateway berth chose for the old
// subnet is not carried into a network replaced for a new one.
func TestChangedSubnetChoosesNewGateway(t *testing.T) {
	h := newHost(t, "clisubnet")
	h.write("main.hcl", "network \"n\" {\n  subnet = \"10.219.17.0/24\"\n}\n")
	h.must("apply", "-auto-approve")
	h.write("main.hcl", "network \"n\" {\n  subnet = \"10.219.18.0/24\"\n}\n")
	out := h.must("apply", "-auto-approve")
	if !strings.Contains(out, `gateway = "10.219.17.1" -> "10.219.18.1"`) || !strings.Contains(out, "1 replaced") {
		t.Fatalf("apply of a new subnet:\n%s", out)
	}
}

// TestDestroyNeedsOnlyTheState: a destroy works with a broken configuration
// or without its variables, and once nothing is left the directory's claim
// on the project goes, so another directory may take the name.
func TestDestroyNeedsOnlyTheState(t *testing.T) {
	h := newHost(t, "clidestroy")
	h.write("main.hcl", "variable \"v\" {}\n\nvolume \"x\" {}\n")
	h.must("apply", "-auto-approve", "-var", "v=1")
	if out := h.must("destroy", "-auto-approve"); !strings.Contains(out, "Destroy complete! 1 destroyed.") {
		t.Fatalf("destroy without the variable:\n%s", out)
	}
	other := elsewhere(t, "clidestroy", "volume \"y\" {}\n")
	if code, out := other.berth("plan"); code != 0 {
		t.Fatalf("plan of a same-named directory after the first destroyed everything: exit %d\n%s", code, out)
	}
}

// TestOldStateWithRealDrivers: a record written before the schema had an
// attribute (here a volume's path) plans, refreshes and destroys with the
// real drivers, which decode to the current schema.
func TestOldStateWithRealDrivers(t *testing.T) {
	h := newHost(t, "cliold")
	h.write("main.hcl", "volume \"v\" {}\n")
	h.must("apply", "-auto-approve")
	store, err := state.Open(filepath.Join(os.Getenv("BERTH_STATE_DIR"), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	addr := resource.Addr{Kind: resource.KindVolume, Name: "v"}
	snap, err := store.Snapshot("cliold")
	if err != nil {
		t.Fatal(err)
	}
	old := snap.Objects[addr]
	old.Value = cty.ObjectVal(map[string]cty.Value{"name": old.Value.GetAttr("name")})
	if err := store.Put("cliold", old); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"plan"}, {"plan", "-refresh=false"}, {"state", "show", "volume.v"}, {"destroy", "-auto-approve"}} {
		if code, out := h.berth(args...); code != 0 {
			t.Errorf("berth %s on an old record: exit %d\n%s", strings.Join(args, " "), code, out)
		}
	}
}

func TestMoveProjectAndBoolFlags(t *testing.T) {
	h := newHost(t, "climove")
	h.write("main.hcl", "volume \"v\" {}\n")
	if code, out := h.berth("plan", "-refresh", "false"); code == 0 || !strings.Contains(out, "write a yes-or-no flag as -flag=false") {
		t.Errorf("plan -refresh false: exit %d\n%s", code, out)
	}
	h.must("apply", "-auto-approve")
	there := elsewhere(t, "climove", "volume \"v\" {}\n")
	if code, out := there.berth("plan", "-project", "climove"); code == 0 || !strings.Contains(out, "pass -move-project") {
		t.Fatalf("-project alone must not move a project: exit %d\n%s", code, out)
	}
	if out := there.must("apply", "-auto-approve", "-move-project"); !strings.Contains(out, "No changes") {
		t.Fatalf("apply -move-project:\n%s", out)
	}
	// The project now lives there; the old directory is refused.
	if code, _ := h.berth("plan"); code == 0 {
		t.Error("the old directory still plans the moved project")
	}
	there.must("destroy", "-auto-approve")
}

// TestNameMovesBetweenBlocks: in one apply, one block gives up a
// host-wide name (it is replaced under a new one) and another takes it.
func TestNameMovesBetweenBlocks(t *testing.T) {
	h := newHost(t, "climovename")
	h.write("main.hcl", "volume \"old\" {\n  name = \"mv-data\"\n}\n")
	h.must("apply", "-auto-approve")
	h.write("main.hcl", "volume \"old\" {\n  name = \"mv-data-legacy\"\n}\n\nvolume \"new\" {\n  name = \"mv-data\"\n}\n")
	out := h.must("apply", "-auto-approve")
	if !strings.Contains(out, "1 added, 0 changed, 1 replaced, 0 destroyed") {
		t.Fatalf("apply moving a name:\n%s", out)
	}
	show := h.must("state", "show", "volume.new")
	if !strings.Contains(show, `name = "mv-data"`) {
		t.Errorf("volume.new:\n%s", show)
	}
	if code, out := h.berth("plan", "-detailed-exitcode"); code != 0 {
		t.Errorf("plan after the move: exit %d\n%s", code, out)
	}
}

// elsewhere is a configuration directory named like project but in another
// place, holding main.hcl with content: the same project name from a second
// directory. Tests that apply in it destroy what they made themselves.
func elsewhere(t *testing.T, project, content string) *host {
	t.Helper()
	dir := filepath.Join(t.TempDir(), project)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return &host{t: t, dir: dir}
}

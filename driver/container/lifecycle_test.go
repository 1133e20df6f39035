package container

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/seed-e88ffcd2/berth/resource"
	"github.com/zclconf/go-cty/cty"
)

func TestStopEscalatesAndStartResumes(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	// sleep as PID 1 ignores SIGTERM: stop must escalate to SIGKILL.
	addr, _ := e.create(t, container(uniqueName("life"), []string{"sh", "-c", "echo started; exec sleep 1000"}, nil))
	name := addr.Name
	waitOutput(t, e, name, "started\n")

	start := time.Now()
	if err := e.d.Stop(ctx, name, 300*time.Millisecond, true); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 300*time.Millisecond {
		t.Errorf("stop took %v: it did not wait for the stop timeout", took)
	}
	in, err := e.d.Inspect(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if in.Status != StatusExited || in.ExitCode != 137 || in.ExitSignal != "SIGKILL" || !in.StoppedByUser {
		t.Errorf("after stop: %+v, want exited 137 (SIGKILL) stopped by user", in)
	}
	// A restart policy does not undo a person's stop.
	if err := e.d.StartUnlessStoppedByUser(ctx, name); !errors.Is(err, ErrStoppedByUser) {
		t.Errorf("StartUnlessStoppedByUser after a person's stop = %v, want ErrStoppedByUser", err)
	}
	if in, _ := e.d.Inspect(ctx, name); in.Status != StatusExited || !in.StoppedByUser {
		t.Errorf("after StartUnlessStoppedByUser: %+v, want still exited, stopped by user", in)
	}

	if err := e.d.Start(ctx, name); err != nil {
		t.Fatal(err)
	}
	waitOutput(t, e, name, "started\nstarted\n")
	in, _ = e.d.Inspect(ctx, name)
	if in.Status != StatusRunning || in.StoppedByUser || !in.Monitored || in.Pid == 0 {
		t.Errorf("after start: %+v, want running, monitored, not stopped by user", in)
	}
	if err := e.d.Start(ctx, name); !errors.Is(err, resource.ErrConflict) {
		t.Errorf("start of a running container = %v, want a conflict", err)
	}

	// The exit is seen through the monitor, whoever started it.
	exited, err := e.d.Exited(name)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
		t.Fatal("Exited fired while the container runs")
	default:
	}
	if err := e.d.Kill(ctx, name, 15, false); err != nil { // ignored by sleep
		t.Fatal(err)
	}
	if err := e.d.Kill(ctx, name, 9, false); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		t.Fatal("Exited did not fire after SIGKILL")
	}
	in, _ = e.d.Inspect(ctx, name)
	if in.Status != StatusExited || in.ExitCode != 137 || in.Monitored {
		t.Errorf("after kill: %+v", in)
	}
	list, err := e.d.List(ctx)
	if err != nil || len(list) != 1 || list[0].Name != name {
		t.Errorf("List = %+v, %v", list, err)
	}
}

func TestExec(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	addr, _ := e.create(t, container(uniqueName("exec"), []string{"sleep", "1000"}, map[string]cty.Value{
		"env": cty.MapVal(map[string]cty.Value{"FOO": cty.StringVal("bar")}),
	}))
	var out, errOut bytes.Buffer
	code, err := e.d.Exec(ctx, addr.Name, ExecOptions{
		Args:   []string{"sh", "-c", "echo $FOO $EXTRA; id -u; echo oops >&2; exit 7"},
		Env:    []string{"EXTRA=more"},
		User:   "nobody",
		Stdin:  strings.NewReader(""),
		Stdout: &out, Stderr: &errOut,
	})
	if err != nil {
		t.Fatal(err)
	}
	if code != 7 || out.String() != "bar more\n65534\n" || errOut.String() != "oops\n" {
		t.Errorf("exec = %d, stdout %q, stderr %q", code, out.String(), errOut.String())
	}
	if _, err := e.d.Exec(ctx, "nosuch", ExecOptions{Args: []string{"true"}}); !errors.Is(err, resource.ErrNotFound) {
		t.Errorf("exec in a missing container = %v, want not found", err)
	}
}

// waitOutput waits for the container's stdout to be want.
func waitOutput(t *testing.T, e *env, name, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := e.output(t, name, "stdout")
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("stdout = %q, want %q", got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestHealthcheckRecordedAndUpdatedInPlace(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	hc := func(interval string) cty.Value {
		return obj(resource.ContainerSchema.Blocks["healthcheck"].Schema, map[string]cty.Value{
			"shell": cty.StringVal("test -f /tmp/ok"), "interval": cty.StringVal(interval),
		})
	}
	name := uniqueName("hc")
	addr, v := e.create(t, container(name, []string{"sleep", "1000"}, map[string]cty.Value{"healthcheck": hc("5s")}))
	in, err := e.d.Inspect(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if in.Healthcheck == nil || in.Healthcheck.Shell != "test -f /tmp/ok" || in.Healthcheck.Interval != "5s" || in.Healthcheck.Retries != 3 {
		t.Fatalf("healthcheck = %+v", in.Healthcheck)
	}
	desired := container(name, []string{"sleep", "1000"}, map[string]cty.Value{"healthcheck": hc("1s"), "restart": cty.StringVal("always")})
	if _, err := e.d.Update(ctx, addr, v, desired); err != nil {
		t.Fatal(err)
	}
	in, _ = e.d.Inspect(ctx, name)
	if in.Healthcheck == nil || in.Healthcheck.Interval != "1s" || in.Restart != "always" {
		t.Errorf("after update: healthcheck %+v, restart %q", in.Healthcheck, in.Restart)
	}
	if _, err := e.d.Update(ctx, addr, desired, container(name, []string{"sleep", "1000"}, nil)); err != nil {
		t.Fatal(err)
	}
	if in, _ = e.d.Inspect(ctx, name); in.Healthcheck != nil {
		t.Errorf("healthcheck removed by update is still recorded: %+v", in.Healthcheck)
	}
}

// A container that sets no health check runs its image's (HEALTHCHECK),
// also once an update removes its own; its own replaces the image's.
func TestImageHealthcheckIsTheDefault(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	image := &resource.HealthcheckSpec{Command: []string{"false"}, Interval: "2s", Retries: 1}
	e.d.images.(*fakeImages).info.Config.Healthcheck = image
	name := uniqueName("imghc")
	addr, v := e.create(t, container(name, []string{"sleep", "1000"}, nil))
	in, err := e.d.Inspect(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in.Healthcheck, image) {
		t.Fatalf("healthcheck = %+v, want the image's %+v", in.Healthcheck, image)
	}
	own := container(name, []string{"sleep", "1000"}, map[string]cty.Value{
		"healthcheck": obj(resource.ContainerSchema.Blocks["healthcheck"].Schema, map[string]cty.Value{"shell": cty.StringVal("true")}),
	})
	if _, err := e.d.Update(ctx, addr, v, own); err != nil {
		t.Fatal(err)
	}
	if in, _ = e.d.Inspect(ctx, name); in.Healthcheck == nil || in.Healthcheck.Shell != "true" {
		t.Errorf("the container's own healthcheck is not the one recorded: %+v", in.Healthcheck)
	}
	if _, err := e.d.Update(ctx, addr, own, v); err != nil {
		t.Fatal(err)
	}
	if in, _ = e.d.Inspect(ctx, name); !reflect.DeepEqual(in.Healthcheck, image) {
		t.Errorf("after the container's own was removed: healthcheck = %+v, want the image's", in.Healthcheck)
	}

	// Made with its own: its own.
	name2 := uniqueName("ownhc")
	e.create(t, container(name2, []string{"sleep", "1000"}, map[string]cty.Value{
		"healthcheck": obj(resource.ContainerSchema.Blocks["healthcheck"].Schema, map[string]cty.Value{"command": strs("true")}),
	}))
	if in, _ = e.d.Inspect(ctx, name2); in.Healthcheck == nil || !reflect.DeepEqual(in.Healthcheck.Command, []string{"true"}) {
		t.Errorf("container with its own healthcheck: %+v", in.Healthcheck)
	}
}

func TestInteractiveStartFailureDoesNotHang(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	v := container(uniqueName("tty"), []string{"/nonexistent"}, nil)
	addr := resource.Addr{Kind: resource.KindContainer, Name: v.GetAttr("name").AsString()}
	_, err := e.d.CreateInteractive(ctx, addr, v, &Interactive{TTY: true, Console: func(m *os.File) { m.Close() }})
	if err == nil {
		t.Fatal("a container whose command does not exist started")
	}
	if ctx.Err() != nil {
		t.Fatalf("create waited for the deadline: %v", err)
	}
	if !strings.Contains(err.Error(), "nonexistent") {
		t.Errorf("error %q does not name the missing command", err)
	}
	assertNoTraces(t, e, addr.Name)
}

func TestNamesThatArePathsAreRefused(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, name := range []string{"../../../escape", "a/b", "..", ""} {
		if err := e.d.Start(ctx, name); !errors.Is(err, resource.ErrNotFound) {
			t.Errorf("Start(%q) = %v, want not found", name, err)
		}
	}
	if _, err := os.Stat(filepath.Join(e.cfg.StateDir, "..", "..", "escape.lock")); err == nil {
		t.Error("a lock file was made outside the state directory")
	}
}

func TestExitedSharesOneWatch(t *testing.T) {
	e := newEnv(t)
	addr, _ := e.create(t, container(uniqueName("watch"), []string{"sleep", "1000"}, nil))
	a, err := e.d.Exited(addr.Name)
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.d.Exited(addr.Name)
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Error("two watches of one monitor hold two pidfds")
	}
}

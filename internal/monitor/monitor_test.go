package monitor

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/seed-e88ffcd2/berth/internal/logfile"
	"github.com/seed-e88ffcd2/berth/internal/testutil"
)

// TestMain doubles as the start helper of the real flow: with
// MONITOR_TEST_HELPER set, the test binary starts a shell as its child with
// its output on pipes and execs into berth-monitor, as berth does with a
// container's init.
func TestMain(m *testing.M) {
	if dir := os.Getenv("MONITOR_TEST_HELPER"); dir != "" {
		helper(dir, os.Getenv("MONITOR_TEST_SCRIPT"), os.Getenv("BERTH_MONITOR"))
	}
	os.Exit(m.Run())
}

func helper(dir, script, bin string) {
	outR, outW, _ := os.Pipe()
	errR, errW, _ := os.Pipe()
	child := exec.Command("/bin/sh", "-c", script)
	child.Stdout, child.Stderr = outW, errW
	if err := child.Start(); err != nil {
		panic(err)
	}
	outW.Close()
	errW.Close()
	syscall.Dup3(int(outR.Fd()), FdStdout, 0)
	syscall.Dup3(int(errR.Fd()), FdStderr, 0)
	o := Options{Dir: dir, InitPid: child.Process.Pid, LogMaxSize: 1 << 20, LogMaxFiles: 2}
	err := syscall.Exec(bin, append([]string{"berth-monitor"}, o.Args()...), nil)
	panic(err)
}

func TestMonitorRecordsOutputAndExit(t *testing.T) {
	bin := testutil.Monitor(t)
	dir := t.TempDir()
	statusR, statusW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	devnull, _ := os.Open(os.DevNull)
	defer devnull.Close()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "MONITOR_TEST_HELPER="+dir, "BERTH_MONITOR="+bin,
		"MONITOR_TEST_SCRIPT=echo out; echo err >&2; sleep 0.2; printf partial; exit 3")
	cmd.ExtraFiles = []*os.File{devnull, devnull, statusW}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	statusW.Close()
	line, err := bufio.NewReader(statusR).ReadString('\n')
	if err != nil {
		t.Fatalf("no status from the monitor: %v", err)
	}
	var st struct{ Pid int }
	if err := json.Unmarshal([]byte(line), &st); err != nil || st.Pid != cmd.Process.Pid {
		t.Fatalf("status %q: the monitor must keep the helper's pid %d", line, cmd.Process.Pid)
	}
	rec, err := ReadRecord(dir)
	if err != nil || rec.Pid != st.Pid || !rec.Alive() {
		t.Fatalf("record %+v (%v): want the live monitor", rec, err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("monitor: %v", err)
	}
	if rec.Alive() {
		t.Error("record still alive after the monitor exited")
	}
	e, err := ReadExit(dir)
	if err != nil || e.Code != 3 || e.Signal != "" || e.Finished.Before(e.Started) {
		t.Fatalf("exit %+v (%v), want code 3", e, err)
	}
	var got []string
	if err := logfile.ReadAll(filepath.Join(dir, LogFile), func(en logfile.Entry) error {
		got = append(got, en.Stream+":"+en.Log)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := "stdout:out\n|stderr:err\n|stdout:partial"
	if strings.Join(got, "|") != want && strings.Join(got, "|") != "stderr:err\n|stdout:out\n|stdout:partial" {
		t.Errorf("log %q, want %q", got, want)
	}
}

func TestArgsRoundTrip(t *testing.T) {
	o := Options{Dir: "/x", InitPid: 42, LogMaxSize: 7, LogMaxFiles: 2, TTY: true}
	got, err := Parse(o.Args())
	if err != nil || got != o {
		t.Errorf("Parse(Args()) = %+v, %v", got, err)
	}
	if _, err := Parse(nil); err == nil {
		t.Error("Parse without -dir and -init-pid succeeded")
	}
}

func TestStartTicksNamesAProcess(t *testing.T) {
	a, err := StartTicks(os.Getpid())
	if err != nil || a == 0 {
		t.Fatalf("StartTicks(self) = %d, %v", a, err)
	}
	if b, _ := StartTicks(os.Getpid()); b != a {
		t.Errorf("StartTicks changed: %d then %d", a, b)
	}
	if (Record{Pid: os.Getpid(), StartTicks: a + 1}).Alive() {
		t.Error("a record with another start time is alive")
	}
}

func TestAZombieIsNotAlive(t *testing.T) {
	cmd := exec.Command("true")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	pid := cmd.Process.Pid
	ticks, err := StartTicks(pid)
	if err != nil {
		t.Fatal(err)
	}
	// Not reaped: a zombie until Wait.
	deadline := time.Now().Add(10 * time.Second)
	for {
		state, _, err := stat(pid)
		if err != nil {
			t.Fatal(err)
		}
		if state == 'Z' {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("true did not exit: state %c", state)
		}
		time.Sleep(time.Millisecond)
	}
	if (Record{Pid: pid, StartTicks: ticks}).Alive() {
		t.Error("a zombie is alive")
	}
}

package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/creack/pty"
	"golang.org/x/term"
)

// TestAgentSessionRestoresTerminal: an agent that puts the client's
// terminal in raw mode (exec -it) and dies in the middle of the session
// leaves the terminal as it was before the command, not raw.
func TestAgentSessionRestoresTerminal(t *testing.T) {
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	defer ptmx.Close()
	defer tty.Close()
	go func() { _, _ = io.Copy(io.Discard, ptmx) }() // what the session writes
	before, err := term.GetState(int(tty.Fd()))
	if err != nil {
		t.Fatal(err)
	}

	// A fake agent: it answers ping, makes the terminal raw as an
	// interactive session does, then dies: the connection drops with
	// no answer.
	socket := filepath.Join(t.TempDir(), "s")
	l, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/ping", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true}`)
	})
	wasRaw := make(chan bool, 1)
	mux.HandleFunc("POST /v1/sessions", func(w http.ResponseWriter, _ *http.Request) {
		_, err := term.MakeRaw(int(tty.Fd()))
		wasRaw <- err == nil && !sameTermState(t, tty, before)
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		conn.Close() // killed
	})
	srv := &http.Server{Handler: mux}
	go func() { _ = srv.Serve(l) }()
	defer srv.Close()

	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer devnull.Close()
	code, ok := runInAgentOn(context.Background(), socket, []string{"exec", "-it", "web", "sh"}, tty, tty, devnull)
	if !ok || code == 0 {
		t.Errorf("runInAgentOn = %d, %v: want the failure of a session the agent did not finish", code, ok)
	}
	if !<-wasRaw {
		t.Fatal("the fake agent did not make the terminal raw")
	}
	if !sameTermState(t, tty, before) {
		t.Error("the terminal was left raw by an agent that died in the session")
	}
}

// sameTermState says whether tty's terminal is in the state st (its
// termios, which raw mode changes).
func sameTermState(t *testing.T, tty *os.File, st *term.State) bool {
	t.Helper()
	now, err := term.GetState(int(tty.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	return *now == *st
}

package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os/exec"
	"syscall"
	"testing"
)

// TestRunCommandExitCodes: a command that cannot be run exits 127 (not
// there) or 126 (not runnable), as Docker's; from an error that keeps its
// chain, and from libcontainer's, which is text (as the init reports it).
func TestRunCommandExitCodes(t *testing.T) {
	const start = "container.x: create container x: start: unable to start container process: error during container init: "
	for _, tc := range []struct {
		err  error
		code int
		msg  string
	}{
		{errors.New(start + `exec: "/nonexist": stat /nonexist: no such file or directory`), 127, `exec: "/nonexist": stat /nonexist: no such file or directory`},
		{errors.New(start + `exec: "nope": executable file not found in $PATH`), 127, `exec: "nope": executable file not found in $PATH`},
		{errors.New(start + `exec: "/etc/passwd": permission denied`), 126, `exec: "/etc/passwd": permission denied`},
		{errors.New(`exec in container web: unable to start container process: exec: "/etc": is a directory`), 126, `exec: "/etc": is a directory`},
		{fmt.Errorf("exec in container web: %w", &exec.Error{Name: "nope", Err: exec.ErrNotFound}), 127, `exec: "nope": executable file not found in $PATH`},
		{fmt.Errorf("exec: %w", &exec.Error{Name: "/x", Err: &fs.PathError{Op: "stat", Path: "/x", Err: syscall.ENOENT}}), 127, `exec: "/x": stat /x: no such file or directory`},
		{&exec.Error{Name: "/x", Err: syscall.EACCES}, 126, `exec: "/x": permission denied`},
		// Not the command: a missing bind-mount source, an image, a network.
		{errors.New("container.x: mount /data: stat /data: no such file or directory"), 0, ""},
		{errors.New("network nonet does not exist on this host"), 0, ""},
	} {
		code, msg := commandExitCode(tc.err)
		if code != tc.code || msg != tc.msg {
			t.Errorf("%v: %d %q, want %d %q", tc.err, code, msg, tc.code, tc.msg)
		}
	}
}

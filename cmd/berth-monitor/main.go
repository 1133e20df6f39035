// Command berth-monitor watches one container: berth starts the container,
// then becomes this program (execve), which logs the container's output
// and records its exit status whether or not a berth agent runs. See
// internal/monitor.
package main

import (
	"fmt"
	"os"
	"runtime/debug"

	"github.com/seed-e88ffcd2/berth/internal/monitor"
)

func main() {
	// One per container: memory matters more than GC time.
	debug.SetGCPercent(25)
	o, err := monitor.Parse(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "berth-monitor:", err)
		os.Exit(2)
	}
	var stdout, stderr *os.File
	if !o.TTY {
		stdout = os.NewFile(monitor.FdStdout, "stdout")
		stderr = os.NewFile(monitor.FdStderr, "stderr")
	}
	status := os.NewFile(monitor.FdStatus, "status")
	if err := monitor.Run(o, stdout, stderr, status); err != nil {
		fmt.Fprintln(os.Stderr, "berth-monitor:", err)
		os.Exit(1)
	}
}

package container

import (
	"errors"
	"sync"
	"time"

	"github.com/seed-e88ffcd2/berth/internal/monitor"
	"golang.org/x/sys/unix"
)

// pidWatcher tells when processes that need not be this process's children
// exit: monitors started by an earlier agent or by the CLI. Each is watched
// through a pidfd in one epoll set, served by one goroutine, so watching
// fifty containers costs fifty descriptors, not fifty threads.
type pidWatcher struct {
	mu      sync.Mutex
	epfd    int
	waiting map[int32]watched // by pidfd
	// byProc finds the watch of a process already watched: every caller
	// (each logs -f, each look of the supervisor) shares one pidfd.
	byProc map[proc]int32
}

// proc names one process for good: a pid and when it started.
type proc struct {
	pid   int
	ticks uint64
}

type watched struct {
	ch chan struct{}
	p  proc
}

// watch returns a channel closed once the process pid, started at ticks,
// has exited; at once when it is already gone.
func (w *pidWatcher) watch(pid int, ticks uint64) (<-chan struct{}, error) {
	w.mu.Lock()
	if fd, ok := w.byProc[proc{pid, ticks}]; ok {
		ch := w.waiting[fd].ch
		w.mu.Unlock()
		return ch, nil
	}
	w.mu.Unlock()
	fd, err := unix.PidfdOpen(pid, 0)
	if errors.Is(err, unix.ESRCH) {
		return closedChan, nil
	} else if err != nil {
		return nil, err
	}
	// Checked after opening: the pidfd now pins this process, so a pid
	// reused between reading the record and opening is caught here.
	if got, err := monitor.StartTicks(pid); err != nil || got != ticks {
		unix.Close(fd)
		return closedChan, nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.waiting == nil {
		epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
		if err != nil {
			unix.Close(fd)
			return nil, err
		}
		w.epfd, w.waiting, w.byProc = epfd, map[int32]watched{}, map[proc]int32{}
		go w.loop()
	}
	if other, ok := w.byProc[proc{pid, ticks}]; ok {
		// Another caller got here first.
		unix.Close(fd)
		return w.waiting[other].ch, nil
	}
	ch := make(chan struct{})
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}
	if err := unix.EpollCtl(w.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		unix.Close(fd)
		return nil, err
	}
	w.waiting[int32(fd)] = watched{ch, proc{pid, ticks}}
	w.byProc[proc{pid, ticks}] = int32(fd)
	return ch, nil
}

func (w *pidWatcher) loop() {
	events := make([]unix.EpollEvent, 16)
	for {
		n, err := unix.EpollWait(w.epfd, events, -1)
		if err != nil {
			// EINTR; nothing else is expected of a valid epoll set, and
			// giving up would leave every waiter waiting forever.
			if err != unix.EINTR {
				time.Sleep(100 * time.Millisecond)
			}
			continue
		}
		w.mu.Lock()
		for _, ev := range events[:n] {
			if wd, ok := w.waiting[ev.Fd]; ok {
				close(wd.ch)
				delete(w.waiting, ev.Fd)
				delete(w.byProc, wd.p)
				_ = unix.EpollCtl(w.epfd, unix.EPOLL_CTL_DEL, int(ev.Fd), nil)
				unix.Close(int(ev.Fd))
			}
		}
		w.mu.Unlock()
	}
}

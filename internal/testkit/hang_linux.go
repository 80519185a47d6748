//go:build linux

package testkit

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// HangingFile is a file whose readers hang, as they do on a file system
// that hangs (an NFS server gone, a FUSE mount stuck), with no mount: a
// FIFO that nothing writes to, whose readers block in open(2) until a
// writer comes.
type HangingFile struct {
	t    testing.TB
	path string
	// fifo is a second name of the FIFO, which stays when the test
	// replaces the file it hangs.
	fifo string
}

// Hang replaces the file at path with a FIFO that nothing writes to,
// until Replace puts a file there again (writing to path would write to
// the FIFO). Release lets its blocked reader go; so does the test's
// cleanup, so that none stays blocked after it.
func Hang(t testing.TB, path string) *HangingFile {
	t.Helper()
	h := &HangingFile{t: t, path: path, fifo: path + ".fifo"}
	if err := syscall.Mkfifo(h.fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if w, err := os.OpenFile(h.fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			_ = w.Close()
		}
	})
	// Linked and renamed over path, as a deployment replaces a file: path
	// names the FIFO at once, and never no file.
	link := path + ".fifo-link"
	if err := os.Link(h.fifo, link); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(link, path); err != nil {
		t.Fatal(err)
	}
	return h
}

// Release gives data to the reader blocked on the FIFO, whichever of its
// names it opened, and then the end of the file. It waits for that
// reader, which may not have come to open(2) yet: a writer that does not
// wait (O_NONBLOCK) is refused (ENXIO) until one is there. It fails the
// test if none comes within a minute, a bound for a reader that never
// comes rather than a measure of time.
func (h *HangingFile) Release(data []byte) {
	h.t.Helper()
	var w *os.File
	Eventually(h.t, "a reader of the hanging file", func() bool {
		var err error
		w, err = os.OpenFile(h.fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0)
		if err != nil && !errors.Is(err, syscall.ENXIO) {
			h.t.Fatal(err)
		}
		return err == nil
	})
	_, err := w.Write(data)
	if closeErr := w.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		h.t.Fatal(err)
	}
}

// WaitBlocked waits until a thread of the test's process is blocked
// opening the hanging file: the reader that a test let give up has come
// to open(2), so that a file Replace puts at the path afterwards is not
// what it opens. Like Release, it fails the test if none comes within a
// minute. It skips the test on a kernel that does not say where threads
// wait (every wchan "0").
func (h *HangingFile) WaitBlocked() {
	h.t.Helper()
	if !wchansShown() {
		h.t.Skip("the kernel does not say where this process's threads wait (/proc/self/task/*/wchan)")
	}
	Eventually(h.t, "a thread blocked opening the hanging file", func() bool { return blockedOpening(h.path) })
}

// wchansShown reports whether the kernel names the function a waiting
// thread of this process waits in: some of the Go runtime's threads are
// always asleep.
func wchansShown() bool {
	tasks, _ := filepath.Glob("/proc/self/task/*/wchan")
	for _, task := range tasks {
		if wchan, err := os.ReadFile(task); err == nil && strings.TrimSpace(string(wchan)) != "0" && len(wchan) > 0 {
			return true
		}
	}
	return false
}

// blockedOpening reports whether a thread of this process is blocked
// opening path as a FIFO: the kernel says it waits for the FIFO's other
// end (its wchan), and the name its openat(2) was given, read from the
// process's own memory, is path. A reader of another test's FIFO, left
// blocked for good, is not taken for this one's.
func blockedOpening(path string) bool {
	mem, err := os.Open("/proc/self/mem")
	if err != nil {
		return false
	}
	defer mem.Close()
	tasks, _ := filepath.Glob("/proc/self/task/*")
	name := make([]byte, len(path)+1)
	for _, task := range tasks {
		wchan, err := os.ReadFile(filepath.Join(task, "wchan"))
		if err != nil || strings.TrimSpace(string(wchan)) != "wait_for_partner" {
			continue
		}
		// The system call's number and arguments: openat's second is
		// the name.
		call, err := os.ReadFile(filepath.Join(task, "syscall"))
		fields := strings.Fields(string(call))
		if err != nil || len(fields) < 3 {
			continue
		}
		addr, err := strconv.ParseUint(strings.TrimPrefix(fields[2], "0x"), 16, 63)
		if err != nil {
			continue
		}
		if _, err := mem.ReadAt(name, int64(addr)); err == nil && string(name) == path+"\x00" {
			return true
		}
	}
	return false
}

// Replace puts a file holding data at the FIFO's path, renamed over it as
// a deployment replaces a file; a reader blocked on the FIFO stays so.
func (h *HangingFile) Replace(data []byte) {
	h.t.Helper()
	next := h.path + ".next"
	if err := os.WriteFile(next, data, 0o600); err != nil {
		h.t.Fatal(err)
	}
	if err := os.Rename(next, h.path); err != nil {
		h.t.Fatal(err)
	}
}

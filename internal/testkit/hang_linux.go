//go:build linux

package testkit

import (
	"errors"
	"os"
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

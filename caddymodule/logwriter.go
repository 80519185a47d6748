package caddymodule

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/logging"
	"github.com/dustin/go-humanize"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/ucwa-edge/caddy-ucwa/internal/metrics"
)

func init() {
	caddy.RegisterModule(new(BufferedWriter))
}

// Defaults of BufferedWriter.
const (
	defaultBufferSize          = 64 << 10
	defaultBufferFlushInterval = time.Second
	// maxBufferSize bounds what one log may hold in memory.
	maxBufferSize = 1 << 30
	// defaultFileRollSize is the roll size of Caddy's file writer when
	// its roll_size is not set.
	defaultFileRollSize = 100 << 20
)

// BufferedWriter is the log writer caddy.logging.writers.buffered: it
// gathers a log's lines in memory and hands them to another writer (a
// file, as a rule) a buffer at a time, once the buffer is full or
// flush_interval after the first line it holds, whichever comes first,
// and when Caddy closes the log (a stop, or a config without it).
//
// Caddy's own writers make one write(2) per line. For the audit trail,
// one line per guarded request, that system call is about a third of
// what the line costs the edge; buffered, it is paid once per buffer,
// as NGINX's access_log buffer= and Envoy's access log flush interval
// do it. The price: lines still in the buffer when the process dies
// (a crash, SIGKILL, a lost machine) are lost, up to flush_interval's
// worth; a stop or a reload loses none: the buffer is written when
// Caddy unloads a config that has it (Caddy keeps the writer itself
// open across reloads, keyed by the writer inside, and v2.11 does not
// close log writers when it unloads a config, so it is the module's
// Cleanup that writes the buffer; and when the process exits, every
// buffer is written, those no config loaded any more uses too, see
// unbufferAll). A write of a buffer that fails (a full disk) loses the
// lines it held, not the writer: the lines after it go straight through
// until one is written, then are buffered again. Each line lost, one the
// failed write of a buffer held or one written straight through (larger
// than the buffer, after a failed write, or once the writer is closed or
// the process exits) whose write failed, is counted in
// caddy_ucwa_log_buffer_lines_lost_total; the loss is logged, as an
// error of the logger caddy.logging.writers.buffered in Caddy's default
// log, with the writer, the lines and the error, at the first loss and
// then once a minute at most per writer, with the lines lost since the
// last: a full disk would otherwise log a line per buffer, or per line.
//
// In a Caddyfile, as a log's output:
//
//	output buffered {
//		size           <size>      # default 64KiB
//		flush_interval <duration>  # default 1s
//		output <writer_module> ...  # required: where the buffers go
//	}
//
// Each subdirective is given once; size and flush_interval, when given,
// are above 0 (0 in JSON is the default).
//
// Its output may not be another buffered writer: the inner one's
// Cleanup would run first, and the outer buffer's lines would wait in it
// past a stop. Nor may it be a net writer of datagrams (udp, unixgram,
// unixpacket), which sends each write as one message: a buffer would
// send many lines as one.
//
// A log that writes to the same destination as another log must use
// the same writer (both buffered or neither): Caddy keeps one writer per
// destination, and a buffered and an unbuffered writer of one file are
// two.
type BufferedWriter struct {
	// Size is the most the buffer holds, in bytes; a line that does not
	// fit after the lines already held flushes them first, and a line
	// larger than the buffer is written as it comes. At most 1 GiB, and
	// at most the roll_size of a rolling file inside (which refuses a
	// larger write). Default: 65536 (64 KiB).
	Size int `json:"size,omitempty"`

	// FlushInterval is the longest a line waits in the buffer: the
	// buffer is written that long after the first line it holds was
	// added. Default: 1s.
	FlushInterval caddy.Duration `json:"flush_interval,omitempty"`

	// WriterRaw is the writer the buffers go to (caddy.logging.writers
	// module, its name under "output"). Required.
	WriterRaw json.RawMessage `json:"writer,omitempty" caddy:"namespace=caddy.logging.writers inline_key=output"`

	inner caddy.WriterOpener
}

// bufferClock, when not nil, is the clock of the buffers opened from
// then on in place of the wall clock: it starts their flush timers and
// tells when they last logged the lines they lost. A test sets it to a
// clock of its own.
var bufferClock interface {
	AfterFunc(time.Duration, func()) interface{ Stop() bool }
	Now() time.Time
}

// bufferLinesLost counts the lines that failed writes of the buffers of
// the process lost. The buffers outlive the configs that open them
// (Caddy keeps a writer per key across reloads), so the counter is one
// for the process, registered in each config's registry.
var bufferLinesLost = prometheus.NewCounter(prometheus.CounterOpts{
	Namespace: "caddy", Subsystem: "ucwa", Name: "log_buffer_lines_lost_total",
	Help: "Lines a buffered log writer lost to a failed write (a full disk): those its buffer held, and those written straight through (larger than the buffer, after a failed write, after the writer closed); those a write took whole before it failed are not counted.",
})

// CaddyModule returns the Caddy module information.
func (*BufferedWriter) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "caddy.logging.writers.buffered",
		New: func() caddy.Module { return new(BufferedWriter) },
	}
}

// Provision loads the writer the buffers go to, and registers the count
// of lines lost in Caddy's metrics.
func (bw *BufferedWriter) Provision(ctx caddy.Context) error {
	if bw.Size < 0 {
		return fmt.Errorf("buffered: size %d is negative", bw.Size)
	}
	if bw.Size > maxBufferSize {
		return fmt.Errorf("buffered: size %d is over 1GiB", bw.Size)
	}
	if bw.FlushInterval < 0 {
		return fmt.Errorf("buffered: flush_interval %s is negative", time.Duration(bw.FlushInterval))
	}
	if bw.WriterRaw == nil {
		return errors.New("buffered: no output (the writer the buffers go to) is set")
	}
	mod, err := ctx.LoadModule(bw, "WriterRaw")
	if err != nil {
		return fmt.Errorf("buffered: loading its output: %v", err)
	}
	inner := mod.(caddy.WriterOpener)
	if _, ok := inner.(*BufferedWriter); ok {
		// Its Cleanup would run before the outer one's, which writes
		// into it: the outer buffer's lines would wait in the inner one
		// past a stop.
		return errors.New("buffered: a buffered writer inside a buffered writer")
	}
	if nw, ok := inner.(*logging.NetWriter); ok && messageNetwork(netWriterNetwork(nw)) {
		// A buffer would send many lines as one message, which a syslog
		// server takes as one line, and a full buffer as a datagram
		// larger than UDP carries, which is lost whole.
		return fmt.Errorf("buffered: its output net %s sends each write as one message: a buffer would send many lines as one; use the net writer without buffered", nw.String())
	}
	if fw, ok := inner.(*logging.FileWriter); ok && (fw.Roll == nil || *fw.Roll) {
		// The rolling file refuses a write larger than its roll size
		// whole: every full buffer's lines would be lost.
		if fw.RollSizeMB < 0 {
			// Its rolling file would take every write for one over it.
			return fmt.Errorf("buffered: its file's roll_size_mb %d is negative", fw.RollSizeMB)
		}
		rollSize := fw.RollSizeMB << 20
		if rollSize == 0 {
			rollSize = defaultFileRollSize
		}
		if bw.bufferSize() > rollSize {
			return fmt.Errorf("buffered: size %d is over its file's roll_size (%s), which refuses a larger write", bw.bufferSize(), humanize.IBytes(uint64(rollSize)))
		}
	}
	if _, err := metrics.Register(registerer(ctx), bufferLinesLost); err != nil {
		return fmt.Errorf("buffered: %v", err)
	}
	bw.inner = inner
	return nil
}

// netWriterNetwork is the network of a provisioned net writer's
// address, parsed as the writer parses it ("" if it does not parse).
func netWriterNetwork(nw *logging.NetWriter) string {
	address, err := caddy.NewReplacer().ReplaceOrErr(nw.Address, true, true)
	if err != nil {
		return ""
	}
	addr, err := caddy.ParseNetworkAddress(address)
	if err != nil {
		return ""
	}
	return addr.Network
}

// messageNetwork reports whether a connection of network keeps the
// bounds of each write: a datagram or a sequenced packet per write.
func messageNetwork(network string) bool {
	switch network {
	case "udp", "udp4", "udp6", "unixgram", "unixpacket":
		return true
	}
	return false
}

// bufferSize is Size or its default.
func (bw *BufferedWriter) bufferSize() int {
	if bw.Size == 0 {
		return defaultBufferSize
	}
	return bw.Size
}

func (bw *BufferedWriter) String() string { return "buffered " + bw.inner.String() }

// WriterKey is the key of the writer inside: Caddy keeps one writer per
// key across reloads, and with it the lines buffered. Changes of size or
// flush_interval take effect when Caddy opens the writer anew, as
// changes of a file's roll settings do.
func (bw *BufferedWriter) WriterKey() string { return "buffered:" + bw.inner.WriterKey() }

// openLineBuffers holds the buffers Caddy's writers hold, by writer
// key, for the Cleanup of configs that use them.
var openLineBuffers sync.Map

// OpenWriter opens the writer inside and buffers in front of it.
func (bw *BufferedWriter) OpenWriter() (io.WriteCloser, error) {
	w, err := bw.inner.OpenWriter()
	if err != nil {
		return nil, err
	}
	b := &lineBuffer{key: bw.WriterKey(), w: w, size: bw.bufferSize(), interval: time.Duration(bw.FlushInterval)}
	if b.interval == 0 {
		b.interval = defaultBufferFlushInterval
	}
	b.afterFunc = func(d time.Duration, f func()) interface{ Stop() bool } { return time.AfterFunc(d, f) }
	if bufferClock != nil {
		b.afterFunc, b.lossWarning.now = bufferClock.AfterFunc, bufferClock.Now
	}
	openLineBuffers.Store(b.key, b)
	unbufferAtExit.Do(func() { caddy.OnExit(func(context.Context) { unbufferAll() }) })
	return b, nil
}

// unbufferAtExit registers unbufferAll to run when the process exits,
// once for the process, as caddy.OnExit asks.
var unbufferAtExit sync.Once

// unbufferAll writes what every buffer of the process holds, and has
// the lines written after it go straight through. A stop's Cleanup
// writes only the buffers of the config it unloads: a buffer that an
// earlier config used and the last one does not (a reload named another
// file, or dropped the log) still takes the lines of the requests that
// config took in and answered after the reload, which wait there for
// flush_interval and would be lost with the process. Caddy runs its exit
// callbacks once the last config is stopped, after the servers of the
// earlier ones are done or their grace period is over.
func unbufferAll() {
	openLineBuffers.Range(func(_, b any) bool {
		_ = b.(*lineBuffer).unbuffer() // a failed write is reported by it, as any other
		return true
	})
}

// Cleanup writes what the buffer of the config being unloaded holds: its
// lines are on disk once a reload or a stop is done. When the process is
// exiting, lines written after it go straight through: those of requests
// still running once a stop's grace period is over, which the process
// exits without waiting for, and which would be lost in the buffer.
// A failed write is reported as any other (see lineBuffer.report) and
// not returned: Caddy would log it again, without the lines it lost.
func (bw *BufferedWriter) Cleanup() error {
	if bw.inner == nil {
		return nil // Caddy cleans up a writer whose Provision failed, too
	}
	if b, ok := openLineBuffers.Load(bw.WriterKey()); ok {
		if caddy.Exiting() {
			_ = b.(*lineBuffer).unbuffer()
		} else {
			_ = b.(*lineBuffer).Sync()
		}
	}
	return nil
}

// UnmarshalCaddyfile sets the writer up from Caddyfile tokens; the
// syntax is in the type's comment.
func (bw *BufferedWriter) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the writer's name
	if d.NextArg() {
		return d.ArgErr()
	}
	seen := make(map[string]bool)
	for d.NextBlock(0) {
		// Each once: a second one would silently win.
		if seen[d.Val()] {
			return d.Errf("%s given twice", d.Val())
		}
		seen[d.Val()] = true
		switch d.Val() {
		case "size":
			if !d.NextArg() {
				return d.ArgErr()
			}
			// 0, which JSON reads as the default, is refused as
			// flush_interval's is: it is no size of a buffer.
			size, err := humanize.ParseBytes(d.Val())
			if err != nil || size == 0 || size > maxBufferSize {
				return d.Errf("size %q: want a size from 1 byte up to 1GiB, such as 64KiB", d.Val())
			}
			bw.Size = int(size)
		case "flush_interval":
			if !d.NextArg() {
				return d.ArgErr()
			}
			interval, err := caddy.ParseDuration(d.Val())
			if err != nil || interval <= 0 {
				return d.Errf("flush_interval %q: want a positive duration, such as 1s", d.Val())
			}
			bw.FlushInterval = caddy.Duration(interval)
		case "output":
			if !d.NextArg() {
				return d.ArgErr()
			}
			name := d.Val()
			var wo caddy.WriterOpener
			switch name {
			// Caddy's own writers, which have no Caddyfile unmarshaler.
			case "stdout":
				wo = caddy.StdoutWriter{}
			case "stderr":
				wo = caddy.StderrWriter{}
			case "discard":
				wo = caddy.DiscardWriter{}
			case "buffered":
				// Refused at load too (see Provision); said here first.
				return d.Err("output buffered inside buffered: one buffer is enough")
			default:
				unm, err := caddyfile.UnmarshalModule(d, "caddy.logging.writers."+name)
				if err != nil {
					return err
				}
				var ok bool
				if wo, ok = unm.(caddy.WriterOpener); !ok {
					return d.Errf("module %s is not a log writer", name)
				}
			}
			// Those writers take no block; an empty one is let be, as
			// Caddy's log directive lets it be.
			if d.NextBlock(d.Nesting()) {
				return d.Errf("output %s takes no block", name)
			}
			bw.WriterRaw = caddyconfig.JSONModuleObject(wo, "output", name, nil)
		default:
			return d.Errf("unrecognized subdirective %q", d.Val())
		}
		if d.NextArg() {
			return d.ArgErr()
		}
	}
	if bw.WriterRaw == nil {
		return d.Err("buffered: output is required")
	}
	return nil
}

// lineBuffer is the writer BufferedWriter opens. zap's
// BufferedWriteSyncer would do, but for two things a log must not do:
// its bufio.Writer keeps the first write error forever (a full disk, once
// freed, would still get no line until a restart), and after Stop it
// buffers lines that are never written (a request that started under
// the old config and ends after it closed the writer). Here a failed
// flush loses only the lines it held, and a closed buffer writes every
// line straight through, as Caddy's unbuffered writers do.
//
// A failed write is reported (see report): the lines of a buffer are
// written by a timer or on behalf of another line, so zap, which reports
// a failed write of a line it wrote itself to its error output, is never
// told of them; a line written straight through is zap's to report too,
// and counted with the others, so that the count is every line the
// writer lost.
type lineBuffer struct {
	key       string // the writer's key, in openLineBuffers
	w         io.WriteCloser
	size      int
	interval  time.Duration
	afterFunc func(time.Duration, func()) interface{ Stop() bool }
	// lost, when not nil, is told of each failed write in place of
	// report's counter and log: a test's.
	lost func(bufferLoss)
	// lossWarning throttles report's error line.
	lossWarning throttledWarning

	mu    sync.Mutex
	buf   []byte
	timer interface{ Stop() bool } // armed while buf holds lines
	// straight: lines go straight to w, after Close or unbuffer.
	straight bool
	// failed: the last write to w failed; lines go straight to w until
	// one is written, so that zap reports each that is not (see
	// writeFlushing).
	failed bool
}

// Write buffers p, a line as zap writes it. A line that fits is added
// without a defer, the cost of every line; one that does not goes to
// writeFlushing, which takes b.mu anew and looks again.
func (b *lineBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	if b.straight || b.failed || len(b.buf)+len(p) > b.size {
		b.mu.Unlock()
		n, loss, err := b.writeFlushing(p)
		b.report(loss)
		return n, err
	}
	b.addLocked(p)
	b.mu.Unlock()
	return len(p), nil
}

// addLocked adds p to the buffer, arming the flush timer with its first
// line; b.mu is held.
func (b *lineBuffer) addLocked(p []byte) {
	// Grown as lines come, not taken whole: a large size costs only
	// what a log fills of it between flushes.
	b.buf = append(b.buf, p...)
	if b.timer == nil {
		b.timer = b.afterFunc(b.interval, b.flushOnTimer)
	}
}

// writeFlushing is Write for a line that may not fit after the lines
// held, or once lines go straight through: it writes the buffer first,
// or the line as it comes. A failed write, of the buffer or of the line,
// is returned for report, once b.mu is released.
//
// After a failed write, the lines go straight through until one is
// written, as an unbuffered writer's do: zap reports each line whose
// write failed to its error output, where the audit trail learns that
// it is failing (see Handler.AuditOnError), and the first line written
// has the lines after it buffered again.
func (b *lineBuffer) writeFlushing(p []byte) (int, bufferLoss, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var loss bufferLoss
	if !b.straight && !b.failed {
		if len(b.buf)+len(p) <= b.size {
			b.addLocked(p)
			return len(p), bufferLoss{}, nil
		}
		if loss = b.flushLocked(); loss.err == nil && len(p) < b.size {
			b.addLocked(p)
			return len(p), bufferLoss{}, nil
		}
	}
	n, err := b.w.Write(p)
	b.failed = err != nil
	return n, loss.and(lossOf(p, n, err)), err
}

func (b *lineBuffer) flushOnTimer() {
	b.report(b.flush(false)) // the next line tries again, straight through
}

// flush writes what the buffer holds, taking b.mu; with unbuffer, lines
// written after it go straight through.
func (b *lineBuffer) flush(unbuffer bool) bufferLoss {
	b.mu.Lock()
	defer b.mu.Unlock()
	loss := b.flushLocked()
	if unbuffer {
		b.straight = true
		b.buf = nil
	}
	return loss
}

// bufferLoss is a failed write, of a buffer or of a line: the lines it
// lost and why. Its err is nil when the write succeeded.
type bufferLoss struct {
	lines int
	err   error
}

// lossOf is the loss of a write of p that took n bytes and returned err.
// A full disk may take the start of p: the lines it took whole are
// written, the one it cut is lost with the rest.
func lossOf(p []byte, n int, err error) bufferLoss {
	if err == nil {
		return bufferLoss{}
	}
	return bufferLoss{lines: bytes.Count(p[min(max(n, 0), len(p)):], []byte{'\n'}), err: err}
}

// and is the loss of two writes, reported as one: with the first's
// error, when both failed.
func (l bufferLoss) and(m bufferLoss) bufferLoss {
	if l.err == nil {
		return m
	}
	l.lines += m.lines
	return l
}

// flushLocked writes what the buffer holds and empties it, written or
// not; b.mu is held. A failed write's loss is for report, once b.mu is
// released.
func (b *lineBuffer) flushLocked() bufferLoss {
	if b.timer != nil {
		b.timer.Stop()
		b.timer = nil
	}
	if len(b.buf) == 0 {
		return bufferLoss{}
	}
	n, err := b.w.Write(b.buf)
	loss := lossOf(b.buf, n, err)
	b.buf = b.buf[:0]
	b.failed = err != nil
	return loss
}

// bufferLossError is the error, once a minute at most per writer, that a
// buffered writer lost lines.
const bufferLossError = "buffered log writer lost lines: writing them failed"

// report counts the lines a failed write lost in
// caddy_ucwa_log_buffer_lines_lost_total and logs the loss to Caddy's
// default log, without any line's content, at the first loss and then
// once every warnEvery at most, with the lines lost since the last such
// line. It is called with b.mu released: the default log may write to
// this very buffer (whose own loss, while the line is being logged,
// waits for the next one).
func (b *lineBuffer) report(loss bufferLoss) {
	if loss.err == nil {
		return
	}
	if b.lost != nil {
		b.lost(loss)
		return
	}
	b.lossWarning.noteEvents(uint64(loss.lines), func(lines uint64) {
		caddy.Log().Named("caddy.logging.writers.buffered").Error(bufferLossError,
			zap.String("writer", b.key), zap.Uint64("lines", lines), zap.Error(loss.err))
	})
	// Counted after the warning: whoever reads the count finds the
	// error line of those lines already logged, or counted for the next.
	bufferLinesLost.Add(float64(loss.lines))
}

// Sync writes what the buffer holds.
func (b *lineBuffer) Sync() error {
	loss := b.flush(false)
	b.report(loss)
	return loss.err
}

// unbuffer writes what the buffer holds; lines written after it go
// straight through.
func (b *lineBuffer) unbuffer() error {
	loss := b.flush(true)
	b.report(loss)
	return loss.err
}

// Close writes what the buffer holds and closes the writer inside;
// lines written after it go straight through.
func (b *lineBuffer) Close() error {
	err := b.unbuffer()
	openLineBuffers.CompareAndDelete(b.key, b)
	return errors.Join(err, b.w.Close())
}

// Interface guards
var (
	_ caddy.Provisioner     = (*BufferedWriter)(nil)
	_ caddy.CleanerUpper    = (*BufferedWriter)(nil)
	_ caddy.WriterOpener    = (*BufferedWriter)(nil)
	_ caddyfile.Unmarshaler = (*BufferedWriter)(nil)
)

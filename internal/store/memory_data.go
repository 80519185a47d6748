package store

// shardData holds the keys and values of a shard's entries, end to end,
// in chunks of chunkSize bytes (an entry longer than maxInChunk in a
// chunk of its own). A chunk is written once, from its start to its
// end, and never copied to grow: a store of a busy edge, which takes a
// new entry for every protected request, would otherwise copy all it
// holds each time it grew, into memory the process had not touched
// yet. Entries expire about in the order they came, so that the chunks
// written first empty first: a chunk that no entry holds bytes of is
// let go of (the last one kept for the next chunk, which it saves
// making and clearing), and the one being written is written again
// from its start. What a chunk's entries no longer hold (entries gone,
// or given other values) is garbage until the chunk empties or the
// shard's data is made again (see memoryShard.store).
type shardData struct {
	chunks []dataChunk
	// free holds the indexes of chunks let go of, for new ones.
	free []uint32
	// cur is the index of the chunk being written, plus one (0: none).
	cur int
	// spare is a chunk let go of, for the next one.
	spare []byte
	// held counts the bytes written into the chunks held, garbage those
	// of them that no entry holds.
	held, garbage int
}

// dataChunk is a chunk of a shard's data and how many of its bytes
// entries hold.
type dataChunk struct {
	b    []byte
	live int
}

// dataAt is where an entry's bytes are: its chunk, and its offset in it.
type dataAt struct{ chunk, off uint32 }

const (
	// chunkSize is the size of a chunk: a few hundred entries of the
	// edge's (a key, and a reservation or a recorded answer).
	chunkSize = 64 << 10
	// maxInChunk is the longest entry written into a chunk shared with
	// others; a longer one has a chunk of its own. It bounds what a
	// chunk leaves unwritten at its end, for the entry that did not
	// fit, to an eighth of it.
	maxInChunk = chunkSize / 8
)

// live is how many bytes the shard's entries hold.
func (d *shardData) live() int { return d.held - d.garbage }

// bytes are the size bytes at at.
func (d *shardData) bytes(at dataAt, size uint32) []byte {
	if size == 0 {
		return nil
	}
	return d.chunks[at.chunk].b[at.off : at.off+size]
}

// add makes room for an entry of need bytes and returns where it is and
// the bytes to write it into.
func (d *shardData) add(need int) (dataAt, []byte) {
	if need == 0 {
		return dataAt{}, nil
	}
	if need > maxInChunk {
		i := d.newChunk(make([]byte, need))
		d.chunks[i].live = need
		d.held += need
		return dataAt{chunk: i}, d.chunks[i].b
	}
	if d.cur == 0 || len(d.chunks[d.cur-1].b)+need > chunkSize {
		b := d.spare
		d.spare = nil
		if b == nil {
			b = make([]byte, 0, chunkSize)
		}
		d.cur = int(d.newChunk(b)) + 1
	}
	c := &d.chunks[d.cur-1]
	off := len(c.b)
	c.b = c.b[:off+need]
	c.live += need
	d.held += need
	return dataAt{chunk: uint32(d.cur - 1), off: uint32(off)}, c.b[off:]
}

// resize makes the entry of size bytes at at need bytes long, in its
// place, and returns its bytes, when it is the last written into the
// chunk being written and the chunk has room for it: a reservation
// replaced by its answer before another entry came to its chunk keeps
// its key where it is and leaves no garbage. It reports false,
// changing nothing, for any other entry.
func (d *shardData) resize(at dataAt, size uint32, need int) ([]byte, bool) {
	if size == 0 || int(at.chunk) != d.cur-1 || need > maxInChunk || int(at.off)+need > chunkSize {
		return nil, false
	}
	c := &d.chunks[at.chunk]
	if int(at.off+size) != len(c.b) {
		return nil, false
	}
	c.b = c.b[:int(at.off)+need]
	c.live += need - int(size)
	d.held += need - int(size)
	return c.b[at.off:], true
}

// newChunk holds b as a chunk and returns its index.
func (d *shardData) newChunk(b []byte) uint32 {
	if n := len(d.free); n > 0 {
		i := d.free[n-1]
		d.free = d.free[:n-1]
		d.chunks[i] = dataChunk{b: b}
		return i
	}
	d.chunks = append(d.chunks, dataChunk{b: b})
	return uint32(len(d.chunks) - 1)
}

// drop makes the size bytes at at garbage, and lets go of their chunk
// once no entry holds bytes of it.
func (d *shardData) drop(at dataAt, size uint32) {
	if size == 0 {
		return
	}
	c := &d.chunks[at.chunk]
	c.live -= int(size)
	d.garbage += int(size)
	if c.live > 0 {
		return
	}
	d.held -= len(c.b)
	d.garbage -= len(c.b)
	if int(at.chunk) == d.cur-1 {
		c.b = c.b[:0]
		return
	}
	if cap(c.b) == chunkSize && d.spare == nil {
		d.spare = c.b[:0]
	}
	*c = dataChunk{}
	d.free = append(d.free, at.chunk)
}

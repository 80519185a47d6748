package ucwa

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"net/textproto"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode"
)

// BatchMediaType is the media type of a batch request and of its answer.
const BatchMediaType = "multipart/batching"

// DefaultMaxBatchParts is the pool's own limit on the requests of one
// batch (the UCWA reference: a batch over 100 outstanding requests is
// refused whole).
const DefaultMaxBatchParts = 100

// batchMaxLengthDigits bounds a Content-Length value: 18 digits always fit
// an int64, and no batch comes near.
const batchMaxLengthDigits = 18

// BodySource says where a batched request carries its body.
type BodySource uint8

const (
	// BodyInMessage is an ordinary body: the bytes after the inner
	// request's header section (possibly none).
	BodyInMessage BodySource = iota
	// BodyInDataHeader is the value of the inner request's Data header,
	// as Microsoft's batch.js sample sends a POST body.
	BodyInDataHeader
)

// String returns "message" or "Data header".
func (s BodySource) String() string {
	if s == BodyInDataHeader {
		return "Data header"
	}
	return "message"
}

// Batch is a parsed multipart/batching request body. Its parts can be
// given new bodies and targets; Encode then writes the batch with those
// and every other byte as it came.
type Batch struct {
	raw []byte
	// text is raw as one string, copied once: each part's request line
	// and header values are substrings of it, one allocation for the
	// whole batch rather than one for each part.
	text     string
	boundary string
	parts    []*BatchPart
	// Room for the next parts (see newPart).
	room []BatchPart
}

// newPart returns a zero part of b. Parts are allocated a few at a time,
// 4, then 8, then 16 at most: a batch of ten parts costs two allocations
// rather than ten, and a batch of one no more than a few parts' memory.
func (b *Batch) newPart() *BatchPart {
	if len(b.room) == cap(b.room) {
		b.room = make([]BatchPart, 0, min(max(2*cap(b.room), 4), 16))
	}
	b.room = b.room[:len(b.room)+1]
	return &b.room[len(b.room)-1]
}

// BatchPart is one request of a batch.
type BatchPart struct {
	// Index is the part's 1-based position in the batch.
	Index int
	// Method is the inner request's method, as written (upper case).
	Method string
	// Header holds the inner request's header fields as written, keys in
	// canonical form (Header.Get is case-insensitive, Header.Values shows
	// a repeated field). It includes Content-Length and Data when present
	// and is not updated by SetBody; Encode corrects those on the wire.
	// It must not be modified.
	Header http.Header

	batch      *Batch
	start, end int // the part's body, which is the inner request
	partLength batchSpan
	target     batchSpan
	length     batchSpan // the inner Content-Length value
	body       batchSpan // the inner body, or the Data header's value
	source     BodySource
	// open reports that the inner header section ended with the part,
	// without an empty line: a new non-empty body needs one written.
	open bool

	origTarget string
	newTarget  string
	targetSet  bool
	newBody    []byte
	bodySet    bool
	// Room for the values of the usual few header fields (see Header).
	valueBuf [4]string
}

// batchSpan is [start, end) in the raw body; start < 0 when absent.
type batchSpan struct {
	start, end int
}

var batchNoSpan = batchSpan{-1, -1}

func (s batchSpan) ok() bool { return s.start >= 0 }

// Parts returns the batch's requests in order. The slice must not be
// modified.
func (b *Batch) Parts() []*BatchPart { return b.parts }

// Changed reports whether any part has a new body or target.
func (b *Batch) Changed() bool {
	for _, p := range b.parts {
		if p.Changed() {
			return true
		}
	}
	return false
}

// Target returns the inner request-target (path and query), the new one
// once SetTarget has replaced it.
func (p *BatchPart) Target() string {
	if p.targetSet {
		return p.newTarget
	}
	return p.origTarget
}

// Path returns the target up to its "?", as written (still %-escaped).
func (p *BatchPart) Path() string {
	t := p.Target()
	if i := strings.IndexByte(t, '?'); i >= 0 {
		return t[:i]
	}
	return t
}

// RawQuery returns the target after its first "?" ("" when it has none).
func (p *BatchPart) RawQuery() string {
	t := p.Target()
	if i := strings.IndexByte(t, '?'); i >= 0 {
		return t[i+1:]
	}
	return ""
}

// Source says whether the body came from the message or a Data header.
func (p *BatchPart) Source() BodySource { return p.source }

// Body returns the inner request's body (the Data header's value for
// BodyInDataHeader), the new one once SetBody has replaced it. It aliases
// the batch and must not be modified.
func (p *BatchPart) Body() []byte {
	if p.bodySet {
		return p.newBody
	}
	return p.batch.raw[p.body.start:p.body.end]
}

// Changed reports whether the part has a new body or target.
func (p *BatchPart) Changed() bool { return p.bodySet || p.targetSet }

// SetTarget replaces the inner request-target. It must be origin-form by
// the rules ParseBatch applies, must not name a batch, and must not hold
// the batch boundary; otherwise SetTarget returns a 400 naming the part
// and changes nothing.
func (p *BatchPart) SetTarget(target string) *Error {
	if target == p.origTarget {
		p.newTarget, p.targetSet = "", false
		return nil
	}
	if rule := batchCheckTarget(target); rule != "" {
		return p.refuse("its new request target " + rule)
	}
	if IsBatchPath(target) {
		return p.refuse("its new request target names a batch")
	}
	// The target is followed by " HTTP/1.1" on the wire, and a boundary
	// may hold spaces, dots and slashes: check them together.
	if batchIndexBoundary([]byte(target+" HTTP/1.1"), p.batch.boundary, 0) >= 0 {
		return p.refuse("its new request target holds the batch boundary")
	}
	p.newTarget, p.targetSet = target, true
	return nil
}

// SetBody replaces the inner request's body (the Data header's value for
// BodyInDataHeader). The slice is retained, not copied. It returns a 400
// naming the part, and changes nothing, when the body holds the batch
// boundary (a cleaned value may spell it even when the original did not)
// or, for a Data header, when the body cannot be a header value: empty,
// with white space at either end, or with control characters; or, for a
// body without Content-Length, when it reads as another request (see
// ParseBatch).
func (p *BatchPart) SetBody(body []byte) *Error {
	if p.bodySet && bytes.Equal(body, p.newBody) {
		return nil
	}
	if bytes.Equal(body, p.batch.raw[p.body.start:p.body.end]) {
		p.newBody, p.bodySet = nil, false
		return nil
	}
	if p.source == BodyInDataHeader {
		if rule := batchCheckDataValue(body); rule != "" {
			return p.refuse("its new body cannot be a Data header value: " + rule)
		}
	}
	if batchIndexBoundary(body, p.batch.boundary, 0) >= 0 {
		return p.refuse("its new body holds the batch boundary")
	}
	if p.source == BodyInMessage && !p.length.ok() && batchReadsAsRequest(body) {
		return p.refuse("its new body, without Content-Length, reads as another request")
	}
	p.newBody, p.bodySet = body, true
	return nil
}

func (p *BatchPart) refuse(rule string) *Error {
	return batchPartError(p.Index, rule)
}

// Encode returns the batch with every new body and target written in
// place, and each Content-Length that describes a changed length (the
// inner request's, and the part's own) corrected. Every other byte is as
// it came; an unchanged batch returns the parsed slice itself.
func (b *Batch) Encode() []byte {
	if !b.Changed() {
		return b.raw
	}
	grow := 0
	for _, p := range b.parts {
		if p.bodySet {
			grow += len(p.newBody) + 2*batchMaxLengthDigits + 2
		}
		if p.targetSet {
			grow += len(p.newTarget)
		}
	}
	out := make([]byte, 0, len(b.raw)+grow)
	at := 0
	var edits [4]batchEdit
	for _, p := range b.parts {
		if !p.Changed() {
			continue
		}
		for _, e := range p.edits(edits[:0]) {
			out = append(out, b.raw[at:e.start]...)
			out = append(out, e.text...)
			out = append(out, e.data...)
			at = e.end
		}
	}
	return append(out, b.raw[at:]...)
}

// batchEdit replaces raw[start:end) with text followed by data.
type batchEdit struct {
	start, end int
	text       string
	data       []byte
}

// edits lists the part's replacements in body order: its own
// Content-Length, the target, the inner Content-Length, the body or Data
// value.
func (p *BatchPart) edits(dst []batchEdit) []batchEdit {
	grow := 0 // how much longer the part body gets
	if p.targetSet {
		dst = append(dst, batchEdit{start: p.target.start, end: p.target.end, text: p.newTarget})
		grow += len(p.newTarget) - (p.target.end - p.target.start)
	}
	if p.bodySet {
		e := batchEdit{start: p.body.start, end: p.body.end, data: p.newBody}
		if p.source == BodyInMessage && p.open && len(p.newBody) > 0 {
			e.text = "\r\n" // the empty line that ends the header section
		}
		dst = append(dst, e)
		grow += len(e.text) + len(p.newBody) - (p.body.end - p.body.start)
		if p.source == BodyInMessage && p.length.ok() {
			n := strconv.Itoa(len(p.newBody))
			dst = append(dst, batchEdit{start: p.length.start, end: p.length.end, text: n})
			grow += len(n) - (p.length.end - p.length.start)
		}
	}
	if p.partLength.ok() && grow != 0 {
		n := strconv.Itoa(p.end - p.start + grow)
		dst = append(dst, batchEdit{start: p.partLength.start, end: p.partLength.end, text: n})
	}
	// At most four edits: an insertion sort.
	for i := 1; i < len(dst); i++ {
		for j := i; j > 0 && dst[j-1].start > dst[j].start; j-- {
			dst[j-1], dst[j] = dst[j], dst[j-1]
		}
	}
	return dst
}

// ParseBatch parses a batch request body. contentType is the request's
// Content-Type; maxParts limits the number of parts (below 1: no limit).
// A media type other than multipart/batching is a 415; any other refusal
// is a 400 whose message names the part's position and the rule it
// breaks, never a value from the body. The body is retained, not copied:
// it must not change afterwards.
//
// A UCWA batch is a POST to .../batch with Content-Type
// multipart/batching; boundary=X: an RFC 2046 multipart body whose parts
// are each "Content-Type: application/http; msgtype=request" and hold one
// whole HTTP/1.1 request with an origin-form target. The pool answers with
// multipart/batching too, one "application/http; msgtype=response" part
// per request, in request order.
//
// The edge checks every guarded part as if it came alone and forwards the
// batch with only the cleaned bodies and targets changed, so the parser
// reads the batch the way the strictest reader would and refuses whatever
// a more lenient reader (the pool, or anything between) could split,
// frame or decode differently:
//
//   - Line endings are CRLF in everything the parser reads as structure
//     (delimiter lines, part headers, request lines, inner headers). A bare
//     CR or LF there is refused: a reader that splits on bare LF and one
//     that does not would disagree on where lines, and so parts, end.
//     Every client seen in the wild (Microsoft's batch.js sample, .NET's
//     MultipartContent, Java ports of batch.js) writes CRLF. Bodies are
//     opaque and may hold any bytes.
//   - The boundary, after the two dashes, may appear nowhere in the body
//     but in a delimiter, in any letter case: no reader can then find a
//     part the edge did not see, whether it splits on lines, on the bare
//     string, or compares the boundary case-insensitively.
//   - A part's Content-Type is application/http with msgtype=request;
//     msgtype may be missing (RFC 9112 section 10.2 makes it optional: the
//     first line tells a request from a response, and the parser requires
//     a request line). Parameters match in any letter case and order; any
//     parameter given twice is refused; unknown parameters are ignored,
//     but for a charset other than UTF-8, which is refused: a reader that
//     takes the part as text decodes it in that charset (in UTF-7, "+AHM-"
//     is "s"), and would run a request the edge never read.
//   - The inner request is "METHOD SP origin-form SP HTTP/1.1": the method
//     in upper-case letters only (a reader that folds case would run
//     "post" as POST), the target a path starting with one "/" of RFC 3986
//     characters with well-formed %-escapes (absolute-form, authority
//     "//host" and raw non-ASCII, space, backslash, "#" or controls are
//     refused).
//   - Header lines (the part's and the request's) are "name: value" with
//     a token name and no obs-fold or controls, and no framing header
//     spelled with "_" for "-" (CGI-style servers read Content_Length as
//     Content-Length). Transfer-Encoding is refused in the part and in the
//     request, as are Content-Encoding on the part and a
//     Content-Transfer-Encoding other than binary, 8bit or 7bit (a reader
//     would decode the part). A Content-Length, of the part or of the
//     request, must equal the length it describes.
//   - A message body without Content-Length whose first line holds
//     "HTTP/" is refused: HTTP/1.1 gives such a request no body, and a
//     reader that reads the part as a pipeline of requests (RFC 9112
//     section 10.2 allows one) would run the body as another request.
//   - The inner request's Host, when given, is given once and is a host
//     name or address with an optional port, nothing more: .NET's
//     ReadAsHttpRequestMessageAsync runs a part at scheme "://" Host
//     target, so a Host holding "/", "?", "#", "\", "@" or a %-escape
//     would move the part to a path (a guarded one) the edge never saw.
//   - The inner header section ends with an empty line, or at the end of
//     the part when its last line ended with CRLF: Microsoft's own batch
//     examples leave out the empty line after a body-less GET.
//   - Microsoft's batch.js sample sends a POST's JSON body in a "Data:"
//     header of the inner request (JSON.stringify output, no Content-Type)
//     instead of the body. The parser reads that value as the body. Two
//     Data headers, an empty one, a Data header with a body, and a Data
//     header on a method other than POST or PUT (UCWA's only methods with
//     a body) are refused: a pool may read the header or the body, and the
//     edge could not know which.
//   - A part whose path names the batch resource (IsBatchPath) is refused:
//     UCWA does not nest batches.
//
// A preamble (text before the first delimiter) or an epilogue (text
// after the closing delimiter) holding anything but white space is
// refused: RFC 2046 has readers ignore both, but a pool's reader that
// does not would run a request written there, which the edge never
// judged, and UCWA's batch.js writes neither (its body starts with the
// CRLF before its first delimiter and ends with the CRLF after its
// closing one); blank ones are forwarded as they came. Neither can hide a part because the boundary cannot appear in
// them. Transport padding (white space after the boundary on a delimiter
// line) is refused: RFC 2046 forbids composers to generate it, and a
// reader that does not skip it would run two parts together.
//
// The inner request's other headers are the caller's to judge, as for a
// request that came alone: two Content-Types, a Content-Encoding, an
// Expect or an Upgrade in a part are visible in Header and pass the
// parser. So is a part the edge does not guard; only what decides
// framing is checked here.
func ParseBatch(contentType string, body []byte, maxParts int) (*Batch, *Error) {
	boundary, err := batchBoundary(contentType)
	if err != nil {
		return nil, err
	}
	b := &Batch{raw: body, text: string(body), boundary: boundary, parts: make([]*BatchPart, 0, 16)}
	last := 0 // where the last part ends, before the CRLF of the closing delimiter
	err = batchScan(body, boundary, func(index, start, end int) *Error {
		last = end
		if maxParts > 0 && index > maxParts {
			return batchError(SubcodeParameterValidationFailure, "The batch has more than "+strconv.Itoa(maxParts)+" parts, the limit.")
		}
		// The first part starts after "--boundary" CRLF, which follows the
		// preamble and its CRLF.
		if preamble := max(start-len(boundary)-6, 0); index == 1 && !batchBlank(body[:preamble]) {
			return batchError(SubcodeDeserializationFailure, "The batch has text before its first boundary delimiter (a preamble): RFC 2046 has readers ignore it, but a pool's reader that does not might run a request written there, which the edge never judged; UCWA's clients write none.")
		}
		p, err := batchParseRequestPart(b, index, start, end)
		if err != nil {
			return err
		}
		b.parts = append(b.parts, p)
		return nil
	})
	if err != nil {
		return nil, err
	}
	// The epilogue follows CRLF "--boundary--" after the last part.
	if !batchBlank(body[min(last+len(boundary)+6, len(body)):]) {
		return nil, batchError(SubcodeDeserializationFailure, "The batch has text after its closing boundary delimiter (an epilogue): RFC 2046 has readers ignore it, but a pool's reader that does not might run a request written there, which the edge never judged; UCWA's clients write none.")
	}
	return b, nil
}

// batchBlank reports whether b holds only white space (SP, HTAB, CR,
// LF): the preamble of UCWA's batch.js, which starts its body with the
// CRLF of its first delimiter.
func batchBlank(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			return false
		}
	}
	return true
}

func batchError(subcode, msg string) *Error {
	return NewError(http.StatusBadRequest, subcode, msg)
}

func batchPartError(index int, rule string) *Error {
	return batchError(SubcodeDeserializationFailure, "Batch part "+strconv.Itoa(index)+": "+rule+".")
}

// batchBoundary reads the boundary of a multipart/batching Content-Type.
func batchBoundary(contentType string) (string, *Error) {
	var room [4]batchParam
	mediaType, params, rule := batchParseMediaType(contentType, room[:0])
	if rule == "" && !strings.EqualFold(mediaType, BatchMediaType) {
		return "", NewError(http.StatusUnsupportedMediaType, SubcodeUnsupportedMediaType, "A batch must be "+BatchMediaType+".")
	}
	if rule != "" {
		return "", batchError(SubcodeDeserializationFailure, "The batch Content-Type "+rule+".")
	}
	if namesOtherCharset(contentType) {
		return "", NewError(http.StatusUnsupportedMediaType, SubcodeUnsupportedMediaType, "A batch is read in UTF-8: its Content-Type names no other character set.")
	}
	boundary, found := "", 0
	for _, prm := range params {
		if strings.EqualFold(prm.name, "boundary") {
			boundary = prm.value
			found++
		}
	}
	// A reader that finds "boundary=" by searching, rather than by
	// parsing parameters, must find the same one.
	if found != 1 || batchCountBoundaryParams(contentType) != 1 {
		return "", batchError(SubcodeDeserializationFailure, "The batch Content-Type must have exactly one boundary parameter.")
	}
	if rule := batchCheckBoundary(boundary); rule != "" {
		return "", batchError(SubcodeDeserializationFailure, "The batch boundary "+rule+".")
	}
	return boundary, nil
}

// batchCountBoundaryParams counts "boundary" followed by optional white space
// and "=", in any letter case, anywhere in s.
func batchCountBoundaryParams(s string) int {
	n := 0
	for i := 0; i+len("boundary") <= len(s); i++ {
		if !strings.EqualFold(s[i:i+len("boundary")], "boundary") {
			continue
		}
		j := i + len("boundary")
		for j < len(s) && (s[j] == ' ' || s[j] == '\t') {
			j++
		}
		if j < len(s) && s[j] == '=' {
			n++
		}
	}
	return n
}

// batchCheckBoundary applies RFC 2046's boundary grammar: 1 to 70 characters
// of bchars, not ending in a space. A leading space is refused too: a
// reader that trims the parameter would look for another delimiter.
func batchCheckBoundary(b string) string {
	if len(b) < 1 || len(b) > 70 {
		return "must be 1 to 70 characters long"
	}
	for i := 0; i < len(b); i++ {
		if !batchIsBoundaryChar(b[i]) {
			return "has a character RFC 2046 does not allow"
		}
	}
	if b[0] == ' ' || b[len(b)-1] == ' ' {
		return "must not start or end with a space"
	}
	return ""
}

// batchIsBoundaryChar reports RFC 2046's bchars: DIGIT / ALPHA / "'" / "(" /
// ")" / "+" / "_" / "," / "-" / "." / "/" / ":" / "=" / "?" / " ".
func batchIsBoundaryChar(c byte) bool { return batchBoundaryChars[c] }

type batchParam struct {
	name, value string
}

// batchParseMediaType splits a Content-Type into its type and parameters:
// type "/" subtype *( OWS ";" OWS [ name "=" value ] ), value a token or a
// quoted-string. Quoted-pairs, RFC 2231 parameters (a "*" in the name) and
// a parameter given twice are refused, as is anything outside visible
// ASCII: readers differ on all of them. It returns the rule broken, or "".
// The parameters are appended to params, which a caller may give room
// on its stack.
func batchParseMediaType(s string, params []batchParam) (mediaType string, _ []batchParam, rule string) {
	s = batchTrimOWS(s)
	slash := strings.IndexByte(s, '/')
	if slash <= 0 {
		return "", nil, "is not a media type"
	}
	end := slash + 1
	for end < len(s) && batchIsTokenChar(s[end]) {
		end++
	}
	if end == slash+1 || !batchIsToken(s[:slash]) {
		return "", nil, "is not a media type"
	}
	mediaType, s = s[:end], s[end:]
	for {
		s = batchTrimOWSLeft(s)
		if s == "" {
			return mediaType, params, ""
		}
		if s[0] != ';' {
			return "", nil, "has a malformed parameter"
		}
		s = batchTrimOWSLeft(s[1:])
		if s == "" || s[0] == ';' {
			continue // an empty parameter, as in "a/b;" or "a/b; ;c=d"
		}
		n := 0
		for n < len(s) && batchIsTokenChar(s[n]) {
			n++
		}
		if n == 0 || n == len(s) || s[n] != '=' {
			return "", nil, "has a malformed parameter"
		}
		name := s[:n]
		if strings.IndexByte(name, '*') >= 0 {
			return "", nil, "has an extended (RFC 2231) parameter"
		}
		s = s[n+1:]
		var value string
		if s != "" && s[0] == '"' {
			q := 1
			for q < len(s) && s[q] != '"' {
				c := s[q]
				if c == '\\' {
					return "", nil, "has a quoted-pair in a parameter"
				}
				if c != '\t' && (c < 0x20 || c >= 0x7f) {
					return "", nil, "has a control or non-ASCII character"
				}
				q++
			}
			if q == len(s) {
				return "", nil, "has an unterminated quoted parameter"
			}
			value, s = s[1:q], s[q+1:]
		} else {
			v := 0
			for v < len(s) && batchIsTokenChar(s[v]) {
				v++
			}
			if v == 0 {
				return "", nil, "has a malformed parameter"
			}
			value, s = s[:v], s[v:]
		}
		for _, prm := range params {
			if strings.EqualFold(prm.name, name) {
				return "", nil, "has a parameter given twice"
			}
		}
		params = append(params, batchParam{name, value})
	}
}

func batchTrimOWS(s string) string {
	return strings.TrimRight(batchTrimOWSLeft(s), " \t")
}

func batchTrimOWSLeft(s string) string {
	return strings.TrimLeft(s, " \t")
}

// batchIsTokenChar reports RFC 9110's tchar.
func batchIsTokenChar(c byte) bool { return batchTokenChars[c] }

// Byte sets: letters and digits plus the listed characters.
var (
	batchTokenChars    = batchByteSet("!#$%&'*+-.^_`|~")
	batchBoundaryChars = batchByteSet("'()+_,-./:=? ")
	batchTargetChars   = batchByteSet("-._~!$&'()*+,;=:@/?") // RFC 3986 pchar, "/" and "?", without "%"
	batchHostChars     = batchByteSet("-._~")                // RFC 3986 unreserved
)

func batchByteSet(extra string) (set [256]bool) {
	for c := '0'; c <= '9'; c++ {
		set[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		set[c], set[c-'a'+'A'] = true, true
	}
	for i := range len(extra) {
		set[extra[i]] = true
	}
	return set
}

func batchIsToken[T string | []byte](s T) bool {
	if len(s) == 0 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !batchIsTokenChar(s[i]) {
			return false
		}
	}
	return true
}

// batchIndexBoundary returns the offset of the first "--" + boundary in
// body[from:] (relative to body), comparing letters in any case, or -1.
// It runs in time linear in len(body) (times the boundary's length, at
// most 70).
func batchIndexBoundary(body []byte, boundary string, from int) int {
	for from <= len(body)-2-len(boundary) {
		i := bytes.Index(body[from:], batchDashes)
		if i < 0 {
			return -1
		}
		at := from + i
		if at+2+len(boundary) > len(body) {
			return -1
		}
		if batchEqualFold(body[at+2:at+2+len(boundary)], boundary) {
			return at
		}
		from = at + 1
	}
	return -1
}

var batchDashes = []byte("--")

func batchEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		x, y := b[i], s[i]
		if x != y && batchLower(x) != batchLower(y) {
			return false
		}
	}
	return true
}

func batchLower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + ('a' - 'A')
	}
	return c
}

// batchScan walks the parts of a multipart body and calls part with
// each part's 1-based index and its extent [start, end) (headers and
// body, without the CRLF that belongs to the next delimiter). It checks
// the framing: the first delimiter at the start or after a CRLF, every
// delimiter line exactly "--boundary" CRLF, the close delimiter
// "--boundary--" then the end or a CRLF, and no other occurrence of
// "--boundary" anywhere.
func batchScan(body []byte, boundary string, part func(index, start, end int) *Error) *Error {
	pos := batchIndexBoundary(body, boundary, 0)
	if pos < 0 {
		return batchError(SubcodeDeserializationFailure, "The batch has no boundary delimiter.")
	}
	if pos != 0 && (pos < 2 || body[pos-2] != '\r' || body[pos-1] != '\n') {
		return batchError(SubcodeDeserializationFailure, "The batch's first boundary delimiter does not start a line (after a CRLF).")
	}
	for index := 1; ; index++ {
		// pos is at "--boundary" of the delimiter before part index.
		if string(body[pos+2:pos+2+len(boundary)]) != boundary {
			return batchError(SubcodeDeserializationFailure, "The batch boundary appears in another letter case "+batchDelimiterPlace(index)+".")
		}
		at := pos + 2 + len(boundary)
		closing := at+2 <= len(body) && body[at] == '-' && body[at+1] == '-'
		if closing {
			at += 2
		}
		lineEnds := at+2 <= len(body) && body[at] == '\r' && body[at+1] == '\n'
		if closing {
			if index == 1 {
				return batchError(SubcodeDeserializationFailure, "The batch has no parts.")
			}
			if at != len(body) && !lineEnds {
				return batchError(SubcodeDeserializationFailure, "The batch's closing delimiter does not end its line (CRLF or the end of the body).")
			}
			if batchIndexBoundary(body, boundary, pos+1) >= 0 {
				return batchError(SubcodeDeserializationFailure, "The batch boundary appears after the closing delimiter.")
			}
			return nil
		}
		if !lineEnds {
			return batchError(SubcodeDeserializationFailure, "The batch delimiter line "+batchDelimiterPlace(index)+" does not end with CRLF after the boundary.")
		}
		start := at + 2
		next := batchIndexBoundary(body, boundary, pos+1)
		if next < 0 {
			return batchError(SubcodeDeserializationFailure, "The batch has no closing delimiter: part "+strconv.Itoa(index)+" does not end.")
		}
		if next-2 < start || body[next-2] != '\r' || body[next-1] != '\n' {
			return batchPartError(index, "the batch boundary appears inside the part (a delimiter must start a line after a CRLF)")
		}
		if err := part(index, start, next-2); err != nil {
			return err
		}
		pos = next
	}
}

// batchDelimiterPlace names the delimiter before part index in messages.
func batchDelimiterPlace(index int) string {
	if index == 1 {
		return "before part 1"
	}
	return "after part " + strconv.Itoa(index-1)
}

// batchField is one header line: name and value (white space trimmed)
// as spans of the body.
type batchField struct {
	name, value batchSpan
}

// batchParseFields reads header lines from buf[i:end] up to an empty line.
// When open is allowed, the section may also end at end after a complete
// line. It returns the fields, where the section's content starts (after
// the empty line, or end), and whether it ended without an empty line; or
// the rule the section breaks.
func batchParseFields(buf []byte, i, end int, allowOpen bool, fields []batchField) ([]batchField, int, bool, string) {
	for {
		if i == end {
			if allowOpen {
				return fields, end, true, ""
			}
			return nil, 0, false, "its headers do not end with an empty line"
		}
		lineEnd, next, rule := batchLine(buf, i, end)
		if rule != "" {
			return nil, 0, false, rule
		}
		if lineEnd == i {
			return fields, next, false, ""
		}
		line := buf[i:lineEnd]
		if line[0] == ' ' || line[0] == '\t' {
			return nil, 0, false, "a header line is folded (obs-fold)"
		}
		colon := bytes.IndexByte(line, ':')
		if colon < 0 {
			return nil, 0, false, "a header line has no colon"
		}
		if !batchIsToken(line[:colon]) {
			return nil, 0, false, "a header name is not a token (white space before the colon?)"
		}
		if bytes.IndexByte(line[:colon], '_') >= 0 && batchUnderscoreFraming(line[:colon]) {
			return nil, 0, false, "a header name spells a framing header with an underscore"
		}
		vs, ve := i+colon+1, lineEnd
		for vs < ve && (buf[vs] == ' ' || buf[vs] == '\t') {
			vs++
		}
		for ve > vs && (buf[ve-1] == ' ' || buf[ve-1] == '\t') {
			ve--
		}
		if batchHasControl(buf[vs:ve]) {
			return nil, 0, false, "a header value has a control character"
		}
		fields = append(fields, batchField{name: batchSpan{i, i + colon}, value: batchSpan{vs, ve}})
		i = next
	}
}

// batchUnderscoreFraming reports a name that reads as a header the
// framing depends on once "_" is taken for "-", as CGI-style servers do.
func batchUnderscoreFraming(name []byte) bool {
	for _, h := range [...]string{"Content-Length", "Content-Type", "Transfer-Encoding", "Content-Encoding", "Content-Transfer-Encoding"} {
		if len(name) != len(h) {
			continue
		}
		same := true
		for i, c := range name {
			if c == '_' {
				c = '-'
			}
			if batchLower(c) != batchLower(h[i]) {
				same = false
				break
			}
		}
		if same {
			return true
		}
	}
	return false
}

// batchLine finds the line starting at i: its end (at the CR) and where
// the next line starts. A line must end with CRLF before end and hold no
// other CR or LF.
func batchLine(buf []byte, i, end int) (lineEnd, next int, rule string) {
	lf := bytes.IndexByte(buf[i:end], '\n')
	if lf < 0 {
		return 0, 0, "a line does not end with CRLF"
	}
	lf += i
	if lf == i || buf[lf-1] != '\r' {
		return 0, 0, "a line ends with a bare LF (CRLF is required)"
	}
	if bytes.IndexByte(buf[i:lf-1], '\r') >= 0 {
		return 0, 0, "a line has a bare CR (CRLF is required)"
	}
	return lf - 1, lf + 1, ""
}

// batchHasControl reports a control character other than horizontal tab.
func batchHasControl(b []byte) bool {
	for _, c := range b {
		if (c < 0x20 && c != '\t') || c == 0x7f {
			return true
		}
	}
	return false
}

// batchCheckDataValue says why b cannot be a Data header's value, or "".
func batchCheckDataValue(b []byte) string {
	switch {
	case len(b) == 0:
		return "it is empty"
	case b[0] == ' ' || b[0] == '\t' || b[len(b)-1] == ' ' || b[len(b)-1] == '\t':
		return "it starts or ends with white space"
	case batchHasControl(b):
		return "it has a control character"
	}
	return ""
}

// batchFieldIs reports whether a field's name is name, in any letter case.
func batchFieldIs(buf []byte, f batchField, name string) bool {
	return batchEqualFold(buf[f.name.start:f.name.end], name)
}

// batchParsePartHeaders reads a part's MIME headers from buf[start:end] and
// checks those the parser relies on. wantType is "request" or "response".
// It returns where the part's content starts and its Content-Length value
// span (batchNoSpan when absent), or the rule broken.
func batchParsePartHeaders(buf []byte, start, end int, wantType string) (int, batchSpan, string) {
	var stack [8]batchField
	fields, content, _, rule := batchParseFields(buf, start, end, false, stack[:0])
	if rule != "" {
		return 0, batchNoSpan, rule
	}
	length, types := batchNoSpan, 0
	for _, f := range fields {
		value := buf[f.value.start:f.value.end]
		switch {
		case batchFieldIs(buf, f, "Content-Type"):
			types++
			if types > 1 {
				return 0, batchNoSpan, "it has two Content-Type headers"
			}
			if batchIsPartType(value, wantType) {
				break
			}
			if rule := batchCheckPartType(string(value), wantType); rule != "" {
				return 0, batchNoSpan, rule
			}
			// The edge reads a request part in UTF-8; a pool that reads
			// the part as text (HttpContent.ReadAsStringAsync) decodes it
			// in the charset named here, where UTF-7's
			// "+AHM-tartPhoneAudio" is startPhoneAudio.
			if wantType == "request" && namesOtherCharset(string(value)) {
				return 0, batchNoSpan, "its Content-Type names a character set other than UTF-8"
			}
		case batchFieldIs(buf, f, "Content-Length"):
			if length.ok() {
				return 0, batchNoSpan, "it has two Content-Length headers"
			}
			if !batchIsLength(value) {
				return 0, batchNoSpan, "its Content-Length is not a decimal number"
			}
			length = f.value
		case batchFieldIs(buf, f, "Content-Transfer-Encoding"):
			v := string(value)
			if !strings.EqualFold(v, "binary") && !strings.EqualFold(v, "8bit") && !strings.EqualFold(v, "7bit") {
				return 0, batchNoSpan, "its Content-Transfer-Encoding is not binary, 8bit or 7bit"
			}
		case batchFieldIs(buf, f, "Transfer-Encoding"):
			return 0, batchNoSpan, "it has a Transfer-Encoding header"
		case batchFieldIs(buf, f, "Content-Encoding"):
			return 0, batchNoSpan, "it has a Content-Encoding header"
		}
	}
	if types == 0 {
		return 0, batchNoSpan, "it has no Content-Type (application/http; msgtype=" + wantType + ")"
	}
	if length.ok() && batchLengthValue(buf[length.start:length.end]) != end-content {
		return 0, batchNoSpan, "its Content-Length does not match the part's length"
	}
	return content, length, ""
}

// batchPartTypePrefixes are the spellings clients send of a part's
// Content-Type, each followed by the msgtype (for all but the first).
var batchPartTypePrefixes = [...]string{"application/http", "application/http; msgtype=", "application/http;msgtype="}

// batchIsPartType reports whether v is one of the spellings clients send
// of a part's Content-Type with msgtype wantType, in ASCII letters of any
// case: what batchCheckPartType takes without parsing, checked without
// copying v or building the spellings.
func batchIsPartType(v []byte, wantType string) bool {
	for i, prefix := range batchPartTypePrefixes {
		suffix := wantType
		if i == 0 {
			suffix = ""
		}
		if len(v) == len(prefix)+len(suffix) && equalFoldASCII(v[:len(prefix)], prefix) && equalFoldASCII(v[len(prefix):], suffix) {
			return true
		}
	}
	return false
}

// batchCheckPartType checks a part's Content-Type: application/http with
// msgtype wantType (or no msgtype) and version 1.1 (or none).
func batchCheckPartType(v, wantType string) string {
	// The spellings clients send, without parsing.
	if strings.EqualFold(v, "application/http") || strings.EqualFold(v, "application/http; msgtype="+wantType) || strings.EqualFold(v, "application/http;msgtype="+wantType) {
		return ""
	}
	rule := "its Content-Type is not application/http; msgtype=" + wantType
	var room [4]batchParam
	mediaType, params, bad := batchParseMediaType(v, room[:0])
	if bad != "" || !strings.EqualFold(mediaType, "application/http") {
		return rule
	}
	for _, prm := range params {
		switch {
		case strings.EqualFold(prm.name, "msgtype") && !strings.EqualFold(prm.value, wantType):
			return rule
		case strings.EqualFold(prm.name, "version") && prm.value != "1.1":
			return "its Content-Type names an HTTP version other than 1.1"
		}
	}
	return ""
}

// batchIsLength reports 1 to 18 ASCII digits.
func batchIsLength(b []byte) bool {
	if len(b) == 0 || len(b) > batchMaxLengthDigits {
		return false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func batchLengthValue(b []byte) int {
	n := 0
	for _, c := range b {
		n = n*10 + int(c-'0')
	}
	return n
}

// maxHeaderHint is the most names the Header of a batch's part (a request or
// a response) is made with room for; it grows past them as any map does.
const maxHeaderHint = 32

// batchParseRequestPart parses part index, body[start:end], of a batch.
func batchParseRequestPart(b *Batch, index, start, end int) (*BatchPart, *Error) {
	buf := b.raw
	content, partLength, rule := batchParsePartHeaders(buf, start, end, "request")
	if rule != "" {
		return nil, batchPartError(index, rule)
	}
	p := b.newPart()
	*p = BatchPart{Index: index, batch: b, start: content, end: end, partLength: partLength, length: batchNoSpan}

	// The request line.
	if content == end {
		return nil, batchPartError(index, "it holds no request")
	}
	lineEnd, next, rule := batchLine(buf, content, end)
	if rule != "" {
		return nil, batchPartError(index, "its request line: "+rule)
	}
	line := buf[content:lineEnd]
	sp1 := bytes.IndexByte(line, ' ')
	if sp1 < 0 {
		return nil, batchPartError(index, "its request line is not METHOD SP target SP HTTP/1.1")
	}
	sp2 := bytes.IndexByte(line[sp1+1:], ' ')
	if sp2 < 0 {
		return nil, batchPartError(index, "its request line is not METHOD SP target SP HTTP/1.1")
	}
	sp2 += sp1 + 1
	if string(line[sp2+1:]) != "HTTP/1.1" {
		return nil, batchPartError(index, "its request line does not end with SP HTTP/1.1")
	}
	method := line[:sp1]
	if !batchIsMethod(method) {
		return nil, batchPartError(index, "its method is not upper-case letters")
	}
	p.Method = batchMethod(method)
	p.target = batchSpan{content + sp1 + 1, content + sp2}

	// The header section and the body.
	var stack [16]batchField
	fields, bodyStart, open, rule := batchParseFields(buf, next, end, true, stack[:0])
	if rule != "" {
		return nil, batchPartError(index, "its request: "+rule)
	}
	p.open = open
	p.body = batchSpan{bodyStart, end}

	// The target and every header value are pieces of the batch's text.
	piece := func(s batchSpan) string { return b.text[s.start:s.end] }
	p.origTarget = piece(p.target)
	if rule := batchCheckTarget(p.origTarget); rule != "" {
		return nil, batchPartError(index, "its request target "+rule)
	}
	if IsBatchPath(p.origTarget) {
		return nil, batchError(SubcodeParameterValidationFailure, "Batch part "+strconv.Itoa(index)+": a batch cannot hold another batch.")
	}
	// Room for as many names as a part usually has, not one per field:
	// fields may repeat a name (a part of many "X: y" lines has one).
	p.Header = make(http.Header, min(len(fields), maxHeaderHint))
	// One array behind every field's values: the part's own for a few.
	values := p.valueBuf[:0]
	if len(fields) > len(p.valueBuf) {
		values = make([]string, len(fields))
	}
	values = values[:len(fields)]
	data, host := batchNoSpan, batchNoSpan
	for i, f := range fields {
		name := batchHeaderName(buf[f.name.start:f.name.end])
		values[i] = piece(f.value)
		if vs := p.Header[name]; vs != nil {
			p.Header[name] = append(vs, values[i]) // a repeated field: its own array
		} else {
			p.Header[name] = values[i : i+1 : i+1]
		}
		switch name {
		case "Transfer-Encoding":
			return nil, batchPartError(index, "its request has a Transfer-Encoding header")
		case "Host":
			// .NET's ReadAsHttpRequestMessageAsync builds the request's
			// URI as scheme "://" Host target: a Host holding a "/", "?",
			// "#" or "\" would move the pool to another path.
			if host.ok() {
				return nil, batchPartError(index, "its request has two Host headers")
			}
			if !batchIsHost(buf[f.value.start:f.value.end]) {
				return nil, batchPartError(index, "its request's Host is not a host name or address with an optional port")
			}
			host = f.value
		case "Content-Length":
			if p.length.ok() {
				return nil, batchPartError(index, "its request has two Content-Length headers")
			}
			if !batchIsLength(buf[f.value.start:f.value.end]) {
				return nil, batchPartError(index, "its request's Content-Length is not a decimal number")
			}
			p.length = f.value
		case "Data":
			if data.ok() {
				return nil, batchPartError(index, "its request has two Data headers")
			}
			data = f.value
		}
	}
	if p.length.ok() && batchLengthValue(buf[p.length.start:p.length.end]) != end-bodyStart {
		return nil, batchPartError(index, "its request's Content-Length does not match its body")
	}
	if !p.length.ok() && !data.ok() && batchReadsAsRequest(buf[bodyStart:end]) {
		return nil, batchPartError(index, "its request has a body without Content-Length that reads as another request")
	}
	if data.ok() {
		switch {
		case end > bodyStart:
			return nil, batchPartError(index, "its request has both a Data header and a body")
		case data.start == data.end:
			return nil, batchPartError(index, "its request's Data header is empty")
		case p.Method != http.MethodPost && p.Method != http.MethodPut:
			return nil, batchPartError(index, "its request has a Data header on a method without a body")
		}
		p.body, p.source = data, BodyInDataHeader
	}
	return p, nil
}

// batchIsHost reports whether h is a Host value that is an authority and
// nothing more: a name of letters, digits, "-", ".", "_" and "~", or an
// IP literal in brackets of hex digits, ":" and ".", then optionally ":"
// and up to 5 digits. No userinfo, %-escape, "/", "?", "#" or "\": a
// reader that builds the request's URI from Host and the target, as .NET
// does, would read any of them as the start of another path, query or
// authority.
func batchIsHost(h []byte) bool {
	i := 0
	if len(h) > 0 && h[0] == '[' {
		i = bytes.IndexByte(h, ']')
		if i < 2 {
			return false
		}
		for _, c := range h[1:i] {
			if !batchIsHex(c) && c != ':' && c != '.' {
				return false
			}
		}
		i++
	} else {
		for i < len(h) && batchHostChars[h[i]] {
			i++
		}
		if i == 0 {
			return false
		}
	}
	if i == len(h) {
		return true
	}
	if h[i] != ':' || len(h)-i-1 > 5 {
		return false
	}
	for _, c := range h[i+1:] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// batchReadsAsRequest reports whether a body sent without Content-Length
// could be read as the start of another request: its first line (up to
// its LF), after any blank lines, white space and controls, has a request
// line's shape: a token, white space, anything, white space, and "HTTP/"
// in any letter case followed by digits and dots. HTTP/1.1 gives a
// request without Content-Length no body, and application/http may hold
// a pipeline of requests (RFC 9112 section 10.2): a reader that frames
// the part as HTTP would run such a body as a second request, which the
// edge read as the first one's body and never checked. A JSON or XML
// body, or text that only mentions HTTP/2, never reads so.
func batchReadsAsRequest(body []byte) bool {
	line := body
	for len(line) > 0 && line[0] <= ' ' {
		line = line[1:]
	}
	if i := bytes.IndexByte(line, '\n'); i >= 0 {
		line = line[:i] // a bare CR does not end it: some readers split on LF alone
	}
	line = bytes.TrimRight(line, "\r\t ")
	isSpace := func(r rune) bool { return r == ' ' || r == '\t' }
	first, last := bytes.IndexFunc(line, isSpace), bytes.LastIndexFunc(line, isSpace)
	if first <= 0 {
		return false
	}
	for _, c := range line[:first] {
		if !batchIsTokenChar(c) {
			return false
		}
	}
	version := line[last+1:]
	if len(version) <= len("HTTP/") || !batchEqualFold(version[:len("HTTP/")], "HTTP/") {
		return false
	}
	for _, c := range version[len("HTTP/"):] {
		if (c < '0' || c > '9') && c != '.' {
			return false
		}
	}
	return true
}

func batchIsMethod(m []byte) bool {
	if len(m) == 0 || len(m) > 20 {
		return false
	}
	for _, c := range m {
		if c < 'A' || c > 'Z' {
			return false
		}
	}
	return true
}

func batchMethod(m []byte) string {
	for _, s := range [...]string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete} {
		if string(m) == s {
			return s
		}
	}
	return string(m)
}

// batchHeaderName returns a header name in canonical form, without allocating
// for the names batches carry.
func batchHeaderName(name []byte) string {
	for _, s := range [...]string{"Host", "Accept", "Content-Type", "Content-Length", "Data", "Transfer-Encoding", "Authorization", "X-Ms-Origin", "X-Requested-With"} {
		if batchEqualFold(name, s) {
			return s
		}
	}
	return textproto.CanonicalMIMEHeaderKey(string(name))
}

// batchCheckTarget says why t is not an origin-form request-target (an
// absolute path starting with a single "/", then optionally "?" and a
// query) of RFC 3986 characters with well-formed %-escapes, whose path
// escapes no '.', '/', '\' or '%', or "". The edge matches a part's
// path decoded, its dot segments resolved; a pool's batch handler that
// keeps such an escape as written may read the path otherwise
// (startPhoneAudio/%2E%2E/%2E%2E/me is the edge's me, and may be a
// pool's startPhoneAudio with more after it), and a client has no reason
// to write one.
func batchCheckTarget(t string) string {
	if t == "" || t[0] != '/' {
		return "is not origin-form (a path starting with /)"
	}
	if len(t) > 1 && t[1] == '/' {
		return "starts with // (an authority)"
	}
	inPath := true
	for i := 0; i < len(t); i++ {
		c := t[i]
		switch {
		case c == '?':
			inPath = false
		case c == '%':
			if i+2 >= len(t) || !batchIsHex(t[i+1]) || !batchIsHex(t[i+2]) {
				return "has a malformed %-escape"
			}
			if inPath && strings.IndexByte("./\\%", unhex(t[i+1])<<4|unhex(t[i+2])) >= 0 {
				return "escapes a '.', '/', '\\' or '%' in its path"
			}
			i += 2
		case batchTargetChars[c]:
		default:
			return "has a character outside RFC 3986 (escape it)"
		}
	}
	return ""
}

func batchIsHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// IsBatchPath reports whether a request path (a query is ignored) names
// the batch resource: its last segment is "batch" in any letter case,
// read the way a lenient server might route it. %-escapes are decoded
// (up to three times), a backslash separates segments, "." and ".."
// segments and empty ones (a trailing slash) are resolved, each segment
// ends at ";" or ":" (path parameters, NTFS streams), trailing dots and
// white space are dropped, invisible (format) characters are ignored and
// fullwidth letters read as ASCII. It is deliberately broad: it only ever
// refuses a batch inside a batch.
func IsBatchPath(path string) bool {
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	if !batchMayNameBatch(path) {
		return false
	}
	for range 3 {
		if strings.IndexByte(path, '%') < 0 {
			break
		}
		path = batchUnescape(path)
	}
	path = strings.ReplaceAll(path, `\`, "/")
	var stack [16]string
	segs := stack[:0]
	for rest, more := path, true; more; {
		var seg string
		seg, rest, more = strings.Cut(rest, "/")
		if i := strings.IndexAny(seg, ";:"); i >= 0 {
			seg = seg[:i]
		}
		seg = strings.Map(batchFoldPathRune, seg)
		switch seg {
		case ".":
			continue
		case "..":
			if len(segs) > 0 {
				segs = segs[:len(segs)-1]
			}
			continue
		}
		if seg = strings.TrimRightFunc(seg, batchTrailingJunk); seg != "" {
			segs = append(segs, seg)
		}
	}
	return len(segs) > 0 && strings.EqualFold(segs[len(segs)-1], "batch")
}

// batchMayNameBatch is IsBatchPath's quick answer: a path of visible
// ASCII without %-escapes folds to nothing but itself (cut and trimmed),
// so it can name a batch only if it spells "batch" in some letter case.
func batchMayNameBatch(path string) bool {
	plain := true
	for i := 0; i < len(path); i++ {
		c := path[i]
		if c <= ' ' || c >= 0x7f || c == '%' {
			plain = false
			break
		}
	}
	if !plain {
		return true
	}
	for i := 0; i+len("batch") <= len(path); i++ {
		if path[i]|0x20 == 'b' && strings.EqualFold(path[i:i+len("batch")], "batch") {
			return true
		}
	}
	return false
}

// batchTrailingJunk reports what Windows drops at the end of a name.
func batchTrailingJunk(r rune) bool { return r == '.' || unicode.IsSpace(r) }

// batchFoldPathRune drops what a lenient server may ignore in a path segment
// (format and control characters) and maps fullwidth ASCII forms to
// ASCII.
func batchFoldPathRune(r rune) rune {
	if r < 0x80 {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}
	switch {
	case unicode.Is(unicode.Cf, r) || unicode.IsControl(r):
		return -1
	case r >= 0xFF01 && r <= 0xFF5E:
		return r - 0xFEE0
	case r == 0x3000:
		return ' '
	}
	return r
}

// batchUnescape decodes every well-formed %-escape, leaving others.
func batchUnescape(s string) string {
	var out strings.Builder
	out.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && batchIsHex(s[i+1]) && batchIsHex(s[i+2]) {
			v, _ := strconv.ParseUint(s[i+1:i+3], 16, 8)
			out.WriteByte(byte(v))
			i += 2
			continue
		}
		out.WriteByte(s[i])
	}
	return out.String()
}

// BatchResponse is one answer in a multipart/batching response.
type BatchResponse struct {
	// Status is the answer's HTTP status code.
	Status int
	// Header holds the answer's header fields.
	Header http.Header
	// Body is the answer's body; nil or empty for none.
	Body []byte
}

// EncodeBatchResponse renders answers as a multipart/batching body, one
// "application/http; msgtype=response" part per answer in the order
// given, as a pool writes them: CRLF lines, no preamble, header fields in
// name order, no Content-Length added. It returns the Content-Type to send
// (with a random boundary, quoted as a pool quotes it) and the body. It
// fails on a status outside 100-999 or a header that cannot be written.
func EncodeBatchResponse(responses []BatchResponse) (contentType string, body []byte, err error) {
	for i, r := range responses {
		if r.Status < 100 || r.Status > 999 {
			return "", nil, errors.New("ucwa: batch response " + strconv.Itoa(i+1) + ": status outside 100-999")
		}
		for name, values := range r.Header {
			if !batchIsToken(name) {
				return "", nil, errors.New("ucwa: batch response " + strconv.Itoa(i+1) + ": a header name is not a token")
			}
			for _, v := range values {
				if batchHasControl([]byte(v)) {
					return "", nil, errors.New("ucwa: batch response " + strconv.Itoa(i+1) + ": a header value has a control character")
				}
			}
		}
	}
	for range 8 {
		boundary := batchNewBoundary()
		body, ok := batchAppendResponses(nil, boundary, responses)
		if ok {
			return BatchMediaType + `; boundary="` + boundary + `"`, body, nil
		}
	}
	return "", nil, errors.New("ucwa: no batch boundary is absent from the responses")
}

// batchNewBoundary returns a random UUID-shaped boundary, as pools use.
func batchNewBoundary() string {
	var r [16]byte
	_, _ = rand.Read(r[:])
	h := hex.EncodeToString(r[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// batchAppendResponses writes the responses with boundary; false when the
// boundary occurs in what it wrote besides the delimiters.
func batchAppendResponses(dst []byte, boundary string, responses []BatchResponse) ([]byte, bool) {
	for _, r := range responses {
		dst = append(dst, "--"...)
		dst = append(dst, boundary...)
		dst = append(dst, "\r\nContent-Type: application/http; msgtype=response\r\n\r\n"...)
		start := len(dst)
		dst = append(dst, "HTTP/1.1 "...)
		dst = strconv.AppendInt(dst, int64(r.Status), 10)
		dst = append(dst, ' ')
		dst = append(dst, http.StatusText(r.Status)...)
		dst = append(dst, "\r\n"...)
		names := make([]string, 0, len(r.Header))
		for name := range r.Header {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			for _, v := range r.Header[name] {
				dst = append(dst, name...)
				dst = append(dst, ": "...)
				dst = append(dst, batchTrimOWS(v)...)
				dst = append(dst, "\r\n"...)
			}
		}
		dst = append(dst, "\r\n"...)
		dst = append(dst, r.Body...)
		if batchIndexBoundary(dst[start:], boundary, 0) >= 0 {
			return nil, false
		}
		dst = append(dst, "\r\n"...)
	}
	dst = append(dst, "--"...)
	dst = append(dst, boundary...)
	return append(dst, "--\r\n"...), true
}

// EditBatchResponseHeader returns body, a multipart/batching response as
// batchScanResponses reads it, with the value of each header field named
// name (in any letter case) in its parts replaced by what edit returns
// for it, or the field's line removed where edit says not to keep it,
// and the Content-Length of a part that gives its own (which counts the
// lines edited) corrected; everything else stays byte for byte. A value
// edit returns with a control character in it removes the line too: it
// could end the line and frame the part anew; so does one with the
// batch's delimiter in it, which no part may hold. changed is false, and
// body returned as it is, when edit changed nothing.
func EditBatchResponseHeader(contentType string, body []byte, name string, edit func(string) (string, bool)) (out []byte, changed bool, err *Error) {
	boundary, err := batchBoundary(contentType)
	if err != nil {
		return body, false, err
	}
	type change struct {
		start, end int // the bytes replaced
		value      string
	}
	var changes []change
	err = batchScanResponses(contentType, body, func(_ int, partLength batchSpan, fields []batchField, _, _ int) {
		first, grow := len(changes), 0
		for _, f := range fields {
			if !batchFieldIs(body, f, name) {
				continue
			}
			old := string(body[f.value.start:f.value.end])
			v, keep := edit(old)
			switch {
			case keep && v == old:
				continue
			case keep && !batchHasControl([]byte(v)) && batchIndexBoundary([]byte(v), boundary, 0) < 0:
				changes = append(changes, change{f.value.start, f.value.end, v})
			default:
				// The whole line, to its LF: fields end with CRLF.
				changes = append(changes, change{f.name.start, f.value.end + bytes.IndexByte(body[f.value.end:], '\n') + 1, ""})
			}
			c := changes[len(changes)-1]
			grow += len(c.value) - (c.end - c.start)
		}
		// A part's own Content-Length counts its whole response, the
		// lines edited among them: left as it was, it would frame the
		// part short or long for a client that reads it (and the edge's
		// own reader refuses the part). It comes before the fields.
		if grow != 0 && partLength.ok() {
			n := batchLengthValue(body[partLength.start:partLength.end]) + grow
			changes = slices.Insert(changes, first, change{partLength.start, partLength.end, strconv.Itoa(n)})
		}
	})
	if err != nil || len(changes) == 0 {
		return body, false, err
	}
	out = make([]byte, 0, len(body)+64)
	at := 0
	for _, c := range changes {
		out = append(append(out, body[at:c.start]...), c.value...)
		at = c.end
	}
	return append(out, body[at:]...), true, nil
}

// batchScanResponses checks the framing of body, a multipart/batching
// response: each part must be "application/http; msgtype=response" (or
// without msgtype) holding "HTTP/1.1 code reason", header lines and a
// body, framed by the same rules as ParseBatch. It calls part for each of
// its parts in order with its status, the value of the part's own
// Content-Length (batchNoSpan when it has none), its header fields and
// its body's bounds.
func batchScanResponses(contentType string, body []byte, part func(status int, partLength batchSpan, fields []batchField, bodyStart, end int)) *Error {
	boundary, err := batchBoundary(contentType)
	if err != nil {
		return err
	}
	var room [16]batchField // one part's fields at a time
	return batchScan(body, boundary, func(index, start, end int) *Error {
		content, partLength, rule := batchParsePartHeaders(body, start, end, "response")
		if rule != "" {
			return batchPartError(index, rule)
		}
		if content == end {
			return batchPartError(index, "it holds no response")
		}
		lineEnd, next, rule := batchLine(body, content, end)
		if rule != "" {
			return batchPartError(index, "its status line: "+rule)
		}
		line := string(body[content:lineEnd])
		code, ok := strings.CutPrefix(line, "HTTP/1.1 ")
		if !ok || len(code) < 3 || (len(code) > 3 && code[3] != ' ') || !batchIsLength([]byte(code[:3])) || code[0] == '0' {
			return batchPartError(index, "its status line is not HTTP/1.1 SP code SP reason")
		}
		status := batchLengthValue([]byte(code[:3]))
		if batchHasControl(body[content:lineEnd]) {
			return batchPartError(index, "its status line has a control character")
		}
		fields, bodyStart, _, rule := batchParseFields(body, next, end, true, room[:0])
		if rule != "" {
			return batchPartError(index, "its response: "+rule)
		}
		seenLength := false
		for _, f := range fields {
			switch {
			case batchFieldIs(body, f, "Transfer-Encoding"):
				return batchPartError(index, "its response has a Transfer-Encoding header")
			case batchFieldIs(body, f, "Content-Length"):
				value := body[f.value.start:f.value.end]
				if seenLength || !batchIsLength(value) || batchLengthValue(value) != end-bodyStart {
					return batchPartError(index, "its response's Content-Length does not match its body")
				}
				seenLength = true
			}
		}
		part(status, partLength, fields, bodyStart, end)
		return nil
	})
}

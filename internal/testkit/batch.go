package testkit

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strconv"
)

// BatchAnswer is one part of a multipart/batching answer, as ReadBatch
// reads it.
type BatchAnswer struct {
	Status int
	Header http.Header
	Body   []byte
}

// ReadBatch reads body, a multipart/batching answer of Content-Type
// contentType, part by part as a client reads it, with mime/multipart
// and net/http, and returns an error unless every part is well framed:
// an application/http part (msgtype response, or none) holding one
// HTTP/1.1 response without Transfer-Encoding, whose body is as long as
// its Content-Length says and ends the part, and a part's own
// Content-Length, when it has one, the length of the part. It is the
// standard library's reading, not the edge's (ucwa's, which its tests
// and fuzzers hold), so that what the edge writes is held to what a
// client reads.
func ReadBatch(contentType string, body []byte) ([]BatchAnswer, error) {
	media, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return nil, fmt.Errorf("the Content-Type %q: %v", contentType, err)
	}
	if media != "multipart/batching" || params["boundary"] == "" {
		return nil, fmt.Errorf("the Content-Type %q is no multipart/batching with a boundary", contentType)
	}
	mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	var answers []BatchAnswer
	for {
		p, err := mr.NextRawPart()
		if err == io.EOF {
			return answers, nil
		}
		if err != nil {
			return nil, fmt.Errorf("part %d: %v", len(answers)+1, err)
		}
		a, err := readBatchPart(p)
		if err != nil {
			return nil, fmt.Errorf("part %d: %v", len(answers)+1, err)
		}
		answers = append(answers, a)
	}
}

// readBatchPart reads one part of ReadBatch's answer.
func readBatchPart(p *multipart.Part) (BatchAnswer, error) {
	media, params, err := mime.ParseMediaType(p.Header.Get("Content-Type"))
	if err != nil || media != "application/http" || params["msgtype"] != "" && params["msgtype"] != "response" {
		return BatchAnswer{}, fmt.Errorf("its Content-Type %q is no application/http response", p.Header.Get("Content-Type"))
	}
	raw, err := io.ReadAll(p)
	if err != nil {
		return BatchAnswer{}, err
	}
	if lengths := p.Header.Values("Content-Length"); len(lengths) > 1 || len(lengths) == 1 && lengths[0] != strconv.Itoa(len(raw)) {
		return BatchAnswer{}, fmt.Errorf("its Content-Length %q, the part is %d bytes", lengths, len(raw))
	}
	br := bufio.NewReader(bytes.NewReader(raw))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return BatchAnswer{}, err
	}
	if resp.Proto != "HTTP/1.1" || resp.TransferEncoding != nil {
		return BatchAnswer{}, fmt.Errorf("its response is of %s, Transfer-Encoding %q", resp.Proto, resp.TransferEncoding)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return BatchAnswer{}, fmt.Errorf("its response's body: %v", err)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		return BatchAnswer{}, errors.New("bytes after its response's body")
	}
	return BatchAnswer{Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

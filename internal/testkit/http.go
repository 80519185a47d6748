package testkit

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
)

// Request is one HTTP request a test sends. Method defaults to GET (POST
// when there is a Body).
type Request struct {
	Method      string
	URL         string
	ContentType string
	Accept      string
	Body        string
	Header      http.Header     // more request headers
	Context     context.Context // default: none
}

// Response is an answer with its body read.
type Response struct {
	Status int
	Header http.Header
	Body   string
}

// Send sends req with client and returns the answer; an error of the
// round trip fails the test.
func Send(t testing.TB, client *http.Client, req Request) Response {
	t.Helper()
	resp, err := Do(client, req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// Do is Send for goroutines other than the test's: it returns the error.
func Do(client *http.Client, req Request) (Response, error) {
	method := req.Method
	if method == "" {
		method = http.MethodGet
		if req.Body != "" {
			method = http.MethodPost
		}
	}
	ctx := req.Context
	if ctx == nil {
		ctx = context.Background()
	}
	r, err := http.NewRequestWithContext(ctx, method, req.URL, strings.NewReader(req.Body))
	if err != nil {
		return Response{}, err
	}
	if req.ContentType != "" {
		r.Header.Set("Content-Type", req.ContentType)
	}
	if req.Accept != "" {
		r.Header.Set("Accept", req.Accept)
	}
	for name, values := range req.Header {
		for _, v := range values {
			r.Header.Add(name, v)
		}
	}
	resp, err := client.Do(r)
	if err != nil {
		return Response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return Response{}, err
	}
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: string(b)}, nil
}

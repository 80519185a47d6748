package caddymodule

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/logging"
	"go.uber.org/zap/zapcore"

	"github.com/ucwa-edge/caddy-ucwa/ucwa"
)

func init() {
	caddy.RegisterModule(NumberFilter{})
}

// NumberFilter is the log field filter
// caddy.logging.encoders.filter.ucwa_numbers: it hides the phone numbers
// and other property values a URI's query can carry. Every query
// parameter whose name is, however it is spelled, a property of any
// operation the edge knows has its value replaced by REDACTED: those
// that hold a phone number or destination (to, phoneNumber, number,
// target, delegator) and all the others (operationId, subject, address,
// ...), which are personal data too and can spell a number as well; and
// access_token, a bearer token in the query (RFC 6750 2.3), also as PHP
// registers it (access.token, see ucwa.HasAccessToken). Names are
// read as the edge reads them when it refuses those that only look like
// a property: any letter case, percent-escapes, NUL, white space,
// zero-width, format and combining characters, compatibility forms. A regexp filter cannot follow them all, and the edge forwards or
// refuses those requests either way, so their URIs reach the access log.
//
// A query the edge cannot read (a ';' in a pair, a malformed
// percent-escape) keeps the pairs before the first malformed one, and
// everything from it on is replaced by REDACTED. Any other parameter
// whose value holds a number (six digits or more, of any script, however
// separated or escaped) has its value replaced too, and one whose name holds one is
// replaced whole. The path and the other parameters are kept as they
// are. See ucwa.RedactQueryProperties.
//
// It filters a string field (request>uri; a byte string is read as one)
// and an array of strings (a header such as request>headers>Referer);
// other fields pass unchanged.
// It has no options. In a Caddyfile:
//
//	log {
//		format filter {
//			request>uri ucwa_numbers
//		}
//	}
//
// In JSON, the filter encoder's field: {"request>uri": {"filter": "ucwa_numbers"}}.
type NumberFilter struct{}

// CaddyModule returns the Caddy module information.
func (NumberFilter) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "caddy.logging.encoders.filter.ucwa_numbers",
		New: func() caddy.Module { return new(NumberFilter) },
	}
}

// UnmarshalCaddyfile sets up the filter from Caddyfile tokens. The syntax
// is the filter's name alone, with no arguments and no block:
//
//	<field> ucwa_numbers
func (*NumberFilter) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the filter's name
	if d.NextArg() {
		return d.Errf("ucwa_numbers takes no arguments, got %q", d.Val())
	}
	if d.NextBlock(0) {
		return d.Err("ucwa_numbers takes no block")
	}
	return nil
}

// Filter hides the property values in the field's query.
func (NumberFilter) Filter(in zapcore.Field) zapcore.Field {
	switch in.Type {
	case zapcore.StringType:
		in.String = ucwa.RedactQueryProperties(in.String)
	case zapcore.ByteStringType:
		if b, ok := in.Interface.([]byte); ok {
			in.Type, in.String, in.Interface = zapcore.StringType, ucwa.RedactQueryProperties(string(b)), nil
		}
	case zapcore.ArrayMarshalerType:
		if array, ok := in.Interface.(caddyhttp.LoggableStringArray); ok {
			filtered := make(caddyhttp.LoggableStringArray, len(array))
			for i, s := range array {
				filtered[i] = ucwa.RedactQueryProperties(s)
			}
			in.Interface = filtered
		}
	}
	return in
}

// Interface guards
var (
	_ logging.LogFieldFilter = (*NumberFilter)(nil)
	_ caddyfile.Unmarshaler  = (*NumberFilter)(nil)
)

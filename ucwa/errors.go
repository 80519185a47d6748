package ucwa

import (
	"encoding/json"
	"encoding/xml"
	"net/http"
	"strconv"
)

// Subcodes the edge uses. Clients must ignore subcodes they do not know
// (UCWA reference), so adding one is never a breaking change.
const (
	SubcodeParameterValidationFailure = "ParameterValidationFailure"
	SubcodeDeserializationFailure     = "DeserializationFailure"
	SubcodeNormalizationFailed        = "NormalizationFailed"
	SubcodeEntityTooLarge             = "EntityTooLarge"
	SubcodeMethodNotAllowed           = "MethodNotAllowed"
	SubcodeUnsupportedMediaType       = "UnsupportedMediaType"
	SubcodeCannotRedirect             = "CannotRedirect"
	SubcodeServiceFailure             = "ServiceFailure"
	SubcodeServiceTimeout             = "ServiceTimeout"
	SubcodeCallbackChannelError       = "CallbackChannelError"
	SubcodeAlreadyExists              = "AlreadyExists"
	SubcodeDialoutNotAllowed          = "DialoutNotAllowed"
	SubcodeLimitExceeded              = "LimitExceeded"
	// SubcodeCallerDenied answers a caller the edge's operator barred
	// (deny_callers), apart from a token that lacks a scope (Forbidden
	// without a subcode, with an insufficient_scope challenge): the
	// answer's code and subcode are what its metric series and log lines
	// tell them apart by.
	SubcodeCallerDenied = "CallerDenied"
)

// Messages the seed reference gives for startPhoneAudio's own errors.
const (
	MessagePhoneAudioNotInCapabilities = "Phone audio is not listed in the capabilities."
	MessageCannotRedirect              = "Cannot redirect since there is no back up pool configured."
	MessageNormalizationFailed         = "The phone normalization failed."
)

// Namespace is the XML namespace of every UCWA document.
const Namespace = "http://schemas.microsoft.com/rtc/2012/03/ucwa"

// codes maps an HTTP status to its UCWA error code. Each status has one
// code, but not each code one status: 500 and 502 both answer
// "ServiceFailure". UCWA defines no code for 401 and 502: the edge answers
// those with "Unauthorized" and "ServiceFailure".
var codes = map[int]string{
	http.StatusBadRequest:            "BadRequest",
	http.StatusUnauthorized:          "Unauthorized",
	http.StatusForbidden:             "Forbidden",
	http.StatusNotFound:              "NotFound",
	http.StatusMethodNotAllowed:      "MethodNotAllowed",
	http.StatusRequestTimeout:        "ClientTimeout",
	http.StatusConflict:              "Conflict",
	http.StatusGone:                  "Gone",
	http.StatusPreconditionFailed:    "PreConditionFailed",
	http.StatusRequestEntityTooLarge: "EntityTooLarge",
	http.StatusUnsupportedMediaType:  "UnsupportedMediaType",
	http.StatusPreconditionRequired:  "PreConditionRequired",
	http.StatusTooManyRequests:       "TooManyRequests",
	http.StatusInternalServerError:   "ServiceFailure",
	http.StatusBadGateway:            "ServiceFailure",
	http.StatusServiceUnavailable:    "ServiceUnavailable",
	http.StatusGatewayTimeout:        "Timeout",
}

// Code returns the UCWA error code for an HTTP status.
func Code(status int) string {
	if c, ok := codes[status]; ok {
		return c
	}
	if status >= 500 {
		return "ServiceFailure"
	}
	return "BadRequest"
}

// Parameter names one property that failed and why.
type Parameter struct {
	Name   string `json:"name"`
	Reason string `json:"reason"`
}

// Error is a UCWA error: an HTTP status and the body that explains it.
type Error struct {
	// Status is the HTTP status code of the response; it also chooses
	// the body's code (see Code).
	Status int
	// Subcode refines the code (one of the Subcode constants); "" writes
	// none.
	Subcode string
	// Message is the human-readable explanation; "" writes none. It must
	// not hold personal data (phone numbers, tokens).
	Message string
	// Parameters names each property that failed validation and why;
	// nil writes none.
	Parameters []Parameter
	// Allow is the Allow header of a 405: the methods the resource
	// accepts. "" writes none.
	Allow string
}

// NewError returns an Error without parameters.
func NewError(status int, subcode, message string) *Error {
	return &Error{Status: status, Subcode: subcode, Message: message}
}

// Code is the UCWA code for the error's status.
func (e *Error) Code() string { return Code(e.Status) }

func (e *Error) Error() string {
	s := strconv.Itoa(e.Status) + " " + e.Code()
	if e.Subcode != "" {
		s += "/" + e.Subcode
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

type jsonError struct {
	Code       string      `json:"code"`
	Subcode    string      `json:"subcode,omitempty"`
	Message    string      `json:"message,omitempty"`
	Parameters []Parameter `json:"parameters,omitempty"`
}

// Marshal renders the error body: in JSON
// {"code":...,"subcode":...,"message":...,"parameters":[{"name":...,"reason":...}]},
// in XML <reason xmlns="..."><code/><subcode/><message/><debugInfo/><parameters/></reason>.
// subcode, message and parameters appear only when the error has them;
// the XML form always carries an empty debugInfo, as a pool's does.
func (e *Error) Marshal(f Format) []byte {
	if f == XML {
		b := append(make([]byte, 0, 256), xml.Header...)
		b = append(b, `<reason xmlns="`+Namespace+`">`...)
		b = appendXMLElement(b, "code", e.Code())
		b = appendXMLElement(b, "subcode", e.Subcode)
		b = appendXMLElement(b, "message", e.Message)
		b = append(b, "<debugInfo/>"...)
		if len(e.Parameters) > 0 {
			b = append(b, "<parameters>"...)
			for _, p := range e.Parameters {
				b = append(b, `<property name="`...)
				b = appendXMLText(b, p.Name)
				b = append(b, `">`...)
				b = appendXMLText(b, p.Reason)
				b = append(b, "</property>"...)
			}
			b = append(b, "</parameters>"...)
		}
		return append(b, "</reason>"...)
	}
	b, _ := json.Marshal(jsonError{Code: e.Code(), Subcode: e.Subcode, Message: e.Message, Parameters: e.Parameters})
	return b
}

// appendXMLElement appends <name>text</name>, or nothing when text is "".
func appendXMLElement(b []byte, name, text string) []byte {
	if text == "" {
		return b
	}
	b = append(b, '<')
	b = append(b, name...)
	b = append(b, '>')
	b = appendXMLText(b, text)
	b = append(b, "</"...)
	b = append(b, name...)
	return append(b, '>')
}

// Write sends the error as the whole response, with Content-Type,
// Content-Length and no caching.
func (e *Error) Write(w http.ResponseWriter, f Format) {
	body := e.Marshal(f)
	h := w.Header()
	h.Set("Content-Type", f.ContentType())
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Cache-Control", "no-store")
	h.Del("Content-Encoding")
	if e.Allow != "" {
		h.Set("Allow", e.Allow)
	}
	w.WriteHeader(e.Status)
	_, _ = w.Write(body)
}

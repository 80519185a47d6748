package caddymodule

import (
	"fmt"
	"slices"
	"strings"

	"github.com/ucwa-edge/caddy-ucwa/ucwa"
)

// OperationConfig changes one operation of the table (ucwa.DefaultOperations):
// it adds path spellings, or replaces the scopes that grant it.
type OperationConfig struct {
	// Path suffixes added to the operation's own, for the spellings a
	// pool hands out beyond those the table knows. Each starts with /,
	// names whole segments and is clean (no trailing /, no . or ..
	// segments, ASCII); it is matched case-insensitively against the end
	// of the canonical request path, as IIS matches paths. The table's
	// own spellings always stay guarded. Default: none.
	Paths []string `json:"paths,omitempty"`

	// The scopes that grant the operation, in place of the table's (and
	// of the handler's scopes): a token needs at least one. Matched
	// case-sensitively. Not with jwt off. Default: the handler's scopes
	// when given, else the table's.
	Scopes []string `json:"scopes,omitempty"`
}

// phoneAudioOperations are the operations `phone_audio disabled` refuses:
// every request that makes a pool ring a phone for call-via-work (the
// pool calls the caller's own phone, then bridges the call). The audio
// and video requests whose to may be a number are not phone audio: a
// pool that has phone audio turned off still places those.
var phoneAudioOperations = []string{
	"startPhoneAudio", "startPhoneAudioOnBehalfOfDelegator", "addPhoneAudio",
	"replaceWithPhoneAudio", "continuePhoneAudio", "acceptWithPhoneAudio",
}

// provisionOperations builds the table of guarded operations from
// ucwa.DefaultOperations and the configuration (paths, scopes,
// operations), checks it, and makes the matcher every request goes
// through.
func (h *Handler) provisionOperations() error {
	ops := ucwa.DefaultOperations()
	if err := addPaths(ucwa.FindOperation(ops, "startPhoneAudio"), h.Paths, "paths"); err != nil {
		return err
	}
	if err := checkScopes(h.Scopes, "scopes"); err != nil {
		return err
	}
	if len(h.Scopes) > 0 {
		for i := range ops {
			ops[i].Scopes = slices.Clone(h.Scopes)
		}
	}
	rels := make([]string, 0, len(h.Operations))
	for rel := range h.Operations {
		rels = append(rels, rel)
	}
	slices.Sort(rels) // the same first error on every start
	configured := make(map[*ucwa.Operation]string, len(rels))
	for _, rel := range rels {
		oc, setting := h.Operations[rel], "operation "+rel
		op := ucwa.FindOperation(ops, rel)
		switch {
		case op == nil:
			return fmt.Errorf("%s: no such operation; the operations are %s", setting, operationNames(ops))
		case configured[op] != "":
			return fmt.Errorf("%s: the same operation as %s", setting, configured[op])
		case oc == nil || len(oc.Paths) == 0 && len(oc.Scopes) == 0:
			return fmt.Errorf("%s: gives neither paths nor scopes", setting)
		}
		configured[op] = rel
		if err := addPaths(op, oc.Paths, setting+": paths"); err != nil {
			return err
		}
		if err := checkScopes(oc.Scopes, setting+": scopes"); err != nil {
			return err
		}
		if len(oc.Scopes) > 0 {
			op.Scopes = slices.Clone(oc.Scopes)
		}
	}
	m, err := ucwa.NewMatcher(ops) // validates the table
	if err != nil {
		return err
	}
	h.matcher = m
	if h.DisablePhoneAudio {
		h.phoneAudioOff = make(map[*ucwa.Operation]bool, len(phoneAudioOperations))
		for _, rel := range phoneAudioOperations {
			h.phoneAudioOff[ucwa.FindOperation(m.Operations(), rel)] = true
		}
	}
	return nil
}

// addPaths adds suffixes to op's path spellings, each checked and named
// by setting when it is not a clean suffix.
func addPaths(op *ucwa.Operation, suffixes []string, setting string) error {
	for _, s := range suffixes {
		if err := ucwa.ValidPathSuffix(s); err != nil {
			return fmt.Errorf("%s: %w", setting, err)
		}
		if !slices.ContainsFunc(op.Paths, func(p string) bool { return strings.EqualFold(p, s) }) {
			op.Paths = append(op.Paths, s)
		}
	}
	return nil
}

// checkScopes refuses a scope that cannot be a scope token: it goes into
// the 403's WWW-Authenticate challenge as a space-separated list.
func checkScopes(scopes []string, setting string) error {
	for _, s := range scopes {
		if s == "" || strings.ContainsAny(s, " \"\\") || !isPrintableASCII(s) {
			return fmt.Errorf("%s: %q is not a scope token", setting, s)
		}
	}
	return nil
}

// operationNames lists the rels of a table.
func operationNames(ops []ucwa.Operation) string {
	names := make([]string, len(ops))
	for i := range ops {
		names[i] = ops[i].Rel
	}
	return strings.Join(names, ", ")
}
